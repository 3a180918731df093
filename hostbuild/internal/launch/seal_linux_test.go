package launch

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The files QEMU inherits are memfds sealed against writes, growth,
// shrinking and further seal changes: not even this process can change
// the bytes it hashed.
func TestPrepareSealsTheFiles(t *testing.T) {
	f := newFixture(t, []int{1})
	p := prepare(t, f.snp())
	const all = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL
	for i, file := range p.Files {
		seals, err := unix.FcntlInt(file.Fd(), unix.F_GET_SEALS, 0)
		if err != nil {
			t.Fatalf("Files[%d] (%s): F_GET_SEALS: %v (not a memfd?)", i, file.Name(), err)
		}
		if seals&all != all {
			t.Errorf("Files[%d] (%s): seals %#x, want %#x", i, file.Name(), seals, all)
		}
		w, err := os.OpenFile(ownFD(file), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.EPERM) {
			t.Errorf("Files[%d] (%s): a write gave %v, want EPERM", i, file.Name(), err)
		}
		w.Close()
	}
}

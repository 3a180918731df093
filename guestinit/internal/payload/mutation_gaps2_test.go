package payload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Tests added after a second mutation-testing sample of the payload unpack.

// hookHasher is GoHasher running hook before hashing the first frame.
type hookHasher struct {
	integrity.GoHasher
	hook func()
	done bool
}

func (h *hookHasher) SumBytes(b []byte) ([32]byte, error) {
	if !h.done {
		h.done = true
		h.hook()
	}
	return h.GoHasher.SumBytes(b)
}

// A fault on the packed file's mapping (here: the file truncated under it,
// so its pages are gone and reading them raises SIGBUS) is an error naming
// the frame, not a crash of PID 1.
func TestUnpackMappingFaultIsError(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	src := filepath.Join(root, initrdlayout.PackedPayloadPath)
	h := &hookHasher{hook: func() {
		if err := os.Truncate(src, 0); err != nil {
			t.Errorf("truncate: %v", err)
		}
	}}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("Unpack with the packed file truncated under its mapping: %v, want a memory fault error", err)
	}
	nothingLeft(t, root)
}

// A dangling symlink at /bin/katana is "a file already there": Unpack
// refuses (Lstat), rather than replacing what the initrd put there.
func TestUnpackRefusesDanglingSymlink(t *testing.T) {
	root, fr := pack(t, payloadBytes(10<<10), 4<<10)
	dst := filepath.Join(root, initrdlayout.PayloadPath)
	if err := os.Symlink("/nonexistent/katana", dst); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(Options{Root: root, Frames: fr}); err == nil || !strings.Contains(err.Error(), "ambiguous payload") {
		t.Fatalf("Unpack with a dangling symlink at %s: %v, want a refusal", initrdlayout.PayloadPath, err)
	}
	if l, err := os.Readlink(dst); err != nil || l != "/nonexistent/katana" {
		t.Errorf("the symlink was replaced: %q %v", l, err)
	}
}

// Without HugeTmpfs the packed file is removed after decoding, and a
// failure to remove it (here: it is already gone) is an error: only with
// HugeTmpfs, which removed it before decoding, is its absence expected.
func TestUnpackPackedGoneIsErrorWithoutHugeTmpfs(t *testing.T) {
	root, fr := pack(t, payloadBytes(10<<10), 4<<10)
	src := filepath.Join(root, initrdlayout.PackedPayloadPath)
	h := &hookHasher{hook: func() {
		if err := os.Remove(src); err != nil {
			t.Errorf("remove: %v", err)
		}
	}}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "removing "+initrdlayout.PackedPayloadPath) {
		t.Fatalf("Unpack whose packed file vanished: %v, want an error removing it", err)
	}
}

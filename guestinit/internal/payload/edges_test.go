package payload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// A packed payload longer than its frame list says is refused like a short
// one: the file is not the one the list describes.
func TestUnpackRefusesLongerPacked(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	p := filepath.Join(root, initrdlayout.PackedPayloadPath)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	_, err = Unpack(Options{Root: root, Frames: fr, Workers: 2})
	if !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), "the frame list says") {
		t.Errorf("packed payload one byte longer: %v, want ErrMismatch naming the size", err)
	}
	nothingLeft(t, root)
}

// The temporary payload is created, never reused: a bin/katana.partial
// already in the initrd (here a symbolic link out of the folder) is an
// error, and nothing is written through it.
func TestUnpackRefusesExistingPartial(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, initrdlayout.PayloadPath+".partial")); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(Options{Root: root, Frames: fr, Workers: 2}); err == nil {
		t.Error("Unpack wrote the payload through an existing bin/katana.partial")
	}
	if b, _ := os.ReadFile(victim); !bytes.Equal(b, []byte("keep")) {
		t.Errorf("the link's target was overwritten: %d bytes", len(b))
	}
	if _, err := os.Lstat(filepath.Join(root, initrdlayout.PayloadPath)); !os.IsNotExist(err) {
		t.Errorf("%s exists after the refusal (%v)", initrdlayout.PayloadPath, err)
	}
}

// A worker's panic outside the frame check (here an inconsistent frame
// list whose frames decode past the payload's size) is an error, not the
// end of PID 1, and leaves nothing behind.
func TestUnpackWorkerPanic(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	fr.Size -= 1
	_, err := Unpack(Options{Root: root, Frames: fr, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "payload: worker panic") {
		t.Errorf("Unpack with frames past the payload's end: %v, want a worker panic error", err)
	}
	nothingLeft(t, root)
}

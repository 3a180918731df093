package integrity

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// barrierHasher is GoHasher whose Sum waits until n calls are in it at
// once (or a timeout), then reports a wrong sum: every file is bad, and
// all n are found bad together.
type barrierHasher struct {
	GoHasher
	mu      sync.Mutex
	n       int
	arrived chan struct{}
	once    sync.Once
}

func (h *barrierHasher) Sum(f *os.File) ([32]byte, int64, error) {
	h.mu.Lock()
	h.n--
	if h.n == 0 {
		h.once.Do(func() { close(h.arrived) })
	}
	h.mu.Unlock()
	select {
	case <-h.arrived:
	case <-time.After(5 * time.Second):
	}
	_, n, err := h.GoHasher.Sum(f)
	return [32]byte{}, n, err
}

// When several files are found bad at once (one per worker), All reports
// the first by path, as its comment says, whichever worker finished first:
// the boot's error names the same file on every run.
func TestAllReportsSmallestPathOfSeveralBad(t *testing.T) {
	root := makeRoot(t, map[string]string{"a": "same size", "b": "same size"})
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"etc/guestinit/contents.sha256": true}
	for rel := range list {
		if rel != "a" && rel != "b" {
			skip[rel] = true
		}
	}
	for range 5 {
		h := &barrierHasher{n: 2, arrived: make(chan struct{})}
		_, err := Checker{Root: root, List: list, Hash: h, Workers: 2}.All(skip)
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "integrity: a (") {
			t.Fatalf("two bad files found at once: %v, want the error naming a", err)
		}
	}
}

// Pin refuses a file it cannot hash (missing, or a symbolic link): a
// Pinned with a zero sum would pass no check and hide why.
func TestPinRefusesWhatItCannotHash(t *testing.T) {
	dir := t.TempDir()
	if _, err := Pin(filepath.Join(dir, "missing"), "x", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Pin of a missing file: %v, want ErrNotExist", err)
	}
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("katana"), 0o755)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if p, err := Pin(link, "x", nil); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Pin of a symbolic link: %+v, %v; want ErrNotRegular", p, err)
	}
}

// errAfter yields its data, then err.
type errAfter struct {
	data []byte
	err  error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// copyAll (the kernel hasher's fallback when splicing is refused) reports
// a read error (EIO on a damaged file) instead of ending the hash there as
// if the file had ended.
func TestCopyAllReadError(t *testing.T) {
	eio := errors.New("input/output error")
	_, n, err := spliceTo(t, func(op int) (int64, error) {
		return copyAll(&errAfter{data: []byte("first bytes"), err: eio}, op)
	})
	if !errors.Is(err, eio) || n != int64(len("first bytes")) {
		t.Errorf("copyAll of a reader that fails: %d bytes, %v; want 11 bytes and the read error", n, err)
	}
	_, n, err = spliceTo(t, func(op int) (int64, error) {
		return copyAll(&errAfter{data: []byte("all"), err: io.EOF}, op)
	})
	if err != nil || n != 3 {
		t.Errorf("copyAll to EOF: %d bytes, %v", n, err)
	}
}

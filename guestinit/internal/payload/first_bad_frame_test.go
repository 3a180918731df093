package payload

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
)

// barrierHasher answers every frame with a wrong sum, once n hashes are
// under way at once (or after a second), so that several workers fail.
type barrierHasher struct {
	integrity.GoHasher
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (h *barrierHasher) SumBytes([]byte) ([32]byte, error) {
	h.mu.Lock()
	if h.arrived++; h.arrived == h.n {
		close(h.all)
	}
	h.mu.Unlock()
	select {
	case <-h.all:
	case <-time.After(time.Second):
	}
	return [32]byte{}, nil
}

// When several frames fail at once, the error is the first failed frame's
// in the list (frame 0), whichever worker finished last.
func TestUnpackNamesTheFirstFailedFrame(t *testing.T) {
	root, fr := pack(t, payloadBytes(400<<10), 100<<10)
	h := &barrierHasher{n: 2, all: make(chan struct{})}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 2})
	if !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), " frame 0 ") {
		t.Errorf("frames 0 and 1 failed together: %v, want frame 0's mismatch", err)
	}
	nothingLeft(t, root)
}

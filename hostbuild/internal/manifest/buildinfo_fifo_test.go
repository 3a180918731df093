package manifest

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
)

// ReadBuildInfo refuses a FIFO (or another file that is not regular) at
// once, as every other input: hostbuild build reads the init's build info
// before anything else reads --init, and buildinfo.ReadFile's plain open
// of a FIFO waited for a writer for ever (ignoring SIGTERM).
func TestReadBuildInfoRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadBuildInfo(fifo); done <- err }()
	select {
	case err := <-done:
		var nr *infile.NotRegularError
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), fifo) {
			t.Errorf("ReadBuildInfo(FIFO): %v; want a *infile.NotRegularError naming it", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBuildInfo(FIFO) still blocked after 10s")
	}
}

package integrity

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The Unvouched tests mount a tmpfs and make device nodes in temporary
// folders: in a mount namespace of their own, so that nothing they do can
// outlive them on the host.
func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWNS)) }

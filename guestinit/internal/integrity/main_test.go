package integrity

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The Unvouched tests mount a tmpfs and make device nodes in temporary
// folders: in a mount namespace of their own, so that nothing they do can
// outlive them on the host. The fixtures' files and folders get their
// modes under the umask the kernel starts PID 1 with (022), whatever the
// umask of the shell that runs the tests (under 077, /bin/katana was 0600
// and Unvouched rightly refused the "good" tree).
func TestMain(m *testing.M) {
	unix.Umask(0o022)
	os.Exit(nstest.Run(m, unix.CLONE_NEWNS))
}

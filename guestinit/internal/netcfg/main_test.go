package netcfg

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The tests run in a network namespace of their own, made before any test
// starts: code that missed the namespace a test gave it (a bug, or a
// mutant in a mutation-testing run) finds only that namespace's loopback,
// never the host's eth0 or default route. The files they write get their
// modes under the umask the kernel starts PID 1 with (022), whatever the
// umask of the shell that runs the tests (under 077 resolv.conf was 0600).
func TestMain(m *testing.M) {
	unix.Umask(0o022)
	os.Exit(nstest.Run(m, unix.CLONE_NEWNET))
}

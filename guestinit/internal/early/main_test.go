package early

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The tests run in user and mount namespaces of their own, where the real
// mount(2) of the init's table is refused: the tests pass a fake, and code
// that missed it (a bug, or a mutant in a mutation-testing run) mounted
// the table in a temporary folder, devtmpfs included, whose removal then
// deleted the host's device nodes (devtmpfs has one instance per kernel;
// a mount namespace alone does not contain it).
func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWUSER|unix.CLONE_NEWNS)) }

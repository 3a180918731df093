package payload

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The tests run in a mount namespace of their own: a mount that code put
// in the wrong place (a bug, or a mutant in a mutation-testing run) never
// reaches the host, and every mount ends with the test process.
func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWNS)) }

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
// never the host's eth0 or default route.
func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWNET)) }

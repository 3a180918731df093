package agent

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The tests run in user and mount namespaces of their own: Start mounts
// configfs at /sys/kernel/config when the kernel has it and nothing is
// mounted there, which on a development machine would be the host's (one
// configfs instance per kernel). There the mount is refused, as Start
// allows (configfs-tsm unavailable, /dev/sev-guest remains).
func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWUSER|unix.CLONE_NEWNS)) }

// Package nstest runs a package's tests in fresh Linux namespaces, for the
// guest packages whose code, run by mistake on the host (a bug, or a
// mutant in a mutation-testing run), would act on the whole machine: power
// sends kill(-1) and reboot(2), netcfg reconfigures eth0 and the default
// route, early and payload mount file systems. In a new PID namespace
// kill(-1) reaches only that namespace and reboot(2) ends only its init,
// the test process; in a new network namespace there is no host interface
// to reconfigure; in a new mount namespace (made private, so that nothing
// propagates back) mounts vanish with the test process. A mount namespace
// alone does not contain devtmpfs or configfs, which have one instance per
// kernel: a test that mounted devtmpfs in a temporary folder and removed
// the folder would delete the host's device nodes. In a new user namespace
// too (root mapped to the caller), mounting them is refused.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(nstest.Run(m, unix.CLONE_NEWNET)) }
package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// exitNoProc is the re-executed test binary's exit status when it could
// not mount its /proc: the parent then runs the tests in place.
const exitNoProc = 125

// insideEnv marks the re-executed test binary; its value is the clone
// flags it was started with.
const insideEnv = "SNPBOOT_NSTEST_INSIDE"

// Run runs m's tests in a copy of the test binary started in new
// namespaces (cloneflags: unix.CLONE_NEWPID, unix.CLONE_NEWNET, ...) and
// returns the exit status to pass to os.Exit. Where namespaces cannot be
// created (not root), it says so and runs the tests in place: tests that
// need root skip themselves there.
func Run(m *testing.M, cloneflags uintptr) int {
	if v, ok := os.LookupEnv(insideEnv); ok {
		flags, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nstest: $%s=%q: %v\n", insideEnv, v, err)
			return 1
		}
		if flags&unix.CLONE_NEWNS != 0 {
			// A mount namespace copies the propagation of its parent's
			// mounts: on a host where / is shared, a mount would appear
			// on the host too.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				fmt.Fprintf(os.Stderr, "nstest: making / private in the new mount namespace: %v\n", err)
				return 1
			}
			// In a new PID namespace too, /proc is mounted again to
			// show that namespace's processes by the pids its
			// processes see (os.StartProcess's, getpid's).
			if flags&unix.CLONE_NEWPID != 0 {
				if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
					// A container may refuse it (a masked /proc): the
					// parent runs the tests in place instead.
					fmt.Fprintf(os.Stderr, "nstest: mounting /proc in the new PID namespace: %v\n", err)
					return exitNoProc
				}
			}
		}
		return m.Run()
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), insideEnv+"="+strconv.FormatUint(uint64(cloneflags), 10))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags, Pdeathsig: syscall.SIGKILL}
	if cloneflags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() == exitNoProc:
		fmt.Fprintln(os.Stderr, "nstest: running the tests in place (tests that need PID 1 of a namespace skip themselves)")
		return m.Run()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	case errors.As(err, &ee):
		fmt.Fprintf(os.Stderr, "nstest: the tests in their own namespaces ended by %v\n", ee.ProcessState)
		return 1
	case errors.Is(err, syscall.EPERM):
		fmt.Fprintf(os.Stderr, "nstest: cannot create namespaces (%v); running the tests in place (run as root to isolate them)\n", err)
		return m.Run()
	default:
		fmt.Fprintf(os.Stderr, "nstest: starting the tests in their own namespaces: %v\n", err)
		return 1
	}
}

package power

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/nstest"
)

// The tests run in their own PID namespace: code that reached the real
// kill(-1) or reboot(2) by mistake ends only that namespace, not the host.
func TestMain(m *testing.M) {
	if os.Getenv("POWER_TEST_DEFAULTS") == "1" {
		defaultsMain()
	}
	os.Exit(nstest.Run(m, unix.CLONE_NEWPID))
}

// defaultsMain calls the real KillAll and Reboot with requests that change
// nothing even where they are allowed (signal 0; Ctrl-Alt-Del on, which a
// PID namespace refuses) and prints their errors, one a line.
func defaultsMain() {
	var o Options
	fill(&o)
	fmt.Println("kill:", o.KillAll(0))
	fmt.Println("reboot:", o.Reboot(unix.LINUX_REBOOT_CMD_CAD_ON))
	os.Exit(0)
}

// The real kill(-1) and reboot(2) refuse to run outside PID 1: a process
// that is not the init (a test on the host that reached the defaults by
// mistake) would otherwise end every process on the machine or power it off.
func TestDefaultsRefuseOutsideInit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POWER_TEST_DEFAULTS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	pid := cmd.ProcessState.Pid()
	want := fmt.Sprintf("kill: refusing kill(-1): this process is PID %d, not the init\nreboot: refusing reboot(2): this process is PID %d, not the init\n", pid, pid)
	if string(out) != want {
		t.Errorf("the defaults outside PID 1 said:\n%s\nwant:\n%s", out, want)
	}
	if os.Getpid() != 1 {
		t.Logf("not PID 1 of a PID namespace (run as root to test that the init may use them)")
		return
	}
	var o Options
	fill(&o)
	if err := o.KillAll(0); err != nil && !errors.Is(err, unix.ESRCH) {
		t.Errorf("KillAll(0) as PID 1: %v, want the call made (nil or ESRCH)", err)
	}
	if err := o.Reboot(unix.LINUX_REBOOT_CMD_CAD_ON); err == nil || strings.Contains(err.Error(), "refusing") {
		t.Errorf("Reboot(CAD_ON) as PID 1 of a PID namespace: %v, want the kernel's refusal (EINVAL)", err)
	}
}

// One test only: Shutdown takes a process-wide lock that is never released.
func TestShutdownSequence(t *testing.T) {
	var steps []string
	// Two children that ignore SIGTERM and die on SIGKILL.
	alive, killed := 2, false
	o := Options{
		Log: func(f string, a ...any) { steps = append(steps, "log "+fmt.Sprintf(f, a...)) },
		KillAll: func(sig unix.Signal) error {
			steps = append(steps, "kill "+unix.SignalName(sig))
			killed = sig == unix.SIGKILL
			return nil
		},
		Reap: func() bool {
			if killed {
				alive = 0
			}
			return alive > 0
		},
		Sync:    func() { steps = append(steps, "sync") },
		Unmount: func() error { steps = append(steps, "unmount"); return errors.New("busy") },
		Reboot: func(cmd int) error {
			steps = append(steps, fmt.Sprintf("reboot %#x", cmd))
			return unix.EPERM
		},
		Park:   func() { steps = append(steps, "park") },
		Settle: 200 * time.Millisecond,
	}
	start := time.Now()
	Shutdown(PowerOff, o)
	want := []string{
		"log powering off",
		"kill SIGTERM",
		"kill SIGKILL",
		"sync",
		"unmount",
		"log unmount: busy",
		"sync",
		fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
		"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)",
		"park",
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
		t.Errorf("took %v: want the 200ms settle time, then SIGKILL", d)
	}
	// Nobody left: no signals, no waiting.
	steps = nil
	alive = 0
	fill(&o)
	if o.Reap() {
		t.Error("Reap reports children with none alive")
	}
	// A second shutdown blocks forever.
	done := make(chan struct{})
	go func() { Shutdown(Reboot, o); close(done) }()
	select {
	case <-done:
		t.Error("second Shutdown returned")
	case <-time.After(100 * time.Millisecond):
	}
}

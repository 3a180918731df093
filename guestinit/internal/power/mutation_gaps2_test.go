package power

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Tests added after a second mutation-testing sample of the shutdown.

const gaps2ScenarioEnv = "POWER_TEST_GAPS2"

func init() {
	if os.Getenv(gaps2ScenarioEnv) != "sync panics twice" {
		return
	}
	say := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	// A sync that panics (a bug) panics again when the panic path syncs
	// once more: that second panic must not escape Shutdown either.
	func() {
		defer func() {
			if r := recover(); r != nil {
				say("the panic reached the caller: %v", r)
			}
		}()
		Shutdown(PowerOff, Options{
			Log:     func(f string, a ...any) { say("log "+f, a...) },
			KillAll: func(sig unix.Signal) error { say("kill %s", unix.SignalName(sig)); return nil },
			Reap:    func() bool { return false },
			Sync:    func() { say("sync"); panic("sync bug") },
			Flush:   func() { say("flush") },
			Unmount: func() error { say("unmount"); return nil },
			Reboot:  func(cmd int) error { say("reboot %#x", cmd); return unix.EPERM },
			Park:    func() { say("park"); os.Exit(0) },
		})
	}()
	say("Shutdown returned")
	os.Exit(3)
}

func TestGapPanicAgainOnThePanicPath(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), gaps2ScenarioEnv+"=sync panics twice")
	if os.Getpid() == 1 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("helper: %v\nstderr:\n%s", err, stderr.String())
	}
	want := []string{"log powering off", "sync", "log shutdown: a step panicked (sync bug); poweroff at once", "sync", "flush",
		fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF), "park"}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// The defaults the guest's init relies on (it sets neither): orphans get
// 1 s between SIGTERM and SIGKILL, and sync plus unmount get 10 s, as
// README.md says ("the init syncs (10 s at most").
func TestGapFillDefaults(t *testing.T) {
	var o Options
	fill(&o)
	if o.Settle != time.Second {
		t.Errorf("default Settle %v, want 1s", o.Settle)
	}
	if o.DiskTimeout != 10*time.Second || DefaultDiskTimeout != 10*time.Second {
		t.Errorf("default DiskTimeout %v (DefaultDiskTimeout %v), want 10s", o.DiskTimeout, DefaultDiskTimeout)
	}
	// Values given are kept.
	o = Options{Settle: time.Millisecond, DiskTimeout: time.Minute}
	fill(&o)
	if o.Settle != time.Millisecond || o.DiskTimeout != time.Minute {
		t.Errorf("given Settle/DiskTimeout replaced: %v %v", o.Settle, o.DiskTimeout)
	}
}

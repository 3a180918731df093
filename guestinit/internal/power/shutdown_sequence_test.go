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

// sequenceScenarioEnv selects a Shutdown scenario of this file's in a helper
// process (Shutdown runs once per process); init runs it before TestMain.
const sequenceScenarioEnv = "POWER_TEST_SEQUENCE"

func init() {
	scenario := os.Getenv(sequenceScenarioEnv)
	if scenario == "" {
		return
	}
	say := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	switch scenario {
	case "children gone after SIGTERM":
		// Children that end on SIGTERM: the first reap finds them, the
		// next finds none. Settle is 0 (the default 1s).
		reaps := 0
		Shutdown(PowerOff, Options{
			Log:     func(f string, a ...any) { say("log "+f, a...) },
			KillAll: func(sig unix.Signal) error { say("kill %s", unix.SignalName(sig)); return nil },
			Reap: func() bool {
				reaps++
				say("reap")
				return reaps == 1
			},
			Sync:    func() { say("sync") },
			Flush:   func() { say("flush") },
			Unmount: func() error { say("unmount"); return nil },
			Reboot:  func(cmd int) error { say("reboot %#x", cmd); return unix.EPERM },
			Park:    func() { say("park"); os.Exit(0) },
		})
	default:
		say("unknown scenario %q", scenario)
	}
	os.Exit(3)
}

// Children that end on SIGTERM within the settle time get no SIGKILL, with
// the default settle time (Settle 0 means 1s, not none), and Shutdown
// goes on as soon as a reap finds none left: it reaps once after the
// SIGTERM here, not for the whole settle time.
func TestShutdownChildrenGoneAfterSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sequenceScenarioEnv+"=children gone after SIGTERM")
	if os.Getpid() == 1 { // root, in nstest's PID namespace
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	want := []string{"log powering off", "reap", "kill SIGTERM", "reap", "sync", "unmount", "sync", "flush",
		fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
		"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// After a disk step that did not finish in time, no other step runs (it
// would wait on the same stalled file system) and none is logged again:
// the panic path of Shutdown asks for one more sync after the others.
func TestDiskStepsNoneAfterAStall(t *testing.T) {
	var logs []string
	o := Options{Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }, DiskTimeout: 50 * time.Millisecond}
	d := &diskSteps{o: &o, m: PowerOff}
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	if d.step("sync", func() { <-block }) {
		t.Fatal("a sync that never returns finished in time")
	}
	ran := make(chan struct{}, 1)
	if d.step("sync", func() { ran <- struct{}{}; <-block }) {
		t.Error("a step after a stalled one reported finished")
	}
	want := []string{"sync did not finish within 50ms; powering off without it"}
	if diff := cmp.Diff(want, logs); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
	select {
	case <-ran:
		t.Error("a step ran after a stalled one")
	default:
	}
}

// panicScenarioEnv selects the panic-path scenario below in a helper
// process; init runs it before TestMain.
const panicScenarioEnv = "POWER_TEST_PANIC_AGAIN"

func init() {
	if os.Getenv(panicScenarioEnv) != "sync panics twice" {
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

func TestPanicAgainOnThePanicPath(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), panicScenarioEnv+"=sync panics twice")
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
func TestFillDefaults(t *testing.T) {
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

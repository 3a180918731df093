package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/early"
	"github.com/katana-tee/snpboot/guestinit/internal/modload"
	"github.com/katana-tee/snpboot/guestinit/internal/power"
)

// init runs before TestMain: with GUESTINIT_TEST_EPIPE=1 the test binary
// catches signals as main does, then writes to a standard error whose
// reader is gone.
func init() {
	if os.Getenv("GUESTINIT_TEST_EPIPE") != "1" {
		return
	}
	catchSignals()
	r, w, err := os.Pipe()
	if err != nil {
		os.Exit(4)
	}
	r.Close()
	if err := unix.Dup2(int(w.Fd()), 2); err != nil {
		os.Exit(5)
	}
	_, err = fmt.Fprintln(os.Stderr, "a log line to a console that went away")
	fmt.Println("write:", err)
	fmt.Println("PID 1 survived")
	os.Exit(0)
}

// A failed write to fd 2 (the kernel's console before the init reopens
// it) is EPIPE, not the end of PID 1: without SIGPIPE among the caught
// signals, package os ends the process with SIGPIPE.
func TestSurvivesEPIPEOnStderr(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GUESTINIT_TEST_EPIPE=1")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "PID 1 survived") || !strings.Contains(string(out), "broken pipe") {
		t.Fatalf("write to a broken stderr: %v; output %q", err, out)
	}
}

// The signals the package doc promises PID 1 survives, listed here rather
// than taken from absorbedSignals (a signal dropped from that list would
// drop its own test case too).
func TestAbsorbedSignalsDocumented(t *testing.T) {
	want := []syscall.Signal{unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS, unix.SIGFPE,
		unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS, unix.SIGPIPE, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU}
	for _, w := range want {
		found := false
		for _, s := range absorbedSignals {
			found = found || s == w
		}
		if !found {
			t.Errorf("%s is not caught: a Go PID 1 dies of it (a kernel panic)", unix.SignalName(w))
		}
	}
}

// A boot error ends the agent's reports at once: the config they bind will
// not run (and the payload may have been found tampered with).
func TestFatalEndsReadiness(t *testing.T) {
	in, _, halted := testInit(t)
	in.ready.Checked()
	if err := in.ready.Err(); err != nil {
		t.Fatalf("ready after Checked: %v", err)
	}
	in.fatal(errors.New("before restarting katana: tampered"))
	<-halted
	if in.ready.Err() == nil {
		t.Error("the agent would still give reports after a boot error")
	}
}

// Only the first boot error powers off; a second one (another goroutine's
// panic meanwhile) logs its reason and leaves the power-off to the first.
func TestSecondFatalParks(t *testing.T) {
	in, log, halted := testInit(t)
	in.fatal(errors.New("first"))
	<-halted
	fatalParks(t, in, log, halted, "second")
}

// fatalParks calls fatal(msg) on a goroutine of its own, as another
// goroutine's panic would, once the power-off is under way: it must log
// "boot error: msg" and not halt again.
func fatalParks(t *testing.T, in *initProc, log *syncBuffer, halted chan string, msg string) {
	t.Helper()
	go in.fatal(errors.New(msg))
	select {
	case at := <-halted:
		t.Errorf("boot error %q halted again:\n%s", msg, at)
	case <-time.After(300 * time.Millisecond):
	}
	// The goroutine may not have run yet on a loaded machine.
	line := "boot error: " + msg
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), line) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), line) {
		t.Errorf("log lacks %q:\n%s", line, log.String())
	}
}

// When a fatal path is under way, the boot's own end (the supervision
// returning as the fatal's stop request ends Katana, or katana.on_exit)
// leaves the power-off to it: no second power-off, and no reboot for
// katana.on_exit=reboot after a boot error.
func TestEndDuringFatalParks(t *testing.T) {
	in, _, halted := testInit(t)
	in.failing.Store(true)
	go in.end(power.Reboot, "shutdown: %s", "katana.on_exit=reboot after exit status=0")
	select {
	case at := <-halted:
		t.Errorf("end powered off while a boot error was being handled:\n%s", at)
	case <-time.After(300 * time.Millisecond):
	}
}

// A boot error just after the boot's own end began (another goroutine's
// panic as the supervision returns) is logged and leaves the power-off, or
// katana.on_exit's reboot, to the end: one halt, in the end's mode.
func TestFatalDuringEndParks(t *testing.T) {
	in, log, halted := testInit(t)
	in.end(power.Reboot, "shutdown: %s", "katana.on_exit=reboot after exit status=0")
	if at := <-halted; !strings.HasPrefix(at, power.Reboot.String()+"\n") {
		t.Fatalf("end halted as %q, want %s", at, power.Reboot)
	}
	fatalParks(t, in, log, halted, "late")
}

// A late mount the kernel refuses (no configfs: no configfs-tsm for the
// agent) is logged, as the boot sequence says; its failure is in
// MountAll's results only, and was dropped (found by review).
func TestMountLateLogsFailure(t *testing.T) {
	var lines []string
	fail := func(source, target, fstype string, flags uintptr, data string) error { return unix.ENODEV }
	mountLate(early.Options{Root: t.TempDir(), Mount: fail}, nil, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	if len(lines) != 1 || !strings.Contains(lines[0], "configfs") || !strings.HasSuffix(lines[0], "(optional)") {
		t.Errorf("logged %q, want one line naming configfs, ending in (optional)", lines)
	}
	// Its module left out with sev_guest (6.7+, outside SEV-SNP): the
	// line says why there is no configfs.
	lines = nil
	why := errors.New("only sev_guest needs it (/lib/modules/6.12.0-test/modules.dep), and sev_guest is not loaded; not loaded")
	skipped := []modload.Result{{Name: "configfs", Status: modload.Skipped, Skipped: why}}
	mountLate(early.Options{Root: t.TempDir(), Mount: fail}, skipped, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "(optional; module configfs was not loaded: "+why.Error()+")") {
		t.Errorf("logged %q, want one line ending in why module configfs was not loaded", lines)
	}
}

// A flood of SIGHUP and SIGCHLD to PID 1 while nothing takes signals (the
// supervisor busy) must not cost a SIGTERM sent after it: one channel for
// all kinds fills with the flood and signal.Notify drops the SIGTERM.
func TestSignalFloodKeepsStop(t *testing.T) {
	sigs, _ := catchSignals()
	t.Cleanup(func() { signal.Reset(append(append([]os.Signal{}, supervisedSignals...), absorbedSignals...)...) })
	self := os.Getpid()
	for i := range 400 {
		unix.Kill(self, unix.SIGHUP)
		unix.Kill(self, unix.SIGCHLD)
		if i%4 == 0 { // let the runtime deliver them one by one
			time.Sleep(time.Millisecond)
		}
	}
	unix.Kill(self, unix.SIGTERM)
	time.Sleep(100 * time.Millisecond) // delivered (or dropped) by now
	counts := map[os.Signal]int{}
	timeout := time.After(10 * time.Second)
	for counts[unix.SIGTERM] == 0 {
		select {
		case s := <-sigs:
			counts[s]++
		case <-timeout:
			t.Fatalf("SIGTERM lost after a flood; taken instead: %v", counts)
		}
	}
	// The flood is coalesced, as the kernel coalesces a pending signal:
	// of each kind at most one in its own channel, one held by its relay
	// and sigs' slots, not one per kill.
	most := 2 + cap(sigs)
	if counts[unix.SIGHUP] == 0 || counts[unix.SIGHUP] > most || counts[unix.SIGCHLD] > most {
		t.Errorf("taken %v, want 1-%d SIGHUPs and at most %d SIGCHLDs before the SIGTERM", counts, most, most)
	}
}

// A late mount that succeeds is not logged: mountLate logs failures only.
func TestMountLateQuietWhenMounted(t *testing.T) {
	var lines []string
	ok := func(source, target, fstype string, flags uintptr, data string) error { return nil }
	mountLate(early.Options{Root: t.TempDir(), Mount: ok}, nil, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	if len(lines) != 0 {
		t.Errorf("logged %q for late mounts that succeeded, want nothing", lines)
	}
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Modes of the test binary for TestPID1SurvivesSignals, chosen in TestMain:
// "init" is PID 1 of a new PID namespace with main()'s signal handling;
// "payload" is the Katana it starts, which reports its ignored signals and
// sends one signal to PID 1, as Katana (root) or any program could.
func signalsTestMode(mode string) {
	switch mode {
	case "init":
		// What this process inherited ignored (a test runner may ignore
		// some; the guest's PID 1 starts with none).
		fmt.Println("inherited SigIgn", sigIgn())
		_, absorbed := catchSignals()
		if os.Getpid() != 1 {
			fmt.Println("not PID 1")
			os.Exit(3)
		}
		exe, _ := os.Executable()
		p, err := os.StartProcess(exe, []string{exe}, &os.ProcAttr{
			Env:   []string{"GUESTINIT_SIGNALS_TEST=payload", "GUESTINIT_SIGNALS_SIG=" + os.Getenv("GUESTINIT_SIGNALS_SIG")},
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			fmt.Println("starting the payload:", err)
			os.Exit(4)
		}
		p.Wait()
		select {
		case s := <-absorbed:
			fmt.Println("absorbed", unix.SignalName(s.(syscall.Signal)))
		case <-time.After(time.Second):
		}
		fmt.Println("PID 1 survived")
		os.Exit(0)
	case "payload":
		fmt.Println("payload SigIgn", sigIgn())
		n, _ := strconv.Atoi(os.Getenv("GUESTINIT_SIGNALS_SIG"))
		unix.Kill(1, unix.Signal(n))
		time.Sleep(100 * time.Millisecond) // let PID 1 take it before the SIGCHLD
		os.Exit(0)
	}
}

// sigIgn is this process's ignored-signal mask, in /proc's hex.
func sigIgn() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// A signal that the payload sends to PID 1 never ends the init (for PID 1,
// a kernel panic: "Attempted to kill init!"), and the payload starts with no
// signal ignored that the init did not inherit ignored, and none of those
// the init catches.
func TestPID1SurvivesSignals(t *testing.T) {
	// SIGINT (Ctrl-Alt-Del) and SIGHUP too: without the init's handler
	// the Go runtime exits on both.
	for _, sig := range append([]os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1}, absorbedSignals...) {
		name := unix.SignalName(sig.(syscall.Signal))
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = []string{"GUESTINIT_SIGNALS_TEST=init", fmt.Sprintf("GUESTINIT_SIGNALS_SIG=%d", sig)}
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
			out, err := cmd.CombinedOutput()
			if errors.Is(err, syscall.EPERM) {
				t.Skipf("a new PID namespace needs root (CAP_SYS_ADMIN): %v; run the tests as root (CI does)", err)
			}
			if err != nil || !strings.Contains(string(out), "PID 1 survived") {
				first, _, _ := strings.Cut(string(out), "\n")
				t.Fatalf("PID 1 died of %s sent by its payload: %v; output starts %q", name, err, first)
			}
			var ign, inherited uint64
			for _, l := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(l, "payload SigIgn "); ok {
					ign, _ = strconv.ParseUint(v, 16, 64)
				}
				if v, ok := strings.CutPrefix(l, "inherited SigIgn "); ok {
					inherited, _ = strconv.ParseUint(v, 16, 64)
				}
			}
			var caught uint64
			for _, s := range append([]os.Signal{unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP}, absorbedSignals...) {
				caught |= 1 << (uint(s.(syscall.Signal)) - 1)
			}
			if extra := ign &^ inherited; extra != 0 || ign&caught != 0 {
				t.Errorf("the payload starts with signals ignored (SigIgn %x, inherited %x): PID 1's dispositions leaked through execve", ign, inherited)
			}
			isAbsorbed := false
			for _, s := range absorbedSignals {
				isAbsorbed = isAbsorbed || s == sig
			}
			if isAbsorbed && !strings.Contains(string(out), "absorbed "+name) {
				t.Errorf("%s was not delivered to the absorbed channel; output %q", name, out)
			}
		})
	}
}

// A payload that sends signals in a loop does not flood the console: three
// lines per kind at most.
func TestLogAbsorbed(t *testing.T) {
	ch := make(chan os.Signal, 8)
	for range 5 {
		ch <- unix.SIGQUIT
	}
	ch <- unix.SIGABRT
	close(ch)
	var lines []string
	logAbsorbed(ch, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	quit := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "ignoring SIGQUIT sent to PID 1") {
			quit++
		}
	}
	if quit != 3 || len(lines) != 4 || !strings.HasPrefix(lines[3], "ignoring SIGABRT sent to PID 1") || !strings.Contains(lines[2], "no more lines") {
		t.Errorf("lines %q: want three for SIGQUIT (the last saying no more) and one for SIGABRT", lines)
	}
}

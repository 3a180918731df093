package power

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
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
	if kind := os.Getenv("POWER_TEST_CHILD"); kind != "" {
		childMain(kind)
	}
	if scenario := os.Getenv("POWER_TEST_SHUTDOWN"); scenario != "" {
		shutdownMain(scenario)
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

// shutdownMain runs one Shutdown scenario in a helper process (Shutdown
// runs once per process), PID 1 of a new PID namespace where the test
// could make one, and prints its steps one a line. The fake scenarios end
// in Park, which exits 0; the real ones end by reboot(2), which in a PID
// namespace kills its init with SIGINT (power off) or SIGHUP (restart).
func shutdownMain(scenario string) {
	say := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	fake := Options{
		Log:     func(f string, a ...any) { say("log "+f, a...) },
		KillAll: func(sig unix.Signal) error { say("kill %s", unix.SignalName(sig)); return nil },
		Sync:    func() { say("sync") },
		Flush:   func() { say("flush") },
		Unmount: func() error { say("unmount"); return nil },
		Reboot:  func(cmd int) error { say("reboot %#x", cmd); return unix.EPERM },
		Park:    func() { say("park"); os.Exit(0) },
		Settle:  50 * time.Millisecond,
	}
	switch scenario {
	case "children that ignore SIGTERM":
		// Two children that ignore SIGTERM and die on SIGKILL.
		var killed bool
		var termAt time.Time
		fake.KillAll = func(sig unix.Signal) error {
			say("kill %s", unix.SignalName(sig))
			switch sig {
			case unix.SIGTERM:
				termAt = time.Now()
			case unix.SIGKILL:
				killed = true
				say("SIGKILL after the settle time: %v", time.Since(termAt) >= 200*time.Millisecond)
			}
			return nil
		}
		fake.Reap = func() bool { return !killed }
		fake.Unmount = func() error { say("unmount"); return errors.New("busy") }
		fake.Settle = 200 * time.Millisecond
		fake.Park = func() {
			say("park")
			// A second Shutdown (a panic elsewhere meanwhile) blocks for
			// good: it never logs, let alone powers off.
			done := make(chan struct{})
			go func() {
				Shutdown(Reboot, Options{Log: func(string, ...any) { say("second Shutdown ran") },
					KillAll: fake.KillAll, Reap: fake.Reap, Sync: fake.Sync, Unmount: fake.Unmount,
					Reboot: fake.Reboot, Park: func() {}})
				close(done)
			}()
			select {
			case <-done:
				say("second Shutdown returned")
			case <-time.After(100 * time.Millisecond):
			}
			os.Exit(0)
		}
		Shutdown(PowerOff, fake)
	case "sync stalls", "unmount stalls", "slow sync, then unmount stalls", "sync stalls on reboot":
		// A file system whose backend stopped answering (a host-served
		// share): the step blocks for ever. The power-off goes on
		// without it, within DiskTimeout for all the steps together.
		fake.Reap = func() bool { return false }
		// 3s, and a slow sync of 1s: seconds of slack for a loaded
		// machine (a 0.7s sync of a 1s budget overran it under load).
		fake.DiskTimeout = 3 * time.Second
		block := func(step string) { say(step); select {} }
		switch scenario {
		case "sync stalls", "sync stalls on reboot":
			fake.Sync = func() { block("sync") }
		case "unmount stalls":
			fake.Unmount = func() error { block("unmount"); return nil }
		case "slow sync, then unmount stalls":
			fake.Sync = func() { say("sync"); time.Sleep(time.Second) }
			fake.Unmount = func() error { block("unmount"); return nil }
		}
		start := time.Now()
		reboot := fake.Reboot
		fake.Reboot = func(cmd int) error {
			// 3s in all, not per step (the slow sync's 1s counts);
			// 4s or more would be a bound per step.
			say("waited under 3.9s: %v", time.Since(start) < 3900*time.Millisecond)
			return reboot(cmd)
		}
		m := PowerOff
		if scenario == "sync stalls on reboot" {
			m = Reboot
		}
		Shutdown(m, fake)
	case "nobody left":
		fake.Reap = func() bool { return false }
		Shutdown(PowerOff, fake)
	case "a step panics":
		// The unmount panics (a bug): Shutdown syncs and powers off at
		// once, and the panic never reaches the caller's recover, whose
		// path to a power-off, Shutdown again, would block for ever.
		fake.Reap = func() bool { return false }
		fake.Unmount = func() error { say("unmount"); panic("unmount bug") }
		func() {
			defer func() {
				if r := recover(); r != nil {
					say("the panic reached the caller: %v", r)
				}
			}()
			Shutdown(PowerOff, fake)
		}()
		say("Shutdown returned")
	case "children that outlive SIGKILL":
		killed := false
		fake.KillAll = func(sig unix.Signal) error {
			say("kill %s", unix.SignalName(sig))
			killed = killed || sig == unix.SIGKILL
			return nil
		}
		fake.Reap = func() bool {
			if killed {
				say("reap")
			}
			return true
		}
		Shutdown(Reboot, fake)
	case "real poweroff", "real reboot", "real zero mode":
		// The real kill(-1), wait4, sync and reboot(2), for this
		// namespace: two children, one that dies of SIGTERM and one that
		// ignores it.
		if os.Getpid() != 1 {
			say("not PID 1 but %d", os.Getpid())
			os.Exit(3)
		}
		pids := map[string]int{}
		for _, kind := range []string{"term", "stubborn"} {
			r, w, err := os.Pipe()
			if err != nil {
				say("pipe: %v", err)
				os.Exit(3)
			}
			p, err := os.StartProcess(os.Args[0], []string{os.Args[0], "-test.run=^$"}, &os.ProcAttr{
				Env:   append(os.Environ(), "POWER_TEST_CHILD="+kind),
				Files: []*os.File{nil, w, os.Stderr},
			})
			w.Close()
			if err != nil {
				say("starting the %s child: %v", kind, err)
				os.Exit(3)
			}
			if line, err := bufio.NewReader(r).ReadString('\n'); line != "ready\n" {
				say("%s child said %q, %v", kind, line, err)
				os.Exit(3)
			}
			pids[kind] = p.Pid
		}
		m := map[string]Mode{"real poweroff": PowerOff, "real reboot": Reboot, "real zero mode": 0}[scenario]
		Shutdown(m, Options{
			Log: fake.Log,
			Unmount: func() error {
				// After the kill sequence, before reboot(2): both children
				// must be gone, and reaped (a zombie still answers kill 0).
				for _, kind := range []string{"term", "stubborn"} {
					if err := unix.Kill(pids[kind], 0); errors.Is(err, unix.ESRCH) {
						say("unmount: %s child gone", kind)
					} else {
						say("unmount: %s child still there (kill 0: %v)", kind, err)
					}
				}
				return nil
			},
			Park:   fake.Park,
			Settle: 50 * time.Millisecond,
		})
	default:
		say("unknown scenario %q", scenario)
		os.Exit(3)
	}
	os.Exit(4) // Park exits; not reached
}

// childMain is a child of the real scenarios: "term" dies of SIGTERM (no
// handler), "stubborn" ignores it and dies only of SIGKILL.
func childMain(kind string) {
	if kind == "stubborn" {
		signal.Ignore(unix.SIGTERM)
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}

// TestShutdownScenarios runs Shutdown in helper processes, one scenario
// each, as it takes a process-wide lock that is never released: with
// fakes, the whole sequence (SIGTERM, the settle time, SIGKILL, sync,
// unmount, sync, reboot(2), parking when it fails, a second Shutdown that
// blocks), the steps when nothing is left to stop and the bound on waiting
// for children that outlive SIGKILL and on a sync or an unmount that
// never returns (a stalled file system); with the real system calls
// in a PID namespace of its own, that every child is stopped and reaped
// before reboot(2), and which reboot(2) command each mode sends.
func TestShutdownScenarios(t *testing.T) {
	reboot := fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_RESTART)
	stubborn := []string{"log rebooting", "kill SIGTERM", "kill SIGKILL"}
	for range 100 { // 100 polls 10ms apart: about a second, then on
		stubborn = append(stubborn, "reap")
	}
	stubborn = append(stubborn, "sync", "unmount", "sync", "flush", reboot,
		"log reboot failed: operation not permitted; parking (the VM must be stopped from outside)", "park")
	gone := []string{"unmount: term child gone", "unmount: stubborn child gone"}
	for _, tc := range []struct {
		scenario string
		real     bool
		want     []string
		signal   unix.Signal // that ended the helper; 0: exit status 0
	}{
		{"children that ignore SIGTERM", false, []string{"log powering off", "kill SIGTERM", "kill SIGKILL",
			"SIGKILL after the settle time: true", "sync", "unmount", "log unmount: busy", "sync", "flush",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
			"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"nobody left", false, []string{"log powering off", "sync", "unmount", "sync", "flush",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
			"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"children that outlive SIGKILL", false, stubborn, 0},
		{"sync stalls", false, []string{"log powering off", "sync",
			"log sync did not finish within 3s; powering off without it", "flush", "waited under 3.9s: true",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
			"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"sync stalls on reboot", false, []string{"log rebooting", "sync",
			"log sync did not finish within 3s; rebooting without it", "flush", "waited under 3.9s: true", reboot,
			"log reboot failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"unmount stalls", false, []string{"log powering off", "sync", "unmount",
			"log unmount did not finish within 3s; powering off without it", "flush", "waited under 3.9s: true",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
			"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"slow sync, then unmount stalls", false, []string{"log powering off", "sync", "unmount",
			"log unmount did not finish within 3s; powering off without it", "flush", "waited under 3.9s: true",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
			"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)", "park"}, 0},
		{"a step panics", false, []string{"log powering off", "sync", "unmount",
			"log shutdown: a step panicked (unmount bug); poweroff at once", "sync", "flush",
			fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF), "park"}, 0},
		{"real poweroff", true, append([]string{"log powering off"}, gone...), unix.SIGINT},
		{"real reboot", true, append([]string{"log rebooting"}, gone...), unix.SIGHUP},
		// The zero Mode (an outcome nobody filled in) powers off.
		{"real zero mode", true, append([]string{"log powering off"}, gone...), unix.SIGINT},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "POWER_TEST_SHUTDOWN="+tc.scenario)
			if os.Getpid() == 1 { // root, in nstest's PID namespace
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
			} else if tc.real {
				t.Skip("skipping: needs a PID namespace of its own; run as root to enable")
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("helper: %v", err)
			}
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if tc.signal == 0 && ws != 0 || tc.signal != 0 && !(ws.Signaled() && ws.Signal() == tc.signal) {
				t.Errorf("helper ended with %v, want %v\nstderr:\n%s", cmd.ProcessState, map[bool]string{true: "exit status 0", false: "signal " + unix.SignalName(tc.signal)}[tc.signal == 0], stderr.String())
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		m    Mode
		want string
	}{
		{PowerOff, "poweroff"},
		{Reboot, "reboot"},
		{0, "poweroff"}, // the zero Mode powers off
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(tc.m), got, tc.want)
		}
	}
}

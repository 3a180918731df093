package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/katana-tee/snpboot/guestinit/internal/power"
	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/bootcfg"
	"golang.org/x/sys/unix"
)

// onGrace wraps o.Log to run f (with the payload's pid) when Run logs that
// the grace period ran out, before it sends SIGKILL: Run calls Log on its
// own goroutine, so f runs between the grace timer and the SIGKILL.
func onGrace(o *Options, f func(pid int)) {
	log := o.Log
	o.Log = func(format string, args ...any) {
		if strings.HasPrefix(format, "katana pid=%d still running after") {
			f(args[0].(int))
		}
		log(format, args...)
	}
}

// waitZombie waits until pid has exited (a zombie no one has reaped yet).
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// pid (comm) S ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
	}
	t.Fatalf("pid %d did not exit", pid)
}

// shell returns Options that run script with /bin/sh as the payload
// (SUPERVISE_OUT names the harness's report file). The test binary's
// helper modes cannot do what these tests need: leave a signal ignored
// for a while, then die of it.
func shell(t *testing.T, h *harness, script string) Options {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	o := h.opts("exit")
	o.Path, o.Args = "/bin/sh", []string{"-c", script}
	return o
}

// A payload that dies of the stop's own signal only after the grace period
// ran out (and SIGKILL was sent) is not marked as ended by the graceful
// stop: Run must note the SIGKILL (r.killed) when the grace timer fires.
// TestNoStopMarkAfterSIGKILL covers reap with the flag set by hand; this
// one covers Run setting it.
func TestGraceTimeoutSetsKilled(t *testing.T) {
	h := newHarness(t)
	// Ignores SIGTERM until SIGUSR1, then dies of SIGTERM.
	o := shell(t, h, `trap '' TERM; trap 'trap - TERM; kill -TERM $$' USR1; echo ready >> "$SUPERVISE_OUT"; while :; do sleep 0.05; done`)
	o.StopTimeout = 200 * time.Millisecond
	onGrace(&o, func(pid int) {
		unix.Kill(pid, unix.SIGUSR1)
		waitZombie(t, pid) // dead of SIGTERM before Run sends its SIGKILL
	})
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	h.st.RequestStop("test")
	out := waitOutcome(t, ch)
	if !strings.Contains(out.Reason, "exit status=143 signal=SIGTERM") {
		t.Fatalf("outcome %+v, want an exit by SIGTERM", out)
	}
	if h.logged(MarkStopSignal) {
		t.Errorf("logs %q mark a payload whose grace period ran out as ended by the graceful stop", h.logs)
	}
}

// When the payload's exit is not seen within KillWait of the SIGKILL (a
// process stuck in the kernel), Run still returns, with a reason that says
// so: the guest must power off rather than wait for ever. Here the test
// itself kills and reaps the payload as the grace period runs out, so Run
// never sees its exit, as for a payload that survives SIGKILL.
func TestRunReturnsWhenExitNeverSeenAfterSIGKILL(t *testing.T) {
	h := newHarness(t)
	o := h.opts("stubborn")
	o.StopTimeout = 100 * time.Millisecond
	o.KillWait = 200 * time.Millisecond
	onGrace(&o, func(pid int) {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	})
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	h.st.RequestStop("test")
	select {
	case out := <-ch:
		if out.Action != power.PowerOff || !strings.Contains(out.Reason, "survived SIGKILL for 200ms") {
			t.Errorf("outcome %+v, want a power-off that says the payload survived SIGKILL for 200ms", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return although KillWait (200ms) after the SIGKILL passed long ago")
	}
}

// A second stop request during the graceful stop (SIGINT after an agent
// request) changes nothing: the payload is not signalled again (nor its
// grace period restarted). The shell payload logs each signal; SIGHUP,
// which Run forwards after it handled the SIGINT, ends it.
func TestSecondStopRequestIgnored(t *testing.T) {
	h := newHarness(t)
	o := shell(t, h, `done=; trap 'echo term >> "$SUPERVISE_OUT"' TERM; trap 'echo int >> "$SUPERVISE_OUT"' INT; trap 'done=1' HUP
echo ready >> "$SUPERVISE_OUT"; while [ -z "$done" ]; do sleep 0.05; done; echo bye >> "$SUPERVISE_OUT"`)
	o.StopTimeout = time.Minute
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	h.st.RequestStop("agent POST /v1/shutdown")
	h.waitReport("term")
	h.sigs <- unix.SIGINT
	h.sigs <- unix.SIGHUP
	out := waitOutcome(t, ch)
	if !strings.Contains(out.Reason, "graceful stop (agent POST /v1/shutdown) done, exit status=0") {
		t.Errorf("outcome %+v, want the first stop's reason and exit status 0", out)
	}
	if diff := cmp.Diff([]string{"ready", "term", "bye"}, h.report()); diff != "" {
		t.Errorf("signals the payload saw (-want +got):\n%s", diff)
	}
}

// During the grace period Run waits on its channels; it does not spin.
// A stop request is taken once (the channel is dropped after it): left
// in the select, the closed channel would be ready on every iteration and
// PID 1 would burn a CPU for the whole grace period, which on a small
// guest is time taken from Katana's own shutdown. The CPU time of the
// test process over a 1s grace period is a few milliseconds when Run
// waits; the bound is a tenth of it, so that only a spin fails (a
// spinning goroutine gets far more even on a loaded machine).
func TestNoBusyLoopDuringGracePeriod(t *testing.T) {
	h := newHarness(t)
	o := h.opts("stubborn")
	o.StopTimeout = time.Second
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before := cpu()
	h.st.RequestStop("test")
	out := waitOutcome(t, ch)
	used := cpu() - before
	if !strings.Contains(out.Reason, "signal=SIGKILL") {
		t.Fatalf("outcome %+v, want the SIGKILL after the grace period", out)
	}
	t.Logf("CPU time over the stop: %v", used)
	if used > o.StopTimeout/10 {
		t.Errorf("the init used %v of CPU during a %v grace period, want far less (a busy loop?)", used, o.StopTimeout)
	}
}

// During the grace period the status says stopping (the agent's
// /v1/status shows it): the payload still runs, but is being stopped.
func TestStateStoppingDuringGracePeriod(t *testing.T) {
	h := newHarness(t)
	// Ignores SIGTERM; SIGHUP (forwarded by Run) ends it.
	o := shell(t, h, `trap '' TERM; trap 'exit 0' HUP; echo ready >> "$SUPERVISE_OUT"; while :; do sleep 0.05; done`)
	o.StopTimeout = time.Minute
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	h.st.RequestStop("test")
	// Run logs the stop after it set the state and sent SIGTERM.
	for deadline := time.Now().Add(10 * time.Second); !h.logged("stopping katana pid="); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run never began the stop")
		}
	}
	if got := h.st.Snapshot().State; got != status.Stopping {
		t.Errorf("state during the grace period = %q, want %q", got, status.Stopping)
	}
	h.sigs <- unix.SIGHUP
	if out := waitOutcome(t, ch); !strings.Contains(out.Reason, "graceful stop (test) done, exit status=0") {
		t.Errorf("outcome %+v", out)
	}
}

// A payload that exits and leaves nothing running is restarted without
// any kill of leftovers, even when a reap while it ran found it running
// (the SIGCHLD of an unrelated child, or the periodic reap): that reap's
// "children left" must not outlive the exit. Otherwise each restart would
// kill(-1) for nothing and wait KillWait for leftovers that do not exist.
func TestNoLeftoversAfterCleanExit(t *testing.T) {
	if os.Getpid() != 1 {
		t.Skipf("not PID 1 of a PID namespace (pid %d): other children of the test process may exist", os.Getpid())
	}
	var ws unix.WaitStatus
	for {
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil {
			break // ECHILD: none, as the test needs
		}
		if pid == 0 {
			t.Skip("children of earlier tests still run")
		}
	}
	h := newHarness(t)
	o := h.opts("hup")
	o.OnExit = bootcfg.OnExitRestart
	o.RestartLimit = 1
	kills := 0
	o.KillAll = func(unix.Signal) error { kills++; return nil }
	ch := make(chan Outcome, 1)
	go func() { ch <- Run(context.Background(), o) }()
	h.waitReport("ready")
	h.sigs <- unix.SIGCHLD // a reap while the payload runs
	// The payload exits 0 by itself (from Run's view): "hup" mode exits
	// on SIGTERM, here not sent by Run. Its pid is in the status once
	// Run has recorded it, which on a loaded machine can come after the
	// payload's "ready".
	sent := false
	for deadline := time.Now().Add(10 * time.Second); !h.logged("restarting katana (restart 1 of 1)"); time.Sleep(5 * time.Millisecond) {
		if pid := h.st.Snapshot().PID; pid != 0 && !sent {
			unix.Kill(pid, unix.SIGTERM)
			sent = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart; logs %q", h.logs)
		}
	}
	h.st.RequestStop("test")
	waitOutcome(t, ch)
	if kills != 0 || h.logged("katana left processes running") {
		t.Errorf("KillAll called %d times, logs %q: want no kill of leftovers after an exit that left none", kills, h.logs)
	}
}

// SSL_CERT_FILE names the CA bundle only when it is a regular file: a
// folder at its path (a broken initrd layout) would make every TLS client
// in Katana fail to load it, where without the variable Go and OpenSSL
// fall back to their own search.
func TestEnvCABundleNotAFile(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/"}
	if diff := cmp.Diff(want, Env(root)); diff != "" {
		t.Errorf("Env with a folder where the CA bundle goes (-want +got):\n%s", diff)
	}
}

// MarkStopSignal is for a payload ended by the stop's signal before any
// SIGKILL: one whose SIGTERM death is seen only after the grace period ran
// out and SIGKILL was sent (it unblocked SIGTERM just then) is not marked
// as a clean graceful stop.
func TestNoStopMarkAfterSIGKILL(t *testing.T) {
	h := newHarness(t)
	r := &runner{o: h.opts("plain")}
	r.grace, r.kill, r.restart = stopped(), stopped(), stopped()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	h.waitReport("ready")
	r.stopping, r.stopSig, r.killed = true, unix.SIGTERM, true
	r.reason = "graceful stop (test)"
	unix.Kill(r.pid, unix.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := r.reap(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the payload did not exit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !h.logged("katana exited status=143 signal=SIGTERM") {
		t.Fatalf("logs %q lack the exit line", h.logs)
	}
	if h.logged(MarkStopSignal) {
		t.Errorf("logs %q mark a payload already sent SIGKILL as ended by the graceful stop", h.logs)
	}
}

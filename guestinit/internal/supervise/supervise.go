// Package supervise runs the payload (Katana) under the init: it starts it
// with an argv slice (never a shell) and a minimal environment, reaps every
// child on SIGCHLD (the init adopts all orphans), forwards signals, applies
// the katana.on_exit policy when it exits, and performs the graceful stop:
// SIGTERM (or the SIGINT the init received), a grace period, SIGKILL.
// Syncing, unmounting and powering off are the caller's, after Run returns.
package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/power"
	"github.com/katana-tee/snpboot/guestinit/internal/status"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Outcome is the result of Run.
type Outcome struct {
	Action power.Mode // how the guest ends: power.PowerOff, or power.Reboot for katana.on_exit=reboot
	Reason string     // one line for the log, e.g. "katana.on_exit=poweroff after exit status=0" (never repeats the exit marker)
	Err    error      // set when the payload could not be run at all: a boot error
}

// Options configure Run. Path, Signals, Status and Log are required.
type Options struct {
	Path   string   // the payload, e.g. /bin/katana
	Args   []string // argv[1:]
	Env    []string
	Stdin  *os.File // normally /dev/null; nil leaves fd 0 closed
	Stdout *os.File
	Stderr *os.File

	OnExit       bootcfg.OnExit
	RestartLimit int
	StopTimeout  time.Duration
	KillWait     time.Duration                   // after SIGKILL, how long to wait for the exit; 0: DefaultKillWait
	Backoff      func(restart int) time.Duration // nil: Backoff

	// Signals delivers SIGCHLD, SIGTERM, SIGINT and SIGHUP (signal.Notify).
	Signals <-chan os.Signal
	Status  *status.Status
	Log     func(format string, args ...any)
	// KillAll sends a signal to every process but the init (kill(-1)),
	// to end what Katana left running before a restart; nil:
	// power.KillAll, which refuses outside PID 1.
	KillAll func(sig unix.Signal) error
	// PrepareFDs runs before each start to make sure no descriptor but
	// 0, 1 and 2 is inherited; nil: close_range(3, ~0, CLOSE_RANGE_CLOEXEC).
	PrepareFDs func() error

	// OpenFiles, when not 0, is set as RLIMIT_NOFILE (soft and hard)
	// before the first start, for the payload to inherit: the kernel gives
	// PID 1 1024 (4096 hard), which a server with many connections
	// outgrows (Go raises the init's own soft limit, not its children's).
	OpenFiles uint64
	// Verify, when set, runs before each restart (not before the first
	// start, which follows the boot's own check): it checks the payload
	// file again (integrity.Pinned.Check). Katana runs as root and could
	// have replaced its own binary; an error ends the supervision with
	// Outcome.Err (a boot error, then the power-off) and no restart.
	Verify func() error

	// TmpDir, when set, is made an empty folder (0700) before each start
	// and given to the payload as TMPDIR: Katana keeps its in-memory
	// database in a temporary folder, which a killed Katana leaves behind,
	// so without this every restart would keep the last one's in memory.
	TmpDir string
}

// DefaultKillWait is how long Run waits for the payload's exit after
// SIGKILL.
const DefaultKillWait = 5 * time.Second

// reapTick is how often Run reaps without a SIGCHLD.
const reapTick = 2 * time.Second

// DefaultOpenFiles is the RLIMIT_NOFILE the init gives Katana.
const DefaultOpenFiles = 1 << 16

// DefaultTmpDir is Katana's TMPDIR, on the init's /tmp tmpfs.
const DefaultTmpDir = "/tmp/katana"

// Backoff is the default restart delay: 1s, 2s, 4s, ... capped at 30s.
func Backoff(restart int) time.Duration {
	if restart >= 5 {
		return 30 * time.Second
	}
	return time.Second << restart
}

// Env is the payload's base environment: PATH (first the folder of the
// operator's executables, hostbuild pack --exec, where Katana looks for
// its sidecars), HOME=/ and SSL_CERT_FILE when the CA bundle exists under
// root. Run adds TMPDIR=Options.TmpDir when that is set.
func Env(root string) []string {
	env := []string{"PATH=/" + initrdlayout.OperatorBinDir + ":/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/"}
	if fi, err := os.Stat(filepath.Join(root, initrdlayout.CABundlePath)); err == nil && fi.Mode().IsRegular() {
		env = append(env, "SSL_CERT_FILE=/"+initrdlayout.CABundlePath)
	}
	return env
}

// emptyDir makes dir an empty folder, mode 0700, removing what a previous
// run left in it (RemoveAll does not follow symbolic links).
func emptyDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o700)
}

// setOpenFiles sets RLIMIT_NOFILE through syscall.Setrlimit, which tells
// os.StartProcess to pass it on rather than the limit the init started
// with.
func setOpenFiles(n uint64) error {
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
}

func cloexecAll() error {
	return unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}

// ExitFromWait converts a wait status to the status the init logs.
func ExitFromWait(ws unix.WaitStatus) status.Exit {
	switch {
	case ws.Exited():
		return status.Exit{Code: ws.ExitStatus()}
	case ws.Signaled():
		return status.Exit{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return status.Exit{Code: -1}
}

// MarkStopSignal ends the "katana exited" line when Katana was ended by
// the signal of a graceful stop (before any SIGKILL).
const MarkStopSignal = "stop=graceful"

// FormatExit is the "status=N[ signal=NAME]" part of the exit marker.
func FormatExit(e status.Exit) string {
	s := fmt.Sprintf("status=%d", e.Code)
	if e.Signal != "" {
		s += " signal=" + e.Signal
	}
	return s
}

type runner struct {
	o        Options
	pid      int  // 0 when not running
	started  bool // a Katana was started: the next start is a restart
	restarts int
	stopping bool
	stopSig  syscall.Signal
	killed   bool // SIGKILL sent: the graceful stop's time ran out
	reason   string
	grace    *time.Timer
	kill     *time.Timer
	restart  *time.Timer
	// childrenLeft: the last reap found children still running; once
	// Katana has exited, what it left (orphans are the init's children).
	childrenLeft bool
	// leftovers: what an exited Katana left running was killed (at
	// leftoversKilled) before a restart, which waits for it to be gone,
	// for KillWait at most.
	leftovers       bool
	leftoversKilled time.Time
}

// errStopRequested: start did not start the payload, as a stop was
// requested.
var errStopRequested = errors.New("stop requested")

func (r *runner) start() error {
	prep := r.o.PrepareFDs
	if prep == nil {
		prep = cloexecAll
	}
	if err := prep(); err != nil {
		return fmt.Errorf("marking descriptors close-on-exec: %w", err)
	}
	env := r.o.Env
	if r.o.TmpDir != "" {
		if err := emptyDir(r.o.TmpDir); err != nil {
			return fmt.Errorf("preparing katana's TMPDIR: %w", err)
		}
		env = append(env[:len(env):len(env)], "TMPDIR="+r.o.TmpDir)
	}
	argv := append([]string{r.o.Path}, r.o.Args...)
	// Never once a stop was requested, however late (during a restart's
	// check of the payload, or its wait for what the last Katana left): a
	// fatal path waits for this supervision to end, then kills every
	// process and powers off. A stop requested after this point finds
	// the payload started, and Run stops it like any other.
	// A SIGTERM or SIGINT that came while nothing read the signals (a
	// restart's check of the payload, emptying TMPDIR) is a stop
	// requested before this start too.
	when := "before katana started"
	if r.started {
		when = "before katana's restart"
	}
	r.pendingStops(when)
	select {
	case <-r.o.Status.StopRequested():
		return errStopRequested
	default:
	}
	// Katana's stdout and stderr start blocking, as a program expects
	// them: a Katana before this one (katana.on_exit=restart) may have
	// left O_NONBLOCK on the file description they are (os.StartProcess
	// clears only what Go itself set), and Rust's std, for one, fails a
	// print that meets EAGAIN.
	for _, f := range []*os.File{r.o.Stdout, r.o.Stderr} {
		if f != nil {
			if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
				r.o.Log("katana's %s may start non-blocking: %v", f.Name(), err)
			}
		}
	}
	p, err := os.StartProcess(r.o.Path, argv, &os.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []*os.File{r.o.Stdin, r.o.Stdout, r.o.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return fmt.Errorf("starting %s: %w", r.o.Path, err)
	}
	r.pid, r.started = p.Pid, true
	// The init reaps with wait4(-1); drop the handle (pidfd) os keeps.
	p.Release()
	j, _ := json.Marshal(argv)
	r.o.Log("katana started pid=%d argv=%s", r.pid, j)
	r.o.Status.SetRunning(r.pid)
	return nil
}

// Run starts the payload and supervises it until the init must power off
// or reboot. It never returns while the payload it started still runs,
// except when the payload survives SIGKILL for KillWait.
func Run(ctx context.Context, o Options) Outcome {
	if o.Backoff == nil {
		o.Backoff = Backoff
	}
	if o.KillWait == 0 {
		o.KillWait = DefaultKillWait
	}
	if o.KillAll == nil {
		o.KillAll = power.KillAll
	}
	r := &runner{o: o}
	r.grace, r.kill, r.restart = stopped(), stopped(), stopped()
	// A SIGTERM or SIGINT (Ctrl-Alt-Del) that reached PID 1 during the boot
	// waits in o.Signals: it is a stop requested before Katana starts, like
	// a power button press then.
	r.pendingStops("during the boot")
	stopReq := o.Status.StopRequested()
	select {
	case <-stopReq:
		return Outcome{Action: power.PowerOff, Reason: "stop requested before katana started: " + o.Status.StopReason()}
	default:
	}
	if o.OpenFiles != 0 {
		if err := setOpenFiles(o.OpenFiles); err != nil {
			r.o.Log("open files limit stays as it is (setting %d: %v)", o.OpenFiles, err)
		}
	}
	if err := r.start(); errors.Is(err, errStopRequested) {
		return Outcome{Action: power.PowerOff, Reason: "stop requested before katana started: " + o.Status.StopReason()}
	} else if err != nil {
		return Outcome{Action: power.PowerOff, Err: err}
	}
	done := ctx.Done()
	// SIGCHLD can be lost: signal.Notify drops a signal when the channel
	// is full (the init gives each kind a channel of its own, so that a
	// flood of another kind cannot crowd it out, but Run does not rely on
	// how o.Signals is fed). A slow tick reaps too, so that Katana's exit
	// is never missed for good.
	tick := time.NewTicker(reapTick)
	defer tick.Stop()
	// A stop requested (power button, agent, context): once.
	stop := func() (Outcome, bool) {
		stopReq = nil
		return r.beginStop(unix.SIGTERM)
	}
	for {
		select {
		case <-tick.C:
			if out, ok := r.reap(); ok {
				return out
			}
		case sig := <-o.Signals:
			switch sig {
			case unix.SIGCHLD:
				if out, ok := r.reap(); ok {
					return out
				}
			case unix.SIGTERM, unix.SIGINT:
				// Here and in beginStop the stop comes first and its log
				// line after: a console that does not drain (its reader
				// on the host stalled) blocks the logger, and must not
				// keep Katana from hearing the stop.
				o.Status.RequestStop("signal " + unix.SignalName(sig.(syscall.Signal)))
				r.o.Log("received %s: graceful stop", unix.SignalName(sig.(syscall.Signal)))
				if out, ok := r.beginStop(sig.(syscall.Signal)); ok {
					return out
				}
			case unix.SIGHUP:
				if r.pid != 0 {
					unix.Kill(r.pid, unix.SIGHUP)
				}
			}
		case <-stopReq:
			if out, ok := stop(); ok {
				return out
			}
		case <-done:
			done = nil
			o.Status.RequestStop("context: " + context.Cause(ctx).Error())
		case <-r.grace.C:
			r.o.Log("katana pid=%d still running after %v: SIGKILL", r.pid, o.StopTimeout)
			unix.Kill(r.pid, unix.SIGKILL)
			r.killed = true
			r.kill.Reset(o.KillWait)
		case <-r.kill.C:
			return Outcome{Action: power.PowerOff, Reason: fmt.Sprintf("%s; katana pid=%d survived SIGKILL for %v", r.reason, r.pid, o.KillWait)}
		case <-r.restart.C:
			// A stop requested as the restart came due (both ready, and
			// select picks either): stop rather than start a Katana only
			// to stop it.
			select {
			case <-stopReq:
				if out, ok := stop(); ok {
					return out
				}
				continue
			default:
			}
			if r.leftovers {
				// SIGKILL is not instant: a large process releases its
				// memory, then its ports, as it ends. Reap what has ended
				// (orphans are the init's; Katana is not running, so no
				// outcome) and wait for the rest.
				r.reap()
				if r.childrenLeft {
					if time.Since(r.leftoversKilled) < o.KillWait {
						r.restart.Reset(50 * time.Millisecond)
						continue
					}
					r.o.Log("what katana left is still running %v after SIGKILL: restarting anyway", time.Since(r.leftoversKilled).Round(time.Millisecond))
				}
				r.leftovers = false
			}
			// Katana has exited and what it left was killed (above): no
			// process of its is left to change the file between the
			// check and the start (but one that outlived SIGKILL).
			if o.Verify != nil {
				if err := o.Verify(); err != nil {
					return Outcome{Action: power.PowerOff, Err: fmt.Errorf("before restarting katana: %w", err)}
				}
			}
			r.o.Log("restarting katana (restart %d of %d)", r.restarts+1, o.RestartLimit)
			if err := r.start(); errors.Is(err, errStopRequested) {
				// Requested during the check or the leftovers' wait.
				if out, ok := r.beginStop(unix.SIGTERM); ok {
					return out
				}
				continue
			} else if err != nil {
				return Outcome{Action: power.PowerOff, Err: err}
			}
			r.restarts++
			o.Status.AddRestart()
		}
	}
}

// pendingStops takes the signals waiting in o.Signals while Katana is not
// running: SIGTERM and SIGINT become a stop request, SIGCHLD a reap (of
// what Katana left), SIGHUP is dropped (no Katana to pass it to).
func (r *runner) pendingStops(when string) {
	for {
		select {
		case sig := <-r.o.Signals:
			switch sig {
			case unix.SIGTERM, unix.SIGINT:
				name := unix.SignalName(sig.(syscall.Signal))
				r.o.Status.RequestStop("signal " + name)
				r.o.Log("received %s %s: graceful stop", name, when)
			case unix.SIGCHLD:
				r.reap() // Katana is not running: no outcome
			}
		default:
			return
		}
	}
}

// stopped returns a timer that is not running.
func stopped() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (r *runner) beginStop(sig syscall.Signal) (Outcome, bool) {
	if r.stopping {
		return Outcome{}, false
	}
	r.stopping = true
	r.stopSig = sig
	r.reason = "graceful stop (" + r.o.Status.StopReason() + ")"
	r.restart.Stop()
	if r.pid == 0 {
		return Outcome{Action: power.PowerOff, Reason: r.reason + "; katana not running"}, true
	}
	r.o.Status.SetState(status.Stopping)
	unix.Kill(r.pid, sig)
	r.grace.Reset(r.o.StopTimeout)
	r.o.Log("stopping katana pid=%d: %s, then SIGKILL after %v", r.pid, unix.SignalName(sig), r.o.StopTimeout)
	return Outcome{}, false
}

// reap collects every exited child and notes in r.childrenLeft whether
// any still run; it reports an outcome when the payload exit ends the
// supervision.
func (r *runner) reap() (Outcome, bool) {
	var (
		exited bool
		exit   status.Exit
	)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil { // ECHILD: no children at all
			r.childrenLeft = false
			break
		}
		if pid == 0 { // children, none exited
			r.childrenLeft = true
			break
		}
		if pid == r.pid && r.pid != 0 {
			exited, exit = true, ExitFromWait(ws)
			exit.At = r.o.Status.Now()
		}
	}
	if !exited {
		return Outcome{}, false
	}
	// Ended by the stop's own signal (no handler for it, e.g. still
	// starting when the stop came): the graceful stop did what was asked.
	// A stable marker says so, for hostbuild run's classification.
	line := FormatExit(exit)
	if r.stopping && !r.killed && exit.Signal == unix.SignalName(r.stopSig) {
		line += " " + MarkStopSignal
	}
	r.o.Log("katana exited %s", line)
	r.pid = 0
	r.o.Status.SetExited(exit)
	r.grace.Stop()
	r.kill.Stop()
	if r.stopping {
		return Outcome{Action: power.PowerOff, Reason: fmt.Sprintf("%s done, exit %s", r.reason, FormatExit(exit))}, true
	}
	why := fmt.Sprintf("katana.on_exit=%s after exit %s", r.o.OnExit, FormatExit(exit))
	switch r.o.OnExit {
	case bootcfg.OnExitReboot:
		return Outcome{Action: power.Reboot, Reason: why}, true
	case bootcfg.OnExitRestart:
		if r.restarts >= r.o.RestartLimit {
			return Outcome{Action: power.PowerOff, Reason: fmt.Sprintf("%s; restart limit %d reached", why, r.o.RestartLimit)}, true
		}
		// What Katana started and left running (a sidecar, a helper,
		// in Katana's process group or in a session of its own) would
		// hold its ports and memory against the next Katana. The init
		// starts no process but Katana, so every process still running
		// is one of those: all of them go first.
		if r.childrenLeft {
			if err := r.o.KillAll(unix.SIGKILL); err != nil {
				r.o.Log("katana left processes running; killing them before the restart: %v", err)
			} else {
				r.o.Log("katana left processes running: SIGKILL before the restart")
			}
			r.leftovers, r.leftoversKilled = true, time.Now()
		}
		d := r.o.Backoff(r.restarts)
		r.o.Log("restarting katana in %v", d)
		r.o.Status.SetState(status.Restarting)
		r.restart.Reset(d)
		return Outcome{}, false
	}
	return Outcome{Action: power.PowerOff, Reason: why}, true
}

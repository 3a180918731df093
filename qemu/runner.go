package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/katana-tee/snpboot/shared/filekind"
)

// RunOptions tune how Start runs a VM. The zero value is usable.
type RunOptions struct {
	// Console, when set, is called with every serial console line as it
	// arrives (without the line ending), e.g. to copy it to a test log.
	Console func(line string)
	// ConsolePiece, when set, is called as Console is, and also says
	// whether the line continues one cut at MaxLineBytes: such a piece is
	// the middle of a line, not its start.
	ConsolePiece func(line string, continued bool)
	// Stderr, when set, receives QEMU's own stderr as well; the last
	// StderrTail bytes are always kept for Exit.Stderr.
	Stderr io.Writer
	// Poll is how often the serial log file is read; default 20ms.
	Poll time.Duration
	// Repress is how often Stop presses the power button again while the
	// guest runs on; default RepressEvery.
	Repress time.Duration
	// StatePoll is how often the runner asks QEMU's monitor for the VM's
	// run state (with a QMP socket); default StatePollEvery.
	StatePoll time.Duration
	// ExtraFiles are open files QEMU inherits: entry i becomes its file
	// descriptor 3+i, which Options name as InheritedFile(i) (e.g. the
	// kernel a caller opened and hashed). Start does not close them.
	ExtraFiles []*os.File
}

// RepressEvery is how often Stop presses the ACPI power button again. A
// press is lost when nothing in the guest listens for it yet: in the
// firmware, in the kernel's boot, and in the init until it has loaded the
// button driver and subscribed to its events (a few seconds under TCG), so
// an operator's early interrupt would otherwise end in a kill after the
// grace period. The init treats presses after the first as the same stop.
const RepressEvery = 2 * time.Second

// StderrWait is how long the runner reads QEMU's stderr after QEMU has
// exited, while another process still holds it open.
const StderrWait = time.Second

// StderrTail is how much of QEMU's stderr an Exit keeps.
const StderrTail = 4096

// The runner keeps a window of recent console lines in memory, for the
// Wait* methods, Lines and error messages: a guest may run for weeks and log
// gigabytes to its console. The window holds at least the last KeepLines
// lines, or the last KeepBytes bytes of them if that is fewer, and at most
// twice as much. The serial log file keeps everything; RunOptions.Console
// sees every line.
const (
	KeepLines = 10_000
	KeepBytes = 4 << 20
	// MaxLineBytes bounds one line: a longer run of bytes without a
	// newline is cut into lines of this size.
	MaxLineBytes = 64 << 10
)

// Exit describes how QEMU ended.
type Exit struct {
	Code   int    // QEMU's exit status; -1 when a signal ended it
	Signal string // the signal that ended QEMU, if any
	// Killed is true when the runner had to kill QEMU (Kill, or Stop after
	// the grace period) rather than the guest powering off.
	Killed bool
	Stderr string // the tail of QEMU's stderr
	// Stopped is the run state (internal-error, guest-panicked, io-error)
	// in which QEMU had stopped the VM, when the runner killed it for that.
	Stopped string
}

// Clean reports whether QEMU exited by itself with status 0. With
// -no-reboot the guest powering off (or rebooting) ends QEMU so, but QEMU
// also exits 0 when it is itself sent SIGINT, SIGTERM or SIGHUP
// ("terminating on signal N" on its stderr): only the console tells whether
// the guest went down (see hostbuild's launch.Classify).
func (e Exit) Clean() bool { return e.Code == 0 && e.Signal == "" && !e.Killed }

func (e Exit) String() string {
	var s string
	switch {
	case e.Stopped != "":
		s = "qemu stopped the VM (" + e.Stopped + ") and was killed"
	case e.Signal != "":
		s = "qemu ended by signal " + e.Signal
	default:
		s = fmt.Sprintf("qemu exited with status %d", e.Code)
	}
	if e.Killed {
		s += " (killed by the runner)"
	}
	if t := strings.TrimSpace(e.Stderr); t != "" {
		s += "; stderr: " + t
	}
	return s
}

// ErrExited is returned (wrapped) by the Wait* methods when QEMU exits
// before the awaited condition holds.
var ErrExited = errors.New("qemu exited")

// Start's errors about a path a caller may have been given by its user
// match these (errors.Is), so that the caller can name its own flag.
var (
	// ErrNoBinary: the QEMU binary (Options.Binary) does not exist.
	ErrNoBinary = errors.New("no QEMU binary")
	// ErrSerialLog: the serial log (Options.SerialLog) cannot be created.
	ErrSerialLog = errors.New("cannot create the serial log")
)

// startError is a Start error with its message, its cause and its kind
// (ErrNoBinary, ErrSerialLog).
type startError struct {
	msg       string
	err, kind error
}

func (e *startError) Error() string   { return e.msg }
func (e *startError) Unwrap() []error { return []error{e.err, e.kind} }

// removeExisting removes path when something is there, if it is of the
// type want (a previous serial log, a QMP socket left behind): anything
// else (a device node such as /dev/null, a symlink, a folder) is refused,
// not removed.
func removeExisting(path string, want fs.FileMode) error {
	if err := checkReplaceable(path, want); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err != nil {
		return nil // nothing to remove (or nothing that can be: creating it says why)
	}
	return os.Remove(path)
}

// checkReplaceable refuses a path that holds something other than a file
// of type want (a previous log, socket).
func checkReplaceable(path string, want fs.FileMode) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode().Type() != want {
		return fmt.Errorf("%s is %s, which run does not replace: give the path of a new file, or of a previous log", path, filekind.Describe(fi.Mode()))
	}
	return nil
}

// CheckSerialLog says, before any QEMU is started, whether Start would
// take the path for the serial log: a regular file (replaced) or nothing
// yet. Its folder is the caller's to check. Start checks again.
func CheckSerialLog(path string) error {
	return checkReplaceable(path, 0)
}

// VM is a running QEMU process started by Start.
type VM struct {
	Command Command
	opts    Options
	run     RunOptions
	cmd     *exec.Cmd
	started time.Time

	exited   chan struct{} // closed when the process has been waited for
	finished chan struct{} // closed when the serial log is fully read after exit
	exit     Exit
	stderr   *tailBuffer

	mu      sync.Mutex
	lines   []string // the window of recent lines
	bytes   int      // the window's size, the lines' lengths summed
	partial []byte
	cut     bool      // the next piece continues a line cut at MaxLineBytes
	waiters []*waiter // waitFor's, each shown every line added after it registered
	killed  bool      // Kill sent SIGKILL to a QEMU not yet reaped
	stopped string    // the run state watchState killed QEMU for
	reaped  bool      // wait has QEMU's exit status
}

// Start builds the command from o and starts QEMU. The serial log file is
// created afresh. ctx only bounds the start itself: the VM runs until the
// guest powers off, Stop or Kill; callers must call one of them (or Wait).
func Start(ctx context.Context, o Options, ro RunOptions) (*VM, error) {
	c, err := Build(o)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// The cause (an interrupt naming its signal), not a bare
		// "context canceled".
		return nil, fmt.Errorf("starting qemu: %w", context.Cause(ctx))
	}
	if ro.Repress <= 0 {
		ro.Repress = RepressEvery
	}
	if ro.StatePoll <= 0 {
		ro.StatePoll = StatePollEvery
	}
	if ro.Poll <= 0 {
		ro.Poll = 20 * time.Millisecond
	}
	// A binary that is not there is found before the previous serial log
	// is removed: that log is all that is left of the last boot.
	if _, err := exec.LookPath(c.Binary); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, &startError{fmt.Sprintf("starting qemu: %v (install it: apt-get install qemu-system-x86)", err), err, ErrNoBinary}
		}
		return nil, fmt.Errorf("starting qemu: %w", err) // not executable, a folder
	}
	// Remove only what is there: on a read-only file system removing a
	// file that does not exist fails with EROFS, not ENOENT, and the
	// creation below says best what is wrong with the path.
	if err := removeExisting(o.SerialLog, 0); err != nil {
		return nil, &startError{fmt.Sprintf("starting qemu: the serial log: %v", err), err, ErrSerialLog}
	}
	if o.QMPSocket != "" {
		if err := removeExisting(o.QMPSocket, fs.ModeSocket); err != nil {
			return nil, fmt.Errorf("starting qemu: removing the old QMP socket: %w", err)
		}
	}
	// Create the log ourselves so that tailing can start at once and a
	// read-only folder is reported here, not by QEMU.
	f, err := os.OpenFile(o.SerialLog, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, &startError{"starting qemu: creating the serial log: " + err.Error(), err, ErrSerialLog}
	}
	f.Close()

	v := &VM{
		Command:  c,
		opts:     o,
		run:      ro,
		exited:   make(chan struct{}),
		finished: make(chan struct{}),
		stderr:   &tailBuffer{max: StderrTail},
	}
	v.cmd = exec.Command(c.Binary, c.Args()...)
	v.cmd.ExtraFiles = ro.ExtraFiles
	v.cmd.Stdin = nil
	v.cmd.Stdout = io.Discard
	if ro.Stderr != nil {
		v.cmd.Stderr = io.MultiWriter(v.stderr, ro.Stderr)
	} else {
		v.cmd.Stderr = v.stderr
	}
	v.cmd.SysProcAttr = sysProcAttr()
	// QEMU's stderr is read through a pipe: a process QEMU (or a --qemu
	// wrapper) left behind that inherited it would keep Wait, and so
	// Done, Kill and Stop, waiting after QEMU is gone, for as long as it
	// runs. What QEMU wrote is in the pipe when it exits.
	v.cmd.WaitDelay = StderrWait
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		os.Remove(o.SerialLog) // created above, and QEMU never wrote to it
		if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, exec.ErrNotFound) {
			if fi, serr := os.Stat(v.cmd.Path); serr == nil && fi.Mode().IsRegular() {
				return nil, fmt.Errorf("starting qemu: %w: %s is there, but the interpreter it names (a script's #! line, or the ELF loader of a binary built for another system) is missing", err, v.cmd.Path)
			}
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, &startError{fmt.Sprintf("starting qemu: %v (install it: apt-get install qemu-system-x86)", err), err, ErrNoBinary}
		}
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	go v.wait()
	go v.tail()
	if o.QMPSocket != "" {
		go v.watchState()
	}
	return v, nil
}

// Started is when the QEMU process was started.
func (v *VM) Started() time.Time { return v.started }

// Pid is QEMU's process id.
func (v *VM) Pid() int { return v.cmd.Process.Pid }

func (v *VM) wait() {
	err := v.cmd.Wait()
	e := Exit{Code: v.cmd.ProcessState.ExitCode()}
	if ws, ok := v.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Code = -1
		e.Signal = ws.Signal().String()
	} else if err != nil && e.Code == 0 && !errors.Is(err, exec.ErrWaitDelay) {
		e.Code = -1
	}
	v.mu.Lock()
	v.reaped = true
	killed := v.killed
	e.Stopped = v.stopped
	v.mu.Unlock()
	// Killed only when the runner's SIGKILL is what ended QEMU: a QEMU
	// that had already exited by itself (its status is in e) was not
	// killed, whatever Kill tried.
	e.Killed = killed && e.Signal == syscall.SIGKILL.String()
	e.Stderr = v.stderr.String()
	v.exit = e
	close(v.exited)
}

// tail reads the serial log as QEMU writes it and splits it into lines.
func (v *VM) tail() {
	defer close(v.finished)
	f, err := os.Open(v.opts.SerialLog)
	if err != nil {
		v.appendLine("qemu runner: cannot read the serial log: " + err.Error())
		<-v.exited
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	t := time.NewTicker(v.run.Poll)
	defer t.Stop()
	for {
		exited := false
		select {
		case <-v.exited:
			exited = true
		case <-t.C:
		}
		for {
			n, err := f.Read(buf)
			if n > 0 {
				v.feed(buf[:n])
			}
			if n == 0 || err != nil {
				break
			}
		}
		if exited {
			v.mu.Lock()
			last, cont := string(v.partial), v.cut
			if len(v.partial) > 0 {
				v.addLocked(last)
				v.partial = nil
			}
			v.mu.Unlock()
			if last != "" {
				v.consolePiece(last, cont)
			}
			return
		}
	}
}

func (v *VM) feed(b []byte) {
	type piece struct {
		s    string
		cont bool
	}
	var newLines []piece
	v.mu.Lock()
	v.partial = append(v.partial, b...)
	for {
		i := bytes.IndexByte(v.partial, '\n')
		if i < 0 {
			break
		}
		line := v.partial[:i]
		v.partial = v.partial[i+1:]
		for len(line) > MaxLineBytes {
			newLines = append(newLines, piece{string(line[:MaxLineBytes]), v.cut})
			line = line[MaxLineBytes:]
			v.cut = true
		}
		newLines = append(newLines, piece{strings.TrimRight(string(line), "\r"), v.cut})
		v.cut = false
	}
	for len(v.partial) > MaxLineBytes {
		newLines = append(newLines, piece{string(v.partial[:MaxLineBytes]), v.cut})
		v.partial = v.partial[MaxLineBytes:]
		v.cut = true
	}
	if len(v.partial) == 0 {
		v.partial = nil // let a large read's buffer go
	}
	for _, l := range newLines {
		v.addLocked(l.s)
	}
	v.mu.Unlock()
	for _, l := range newLines {
		v.consolePiece(l.s, l.cont)
	}
}

func (v *VM) appendLine(l string) {
	v.mu.Lock()
	v.addLocked(l)
	v.mu.Unlock()
	v.console(l)
}

// console hands l to RunOptions.Console. It is called without v.mu held
// (from the one goroutine that reads the log, so in order): a Console
// that blocks (a stalled terminal behind it) must not block Kill, Stop
// or reaping QEMU, which take v.mu.
func (v *VM) console(l string) { v.consolePiece(l, false) }

func (v *VM) consolePiece(l string, cont bool) {
	if v.run.Console != nil {
		v.run.Console(l)
	}
	if v.run.ConsolePiece != nil {
		v.run.ConsolePiece(l, cont)
	}
}

// waiter is a waitFor call: its match, and the first line that matched.
type waiter struct {
	match func(string) []string
	line  string
	m     []string
	found chan struct{} // closed when line and m are set
}

func (v *VM) addLocked(l string) {
	// Waiters see the line before the window may drop it: a waiter's
	// goroutine that is not scheduled while thousands of lines arrive
	// would otherwise miss the one it waits for.
	for i := 0; i < len(v.waiters); {
		w := v.waiters[i]
		if m := w.match(l); m != nil {
			w.line, w.m = l, m
			close(w.found)
			v.waiters = slices.Delete(v.waiters, i, i+1)
			continue
		}
		i++
	}
	v.lines = append(v.lines, l)
	v.bytes += len(l)
	if len(v.lines) > 2*KeepLines || v.bytes > 2*KeepBytes {
		// Keep the newest KeepLines lines, fewer if they exceed KeepBytes.
		// A copy, not a reslice: the old array goes, and a waiter's
		// snapshot of it stays as it was.
		keep, n := 0, 0
		for i := len(v.lines) - 1; i >= 0 && keep < KeepLines; i-- {
			if n+len(v.lines[i]) > KeepBytes && keep > 0 {
				break
			}
			n += len(v.lines[i])
			keep++
		}
		drop := len(v.lines) - keep
		v.lines = append(make([]string, 0, 2*keep), v.lines[drop:]...)
		v.bytes = n
	}
}

// Lines returns the serial console lines read so far, as far back as the
// runner keeps them (KeepLines); the serial log file has them all.
func (v *VM) Lines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// LastLine returns the last serial console line read so far, or "".
func (v *VM) LastLine() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.lines) == 0 {
		return ""
	}
	return v.lines[len(v.lines)-1]
}

// Log returns the serial console read so far (as Lines) as one string.
func (v *VM) Log() string {
	l := v.Lines()
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// WaitForLine waits until a serial line containing substr has been printed
// (at any time since the start, as far back as the runner keeps lines: see
// KeepLines) and returns that line.
func (v *VM) WaitForLine(ctx context.Context, substr string) (string, error) {
	line, _, err := v.waitFor(ctx, fmt.Sprintf("%q", substr), func(l string) []string {
		if strings.Contains(l, substr) {
			return []string{l}
		}
		return nil
	})
	return line, err
}

// WaitForRegexp waits for a serial line matching re and returns the line
// and its submatches.
func (v *VM) WaitForRegexp(ctx context.Context, re *regexp.Regexp) (string, []string, error) {
	return v.waitFor(ctx, "/"+re.String()+"/", re.FindStringSubmatch)
}

func (v *VM) waitFor(ctx context.Context, what string, match func(string) []string) (string, []string, error) {
	// The window first, then every line added after it (addLocked),
	// under one hold of v.mu so that no line falls between the two.
	w := &waiter{match: match, found: make(chan struct{})}
	v.mu.Lock()
	for _, l := range v.lines {
		if m := match(l); m != nil {
			v.mu.Unlock()
			return l, m, nil
		}
	}
	v.waiters = append(v.waiters, w)
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		if i := slices.Index(v.waiters, w); i >= 0 {
			v.waiters = slices.Delete(v.waiters, i, i+1)
		}
		v.mu.Unlock()
	}()
	select {
	case <-w.found:
		return w.line, w.m, nil
	case <-v.finished:
		// Every line is added before finished is closed.
		select {
		case <-w.found:
			return w.line, w.m, nil
		default:
		}
		return "", nil, fmt.Errorf("waiting for %s on the serial console: %w (%v)%s", what, ErrExited, v.exit, v.lastLines(10))
	case <-ctx.Done():
		return "", nil, fmt.Errorf("waiting for %s on the serial console: %w%s", what, ctx.Err(), v.lastLines(10))
	}
}

func (v *VM) lastLines(n int) string {
	l := v.Lines()
	if len(l) > n {
		l = l[len(l)-n:]
	}
	if len(l) == 0 {
		return "; the serial console is empty"
	}
	return "; last serial lines:\n\t" + strings.Join(l, "\n\t")
}

// WaitUntil calls probe every interval until it returns nil, the context
// ends (returning the last probe error) or QEMU exits (ErrExited).
func (v *VM) WaitUntil(ctx context.Context, interval time.Duration, probe func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-v.exited:
			return fmt.Errorf("%w before the probe succeeded (%v); last probe error: %v", ErrExited, v.exit, err)
		case <-ctx.Done():
			return fmt.Errorf("probe did not succeed: %w; last probe error: %w", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Done is closed once QEMU has exited and its serial log has been read.
func (v *VM) Done() <-chan struct{} { return v.finished }

// Wait waits for QEMU to exit by itself and returns how it ended.
func (v *VM) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-v.finished:
		return v.exit, nil
	case <-ctx.Done():
		return Exit{}, fmt.Errorf("waiting for qemu to exit: %w", ctx.Err())
	}
}

// PowerDown asks the guest to power off: QMP system_powerdown, which
// presses the ACPI power button. It needs Options.QMPSocket.
func (v *VM) PowerDown(ctx context.Context) error {
	if v.opts.QMPSocket == "" {
		return errors.New("qemu: powering down: the VM has no QMP socket (set Options.QMPSocket)")
	}
	// Right after Start, QEMU may not have created the socket yet.
	deadline := time.Now().Add(qmpTimeout)
	for {
		_, err := QMP(ctx, v.opts.QMPSocket, "system_powerdown")
		if err == nil {
			return nil
		}
		notYet := errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
		select {
		case <-v.exited:
			return fmt.Errorf("qemu: powering down: %w (%v)", ErrExited, v.exit)
		default:
		}
		if !notYet || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("qemu: powering down: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the VM gracefully: system_powerdown through QMP (when the VM has
// a QMP socket), pressed again every RunOptions.Repress while the guest runs
// on, for up to grace; then it kills QEMU. A press that fails (a monitor
// busy past the QMP timeout, a connection cut) is pressed again too: only
// grace ends the graceful path. Each press is bounded by what is left of
// grace. The Exit is always filled; the error says why the graceful path
// failed (no QMP socket, no press got through, grace period over).
func (v *VM) Stop(ctx context.Context, grace time.Duration) (Exit, error) {
	select {
	case <-v.finished:
		return v.exit, nil
	default:
	}
	if v.opts.QMPSocket == "" {
		err := v.PowerDown(ctx) // says there is no socket
		return v.Kill(), err
	}
	end := time.Now().Add(grace)
	gctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	pressed := false
	var pressErr error
	press := func() {
		if err := v.PowerDown(gctx); err != nil {
			// Not final: QEMU may be busy, or exiting. The press cut
			// by the end of grace says less than the one before it.
			if pressErr == nil || time.Now().Before(end) {
				pressErr = err
			}
		} else {
			pressed = true
		}
	}
	press()
	again := time.NewTicker(v.run.Repress)
	defer again.Stop()
	for {
		select {
		case <-v.finished:
			return v.exit, nil
		case <-again.C:
			press()
		case <-gctx.Done():
			var stopErr error
			switch {
			case ctx.Err() != nil:
				stopErr = fmt.Errorf("qemu: waiting for the guest to power off: %w; killed qemu", ctx.Err())
			case !pressed:
				stopErr = fmt.Errorf("qemu: no press of the power button got through within %v (%v); killed qemu", grace, pressErr)
			default:
				stopErr = fmt.Errorf("qemu: the guest did not power off within %v of system_powerdown; killed qemu", grace)
			}
			return v.Kill(), stopErr
		}
	}
}

// Kill kills QEMU at once (a power cut for the guest) and returns its Exit.
// When QEMU has already exited by itself, Kill only waits for it, and the
// Exit says how it ended (Killed is false).
func (v *VM) Kill() Exit {
	v.mu.Lock()
	if !v.reaped {
		// ErrProcessDone: os.Process has reaped QEMU already and wait
		// is about to record how it ended by itself.
		if err := v.cmd.Process.Kill(); err == nil {
			v.killed = true
		}
	}
	v.mu.Unlock()
	<-v.finished
	return v.exit
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// StatePollEvery is how often the runner asks QEMU's monitor for the VM's
// run state by default. QEMU does not exit when a vCPU fails (kvm_cpu_exec: cpu_dump_state,
// vm_stop(RUN_STATE_INTERNAL_ERROR)): under SEV-SNP that is how a guest's
// GHCB termination request ends (KVM_SYSTEM_EVENT_SEV_TERM, which QEMU does
// not handle), and the VM would stay paused for ever.
const StatePollEvery = 2 * time.Second

func (v *VM) watchState() {
	t := time.NewTicker(v.run.StatePoll)
	defer t.Stop()
	for {
		select {
		case <-v.exited:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		raw, err := QMP(ctx, v.opts.QMPSocket, "query-status")
		cancel()
		if err != nil {
			continue
		}
		var st struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(raw, &st) != nil {
			continue
		}
		switch st.Status {
		case "internal-error", "guest-panicked", "io-error":
			v.mu.Lock()
			v.stopped = st.Status
			v.mu.Unlock()
			v.Kill()
			return
		}
	}
}

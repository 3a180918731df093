package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/katana-tee/snpboot/hostbuild/internal/launch"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/qemu"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func init() {
	register(command{name: "run", summary: "launch the VM from the manifest (SEV-SNP; --plain for development)", run: runRun})
}

// Exit codes of hostbuild run, on top of exitOK/exitFail/exitUsage.
const (
	exitRunRefused   = 3 // files or parameters do not match the manifest
	exitRunBootError = 4 // the init reported a boot error and powered off
	exitRunKatana    = 5 // Katana exited with a non-zero status; the guest powered off
	exitRunKilled    = 6 // the guest did not power off (killed, or QEMU ended by itself) or the kernel panicked
)

const runUsage = `Usage: hostbuild run --manifest FILE --kernel K --initrd I [--ovmf F]
         [--vcpus N] [--vcpu-type T] [--memory SIZE] [--cid N]
         [--forward [HOSTADDR:]HOSTPORT:GUESTPORT]... [--serial-log FILE]
         [--dry-run] [--plain [--accel tcg|kvm]]

Launches the Katana VM exactly as the manifest measured it. Before starting
anything it checks the SHA-256 of the OVMF, kernel and initrd against the
manifest, that (vCPU count, vCPU type) is in the manifest's measurement
matrix, and recomputes the launch digest from the files, the manifest's
cmdline and guest features: any difference is refused, naming the value and
what the manifest allows. The kernel command line always comes from the
manifest. Each file is opened once and copied into sealed memory (a memfd
nothing can write to): the hash, the digest and QEMU all read that copy
(QEMU inherits it and opens /proc/self/fd/N), so neither a file renamed over
a path nor a write into the file after the check is what boots. --dry-run
prints the paths, and says which options QEMU gets as /proc/self/fd/N
instead.

SEV-SNP mode (the default) needs QEMU 9.1 or newer, KVM, an AmdSevX64 OVMF
(--ovmf) and a vsock guest CID (--cid) for the attestation agent. A manifest
measured with DebugSwap (guest features 0x21) is launched with
debug-swap=on, which needs QEMU 10.2 or newer and a host whose KVM offers
DebugSwap; for any other guest feature bit run warns that the measurement
matches only if the host adds it itself. --plain
boots the same kernel, initrd and cmdline without SEV (TCG by default) for
development; the OVMF is optional there and only checked.

The guest's serial console goes to --serial-log (default: a new file under
$TMPDIR). run waits for the init's "katana started" line, prints the expected
measurement and the 'hostbuild attest' command for this VM (fill in its
--min-tcb MIN_TCB; with --plain, only how to reach the agent for a wiring
check), then waits for the guest to end. SIGINT (Ctrl-C; QEMU runs in its own process group, so
only run gets it), SIGTERM or SIGHUP (terminal closed) press the ACPI power
button (QMP system_powerdown) for a graceful stop, again every 2 s until the
guest is off (a press early in the boot, before the init listens, is lost),
and kill QEMU after --stop-timeout; a second signal kills QEMU at once (the
same signal repeated within 200 ms, as timeout(1) sends it, counts once).
The default --stop-timeout covers the guest's own grace period: the
cmdline's katana.stop_timeout plus 30 s for the init to kill, sync, unmount
and power off, and at least 60 s; a shorter --stop-timeout is allowed with a
warning (QEMU may be killed while Katana still shuts down).

Exit status: 0 the guest powered off cleanly (or rebooted, with
katana.on_exit=reboot: QEMU runs with -no-reboot); 1 error (QEMU failed,
not ready in time, unreadable files); 2 usage; 3 refused (does not match
the manifest); 4 the init reported a boot error; 5 Katana exited with a
non-zero status; 6 the guest had to be killed, its kernel panicked, QEMU
stopped the VM (a vCPU failure; under SEV-SNP also the guest's own
termination request, e.g. a kernel refusing a feature: QEMU then pauses
instead of exiting, and run, which asks QEMU's state every 2 s, kills it and
shows QEMU's messages), or QEMU ended without the guest powering off (e.g.
QEMU itself was sent SIGTERM or killed: signal only run; under systemd set
KillMode=mixed).
The status is read from the serial console, which Katana shares: the
init's and the kernel's lines are told apart by the timestamp that starts
them (a piece of an over-long line is never a line start). Katana output
that prints such a line itself, newline and timestamp, can change it: it
is a report for the operator, not evidence (attest is).

Flags:
`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The guest's console lines and the errors that quote them are the
	// guest's text: escaped, a terminal does not run its control sequences.
	stderr = printable.NewWriter(stderr)
	fs := newFlagSet("run", runUsage, stderr)
	lf := addLaunchFlags(fs, launchHelp{
		ovmf:      "OVMF firmware `file` (required in SEV-SNP mode)",
		memory:    "guest memory `size`: MiB, or with a suffix M or G (default 1G plain, 2G SEV-SNP)",
		cid:       "vsock guest `CID` (3 or more; required in SEV-SNP mode)",
		forward:   "forward a host TCP port to the guest: `[HOSTADDR:]HOSTPORT:GUESTPORT` (repeatable; HOSTADDR defaults to 127.0.0.1)",
		serialLog: "write the guest's serial console to this `file`",
		vcpuType:  "vCPU `type`, e.g. EPYC-v4 (default: the manifest's only type; with --plain, which runs -cpu max, its first)",
	})
	o := &lf.o
	manifestPath := &lf.manifest
	dryRun := fs.Bool("dry-run", false, "check, then print the QEMU command line (one option per line) instead of running it")
	fs.BoolVar(&o.Plain, "plain", false, "boot without SEV-SNP (development): same kernel, initrd and cmdline")
	accel := fs.String("accel", "", "accelerator in --plain mode: tcg (default) or kvm")
	fs.StringVar(&o.QEMUBinary, "qemu", qemu.DefaultBinary, "QEMU `binary`")
	console := fs.Bool("console", false, "also copy the guest's serial console to stderr")
	readyTimeout := durationVar(fs, "ready-timeout", 5*time.Minute, "how long to wait for Katana to start (a `duration`, or whole seconds)")
	stopTimeout := durationVar(fs, "stop-timeout", 0, "how long a graceful stop may take before QEMU is killed, a `duration` (90s, 2m) or whole seconds (default: the cmdline's katana.stop_timeout + 30s, at least 60s)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageFail := usageErrorf(stderr, "run")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	if m := missingFlags([]string{"--manifest", "--kernel", "--initrd"}, *manifestPath, o.Kernel, o.Initrd); m != "" {
		return usageFail("%s", m)
	}
	if *readyTimeout <= 0 {
		return usageFail("--ready-timeout %v: want a positive duration, e.g. 10m for a slow TCG boot", *readyTimeout)
	}
	if *stopTimeout < 0 {
		return usageFail("--stop-timeout %v: want a positive duration (or 0 for the default)", *stopTimeout)
	}
	if code, ok := lf.check(usageFail); !ok {
		return code
	}
	switch *accel {
	case "":
	case "tcg", "kvm":
		if !o.Plain && *accel != "kvm" {
			return usageFail("--accel %s needs --plain: SEV-SNP runs on KVM only", *accel)
		}
		o.Accel = qemu.Accel(*accel)
	default:
		return usageFail("--accel %q: want tcg or kvm", *accel)
	}

	m, err := manifest.Load(*manifestPath)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		return exitFail
	}
	o.Manifest, o.ManifestPath = m, *manifestPath
	if pol, err := m.GuestPolicyValue(); err == nil && !o.Plain {
		warnDebugPolicy(stderr, "run", pol)
	}
	if err := checkOpenedOutput("--serial-log", o.SerialLog, launchInputs(*o)...); err != nil {
		fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		return exitFail
	}
	stop, warn := stopBudget(m.Cmdline, *stopTimeout)
	if warn != "" {
		fmt.Fprintf(stderr, "hostbuild run: warning: %s\n", warn)
	}
	*stopTimeout = stop

	// The QMP socket (and the default serial log) go in a scratch folder,
	// made only once the launch is checked: a refused launch leaves nothing
	// behind. Prepare checks placeholder paths of the same shape; the
	// socket's length is checked here with os.MkdirTemp's longest name.
	placeholder := filepath.Join(os.TempDir(), "hostbuild-run-PID")
	o.QMPSocket = filepath.Join(placeholder, "qmp.sock")
	if n := len(filepath.Join(os.TempDir(), "hostbuild-run-4294967295", "qmp.sock")); n > qemu.MaxUnixPath {
		fmt.Fprintf(stderr, "hostbuild run: the QMP socket goes in a scratch folder in $TMPDIR (now %s), and its path would be up to %d bytes, more than unix sockets allow (%d): set TMPDIR to a shorter folder (TMPDIR=/tmp)\n", os.TempDir(), n, qemu.MaxUnixPath)
		return exitFail
	}
	defaultSerial := o.SerialLog == ""
	if defaultSerial {
		o.SerialLog = filepath.Join(placeholder, "serial.log")
	}

	if !defaultSerial {
		// Checked before the launch, so --dry-run refuses what is at the
		// path too (its folder may be made later).
		if err := checkSerialLogFlag(o.SerialLog, *dryRun); err != nil {
			fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
			return exitFail
		}
	}

	const notBzImage = "QEMU will not boot it as a kernel (--kernel and --initrd swapped?)"
	launchPreparing()
	plan, err := launch.Prepare(ctx, *o)
	if err != nil {
		// Nothing boots: the file at the path is what the refusal is
		// about (a kernel that is no bzImage: the initrd?).
		warnNotBzImage(stderr, "run", o.Kernel, notBzImage)
		var nf *launch.NeedFlag
		if errors.As(err, &nf) {
			return usageFail("%v", nf)
		}
		fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		var mm *launch.Mismatch
		if errors.As(err, &mm) {
			return exitRunRefused
		}
		return exitFail
	}
	// The checked files stay open until QEMU has inherited them.
	defer plan.Close()
	reportPlan(stderr, *o, *manifestPath, plan, notBzImage)
	if *dryRun {
		return printDryRun(stdout, stderr, plan, placeholder, defaultSerial)
	}

	scratch, err := os.MkdirTemp("", "hostbuild-run-")
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild run: creating a scratch folder for the QMP socket (in $TMPDIR, %s): %v\n", os.TempDir(), err)
		return exitFail
	}
	o.QMPSocket = filepath.Join(scratch, "qmp.sock")
	if defaultSerial {
		o.SerialLog = filepath.Join(scratch, "serial.log")
	}
	qemuStarted := false
	defer func() {
		// The socket always goes. The default serial log is kept once run
		// has named it ("serial console: ...") and the guest wrote to it,
		// else it holds nothing worth keeping (QEMU refused the launch);
		// the folder goes when nothing is left in it.
		os.Remove(o.QMPSocket)
		if fi, err := os.Stat(o.SerialLog); defaultSerial && (!qemuStarted || err == nil && fi.Size() == 0) {
			os.Remove(o.SerialLog)
		}
		os.Remove(scratch)
	}()
	if err := plan.Place(o.SerialLog, o.QMPSocket); err != nil {
		fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		return exitFail
	}

	// QEMU gets the files that were hashed, as inherited descriptors, not
	// the paths again. The outcome is read from the console as it goes:
	// the runner keeps only recent lines, and a guest may run (and log)
	// for weeks.
	var con launch.Console
	ro := qemu.RunOptions{ExtraFiles: plan.Files, ConsolePiece: con.Piece}
	if *console {
		ro.Console = func(l string) { fmt.Fprintf(stderr, "console| %s\n", l) }
	}
	// run catches interruptSignals itself from before QEMU starts until it
	// returns. interruptContext gives them back their default action after
	// the first one: a second signal sent right after it (before the
	// ctx.Done case below) would end run itself by that default action,
	// with no outcome, no documented exit status and the scratch folder
	// left behind. The first signal is counted here too (it reaches every
	// channel registered for it), so the second one is the one that kills
	// QEMU. ownSignals keeps interruptContext from sending the signals it
	// queued once more (run has counted them already, and one sent again
	// late would count as a second). Once a signal has come, the channel
	// stays registered until the process exits all the same: one that came
	// before ownSignals may be sent again, and delivered after a
	// signal.Stop here (a busy host delays that goroutine), it would end
	// run by the default action after its outcome, with no exit status.
	// Without one (a run that ended by itself, or run called in a test's
	// process), nothing is sent again.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, interruptSignals...)
	ownSignals(ctx)
	var signaled atomic.Bool // a signal reached sigs (the goroutine below takes them)
	defer func() {
		// A signal reaches every registered channel at once: one still
		// in sigs, or taken, means interruptContext may send one again.
		if !signaled.Load() && len(sigs) == 0 && ctx.Err() == nil {
			signal.Stop(sigs)
		}
	}()
	// A write to a stdout or stderr whose reader has ended (the tee of
	// "run 2>&1 | tee log", ended by the same Ctrl-C; a restarted
	// journald) would end run by SIGPIPE, and QEMU with it (Pdeathsig):
	// a power cut instead of the graceful stop. Noted here, SIGPIPE only
	// makes such writes fail (EPIPE), and run goes on. QEMU does not
	// inherit this: exec resets caught signals.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	vm, err := qemu.Start(ctx, plan.ExecQEMU, ro)
	plan.Close()
	if err != nil {
		if errors.Is(err, qemu.ErrNoBinary) && o.QEMUBinary != qemu.DefaultBinary {
			// The error's own hint is to install QEMU; a --qemu given
			// is more likely mistyped.
			fmt.Fprintf(stderr, "hostbuild run: --qemu %s: no such program: give the path of a QEMU binary (qemu-system-x86_64), or leave --qemu out to use %s from $PATH\n", o.QEMUBinary, qemu.DefaultBinary)
		} else {
			fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		}
		return exitFail
	}
	qemuStarted = true
	go killOnSecondInterrupt(sigs, vm, &signaled, stderr)
	fmt.Fprintf(stderr, "hostbuild run: qemu started (pid %d), serial console: %s\n", vm.Pid(), o.SerialLog)
	for _, f := range plan.QEMU.Forwards {
		fmt.Fprintf(stderr, "hostbuild run: forwarding %s:%d -> guest port %d\n", orDefault(f.HostAddr, qemu.DefaultHostAddr), f.HostPort, f.GuestPort)
	}

	ready, code := waitReady(ctx, vm, *readyTimeout, o.Manifest.Cmdline, stderr)
	if ready != "" {
		printReady(stdout, ready, time.Since(vm.Started()), o.Plain, plan)
	}
	if code >= 0 {
		vm.Kill()
		return code
	}

	select {
	case <-vm.Done():
	case <-ctx.Done():
		fmt.Fprintf(stderr, "hostbuild run: stopping the guest (system_powerdown, up to %v; interrupt again to kill it)\n", *stopTimeout)
		if _, err := vm.Stop(context.Background(), *stopTimeout); err != nil {
			fmt.Fprintf(stderr, "hostbuild run: %v\n", err)
		}
	}
	exit := vm.Kill() // returns at once: QEMU has exited
	out := con.Outcome(exit)
	fmt.Fprintf(stderr, "hostbuild run: %s\n", plan.RealPaths(out.String()))
	if hint := qemuHint(out, o.Plain); hint != "" {
		fmt.Fprintf(stderr, "hostbuild run: %s\n", hint)
	}
	return outcomeCode(out)
}

// checkSerialLogFlag checks --serial-log's path before the launch: not a
// path QEMU would refuse, not "-", and (unless dryRun) a folder run can
// write to.
func checkSerialLogFlag(path string, dryRun bool) error {
	if err := qemu.CheckSerialLog(path); err != nil {
		return fmt.Errorf("--serial-log %w", err)
	}
	if path == "-" {
		return errors.New("--serial-log -: the serial log is a file, not standard output (--console copies the console to stderr); give a file name (./- for a file named -)")
	}
	if err := checkOutputFolder("--serial-log", path); err != nil && !dryRun {
		return err
	}
	return nil
}

// reportPlan says on stderr what the launch's checks found: warnings about
// the kernel QEMU boots and the plan's own, then the files checked and the
// launch described.
func reportPlan(stderr io.Writer, o launch.Options, manifestPath string, plan *launch.Plan, notBzImage string) {
	m := o.Manifest
	// Of the kernel QEMU boots, the copy checked: the path may hold
	// another file by now.
	if k, err := readKernelHeadFile(o.Kernel, plan.Kernel()); err == nil {
		if feat, err := m.GuestFeaturesValue(); err == nil && !o.Plain {
			k.warnDebugSwap(stderr, "run", feat)
		}
		k.warnNotBzImage(stderr, "run", notBzImage)
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(stderr, "hostbuild run: warning: %s\n", w)
	}
	fmt.Fprintf(stderr, "hostbuild run: checked %s against %s: files match", describeFiles(o), manifestPath)
	if plan.Recomputed {
		fmt.Fprintf(stderr, ", launch digest recomputed and in the matrix")
	}
	fmt.Fprintf(stderr, "\nhostbuild run: %s\n", plan.Description)
}

// printDryRun prints the QEMU command line of --dry-run on stdout (its
// output), with a note on stderr about the scratch folder it names.
func printDryRun(stdout, stderr io.Writer, plan *launch.Plan, placeholder string, defaultSerial bool) int {
	if note := plan.ExecNote(); note != "" {
		fmt.Fprintf(stderr, "hostbuild run: %s\n", note)
	}
	what := "the QMP socket goes"
	if defaultSerial {
		what = "the QMP socket and the serial log go"
	}
	fmt.Fprintf(stderr, "hostbuild run: in this line %s in %s, which stands for the scratch folder run makes at launch: to run the line by hand, make it first (mkdir -m 700 %s)\n", what, qemu.ShellQuote(placeholder), qemu.ShellQuote(placeholder))
	// The command line is this mode's output: a failed write fails.
	// The manifest's cmdline is in it: escaped, as on stderr.
	if _, err := fmt.Fprint(printable.NewWriter(stdout), plan.Command.String()); err != nil {
		fmt.Fprintf(stderr, "hostbuild run: writing the command line to stdout: %v\n", err)
		return exitFail
	}
	return exitOK
}

// killOnSecondInterrupt kills QEMU at a second SIGINT, SIGTERM or SIGHUP
// (from sigs, which also gets the first), and returns when it has or when
// QEMU exits. signaled is set once any signal came.
func killOnSecondInterrupt(sigs <-chan os.Signal, vm *qemu.VM, signaled *atomic.Bool, stderr io.Writer) {
	// A second SIGINT, SIGTERM or SIGHUP kills QEMU at once. The
	// same signal again within 200 ms is the same request:
	// coreutils' timeout sends its signal (SIGTERM, or what -s
	// names) to run and then to run's process group, which holds
	// run too, microseconds apart; a person's second Ctrl-C comes
	// later.
	var first os.Signal
	var firstAt time.Time
	for n := 0; ; {
		select {
		case sig := <-sigs:
			signaled.Store(true)
			if n == 1 && sig == first && time.Since(firstAt) < 200*time.Millisecond {
				continue
			}
			if n++; n == 1 {
				first, firstAt = sig, time.Now()
			}
			if n == 2 {
				fmt.Fprintln(stderr, "hostbuild run: interrupted again: killing qemu")
				vm.Kill()
				return
			}
		case <-vm.Done():
			return
		}
	}
}

// printReady prints, on stdout, the guest's ready line (the guest's text,
// escaped) and what comes next: the expected measurement and how to attest
// in SEV-SNP mode, how to reach the agent with --plain.
func printReady(stdout io.Writer, ready string, since time.Duration, plain bool, plan *launch.Plan) {
	fmt.Fprintf(stdout, "ready: %s (%.1fs after qemu started)\n", printable.Escape(ready), since.Seconds())
	if !plain {
		fmt.Fprintf(stdout, "expected measurement (%d × %s): %s\n", plan.VCPUs, plan.VCPUType, plan.Expected.Measurement)
		if plan.AttestHint != "" {
			fmt.Fprintf(stdout, "attest with: %s\n", plan.AttestHint)
			fmt.Fprintf(stdout, "  (MIN_TCB: the TCB of AMD's latest security bulletin for this host's processor, as bl=N,tee=N,snp=N,ucode=N, or none to accept any firmware)\n")
		} else {
			fmt.Fprintf(stdout, "attest: this guest has no attestation agent (its cmdline sets katana.agent=none)\n")
		}
	} else if plan.AgentHint != "" {
		fmt.Fprintf(stdout, "agent: %s\n", plan.AgentHint)
	}
}

// Stop budget: the guest's grace period (katana.stop_timeout) plus what the
// init does after it (SIGKILL, reap, sync, unmount, power off: seconds under
// TCG), never under the historical 60 s.
const (
	stopMargin     = 30 * time.Second
	minStopTimeout = 60 * time.Second
)

// stopBudget returns how long run gives a graceful stop before killing QEMU:
// set when given (> 0), else the guest's katana.stop_timeout from cmdline
// plus stopMargin, at least minStopTimeout. warn is non-empty when set leaves
// the guest less than its own grace period plus stopMargin.
func stopBudget(cmdline string, set time.Duration) (d time.Duration, warn string) {
	guest := bootcfg.Default().StopTimeout
	if c, err := bootcfg.Parse(cmdline); err == nil {
		guest = c.StopTimeout
	}
	need := max(guest+stopMargin, minStopTimeout)
	if set <= 0 {
		return need, ""
	}
	if set < guest+stopMargin {
		warn = fmt.Sprintf("--stop-timeout %v is shorter than the guest's katana.stop_timeout=%v plus %v to sync and power off: a graceful stop may be cut short by killing QEMU (Katana's data not flushed); %v is safe",
			set, guest, stopMargin, need)
	}
	return set, warn
}

// progressEvery is how often waitReady says that it still waits.
var progressEvery = 15 * time.Second

// waitReady waits for Katana to start. It returns the ready line, and an
// exit code >= 0 when run should end now (after stopping the VM).
//
// Every progressEvery it says that it still waits, and the console's last
// line: a boot takes seconds on KVM but minutes under TCG, and
// --ready-timeout is 5 minutes, too long a silence to tell a slow boot from
// a stuck one.
func waitReady(ctx context.Context, vm *qemu.VM, timeout time.Duration, cmdline string, stderr io.Writer) (string, int) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		m   []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, m, err := vm.WaitForRegexp(wctx, launch.ReadyLine)
		done <- result{m, err}
	}()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var r result
wait:
	for {
		select {
		case r = <-done:
			break wait
		case <-tick.C:
			last := "none yet"
			if l := vm.LastLine(); l != "" {
				last = strconv.Quote(l)
			}
			fmt.Fprintf(stderr, "hostbuild run: still waiting for katana (%ds of --ready-timeout %v; last console line: %s)\n",
				int(time.Since(vm.Started()).Seconds()), timeout, last)
		}
	}
	m, err := r.m, r.err
	switch {
	case err == nil && strings.HasPrefix(m[1], launch.MarkKatanaStarted):
		return m[1], -1
	case err == nil:
		// A boot error: the init powers off by itself.
		fmt.Fprintf(stderr, "hostbuild run: %s\n", m[1])
		return "", -1
	case errors.Is(err, qemu.ErrExited):
		return "", -1
	case ctx.Err() != nil:
		// run stops the guest next, with --stop-timeout.
		fmt.Fprintln(stderr, "hostbuild run: interrupted before katana started")
		return "", -1
	default:
		fmt.Fprintf(stderr, "hostbuild run: katana did not start within %v; stopping the guest\nhostbuild run: %v\n", timeout, err)
		for _, m := range missingDefaults(cmdline) {
			if strings.HasPrefix(m, "console=") {
				fmt.Fprintf(stderr, "hostbuild run: the manifest's cmdline may be why: %s\n", m)
			}
		}
		if exit, _ := vm.Stop(context.Background(), 10*time.Second); strings.TrimSpace(exit.Stderr) != "" {
			fmt.Fprintf(stderr, "hostbuild run: qemu's stderr: %s\n", strings.TrimSpace(exit.Stderr))
		}
		return "", exitFail
	}
}

// qemuHint explains a QEMU failure that QEMU's own message leaves
// cryptic, or is empty.
func qemuHint(o launch.Outcome, plain bool) string {
	if o.Ending == launch.EndedNoPowerOff && strings.Contains(o.Exit.Stderr, "terminating on signal") {
		// QEMU, in its own process group, was sent the signal itself:
		// systemd's default KillMode=control-group signals every process
		// of a unit at once.
		return "QEMU was sent the signal itself, so the guest was cut off instead of shut down: signal only hostbuild run (under systemd, KillMode=mixed and TimeoutStopSec longer than --stop-timeout)"
	}
	if o.Ending != launch.EndedQEMU || plain {
		return ""
	}
	// -bios takes only whole 64 KiB blocks: a measurement-only stand-in
	// of the firmware (the demo's) measures but does not boot.
	if strings.Contains(o.Exit.Stderr, "could not load PC BIOS") {
		return "QEMU refused the --ovmf file as a -bios image: give the whole OVMF.fd of an OvmfPkg/AmdSev/AmdSevX64.dsc build ('hostbuild ovmf FILE' says whether QEMU can start it)"
	}
	// QEMU before 9.1 (or built without SEV-SNP) does not know the object:
	// "Parameter 'qom-type' does not accept value 'sev-snp-guest'".
	if strings.Contains(o.Exit.Stderr, "'sev-snp-guest'") {
		return "SEV-SNP mode needs QEMU 9.1 or newer built with SEV-SNP support (this QEMU has no sev-snp-guest object): give one with --qemu PATH; 'hostbuild doctor' checks the host"
	}
	// A QEMU before 10.2 has no debug-swap property ("Invalid parameter
	// 'debug-swap'"), which run passes for a manifest measured with
	// DebugSwap.
	if strings.Contains(o.Exit.Stderr, "'debug-swap'") || strings.Contains(o.Exit.Stderr, ".debug-swap'") {
		return "the manifest was measured with DebugSwap (guest feature 0x20), which run asks QEMU for with debug-swap=on, and this QEMU is older than 10.2 and has no such property: give a QEMU 10.2 or newer with --qemu, or measure the manifest without it (--guest-features 0x1)"
	}
	// QEMU 10.2+ checks the guest features it is asked for (debug-swap=on)
	// against KVM's before it creates the VM (check_sev_features: "VMSA
	// contains unsupported sev_features: 20, supported features: 0"), and
	// then fails KVM's init ("failed to initialize kvm"): this host runs
	// SEV-SNP guests, only not with that feature.
	if strings.Contains(o.Exit.Stderr, "unsupported sev_features") {
		return "this host's KVM does not offer a guest feature the manifest was measured with (QEMU's sev_features above; 0x20 is DebugSwap, which needs a host CPU and kernel that support it): launch on a host that offers it, or measure the manifest without it (--guest-features 0x1)"
	}
	// QEMU 9.1+ on a host whose KVM cannot run SEV-SNP guests (no SNP
	// host support, kvm_amd without sev_snp=1), or without KVM at all.
	// KVM or the SEV firmware refused this launch (the guest policy, a
	// feature such as DebugSwap): the host does run SEV-SNP guests.
	for _, s := range []string{"SNP_LAUNCH_START", "failed to initialize ret="} {
		if strings.Contains(o.Exit.Stderr, s) {
			return "KVM or the SEV firmware refused to launch this guest (see QEMU's error above: fw_error names the firmware's reason; the guest policy and guest features come from the manifest, and run warned of the bits some hosts refuse)"
		}
	}
	for _, s := range []string{"vm-type SEV-SNP not supported by KVM", "Could not access KVM kernel module", "failed to initialize kvm"} {
		if strings.Contains(o.Exit.Stderr, s) {
			return "this host's KVM cannot run an SEV-SNP guest (an AMD EPYC host with SEV-SNP enabled in the BIOS, a kernel with SNP host support and kvm_amd sev_snp=1 are needed): 'hostbuild doctor' says what is missing; --plain boots the same files without SEV for development"
		}
	}
	return ""
}

func outcomeCode(o launch.Outcome) int {
	switch o.Ending {
	case launch.EndedClean:
		return exitOK
	case launch.EndedBootError:
		return exitRunBootError
	case launch.EndedKatana:
		return exitRunKatana
	case launch.EndedKilled, launch.EndedPanic, launch.EndedNoPowerOff, launch.EndedQEMUStopped:
		return exitRunKilled
	}
	return exitFail
}

func describeFiles(o launch.Options) string {
	if o.OVMF != "" {
		return "the OVMF, kernel and initrd"
	}
	return "the kernel and initrd"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseMemory reads "2048", "2048M", "2G" (MiB and GiB).
func parseMemory(s string) (int, error) {
	mult := 1
	num := s
	switch {
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult, num = 1024, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		num = s[:len(s)-1]
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 1<<30/mult {
		return 0, errors.New("want a positive size in MiB, or with a suffix M or G")
	}
	return n * mult, nil
}

// launchPreparing runs in run and libvirt just before the files are
// checked against the manifest: a test seam (a file replaced there).
var launchPreparing = func() {}

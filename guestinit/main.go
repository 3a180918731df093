// Command guestinit is the guest's /init (PID 1) in the measured initrd: it
// replaces the seed's busybox script with one static Go binary.
//
// # Boot sequence
//
//  1. Signals caught before anything else (catchSignals: a Go PID 1 dies
//     of SIGTERM, SIGQUIT, SIGABRT and others it does not catch, and that
//     is a kernel panic); Ctrl-Alt-Del becomes SIGINT (graceful stop).
//  2. Content list (etc/guestinit/contents.sha256) loaded, and the
//     unpacked initrd walked before anything is mounted over it: an entry
//     the list and the layout do not vouch for (a file, link, device,
//     folder, owner or mode hostbuild pack never makes: an appended
//     archive) is a boot error. Then the mount table (internal/early):
//     /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run, /tmp; fds 0,
//     1, 2 are reopened on /dev/console; magic SysRq off, the kernel's
//     console log level at most 4 (no warnings or register dumps on the
//     host's serial line), and the kernel keymap's dump keys (registers,
//     memory, tasks) removed before Katana starts.
//  3. /proc/cmdline parsed with shared/bootcfg (kernel rules, katana.* keys).
//  4. The chunk list (etc/guestinit/chunks.sha256: large files in 4 MiB
//     pieces) and the payload's frame list (etc/guestinit/payload.frames)
//     checked against the content list.
//  5. Kernel modules from etc/guestinit/modules.load, in order, each checked
//     against the content list right before loading (af_alg, algif_hash and
//     sha256_ssse3 first when listed, then the modules eth0 needs, then the
//     rest); a module whose driver finds no device (ENODEV) is skipped,
//     but sev_guest's ENODEV in an SEV-SNP guest (one with the sev-guest
//     platform device) is a failed probe and a boot error; outside
//     SEV-SNP (no such device) sev_guest and the modules there only for
//     it (by the release's modules.dep: the AES-GCM its probe builds) are
//     left out, each logged as skipped with why; configfs
//     mounted at /sys/kernel/config when available. From the end of the
//     first pass (the hash modules), in the background and on every CPU:
//     the payload's frames (bin/katana.zst) are checked, decoded and
//     written to /bin/katana (internal/payload; /bin becomes a tmpfs with
//     huge pages, read-only once the payload is in), while every other
//     listed file is hashed, large ones chunk by chunk (the kernel's
//     sha256 through AF_ALG when those modules are loaded, else
//     crypto/sha256). An initrd packed with --payload-encoding inline has
//     /bin/katana itself in the content list, hashed like the rest.
//  6. Network, in the background once the modules eth0 needs are loaded,
//     while the others load (its marker is logged after the modules'):
//     lo up; eth0 per katana.net (waited for until 10 s after the last
//     module is in), with IPv6 router advertisements, autoconfiguration
//     and ICMP redirects off before it comes up. The guest then refuses connections to Katana's
//     port until Katana listens, rather than leaving them unanswered.
//  7. ACPI power button listener (needs the "button" module), then the
//     network's result (its failure is a boot error).
//  8. Attestation agent (startAgent); it gives reports only once step 9
//     has checked the initrd, and none after a boot error.
//  9. Wait for the integrity check (a graceful stop requested meanwhile
//     powers off at once, Katana never started), then start /bin/katana
//     and supervise it (internal/supervise) until it exits or a graceful
//     stop is requested (SIGTERM/SIGINT to PID 1, ACPI power button, the
//     agent's shutdown). Katana gets RLIMIT_NOFILE 65536 and
//     TMPDIR=/tmp/katana, emptied before each start (its temporary
//     database from a killed run). With katana.on_exit=restart, /bin/katana
//     is checked again before each restart (Katana runs as root and could
//     have replaced it): against the content list, or, decoded from
//     frames, against the payload's SHA-256 in the frame list; a mismatch
//     is a boot error, never a restart.
//  10. sync, unmount, power off (or reboot for katana.on_exit=reboot); sync
//     and unmount get 10 s, then the power-off goes on without them.
//
// Every failure in 2-9 is a boot error: the reason is logged, then the init
// syncs and powers off; one that comes while Katana runs (a panic in one
// of the init's goroutines) first lets the supervisor stop Katana as a
// graceful stop does. Failures that cost only a convenience are logged
// and the boot goes on: the console not reopened (the kernel's descriptors
// are kept), the power button listener not started (system_powerdown then
// cannot stop Katana), the agent not started (no attestation, Katana runs),
// and smaller ones, each saying what stays as it was (Ctrl-Alt-Del, magic
// SysRq, the console log level, the keymap's dump keys, an optional
// mount, a module pass loaded early, the huge-page /bin, Katana's
// open-files limit). Panics in main and in the init's own
// goroutines are recovered and handled as boot errors. If the power-off
// call fails the init parks forever; it never exits. Boot with panic=-1 and QEMU -no-reboot so that a crash
// that escapes all this still ends the VM.
//
// # Console lines
//
// Every line is "[SSSSS.UUUUUU] guestinit: MESSAGE" with the seconds since
// boot (CLOCK_BOOTTIME, like the kernel's printk timestamps). These markers
// are stable; tests and operators rely on them:
//
//	guestinit: stage=mounts ok
//	guestinit: stage=cmdline ok args=N
//	guestinit: stage=modules ok count=N took=D         (N: loaded now; present and skipped not counted)
//	guestinit: stage=network ok eth0=10.0.2.15/24        (eth0=none for katana.net=none)
//	guestinit: stage=payload ok frames=N bytes=B packed=P took=D hash=kernel|go   (framed payloads)
//	guestinit: stage=integrity ok files=N bytes=B took=D hash=kernel|go
//	guestinit: katana started pid=N argv=<JSON array, argv[0] included>
//	guestinit: katana exited status=N[ signal=SIGNAME][ stop=graceful]   (status 128+n when killed by signal n; stop=graceful: by the graceful stop's own signal)
//	guestinit: boot error: <reason>
//	guestinit: shutdown: stop requested before katana started: REASON[ ...]   (a stop during the boot; Katana never ran)
//	guestinit: powering off                              (or: guestinit: rebooting)
//
// Other lines (module skipped, power button, restarts, stop steps) are
// informative and may change.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/acpi"
	"github.com/katana-tee/snpboot/guestinit/internal/agent"
	"github.com/katana-tee/snpboot/guestinit/internal/early"
	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	"github.com/katana-tee/snpboot/guestinit/internal/klog"
	"github.com/katana-tee/snpboot/guestinit/internal/modload"
	"github.com/katana-tee/snpboot/guestinit/internal/netcfg"
	"github.com/katana-tee/snpboot/guestinit/internal/payload"
	"github.com/katana-tee/snpboot/guestinit/internal/power"
	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/guestinit/internal/supervise"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/bootcfg"
	"github.com/katana-tee/snpboot/shared/kcrypto"
)

func main() {
	// First thing: a Go PID 1 dies of signals it does not catch.
	sigs, absorbed := catchSignals()

	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guestinit: must run as PID 1 (the initrd's /init); refusing to run here")
		os.Exit(2)
	}
	in := &initProc{log: klog.New(os.Stderr, nil), sigs: sigs}
	// The log is written by a goroutine of its own: a console the host
	// stops draining must not hold up a stop or the power-off.
	in.log.Async(logQueue)
	in.st = status.New(klog.SinceBoot)
	in.st.SetLog(in.log.Printf)
	defer func() {
		if r := recover(); r != nil {
			in.fatal(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	in.goSafe("signals", func() { logAbsorbed(absorbed, in.log.Printf) })
	in.boot()
}

// absorbedSignals are the signals that would end a Go PID 1 when sent with
// kill(2) or tgkill(2), by Katana or anything else in the guest: without a
// handler of the program's own, the runtime dumps its goroutines and exits
// on SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGSTKFLT and SIGSYS, and on SIGBUS,
// SIGFPE and SIGSEGV that no fault raised (faults in the init's own code
// stay panics, recovered like any other); os exits on SIGPIPE after a
// failed write to fd 1 or 2. PID 1 exiting is a kernel panic ("Attempted to
// kill init!"). The job-control signals are here so that the init never
// stops either.
//
// Only kill(2) and tgkill(2) are covered. The runtime takes a signal for
// one a program sent only when its si_code is SI_USER or SI_TKILL; with any
// other code, which a root process can choose with rt_sigqueueinfo(2)
// (SI_QUEUE, or a fault's own codes), SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGTRAP, SIGSYS and SIGSTKFLT are taken for a fault in the init's own
// code, and PID 1 crashes: a kernel panic. Nothing the init can do at its
// level stops that, and a root payload can stop the machine in many other
// ways anyway (reboot(2), /proc/sysrq-trigger, ptrace of PID 1, a kernel
// module). The guest runs Katana as root by design, so Katana is trusted
// not to: this list keeps a stray or careless signal from ending the
// guest, not a hostile payload.
var absorbedSignals = []os.Signal{
	unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS, unix.SIGFPE,
	unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS, unix.SIGPIPE,
	unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
}

// supervisedSignals are the signals sigs delivers, each kind through a
// channel of its own (catchSignals).
var supervisedSignals = []os.Signal{unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP}

// catchSignals sets PID 1's signal handling. sigs gets SIGCHLD, SIGTERM,
// SIGINT and SIGHUP, for the supervisor (without a handler, the runtime
// exits on SIGTERM too). absorbed gets absorbedSignals, which the init logs
// and drops. All are caught, none ignored: an ignored disposition survives
// execve, and Katana must start with the default ones, while a caught
// signal is reset to the default in the child.
//
// signal.Notify drops a signal when its channel is full. With the four
// kinds in one channel, a flood of one kind (SIGCHLD as many processes
// exit, SIGHUPs sent in a loop) while the supervisor is busy would fill it
// and drop a SIGTERM or SIGINT that came after: a stop lost. So each kind
// has its own one-slot channel, relayed into sigs by a goroutine of its
// own with blocking sends: a flood of one kind costs only more of that
// kind, and at least one of each kind sent after the supervisor last took
// one reaches it, as the kernel itself keeps one pending standard signal
// per kind.
func catchSignals() (sigs, absorbed chan os.Signal) {
	sigs = make(chan os.Signal, len(supervisedSignals))
	for _, s := range supervisedSignals {
		one := make(chan os.Signal, 1)
		signal.Notify(one, s)
		go func() { // cannot panic: sigs is never closed
			for s := range one {
				sigs <- s
			}
		}()
	}
	absorbed = make(chan os.Signal, 16)
	signal.Notify(absorbed, absorbedSignals...)
	return sigs, absorbed
}

// logAbsorbed logs the absorbed signals as they come, three of each kind at
// most: a payload that sends them in a loop does not flood the console.
func logAbsorbed(absorbed <-chan os.Signal, logf func(string, ...any)) {
	seen := map[os.Signal]int{}
	for s := range absorbed {
		seen[s]++
		switch seen[s] {
		case 1, 2:
			logf("ignoring %s sent to PID 1 (the init stops only on SIGTERM, SIGINT, the power button or the agent)", unix.SignalName(s.(syscall.Signal)))
		case 3:
			logf("ignoring %s sent to PID 1 (again; no more lines for it)", unix.SignalName(s.(syscall.Signal)))
		}
	}
}

type initProc struct {
	log     *klog.Logger
	sigs    chan os.Signal
	st      *status.Status
	console *os.File
	// ready gates the agent's reports: from the integrity check passed
	// until a boot error.
	ready agent.Readiness
	// failing is set by the first fatal, or by end when no fatal came
	// first: that one powers off (or reboots), and a fatal after it logs
	// its reason and waits for that.
	failing atomic.Bool
	// sup is the supervision of Katana once it begins (see superviseRun):
	// closed when supervise.Run returns; supWait is how long fatal waits
	// for that.
	supMu   sync.Mutex
	sup     chan struct{}
	supWait time.Duration
	// halt ends the guest; nil: shutdown (tests replace it).
	halt func(power.Mode)
	// initramfsFull: the rootfs had no free block as the init started
	// (the kernel's unpack of the initrd ran out of room); see explain.
	initramfsFull atomic.Bool
}

// initramfsFull says whether st, the rootfs's statfs, has no free block
// left: a tmpfs has a size (ramfs, none: never full).
func initramfsFull(st unix.Statfs_t) bool { return st.Blocks > 0 && st.Bfree == 0 }

// keymapWaitNote is how long Katana's start waits for the keymap's dump
// keys to go before the console says it is waiting.
const keymapWaitNote = 5 * time.Second

// goSafe runs fn in a goroutine whose panic becomes a boot error.
func (in *initProc) goSafe(name string, fn func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				in.fatal(fmt.Errorf("panic in %s: %v\n%s", name, r, debug.Stack()))
			}
		}()
		fn()
	}()
}

// fatal logs a boot error and powers off; it never returns.
//
// Called while Katana is supervised (from another goroutine: a panic in
// the power button's listener or the signal logger), it leaves Katana to
// the supervisor: the stop request makes it stop Katana as any graceful
// stop does (SIGTERM, katana.stop_timeout, SIGKILL), log its exit and
// return, and start no restart (supervise checks for a stop right before
// each start), and fatal waits for that, supWait at most, before the
// power-off. Shutdown's own kill of every process and wait4(-1) would
// otherwise race the supervisor's reaper: Katana's exit line and
// last_exit lost, 1 s instead of its stop timeout, a restart begun after
// the kill.
func (in *initProc) fatal(err error) {
	in.ready.Failed()
	first := in.failing.CompareAndSwap(false, true)
	in.st.RequestStop("boot error")
	in.log.Printf("boot error: %v", explain(err, in.initramfsFull.Load()))
	if !first {
		// The first fatal powers off; a second Shutdown would wait for it
		// for ever anyway, and must not start before it waited for Katana.
		power.Park()
	}
	in.awaitSupervisor()
	in.powerOff(power.PowerOff)
}

// supervisorSlack is what fatal waits for the supervisor beyond
// katana.stop_timeout: the SIGKILL's wait (supervise.DefaultKillWait) and
// time to spare; with restarts, a second per 4 MiB of payload is added for
// a restart's check of it under way (integrity.Pinned.Check).
const supervisorSlack = supervise.DefaultKillWait + 15*time.Second

// superviseRun runs the supervision (run: supervise.Run) so that fatal
// can wait for it to end, wait at most.
func (in *initProc) superviseRun(wait time.Duration, run func() supervise.Outcome) supervise.Outcome {
	done := make(chan struct{})
	in.supMu.Lock()
	in.sup, in.supWait = done, wait
	in.supMu.Unlock()
	defer close(done) // a panic in run too: main's recover calls fatal
	return run()
}

// awaitSupervisor waits, supWait at most, for a supervision under way to
// end.
func (in *initProc) awaitSupervisor() {
	in.supMu.Lock()
	done, wait := in.sup, in.supWait
	in.supMu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	in.log.Printf("stopping katana before the power-off (up to %v)", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		in.log.Printf("katana's supervisor did not return within %v; powering off anyway", wait)
	}
}

// end powers off or reboots after the boot or the supervision ended by
// itself, saying why; when a fatal path is under way, that one does it.
// It claims the end as fatal does: a boot error on another goroutine a
// moment later logs its reason and leaves the power-off (or the reboot
// that katana.on_exit asked for) to end, rather than both reaching
// power.Shutdown, where whichever came second would wait for ever.
func (in *initProc) end(m power.Mode, format string, args ...any) {
	if !in.failing.CompareAndSwap(false, true) {
		power.Park()
	}
	in.log.Printf(format, args...)
	in.powerOff(m)
}

func (in *initProc) powerOff(m power.Mode) {
	if in.halt != nil {
		in.halt(m)
		return
	}
	in.shutdown(m)
}

// explain adds the likely cause to a boot error where the error alone
// would mislead: "no space left on device" writing a small file means the
// guest's memory, which holds every file of the init's, is full; and
// with the initramfs full as the init started (full), a file the init
// finds short or wrong is the kernel's unpack cut short for want of
// memory, not tampering.
func explain(err error, full bool) error {
	if full {
		// The kernel's rootfs holds at most half the guest's memory
		// (less the initrd's own while it unpacks): the unpack stopped
		// there and left the rest of the file it wrote as zeros.
		return fmt.Errorf("%w (the initramfs was full when the init started: the kernel unpacked the initrd only in part, \"Initramfs unpacking failed: write error\" above, as its rootfs holds at most half the guest's memory: give the VM more memory)", err)
	}
	if errors.Is(err, unix.ENOSPC) {
		// The likely cause: a guest too small for its initrd, which the
		// kernel then unpacks only in part.
		return fmt.Errorf("%w (the guest's memory is full: too little for this initrd? look for \"Initramfs unpacking failed\" above, and give the VM more memory)", err)
	}
	return err
}

// logQueue is how many log lines may wait for the console; logFlush how
// long the power-off waits for them.
const (
	logQueue = 256
	logFlush = 2 * time.Second
)

func (in *initProc) shutdown(m power.Mode) {
	power.Shutdown(m, power.Options{
		Log:     in.log.Printf,
		Flush:   func() { in.log.Flush(logFlush) },
		Unmount: func() error { return early.UnmountAll(early.All(), "/", nil) },
	})
}

// stage records a finished stage and logs its marker.
func (in *initProc) stage(name, detail string, took time.Duration) {
	in.st.AddStage(name, true, detail, took)
	msg := "stage=" + name + " ok"
	if detail != "" {
		msg += " " + detail
	}
	in.log.Printf("%s", msg)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// bootDeadline bounds the boot up to Katana's start (a few seconds under
// TCG; a payload of a gigabyte decodes in under a minute there): a step the
// host can stall for ever, such as a module whose device never answers,
// ends in a power-off that names the stages done, not in a guest that
// hangs with nothing to say.
const bootDeadline = 10 * time.Minute

// watchBoot calls fail once d has passed, unless disarm is called first.
func watchBoot(d time.Duration, fail func()) (disarm func()) {
	t := time.AfterFunc(d, fail)
	return func() { t.Stop() }
}

// stagesDone names the boot stages done, in order, for the watchdog's
// message.
func (in *initProc) stagesDone() string {
	st := in.st.Snapshot().Stages
	if len(st) == 0 {
		return "none (the content list or the mounts)"
	}
	names := make([]string, len(st))
	for i, s := range st {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// boot runs the boot sequence of the package doc, steps 2 to 10, one
// method a step. A failure is a boot error (fatal logs it and powers off;
// it never returns), except those the package doc says cost only a
// convenience, which are logged.
func (in *initProc) boot() {
	ctx := context.Background()
	// Before the init writes anything: a full rootfs now is the kernel's
	// unpack of the initrd cut short.
	var rootfs unix.Statfs_t
	if unix.Statfs("/", &rootfs) == nil && initramfsFull(rootfs) {
		in.initramfsFull.Store(true)
	}
	in.log.Printf("starting (%s, %d CPUs)", runtime.Version(), runtime.NumCPU())
	if err := power.DisableCtrlAltDel(); err != nil {
		in.log.Printf("ctrl-alt-del stays a hard reboot: %v", err)
	}
	disarm := watchBoot(bootDeadline, func() {
		in.goSafe("boot watchdog", func() {
			in.fatal(fmt.Errorf("the boot did not reach Katana within %v (stages done: %s): a step stalled, most likely one the host controls (a device that never answers a module's probe)", bootDeadline, in.stagesDone()))
		})
	})

	list := in.checkUnpacked()                     // 2
	keymapDone := in.setUpSystem()                 // 2 (continued)
	cfg := in.readCmdline()                        // 3
	chk := in.planChecks(list, cfg)                // 4
	started := in.loadModules(ctx, list, cfg, chk) // 5 and 6
	mountLate(early.Options{}, chk.skipped, in.log.Printf)
	// Every module is in: no more kernel code until power-off (no module,
	// no kexec), whatever a root process does later.
	if err := early.LockKernelCode("/"); err != nil {
		in.log.Printf("kernel code stays loadable: %v", err)
	}

	// 7. Power button, then the network's result.
	in.startPowerButton()
	in.awaitNetwork(started)

	// 8. Agent.
	if err := startAgent(ctx, cfg, in.st, in.ready.Err); err != nil {
		in.log.Printf("agent: %v (booting on without it)", err)
	}

	// 9. Integrity result, then Katana.
	ir, ok := in.awaitChecks(started.integ, chk.framed, started.hasher, disarm)
	if !ok {
		return // a stop requested during the boot ended it
	}
	in.runKatana(ctx, cfg, ir, keymapDone)
}

// checkUnpacked is step 2's first half: the content list loaded, and the
// unpacked initrd walked against it. Nothing it and the layout do not
// vouch for (an archive appended to the initrd) may be where Katana could
// read or run it: the walk comes before any mount, so that nothing is
// hidden under a mount point.
func (in *initProc) checkUnpacked() initrdlayout.Contents {
	list, err := integrity.LoadList("/")
	if err != nil {
		in.fatal(err)
	}
	layout, err := initrdlayout.Base()
	if err != nil {
		in.fatal(err)
	}
	if err := integrity.Unvouched("/", list, layout); err != nil {
		in.fatal(err)
	}
	return list
}

// setUpSystem is step 2's second half: mounts, console, magic SysRq, the
// console log level, and the keymap's dump keys, which go in the
// background: keymapDone is closed once they are gone (or could not go).
func (in *initProc) setUpSystem() (keymapDone <-chan struct{}) {
	t := time.Now()
	if _, err := early.MountAll(early.Table, early.Options{}); err != nil {
		in.fatal(err)
	}
	if f, err := early.ReopenConsole("/dev/console"); err != nil {
		in.log.Printf("keeping the kernel's descriptors: %v", err)
	} else {
		in.console = f
		in.log.SetOutput(f)
	}
	if err := early.DisableSysRq("/"); err != nil {
		in.log.Printf("magic SysRq stays as the kernel set it: %v", err)
	}
	// The kernel's warnings and the register dumps in the reports a host
	// can provoke (soft lockup, RCU stall) stay off the host's console.
	if was, err := early.QuietConsole("/"); err != nil {
		in.log.Printf("kernel console log level stays as the kernel set it (register dumps the host can provoke reach the console): %v", err)
	} else if was > early.MaxConsoleLoglevel {
		in.log.Printf("kernel console log level %d lowered to %d: the kernel's warnings and register dumps stay off the serial console", was, early.MaxConsoleLoglevel)
	}
	// The kernel's keymap prints registers, memory and every task's stack
	// on the console for Scroll Lock with AltGr, Shift or Ctrl, whatever
	// kernel.sysrq says, and the host emulates the keyboard: those keys go
	// before Katana starts (awaited there), in the background (a few
	// thousand ioctls).
	done := make(chan struct{})
	in.goSafe("keymap", func() {
		defer close(done)
		n, err := early.DisableVTDumpKeys("/")
		switch {
		case err != nil:
			in.log.Printf("keyboard: the kernel's keymap keeps its dump keys (Show_Registers, Show_Memory, Show_State), which the host's keyboard can press: %v", err)
		case n > 0:
			in.log.Printf("keyboard: %d dump keys removed from the kernel's keymap (Show_Registers, Show_Memory, Show_State)", n)
		}
	})
	in.stage("mounts", "", time.Since(t))
	return done
}

// readCmdline is step 3: /proc/cmdline parsed with the kernel's rules and
// the katana.* keys.
func (in *initProc) readCmdline() bootcfg.Config {
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		in.fatal(fmt.Errorf("reading /proc/cmdline: %w", err))
	}
	cfg, err := bootcfg.Parse(bootcfg.FromProc(raw))
	if err != nil {
		in.fatal(err)
	}
	in.stage("cmdline", fmt.Sprintf("args=%d", len(cfg.Args)), 0)
	return cfg
}

// checkPlan is what step 4 reads for steps 5 and 9: the modules to load,
// and what the background check covers.
type checkPlan struct {
	// framed: the payload is stored as frames (frames), not inline.
	framed bool
	frames initrdlayout.Frames
	// chunks: large files, checked in pieces on every CPU.
	chunks []initrdlayout.Chunk
	// mods are the modules to load; skipped those left out, neither read
	// nor offered: those this CPU makes the kernel refuse, and outside
	// SEV-SNP sev_guest and what only it needs (sevGuestOnly).
	mods    []initrdlayout.Module
	skipped []modload.Result
	// skip: files the background check of the other files leaves out
	// (checked elsewhere, or rewritten from the cmdline).
	skip map[string]bool
}

// planChecks is step 4: the module list, the chunk list and the payload's
// frame list, each checked against the content list, and what the
// background check of the other files leaves to other steps.
func (in *initProc) planChecks(list initrdlayout.Contents, cfg bootcfg.Config) checkPlan {
	var p checkPlan
	payloadFile, cover, ok := list.PayloadFile()
	if !ok {
		in.fatal(fmt.Errorf("content list covers %s %s %s: want exactly one (was the initrd packed by hostbuild pack?); refusing to run an unchecked payload",
			cover, initrdlayout.PayloadPath, initrdlayout.FramesPath))
	}
	p.framed = payloadFile == initrdlayout.FramesPath
	mods, err := modload.ReadList("/", list)
	if err != nil {
		in.fatal(err)
	}
	// A module this CPU makes the kernel refuse is neither read nor
	// offered; its file is still checked with the other files.
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo") // unreadable: nothing is left out
	p.mods, p.skipped = modload.Drop(mods, cpuRefused(cpuFlags(cpuinfo)))
	if err := sevGuestAESNI(p.skipped, "/sys"); err != nil {
		in.fatal(err)
	}
	absent, depFile, err := sevGuestOnly(list, p.mods, "/", "/sys")
	if err != nil {
		in.fatal(err)
	}
	var more []modload.Result
	p.mods, more = modload.Drop(p.mods, absent)
	p.skipped = append(p.skipped, more...)
	// The chunk list (large files in pieces, so that they are checked on
	// every CPU) is itself checked against the content list first.
	if _, listed := list[initrdlayout.ChunksPath]; listed {
		b, err := integrity.Checker{Root: "/", List: list}.ReadFile(initrdlayout.ChunksPath)
		if err != nil {
			in.fatal(err)
		}
		if p.chunks, err = initrdlayout.ParseChunks(bytes.NewReader(b)); err != nil {
			in.fatal(err)
		}
	}
	// The payload's frame list, checked likewise: the frames themselves are
	// checked one by one as they are decoded (internal/payload).
	if p.framed {
		b, err := integrity.Checker{Root: "/", List: list}.ReadFile(initrdlayout.FramesPath)
		if err != nil {
			in.fatal(err)
		}
		if p.frames, err = initrdlayout.ParseFrames(bytes.NewReader(b)); err != nil {
			in.fatal(err)
		}
	}
	p.skip = map[string]bool{initrdlayout.ModulesLoad: true, initrdlayout.ChunksPath: true,
		initrdlayout.FramesPath: true, initrdlayout.PackedPayloadPath: true}
	for _, m := range p.mods {
		p.skip[m.Path] = true // checked by modload right before loading
	}
	if depFile != "" {
		p.skip[depFile] = true // checked by sevGuestOnly
	}
	if !cfg.Net.None {
		p.skip["etc/resolv.conf"] = true // rewritten from katana.net
	}
	return p
}

// netResult is the network step's outcome, for its marker line.
type netResult struct {
	detail string
	took   time.Duration
	err    error
}

// backgroundWork is what step 5 leaves running: the integrity check (its
// result on integ, hashing with hasher) and the network (its result on
// net; early: started before the last module pass, so that awaitNetwork
// bounds its wait for eth0 by linkWait).
type backgroundWork struct {
	integ  <-chan integrityResult
	hasher integrity.Hasher
	net    <-chan netResult
	early  bool
}

// modulePasses loads the modules in passes (loadModules): rest is what is
// left to load, res what was loaded or skipped so far, retry set once an
// early pass failed (the full pass then loads every module, in order, and
// reports the failure with the kernel's reason).
type modulePasses struct {
	list  initrdlayout.Contents
	rest  []initrdlayout.Module
	res   []modload.Result
	retry bool
	logf  func(string, ...any)
}

// early loads the modules named (those listed, in the list's order) ahead
// of the others; what names the pass in its log line.
func (mp *modulePasses) early(what string, names ...string) {
	pre, others := modload.Split(mp.rest, names...)
	if len(pre) == 0 || mp.retry {
		return
	}
	r, err := modload.Load(pre, modload.Options{Root: "/", Contents: mp.list})
	mp.res = append(mp.res, r...)
	if err != nil {
		mp.logf("%s: %v (retried in order)", what, err)
		mp.retry = true // Load stopped at the failure; the full pass reports it
		return
	}
	mp.rest = others
}

// loadModules is steps 5 and 6: the modules in three passes, the AF_ALG
// hash modules first, so that the payload hash (the long pole under TCG)
// runs with the kernel's sha256 while the others load; then the modules
// eth0 needs, so that the network comes up (in the background) while the
// rest load; then the rest. The integrity check starts after the first
// pass, the network after the second (after the last when an early pass
// failed); both go on in the background.
func (in *initProc) loadModules(ctx context.Context, list initrdlayout.Contents, cfg bootcfg.Config, p checkPlan) backgroundWork {
	t := time.Now()
	for _, r := range p.skipped {
		in.log.Printf("module %s: %v (skipped)", r.Name, r.Skipped)
	}
	mp := &modulePasses{list: list, rest: p.mods, logf: in.log.Printf}
	mp.early("early hash modules", "af_alg", "algif_hash", "sha256_ssse3")
	var hasher integrity.Hasher = integrity.GoHasher{}
	if k, err := integrity.NewKernelHasher(); err == nil {
		hasher = k
	}
	integ := in.startChecks(list, p, hasher)

	// 6. Network, in the background once the modules eth0 needs are in:
	// the guest answers on its address (a refused connection, not silence)
	// while the rest loads and the payload is checked, and a client's
	// retries reach Katana as soon as it listens.
	mp.early("network modules", netModules...)
	if err := netcfg.Loopback(netcfg.Options{}); err != nil {
		in.fatal(err)
	}
	// Its marker is logged by the main goroutine once the modules are in:
	// a line written while modules load would be split on the serial
	// console by their kernel messages.
	netDone := make(chan netResult, 1)
	startNet := func(wait time.Duration) {
		tn := time.Now()
		in.goSafe("network", func() {
			if cfg.Net.None {
				netDone <- netResult{detail: "eth0=none", took: time.Since(tn)}
				return
			}
			r, err := netcfg.Configure(ctx, cfg.Net, netcfg.Options{Root: "/", ProcSys: "/proc/sys", Wait: wait})
			netDone <- netResult{detail: fmt.Sprintf("%s=%s", r.Interface, r.Addr), took: time.Since(tn), err: err}
		})
	}
	// After a failed early pass the network's modules may still be to
	// load: it then starts once the full pass has loaded them. Started
	// early, its wait for eth0 is bounded after the full pass instead
	// (linkWait from the modules' end, as when it starts late), since a
	// NIC driver outside netModules loads in that pass.
	netEarly := !mp.retry
	if netEarly {
		startNet(bootDeadline)
	}

	kernelLog := func(m string) []string { return modload.KernelMessages("/dev/kmsg", m, 3) }
	if mp.retry {
		mp.rest = p.mods
	}
	r, err := modload.Load(mp.rest, modload.Options{Root: "/", Contents: list, KernelLog: kernelLog})
	res := append(mp.res, r...)
	if err != nil {
		in.fatal(err)
	}
	if !netEarly {
		startNet(linkWait)
	}
	loaded := in.reportModules(res)
	in.stage("modules", fmt.Sprintf("count=%d took=%s", loaded, secs(time.Since(t))), time.Since(t))
	return backgroundWork{integ: integ, hasher: hasher, net: netDone, early: netEarly}
}

// startChecks starts step 5's background check: the payload's frames and
// the other files are checked at once (the payload's mapping calls leave a
// CPU free for the others); the result comes on the channel returned. The
// re-check of /bin/katana before each restart is pinned here: against the
// content list when the payload is stored inline; decoded from frames,
// against the decoded payload's SHA-256 the frame list carries (the
// content list vouches for the frame list), so nothing is hashed at boot.
func (in *initProc) startChecks(list initrdlayout.Contents, p checkPlan, hasher integrity.Hasher) <-chan integrityResult {
	integ := make(chan integrityResult, 1)
	in.goSafe("integrity", func() {
		integ <- in.checkBoth(func() (payload.Report, integrity.Pinned, error) {
			if p.framed {
				r, err := payload.Unpack(payload.Options{Root: "/", Frames: p.frames, Hash: hasher, HugeTmpfs: true})
				return r, integrity.Pinned{Path: "/" + initrdlayout.PayloadPath, Sum: p.frames.SHA256, From: "the frame list", Hash: hasher}, err
			}
			return payload.Report{}, integrity.Pinned{Path: "/" + initrdlayout.PayloadPath, Sum: list[initrdlayout.PayloadPath], From: "the content list", Hash: hasher}, nil
		}, func() (integrity.Report, error) {
			return integrity.Checker{Root: "/", List: list, Hash: hasher, Chunks: p.chunks}.All(p.skip)
		})
	})
	return integ
}

// reportModules logs the module stage's results (skipped modules, each
// module's time) and refuses a guest whose sev-guest driver failed where
// it should have worked; loaded counts the modules loaded now.
func (in *initProc) reportModules(res []modload.Result) (loaded int) {
	var times []string
	for _, r := range res {
		times = append(times, fmt.Sprintf("%s=%s", r.Name, secs(r.Took)))
		switch r.Status {
		case modload.Skipped:
			in.log.Printf("module %s: %v (skipped)", r.Name, r.Skipped)
		case modload.Loaded:
			loaded++
		}
	}
	in.log.Printf("module times: %s", strings.Join(times, " "))
	if err := sevGuestProbe(res, "/sys"); err != nil {
		in.fatal(err)
	}
	if crypto, err := os.ReadFile("/proc/crypto"); err == nil {
		msg, err := sevGuestCipher("/sys", crypto)
		if err != nil {
			in.fatal(err)
		}
		if msg != "" {
			in.log.Printf("%s", msg)
		}
	}
	return loaded
}

// awaitNetwork is the rest of step 7: the network's result, its marker
// line, or a boot error. Started before the last module pass, the network
// gets linkWait from here.
func (in *initProc) awaitNetwork(bg backgroundWork) {
	var nr netResult
	if bg.early {
		select {
		case nr = <-bg.net:
		case <-time.After(linkWait):
			nr.err = netcfg.LinkTimeoutError("eth0", linkWait)
		}
	} else {
		nr = <-bg.net
	}
	if nr.err != nil {
		in.fatal(nr.err)
	}
	in.stage("network", nr.detail, nr.took)
}

// awaitChecks is step 9's first half: the integrity check's result, its
// marker lines, the agent's reports enabled, and the boot's watchdog
// disarmed. A stop requested meanwhile (the check can take minutes on a
// slow guest) ends the boot at once: awaitChecks then returns false, the
// power-off under way.
func (in *initProc) awaitChecks(integ <-chan integrityResult, framed bool, hasher integrity.Hasher, disarm func()) (integrityResult, bool) {
	ir, checked, stopped := in.awaitCheck(integ)
	// A failed check is a boot error even when a stop came too: a sign of
	// tampering is never hidden behind a clean shutdown.
	if checked && ir.err != nil {
		in.fatal(ir.err)
	}
	if stopped {
		disarm()
		running := " (the integrity check was still running)"
		if checked {
			running = ""
		}
		in.end(power.PowerOff, "shutdown: %s%s%s", stopBeforeStart, in.st.StopReason(), running)
		return ir, false
	}
	if framed {
		if ir.p.OnHugeTmpfs {
			in.log.Printf("payload: /bin is a read-only tmpfs with huge pages")
		} else if ir.p.Note != "" {
			in.log.Printf("payload: %s", ir.p.Note)
		}
		in.log.Printf("payload times: map=%s, then summed over workers: populate=%s hash=%s decode=%s copy=%s", secs(ir.p.Map), secs(ir.p.Populate), secs(ir.p.Hash), secs(ir.p.Decode), secs(ir.p.Write))
		in.stage("payload", fmt.Sprintf("frames=%d bytes=%d packed=%d took=%s hash=%s", ir.p.Frames, ir.p.Size, ir.p.Packed, secs(ir.p.Took), hasher.Name()), ir.p.Took)
	}
	in.stage("integrity", fmt.Sprintf("files=%d bytes=%d took=%s hash=%s", ir.r.Files, ir.r.Bytes, secs(ir.r.Took), hasher.Name()), ir.r.Took)
	// From here the config the agent binds is the one Katana starts with.
	in.ready.Checked()
	disarm()
	return ir, true
}

// runKatana is step 9's second half: Katana started and supervised until
// it exits for good or a graceful stop ends it, then step 10.
func (in *initProc) runKatana(ctx context.Context, cfg bootcfg.Config, ir integrityResult, keymapDone <-chan struct{}) {
	// Katana waits for the keymap (a few thousand ioctls that take no
	// lock a host controls); should they stall, the console says why.
	select {
	case <-keymapDone:
	case <-time.After(keymapWaitNote):
		in.log.Printf("keyboard: the keymap's dump keys are not yet removed after %s; Katana starts once they are", keymapWaitNote)
		<-keymapDone
	}
	devnull, err := os.Open("/dev/null")
	if err != nil {
		in.fatal(fmt.Errorf("opening /dev/null: %w", err))
	}
	// Katana writes to a file description of the console of its own: a
	// status flag it sets on its stdout (O_NONBLOCK, as async runtimes
	// may) then changes nothing for the init's log, whose writes would
	// otherwise fail with EAGAIN whenever Katana held the tty's write lock
	// or the serial line fell behind.
	out, err := early.OpenConsole("/dev/console")
	if err != nil {
		in.log.Printf("katana shares the init's console descriptor: %v", err)
		if out = in.console; out == nil {
			out = os.Stderr
		}
	}
	// katana.env comes after PATH, HOME and SSL_CERT_FILE (supervise adds
	// TMPDIR last); bootcfg refuses the names the init sets, so none is
	// given twice.
	env := append(supervise.Env("/"), cfg.Env...)
	if len(cfg.Env) > 0 {
		j, _ := json.Marshal(cfg.Env)
		in.log.Printf("katana env: katana.env adds %s", j)
	}
	var verify func() error
	wait := cfg.StopTimeout + supervisorSlack
	if cfg.OnExit == bootcfg.OnExitRestart && cfg.RestartLimit > 0 {
		verify = ir.pin.Check
		// A restart's check of a large payload can take longer than the
		// slack: a second for every 4 MiB (slower than the Go hasher
		// under TCG) more.
		if fi, err := os.Stat(ir.pin.Path); err == nil {
			wait += time.Duration(fi.Size()>>22) * time.Second
		}
	}
	outcome := in.superviseRun(wait, func() supervise.Outcome {
		return supervise.Run(ctx, supervise.Options{
			Path:         "/" + initrdlayout.PayloadPath,
			Args:         cfg.Args,
			Env:          env,
			Stdin:        devnull,
			Stdout:       out,
			Stderr:       out,
			OnExit:       cfg.OnExit,
			RestartLimit: cfg.RestartLimit,
			StopTimeout:  cfg.StopTimeout,
			OpenFiles:    supervise.DefaultOpenFiles,
			TmpDir:       supervise.DefaultTmpDir,
			Signals:      in.sigs,
			Status:       in.st,
			Log:          in.log.Printf,
			Verify:       verify,
		})
	})
	if outcome.Err != nil && !in.failing.Load() {
		in.fatal(outcome.Err)
	}
	in.end(outcome.Action, "shutdown: %s", outcome.Reason)
}

// integrityResult is the background check's outcome: the other files',
// the payload's frames', and the payload pinned for the re-check before
// each restart (with katana.on_exit=restart).
type integrityResult struct {
	r   integrity.Report
	p   payload.Report
	pin integrity.Pinned
	err error
}

// checkBoth runs the payload's check and the other files' check at once
// and returns their combined result, or the first error as soon as either
// check fails: the other may take minutes on a slow guest, and until a
// result is in, a stop request ends the boot cleanly (awaitCheck), which
// must not hide a failure already found.
func (in *initProc) checkBoth(payloadCheck func() (payload.Report, integrity.Pinned, error), files func() (integrity.Report, error)) integrityResult {
	type pres struct {
		p   payload.Report
		pin integrity.Pinned
		err error
	}
	type fres struct {
		r   integrity.Report
		err error
	}
	pc, fc := make(chan pres, 1), make(chan fres, 1)
	in.goSafe("payload", func() {
		p, pin, err := payloadCheck()
		pc <- pres{p, pin, err}
	})
	in.goSafe("integrity", func() {
		r, err := files()
		fc <- fres{r, err}
	})
	var res integrityResult
	for range 2 {
		select {
		case p := <-pc:
			if p.err != nil {
				return integrityResult{err: p.err}
			}
			res.p, res.pin = p.p, p.pin
		case f := <-fc:
			if f.err != nil {
				return integrityResult{err: f.err}
			}
			res.r = f.r
		}
	}
	return res
}

// cpuRefused names the listed modules whose init refuses this CPU
// (ENODEV), so that the init need not read, check and offer them:
// sha256_ssse3 wants one of SSSE3, AVX, AVX2 (Linux 6.1's module_cpu_ids)
// or SHA-NI (later kernels'), aesni_intel wants AES-NI (and PCLMULQDQ,
// see below). flags are the kernel's own CPU feature flags (/proc/cpuinfo),
// the ones its x86_match_cpu reads; none known (nil) refuses nothing.
// Under TCG's default CPU (qemu64) that saves ~0.05 s before the payload's
// check can start; a CPU with the features loads them.
func cpuRefused(flags []string) map[string]error {
	if flags == nil {
		return nil
	}
	has := func(want ...string) bool {
		return slices.ContainsFunc(flags, func(f string) bool { return slices.Contains(want, f) })
	}
	out := map[string]error{}
	if !has("ssse3", "avx", "avx2", "sha_ni") {
		out["sha256_ssse3"] = errors.New("the CPU has none of SSSE3, AVX, AVX2, SHA-NI, one of which it needs; not loaded (the kernel's generic sha256 serves)")
	}
	// aesni_intel checks for AES-NI alone, but its AES-GCM (tested as
	// it registers) runs PCLMULQDQ too: a CPU model with one and not the
	// other would fault in the kernel inside PID 1's module load.
	switch {
	case !has("aes"):
		out["aesni_intel"] = errors.New("the CPU has no AES-NI, which it needs; not loaded (the kernel's generic AES serves)")
	case !has("pclmulqdq"):
		out["aesni_intel"] = errors.New("the CPU has AES-NI without PCLMULQDQ, which its AES-GCM runs too; not loaded (the kernel's generic AES serves)")
	}
	return out
}

// cpuFlags returns the flags of the first processor in a /proc/cpuinfo
// text, or nil when it has none.
func cpuFlags(cpuinfo []byte) []string {
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "flags" {
			return strings.Fields(val)
		}
	}
	return nil
}

// sevGuestDevice is the platform device an SEV-SNP guest's kernel makes for
// the sev-guest driver (Linux 6.1's snp_init_platform_device; none outside
// SEV-SNP), under the sysfs root.
const sevGuestDevice = "bus/platform/devices/sev-guest"

// sevGuestProbe makes a boot error of an SEV-SNP guest (the kernel made the
// device the sev-guest driver drives) whose device no driver took once the
// modules are in: such a guest would run Katana with no report to be had,
// by the agent or by Katana. A skipped sev_guest is its probe failing:
// platform_driver_probe reports any probe failure (a null VMPCK, no
// gcm(aes) for the crypto API, a page it could not share) as ENODEV, the
// same as no device. Without sev_guest in the initrd's list, the driver is
// built in and failed its probe at boot, or is missing. Outside SEV-SNP
// there is no such device and a skip stands.
func sevGuestProbe(res []modload.Result, sys string) error {
	r, listed := moduleResult(res, "sev_guest")
	skipped := listed && r.Status == modload.Skipped
	dev, snp, err := snpGuest(sys)
	switch {
	case err != nil && skipped:
		return fmt.Errorf("module sev_guest was skipped (%v) and %w", r.Skipped, err)
	case err != nil:
		return fmt.Errorf("sev-guest: %w", err)
	case !snp:
		return nil
	case skipped:
		return fmt.Errorf("module sev_guest: this is an SEV-SNP guest (its kernel made %s) but the driver's probe failed (%v): no attestation report could be had, by the agent or by Katana; see the kernel's reason, then the initrd's modules (hostbuild pack loads what sev-guest asks the crypto API for) or the launch (a VMPCK the firmware left empty)", dev, r.Skipped)
	}
	bound, err := sevGuestBound(dev)
	switch {
	case err != nil:
		return err
	case bound:
		return nil
	case !listed:
		return fmt.Errorf("sev-guest: this is an SEV-SNP guest (its kernel made %s) but no driver took the device, and the initrd's modules do not list sev_guest (missing, or built into the kernel and its probe failed at boot: see the kernel's messages): no attestation report could be had, by the agent or by Katana; pack sev_guest (hostbuild pack does by default)", dev)
	}
	return fmt.Errorf("module sev_guest (%s): this is an SEV-SNP guest (its kernel made %s) but no driver took the device (a built-in driver's probe failed at boot: see the kernel's messages): no attestation report could be had, by the agent or by Katana", r.Status, dev)
}

// sevGuestBound says whether a driver took the sev-guest device dev (its
// sysfs "driver" link, made when a probe succeeds and removed when it
// fails); err when that cannot be told.
func sevGuestBound(dev string) (bool, error) {
	_, err := os.Stat(filepath.Join(dev, "driver"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sev-guest: cannot tell whether a driver took %s (so neither whether reports can be had nor which AES-GCM seals the guest's messages to the AMD-SP): %w", dev, err)
	}
	return true, nil
}

// snpGuest says whether this is an SEV-SNP guest: whether its kernel made
// the sev-guest platform device (dev, under the sysfs root sys); err when
// that cannot be told.
func snpGuest(sys string) (dev string, snp bool, err error) {
	dev = filepath.Join(sys, sevGuestDevice)
	_, err = os.Stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dev, false, nil
	case err != nil:
		return dev, false, fmt.Errorf("%s cannot be read to tell whether this is an SEV-SNP guest: %w", dev, err)
	}
	return dev, true, nil
}

// sevGuestOnly names, outside SEV-SNP (the kernel made no sev-guest
// device under sys), sev_guest and the modules of mods there only for it
// (modload.OnlyFor, by its release's modules.dep: the AES-GCM its probe
// builds, aesni_intel and theirs), each with why it is left out: the
// driver would find no device, and the others, loaded for nothing, cost
// ~0.5 s of the module stage under TCG (ghash_generic's self-test alone
// ~0.25 s). depFile is the modules.dep read (checked against the content
// list first), "" when none was. In an SEV-SNP guest, when sysfs cannot
// tell (sevGuestProbe reports that once the modules are in), or without
// sev_guest or a listed modules.dep, nothing is left out.
func sevGuestOnly(list initrdlayout.Contents, mods []initrdlayout.Module, root, sys string) (absent map[string]error, depFile string, err error) {
	i := slices.IndexFunc(mods, func(m initrdlayout.Module) bool { return strings.ReplaceAll(m.Name, "-", "_") == "sev_guest" })
	if i < 0 {
		return nil, "", nil
	}
	dev, snp, err := snpGuest(sys)
	if err != nil || snp {
		return nil, "", nil
	}
	release, ok := initrdlayout.ModuleRoot(mods[i].Path)
	if !ok {
		return nil, "", nil // not under lib/modules/<release>/: modload refuses it when loading
	}
	depFile = path.Join(release, initrdlayout.ModulesDepName)
	if _, listed := list[depFile]; !listed {
		return nil, "", nil
	}
	b, err := integrity.Checker{Root: root, List: list}.ReadFile(depFile)
	if err != nil {
		return nil, "", err
	}
	deps, err := initrdlayout.ParseModulesDep(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("/%s: %w", depFile, err)
	}
	only, err := modload.OnlyFor(mods, deps, "sev_guest")
	if err != nil {
		return nil, "", err
	}
	absent = map[string]error{}
	for _, m := range only {
		name := strings.ReplaceAll(m.Name, "-", "_")
		if name == "sev_guest" {
			absent[name] = fmt.Errorf("the kernel made no %s (not an SEV-SNP guest, or one whose launch gave it no secrets page): the driver would find no device; not loaded, nor what only it needs (no attestation report in this boot)", dev)
		} else {
			absent[name] = fmt.Errorf("only sev_guest needs it (/%s), and sev_guest is not loaded; not loaded", depFile)
		}
	}
	return absent, depFile, nil
}

// moduleResult returns the load result of the module name (spelt with
// underscores, as the kernel does) when res has it, under either spelling.
func moduleResult(res []modload.Result, name string) (modload.Result, bool) {
	i := slices.IndexFunc(res, func(r modload.Result) bool { return strings.ReplaceAll(r.Name, "-", "_") == name })
	if i < 0 {
		return modload.Result{}, false
	}
	return res[i], true
}

// sevGuestCipher says, once the sev-guest driver is bound in an SEV-SNP
// guest (the kernel made its device under sys, and the driver's probe took
// it: the module loaded now, or built into the kernel, which probed before
// the init ran), which AES-GCM it seals the guest's messages to the AMD-SP
// with: the gcm(aes) /proc/crypto (procCrypto) shows in use (a reference
// beyond its registration's: the transform its crypto_alloc_aead took;
// nothing else holds one this early in the boot), the highest priority
// should there be more. A table-based one (the gcm template over
// aes-generic or ghash-generic), whose table lookups a host that watches
// the guest's cache could time to learn VMPCK0, and with it have the AMD-SP
// sign reports over REPORT_DATA of its choosing, is a boot error: nothing
// is served over it. AES-NI's (aesni_intel, which hostbuild packs before
// sev-guest) is named in msg. None in use: a driver on the kernel's
// AES-GCM library (later kernels), which this does not judge. msg is empty
// outside SEV-SNP or without the driver bound (sevGuestProbe judges a
// probe that failed).
func sevGuestCipher(sys string, procCrypto []byte) (msg string, err error) {
	dev, snp, err := snpGuest(sys)
	if err != nil {
		return "", fmt.Errorf("sev-guest: %w, so not which AES-GCM it would seal the guest's messages to the AMD-SP with", err)
	}
	if !snp {
		return "", nil
	}
	if bound, err := sevGuestBound(dev); err != nil || !bound {
		return "", err
	}
	algs := kcrypto.Algs(procCrypto, "gcm(aes)")
	i := slices.IndexFunc(algs, kcrypto.Alg.InUse)
	switch {
	case i < 0:
		return "sev-guest: no gcm(aes) of the crypto API in use (a driver on the kernel's AES-GCM library)", nil
	case strings.Contains(algs[i].Driver, "aes-generic") || strings.Contains(algs[i].Driver, "ghash-generic"):
		return "", fmt.Errorf("sev-guest: this SEV-SNP guest's AES-GCM for its messages to the AMD-SP is table-based (%s): a host that watches the guest's cache timing could learn VMPCK0 and have reports signed over REPORT_DATA of its choosing, so nothing is served; pack aesni_intel before sev_guest (hostbuild pack does by default) and launch with a CPU model that has AES-NI and PCLMULQDQ, as every SEV-SNP CPU does", algs[i].Driver)
	}
	return fmt.Sprintf("sev-guest: AES-GCM by %s", algs[i].Driver), nil
}

// sevGuestAESNI refuses, before any module loads, an SEV-SNP guest (the
// kernel made the sev-guest device under sys) whose CPU makes the init
// leave aesni_intel out (cpuRefused; skipped: modload.Drop's results):
// sev-guest would then key the table-based AES-GCM with VMPCK0 as it
// probes (sevGuestCipher would refuse it after), and a host can present
// such a CPU, since SEV-SNP lets it clear CPUID feature bits and does not
// measure them. Every SEV-SNP CPU has AES-NI and PCLMULQDQ.
func sevGuestAESNI(skipped []modload.Result, sys string) error {
	r, ok := moduleResult(skipped, "aesni_intel")
	if !ok {
		return nil
	}
	dev, snp, err := snpGuest(sys)
	if err != nil {
		return fmt.Errorf("module aesni_intel: %v, and %w (whose sev-guest needs it)", r.Skipped, err)
	}
	if !snp {
		return nil
	}
	return fmt.Errorf("module aesni_intel: this is an SEV-SNP guest (its kernel made %s) but %v: sev-guest would key the kernel's table-based AES-GCM with VMPCK0, whose lookups a host that watches the guest's cache could time to learn the key; refusing before any module loads. Every SEV-SNP CPU has AES-NI and PCLMULQDQ: launch with a CPU model that keeps aes and pclmulqdq (QEMU's -cpu)", dev, strings.TrimSuffix(r.Skipped.Error(), "; not loaded (the kernel's generic AES serves)"))
}

// linkWait bounds the wait for eth0 once every module is in.
const linkWait = 10 * time.Second

// netModules are the modules the network needs before eth0 is configured,
// loaded in the init's second pass in their list order: virtio-net over PCI
// and their dependencies in Debian's kernels, and ipv6 where it is a module
// (Debian builds it in), which netcfg's IPv6 settings (no router
// advertisements, autoconfiguration or redirects, written before eth0 comes
// up) and an IPv6 katana.net need: loaded later, it would give eth0 the
// kernel's defaults. One the list lacks is built in or not wanted; one that
// needs a module outside this set fails that pass and is loaded, in order,
// by the full pass, and the network then waits for that pass.
var netModules = []string{"ipv6", "failover", "net_failover", "virtio", "virtio_ring",
	"virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_net"}

// stopBeforeStart begins the line, a stable marker, for a stop requested
// before Katana started (supervise says the same after the check).
const stopBeforeStart = "stop requested before katana started: "

// awaitCheck waits for the integrity check, or for a stop request during
// it (the power button, the agent, a boot error elsewhere; SIGTERM or
// SIGINT to PID 1, here made a stop request as supervise does with those
// it finds pending). checked: the check's result ir came; stopped: a stop
// was requested (a result already there is returned with it, whichever
// came first, so that a failed check is never lost to a stop).
func (in *initProc) awaitCheck(integ <-chan integrityResult) (ir integrityResult, checked, stopped bool) {
	isStopped := func() bool {
		select {
		case <-in.st.StopRequested():
			return true
		default:
			return false
		}
	}
	for {
		select {
		case ir := <-integ:
			return ir, true, isStopped()
		case <-in.st.StopRequested():
			select {
			case ir := <-integ:
				return ir, true, true
			default:
				return integrityResult{}, false, true
			}
		case sig := <-in.sigs:
			// SIGCHLD and SIGHUP are dropped, as supervise drops them
			// when pending: no Katana yet to reap or to pass them to.
			if sig == unix.SIGTERM || sig == unix.SIGINT {
				name := unix.SignalName(sig.(syscall.Signal))
				in.st.RequestStop("signal " + name)
				in.log.Printf("received %s during the boot: graceful stop", name)
			}
		}
	}
}

// startPowerButton turns ACPI power button presses into a graceful stop.
func (in *initProc) startPowerButton() {
	if !acpi.ButtonDriverLoaded("/sys") {
		in.log.Printf("power button: ACPI button driver not loaded (add the \"button\" module); system_powerdown will not stop katana")
	}
	l, err := acpi.Listen()
	if err != nil {
		in.log.Printf("power button: %v; system_powerdown will not stop katana", err)
		return
	}
	in.goSafe("power button", func() {
		// hostbuild run presses again every few seconds until the guest is
		// off (an early press finds no listener): one line for the first
		// press, one for the first of the others.
		saidAgain := false
		for {
			evs, err := l.Next()
			if err != nil {
				in.log.Printf("power button: %v; listener stopped", err)
				return
			}
			for _, e := range evs {
				if !e.IsPowerButton() {
					continue
				}
				if in.st.RequestStop("ACPI power button") {
					in.log.Printf("power button pressed (%s): graceful stop", e.BusID)
				} else if !saidAgain {
					saidAgain = true
					in.log.Printf("power button pressed (%s): a stop is already under way", e.BusID)
				}
			}
		}
	})
}

// mountLate mounts early.Late and logs each failure: its entries are
// optional, so MountAll reports their failures in its results, never as
// its error. A failed configfs mount whose module the init left out
// (skipped: outside SEV-SNP on 6.7+, where only sev_guest's configfs-tsm
// needs it) says so.
func mountLate(o early.Options, skipped []modload.Result, logf func(string, ...any)) {
	res, _ := early.MountAll(early.Late, o)
	for _, r := range res {
		if r.Err == nil {
			continue
		}
		if m, ok := moduleResult(skipped, "configfs"); ok && r.Mount.FSType == "configfs" {
			logf("%v (optional; module configfs was not loaded: %v)", r.Err, m.Skipped)
			continue
		}
		logf("%v (optional)", r.Err)
	}
}

// Command hostbuild is the host side of measured direct-kernel boot for Katana
// on AMD SEV-SNP: it packs the reproducible initrd, computes the expected
// launch measurement, writes the manifest, launches QEMU and verifies
// attestation reports. Each subcommand lives in its own file and registers
// itself in commands; the logic lives in hostbuild/internal/... packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// command is one subcommand. run returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("hostbuild: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// Exit codes shared by all subcommands. Subcommands with richer outcomes
// (attest, diff) document their own codes on top of these.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// version is set by the Makefile with -ldflags '-X main.version=...'.
var version = "dev"

func main() {
	defer exitOnPanic(os.Stderr, os.Exit)
	ctx, stop := interruptContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitOnPanic, deferred by main, turns a panic of the main goroutine into
// exit status 1 with the panic and its stack: a panic is a bug, and the
// runtime's own exit status for it, 2, is exitUsage's.
func exitOnPanic(stderr io.Writer, exit func(int)) {
	if r := recover(); r != nil {
		fmt.Fprintf(stderr, "hostbuild: internal error (a bug, please report it with this text): %v\n%s", r, debug.Stack())
		exit(exitFail)
	}
}

// interruptSignals end a command gracefully: Ctrl-C (SIGINT), SIGTERM from
// kill, timeout or systemd, and SIGHUP when the terminal is closed (its
// default action would end hostbuild silently, leaving run's guest to be
// killed with it through QEMU's parent-death signal).
//
// SIGHUP is caught only when hostbuild did not start with it ignored
// (nohup, trap "" HUP): Notify would replace the inherited "ignore" with a
// handler, and the SIGHUP of a closed terminal would stop a guest launched
// under nohup to survive it. Decided once, before anything calls Notify.
// SIGINT and SIGTERM are always caught: a non-interactive shell starts its
// background jobs with SIGINT ignored (POSIX, without job control), and a
// script's "hostbuild run ... & kill -INT $!" (.ci/demo.sh) must still stop
// the guest; a terminal's Ctrl-C never reaches such a job anyway.
var interruptSignals = notIgnored(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)

// notIgnored returns sigs but for SIGHUP when this process started with it
// ignored.
func notIgnored(sigs ...os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if s != syscall.SIGHUP || !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// interruptContext returns a context canceled by the first of
// interruptSignals. Then it gives them back their default action, so that a
// second one ends the process: signal.NotifyContext alone would swallow
// every later signal, and a step that never looks at ctx (inspect, diff,
// ovmf) could not be stopped at all, not even by SIGTERM from timeout or
// systemd. A command that must outlive a second signal registers its own
// channel for the signals before the first can come (run, from before QEMU
// starts: its second signal kills QEMU; QEMU also dies with hostbuild
// through its parent-death signal).
//
// A second signal that comes before the handler is given back (the
// goroutine below may wait for a CPU on a busy host) is queued on the
// channel, not lost: it is sent again once the handler is back, unless
// the command took it on its own channel (ownSignals).
//
// The context's cause (context.Cause) is an Interrupted naming the signal:
// the steps that stop on it return the cause, so that the command says
// "interrupted (SIGINT)" rather than "context canceled".
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	owner := &signalOwner{}
	ctx = context.WithValue(ctx, signalOwnerKey{}, owner)
	sigs := make(chan os.Signal, len(interruptSignals)+1)
	signal.Notify(sigs, interruptSignals...)
	go func() {
		select {
		case s := <-sigs:
			cancel(Interrupted{s})
		case <-ctx.Done():
		}
		cancel(nil)
		signal.Stop(sigs)
		sendAgain(sigs, owner.owned.Load, func(s os.Signal) { syscall.Kill(os.Getpid(), s.(syscall.Signal)) })
	}()
	return ctx, func() { cancel(nil) }
}

// sendAgain sends the signals queued in sigs (they came before the default
// action was given back) once more, unless a command's own channel took
// them as they came (owned): run's, which counts a second signal as the
// request to kill QEMU. Sent again, the same signal would reach that
// channel twice, and count as a second request if it came more than run's
// 200 ms apart (a busy host delaying this goroutine): coreutils' timeout
// sends one signal to run and another to its process group.
func sendAgain(sigs <-chan os.Signal, owned func() bool, send func(os.Signal)) {
	for {
		select {
		case s := <-sigs:
			if !owned() {
				send(s)
			}
		default:
			return
		}
	}
}

// signalOwner notes that a command registered its own channel for
// interruptSignals (ownSignals).
type signalOwner struct{ owned atomic.Bool }

type signalOwnerKey struct{}

// ownSignals tells ctx's interruptContext that the caller's channel,
// registered for interruptSignals before this call, takes every one of
// them from now on: none is sent again. A signal that came before the
// channel was registered canceled ctx before anything the caller starts
// after this call.
func ownSignals(ctx context.Context) {
	if o, ok := ctx.Value(signalOwnerKey{}).(*signalOwner); ok {
		o.owned.Store(true)
	}
}

// Interrupted is the cause of a context canceled by one of
// interruptSignals. It is a context.Canceled (errors.Is).
type Interrupted struct{ Signal os.Signal }

func (e Interrupted) Error() string {
	if s, ok := e.Signal.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return "interrupted (" + name + ")"
		}
	}
	return "interrupted (" + e.Signal.String() + ")"
}

func (e Interrupted) Is(target error) bool { return target == context.Canceled }

// ifInterrupted returns "; " + note when err is an Interrupted, else "":
// for the line that reports it, to say what became of the output.
func ifInterrupted(err error, note string) string {
	if errors.As(err, new(Interrupted)) {
		return "; " + note
	}
	return ""
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// "hostbuild help run" is "hostbuild run -h".
	if len(args) == 2 && args[0] == "help" && args[1] != "version" && args[1] != "help" && !strings.HasPrefix(args[1], "-") {
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(stderr, "hostbuild help: unknown command %q; run 'hostbuild help' for the list\n", args[1])
			return exitUsage
		}
		return c.run(ctx, []string{"-h"}, stdout, stdout) // help asked for: on stdout
	}
	if len(args) > 1 && (args[0] == "help" || args[0] == "version" || args[0] == "--version") && !(args[0] == "help" && len(args) == 2) {
		fmt.Fprintf(stderr, "hostbuild %s: unexpected argument %q; run 'hostbuild help' for the list, or 'hostbuild help COMMAND' for one\n", strings.TrimPrefix(args[0], "--"), args[len(args)-1])
		return exitUsage
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintf(stdout, "hostbuild %s\n", version)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hostbuild: unknown command %q; run 'hostbuild help' for the list\n", args[0])
		return exitUsage
	}
	if len(args) == 2 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
		return c.run(ctx, []string{"-h"}, stdout, stdout) // help asked for: on stdout, as with "help CMD"
	}
	// Errors and warnings carry text from input files, agents, QEMU and
	// /proc: escaped (newlines and tabs kept), a terminal runs none of
	// its control sequences. The messages quote that text too; this is
	// the backstop for a path they miss.
	stderr = printable.NewWriter(stderr)
	// What a command prints on stdout is often its output file
	// ("hostbuild cmdline > cmdline", "libvirt ... > katana.xml"): a
	// write that failed (a full disk) must not exit 0. run's stdout is
	// only its report, and its exit status the guest's outcome.
	if c.name == "run" {
		return c.run(ctx, args[1:], stdout, stderr)
	}
	ew := &errWriter{w: stdout}
	code := c.run(ctx, args[1:], ew, stderr)
	if code == exitOK && ew.err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: writing to stdout: %v\n", c.name, ew.err)
		return exitFail
	}
	return code
}

// errWriter keeps the first error of its writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// newFlagSet is a subcommand's flag set: its errors and help go to
// stderr, and its help is usage followed by the flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's flags. When ok is false the caller
// returns code: exitOK after -h (the command's help printed), exitUsage
// after a bad flag (the flag package's one-line reason printed, then a
// pointer to -h).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	return parseQuietly(fs, func() error {
		if err := fs.Parse(args); err != nil {
			return err
		}
		return onceEach(fs, args, false)
	})
}

// onceEach refuses a flag given twice that takes one value (the flag
// package keeps the last: "--args --dev --args '--http.addr 0.0.0.0'"
// dropped --dev from a measured cmdline; "--min-tcb X ... --min-tcb none"
// lowered the floor); the repeatable ones (--env, --file, --forward, ...)
// add up, and a switch (-q, --json) given twice is given. args has parsed;
// interspersed says that positional arguments may come between flags.
func onceEach(fs *flag.FlagSet, args []string, interspersed bool) error {
	seen := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			if interspersed {
				continue
			}
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue // a switch: twice is once
		}
		given := a
		if !hasValue && i+1 < len(args) {
			i++
			given += " " + args[i]
		}
		switch f.Value.(type) {
		case *stringList, *fileList, execList:
			continue
		}
		if prev, twice := seen[f.Name]; twice {
			dash := "--"
			if len(f.Name) == 1 {
				dash = "-"
			}
			return fmt.Errorf("%s%s given twice (%q, then %q): it takes one value, and the first would be dropped; give it once", dash, f.Name, prev, given)
		}
		seen[f.Name] = given
	}
	return nil
}

// parseFlagsInterspersed is parseFlags for a command whose flags may come
// before or after its positional arguments (parseInterspersed), which it
// returns.
func parseFlagsInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	code, ok = parseQuietly(fs, func() (err error) {
		if pos, err = parseInterspersed(fs, args); err != nil {
			return err
		}
		return onceEach(fs, args, true)
	})
	return pos, code, ok
}

// parseQuietly runs parse with fs's help printed only for -h. On a bad
// flag the flag package would print the whole help (60 lines for run)
// after its one-line reason, which then scrolls out of sight; instead the
// reason is followed by what a duration looks like, when the flag takes
// one (the flag package says only "parse error"), and a pointer to -h.
func parseQuietly(fs *flag.FlagSet, parse func() error) (code int, ok bool) {
	help := fs.Usage
	fs.Usage = func() {}
	// The flag package prints its reason bare; it is printed below with
	// the command's name, as every other message is.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := parse()
	fs.SetOutput(out)
	fs.Usage = help
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		if help != nil {
			help()
		} else {
			fs.PrintDefaults()
		}
		return exitOK, false
	}
	fmt.Fprintf(out, "hostbuild %s: %v\n", fs.Name(), err)
	if name, found := strings.CutPrefix(err.Error(), "invalid value "); found {
		if _, name, found = strings.Cut(name, " for flag -"); found {
			name, _, _ = strings.Cut(name, ":")
			if f := fs.Lookup(name); f != nil {
				if g, ok := f.Value.(flag.Getter); ok {
					if _, seconds := f.Value.(secondsOrDuration); seconds {
						fmt.Fprintf(fs.Output(), "hostbuild %s: --%s takes a duration, e.g. 90s, 5m or 1h30m, or whole seconds\n", fs.Name(), name)
					} else if _, isDur := g.Get().(time.Duration); isDur {
						fmt.Fprintf(fs.Output(), "hostbuild %s: --%s takes a duration with its unit, e.g. 90s, 5m or 1h30m\n", fs.Name(), name)
					}
				}
			}
		}
	}
	fmt.Fprintf(fs.Output(), "run 'hostbuild %s -h' for the flags\n", fs.Name())
	return exitUsage, false
}

// usageErrorf returns a function that reports a usage error of the named
// subcommand, points at its -h, and returns exitUsage.
func usageErrorf(stderr io.Writer, name string) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hostbuild "+name+": "+format+"\n", a...)
		fmt.Fprintf(stderr, "run 'hostbuild %s -h' for the flags\n", name)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hostbuild %s: build, measure, launch and attest Katana in an AMD SEV-SNP VM\n\n", version)
	fmt.Fprintln(w, "Usage: hostbuild <command> [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "  version    print the version")
	fmt.Fprintln(w, "\nRun 'hostbuild <command> -h' (or 'hostbuild help <command>') for a command's flags.")
}

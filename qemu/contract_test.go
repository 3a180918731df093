package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/qemu/qemutest"
)

// Tests that pin behaviour the package's other tests leave unchecked. Each
// names the code change it fails for.

// Entry i of RunOptions.ExtraFiles is QEMU's fd 3+i, and InheritedFile(i)
// names it: hostbuild passes the kernel, initrd and OVMF it hashed this way,
// so an off-by-one would boot (or fail to open) another file than the one
// measured. A shell script stands in for QEMU and copies the -kernel file
// to its stderr. Fails for: InheritedFile "3+i" -> "4+i"; Start not setting
// cmd.ExtraFiles.
func TestInheritedFileReachesQEMU(t *testing.T) {
	if got := InheritedFile(0); got != "/proc/self/fd/3" {
		t.Errorf("InheritedFile(0) = %q, want /proc/self/fd/3", got)
	}
	dir := t.TempDir()
	kernel := filepath.Join(dir, "kernel")
	if err := os.WriteFile(kernel, []byte("the kernel bytes that were hashed"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("not the kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := make([]*os.File, 2)
	for i, p := range []string{other, kernel} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	o := scriptOptions(t, `while [ $# -gt 0 ]; do [ "$1" = -kernel ] && cat "$2" >&2; shift; done`)
	o.Kernel = InheritedFile(1)
	v, err := Start(context.Background(), o, RunOptions{ExtraFiles: files, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	exit := waitExit(t, v)
	if exit.Stderr != "the kernel bytes that were hashed" {
		t.Errorf("QEMU read %q from -kernel %s, want the kernel (ExtraFiles[1])", exit.Stderr, o.Kernel)
	}
}

// scriptOptions returns Options whose QEMU binary is a /bin/sh script with
// body (it gets QEMU's argv as $@), and a serial log in a fresh folder.
func scriptOptions(t *testing.T, body string) Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{Binary: bin, Kernel: "k", SerialLog: filepath.Join(dir, "serial.log")}
}

func waitExit(t *testing.T, v *VM) Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exit, err := v.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return exit
}

// An option without a value is one argv element: an empty string after
// -nodefaults would be a stray argument real QEMU refuses (the golden files
// render Command.String, which does not show it). Fails for: Args appending
// o.Value whatever o.HasValue.
func TestArgsValuelessOptions(t *testing.T) {
	c, err := Build(Options{Kernel: "k", SerialLog: "s", Append: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	args := c.Args()
	if diff := cmp.Diff([]string{"-nodefaults", "-no-reboot", "-display", "none"}, args[:4]); diff != "" {
		t.Errorf("Args() start (-want +got):\n%s", diff)
	}
	if slices.Contains(args, "") {
		t.Errorf("Args() has an empty element: %q", args)
	}
}

// '$' is not safe unquoted: --dry-run output pasted into a shell would
// expand it. Fails for: '$' added to shellQuote's unquoted set.
func TestShellQuoteDollar(t *testing.T) {
	for in, want := range map[string]string{"$HOME": "'$HOME'", "a$(id)": "'a$(id)'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// A port of more than five digits is refused even when its value fits
// (leading zeros): the length bound is what keeps ParseForward strict.
// Fails for: dropping "|| len(s) > 5" in parsePort.
func TestParseForwardLongPort(t *testing.T) {
	for _, s := range []string{"000080:1", "1:0000080", "127.0.0.1:000080:1"} {
		if f, err := ParseForward(s); err == nil {
			t.Errorf("ParseForward(%q) = %+v, want an error", s, f)
		}
	}
}

// SEV-SNP needs a q35 machine: a versioned q35 (pc-q35-9.1) is accepted,
// a versioned i440fx (pc-i440fx-9.1) is not. Fails for: dropping the
// "pc-q35-" prefix clause, and shortening it to "pc-".
func TestBuildSNPMachineTypes(t *testing.T) {
	for machine, ok := range map[string]bool{"q35": true, "pc-q35-9.1": true, "pc-i440fx-9.1": false, "pc": false, "microvm": false} {
		_, err := Build(Options{Kernel: "k", SerialLog: "s", Machine: machine, SNP: &SNP{OVMF: "ovmf"}})
		if ok && err != nil {
			t.Errorf("machine %s: %v, want it accepted", machine, err)
		}
		if !ok && (err == nil || !errors.Is(err, ErrInvalid)) {
			t.Errorf("machine %s: %v, want ErrInvalid", machine, err)
		}
	}
}

// The guest port's upper bound at its edge (the other three port bounds
// have edge tests). Fails for: "f.GuestPort > 65535" -> "> 65536".
func TestBuildGuestPort65536(t *testing.T) {
	_, err := Build(Options{Kernel: "k", SerialLog: "s", Forwards: []Forward{{HostPort: 1, GuestPort: 65536}}})
	if err == nil || !strings.Contains(err.Error(), "ports 1->65536") {
		t.Errorf("Build with guest port 65536 = %v, want it refused", err)
	}
}

// The same host port on two host addresses is two forwards, not one
// forwarded twice. Fails for: the duplicate key without the host address.
func TestBuildSamePortTwoAddresses(t *testing.T) {
	fw := []Forward{{HostAddr: "127.0.0.1", HostPort: 8080, GuestPort: 80}, {HostAddr: "127.0.0.2", HostPort: 8080, GuestPort: 81}}
	if _, err := Build(Options{Kernel: "k", SerialLog: "s", Forwards: fw}); err != nil {
		t.Errorf("Build: %v, want two forwards of port 8080 on two addresses accepted", err)
	}
}

// Bit 32, the lowest of the reserved high half of the SEV-SNP policy, is
// refused (the existing test sets bit 40 only). Fails for: "s.Policy>>32" ->
// ">>33".
func TestBuildSNPPolicyBit32(t *testing.T) {
	_, err := Build(Options{Kernel: "k", SerialLog: "s", SNP: &SNP{OVMF: "ovmf", Policy: 1<<32 | DefaultSNPPolicy}})
	if err == nil || !strings.Contains(err.Error(), "bits 32-63") {
		t.Errorf("Build with policy bit 32 = %v, want it refused", err)
	}
}

// The zero RunOptions is usable, as documented: Poll and Repress take
// their defaults (a zero interval would make time.NewTicker panic in the
// log reader or in Stop). Every other runner test sets both. Fails for:
// "ro.Poll <= 0" -> "< 0" and "ro.Repress <= 0" -> "< 0".
func TestRunnerZeroRunOptions(t *testing.T) {
	v, ctx := bootedWith(t, fakeOptions(t, "", true), RunOptions{})
	if exit, err := v.Stop(ctx, 10*time.Second); err != nil || !exit.Clean() {
		t.Errorf("Stop = %v, %v; want a clean power-off", exit, err)
	}
}

// Start replaces a previous serial log (a regular file) and a QMP socket a
// killed QEMU left behind: the runner's normal second run. Fails for: the
// serial log's removal wanting a socket; the QMP socket's wanting a
// regular file.
func TestStartReplacesPreviousLogAndSocket(t *testing.T) {
	o := fakeOptions(t, "", true)
	if err := os.WriteFile(o.SerialLog, []byte("the previous boot's console\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: o.QMPSocket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a stale socket file, as a killed QEMU leaves it
	v, ctx := startBootedWith(t, o)
	if strings.Contains(v.Log(), "previous boot") {
		t.Errorf("the previous serial log was not replaced: %q", v.Log())
	}
	if exit, err := v.Stop(ctx, 10*time.Second); err != nil || !exit.Clean() {
		t.Errorf("Stop = %v, %v; want a clean power-off through the new socket", exit, err)
	}
}

func startBootedWith(t *testing.T, o Options) (*VM, context.Context) {
	t.Helper()
	v := startFake(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if _, err := v.WaitForLine(ctx, "fake: booted"); err != nil {
		t.Fatal(err)
	}
	return v, ctx
}

// bootedWith starts the fake QEMU with o and ro and waits for its first
// console line; the context bounds the test.
func bootedWith(t *testing.T, o Options, ro RunOptions) (*VM, context.Context) {
	t.Helper()
	v, err := Start(context.Background(), o, ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if _, err := v.WaitForLine(ctx, "fake: booted"); err != nil {
		t.Fatal(err)
	}
	return v, ctx
}

// RunOptions.Stderr gets QEMU's stderr, and Exit.Stderr keeps it as well.
// Fails for: either writer dropped from the MultiWriter.
func TestRunnerStderrBoth(t *testing.T) {
	o := fakeOptions(t, "fake.stderr fake.exit=1", false)
	var buf qemutest.LockedBuffer
	v, err := Start(context.Background(), o, RunOptions{Stderr: &buf, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	exit := waitExit(t, v)
	const want = "could not open kernel file"
	if !strings.Contains(buf.String(), want) || !strings.Contains(exit.Stderr, want) {
		t.Errorf("RunOptions.Stderr got %q, Exit.Stderr %q; want both to hold %q", buf.String(), exit.Stderr, want)
	}
}

// A Start whose exec fails (here the binary's #! interpreter is missing)
// removes the serial log it created: QEMU never wrote to it. Fails for: the
// os.Remove after a failed cmd.Start deleted.
func TestStartFailedExecRemovesLog(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu-wrapper")
	if err := os.WriteFile(bin, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "s.log")
	if _, err := Start(context.Background(), Options{Binary: bin, Kernel: "k", SerialLog: log}, RunOptions{}); err == nil {
		t.Fatal("Start succeeded")
	}
	if _, err := os.Lstat(log); err == nil {
		t.Errorf("Start that could not exec QEMU left its empty serial log behind")
	}
}

// A VM that QEMU has stopped (internal-error: a guest's SEV-SNP
// termination request) is killed by the runner's state watch, and the Exit
// says why. Only hostbuild's tests covered this. Fails for: no watchState
// goroutine; "internal-error" dropped from the states; the Kill in
// watchState deleted; e.Stopped not set; Exit.String's Stopped case.
func TestRunnerKillsStoppedVM(t *testing.T) {
	t.Setenv("SNPBOOT_FAKE_QMP_STATUS", "internal-error")
	v, ctx := bootedWith(t, fakeOptions(t, "fake.hang", true), RunOptions{StatePoll: 20 * time.Millisecond})
	exit, err := v.Wait(ctx)
	if err != nil {
		t.Fatalf("the runner did not end a VM QEMU reports as internal-error: %v", err)
	}
	if exit.Stopped != "internal-error" || !exit.Killed {
		t.Errorf("exit = %+v, want Stopped internal-error and Killed", exit)
	}
	if s := exit.String(); !strings.HasPrefix(s, "qemu stopped the VM (internal-error) and was killed (killed by the runner)") {
		t.Errorf("exit.String() = %q", s)
	}
}

// Exit.String says when the runner killed QEMU, and only then. Fails for:
// "if e.Killed" negated.
func TestExitStringKilled(t *testing.T) {
	for e, want := range map[Exit]string{
		{Code: -1, Signal: "killed", Killed: true}: "qemu ended by signal killed (killed by the runner)",
		{Code: -1, Signal: "terminated"}:           "qemu ended by signal terminated",
		{Code: 0, Stderr: " x \n"}:                 "qemu exited with status 0; stderr: x",
	} {
		if got := e.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", e, got, want)
		}
	}
}

// ConsolePiece says which pieces continue a line cut at MaxLineBytes:
// hostbuild prints those without a new prefix. Fails for: the piece's cont
// forced true; "v.cut = true" or "v.cut = false" deleted in feed; the
// ConsolePiece call deleted.
func TestConsolePieceContinued(t *testing.T) {
	type piece struct {
		s    string
		cont bool
	}
	var got []piece
	v := &VM{run: RunOptions{ConsolePiece: func(l string, c bool) { got = append(got, piece{l, c}) }}}
	long := strings.Repeat("x", MaxLineBytes)
	v.feed([]byte("a\n" + long + "y\n" + long + long + "z"))
	v.feed([]byte("\nb\n"))
	want := []piece{{"a", false}, {long, false}, {"y", true}, {long, false}, {long, true}, {"z", true}, {"b", false}}
	if len(got) != len(want) {
		t.Fatalf("%d pieces, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("piece %d: %d bytes continued=%v, want %d bytes continued=%v", i, len(got[i].s), got[i].cont, len(want[i].s), want[i].cont)
		}
	}
}

// The unterminated end of the log, read after QEMU exits, is handed to
// ConsolePiece as a continuation when it follows a cut. Fails for: the final
// piece's cont taken as false in tail.
func TestConsolePieceFinalPartial(t *testing.T) {
	o := fakeOptions(t, fmt.Sprintf("fake.longline=%d fake.exit=0", MaxLineBytes+100), false)
	var mu qemutest.LockedBuffer
	v, err := Start(context.Background(), o, RunOptions{Poll: 5 * time.Millisecond, ConsolePiece: func(l string, c bool) {
		fmt.Fprintf(&mu, "%d %v\n", len(l), c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	waitExit(t, v)
	lines := strings.Split(strings.TrimSpace(mu.String()), "\n")
	if want := []string{fmt.Sprint(MaxLineBytes, " false"), "100 true"}; len(lines) != 3 || !slices.Equal(lines[1:], want) {
		t.Errorf("pieces (length, continued) %q, want the booted line then %q", lines, want)
	}
}

// Two waiters for the same line both get it. Fails for: the "continue" after
// a waiter is removed in addLocked (the next waiter is skipped).
func TestTwoWaitersSameLine(t *testing.T) {
	v := &VM{finished: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := v.WaitForLine(ctx, "ready")
			errs <- err
		}()
	}
	for n := 0; n < 2; time.Sleep(time.Millisecond) {
		v.mu.Lock()
		n = len(v.waiters)
		v.mu.Unlock()
	}
	v.feed([]byte("ready\n"))
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a waiter for the line missed it: %v", err)
		}
	}
}

// After the byte bound trims the window, the window's size is the kept
// lines' size: the next line does not trim again. Fails for: "v.bytes = n"
// deleted (every later line would copy the window, which would then hold
// KeepBytes at most, never up to twice that).
func TestLineWindowBytesAfterTrim(t *testing.T) {
	const size = 32 << 10
	per := KeepBytes / size
	line := strings.Repeat("x", size-1) + "\n"
	v := &VM{}
	for range 2*per + 1 {
		v.feed([]byte(line))
	}
	if n := len(v.Lines()); n != per {
		t.Fatalf("after the trim the window holds %d lines, want %d", n, per)
	}
	v.feed([]byte(line))
	if n := len(v.Lines()); n != per+1 {
		t.Errorf("one line after the trim the window holds %d lines, want %d", n, per+1)
	}
}

// serveUnix listens on path (after delay) and hands each connection, with
// its number from 0, to handle in a goroutine of its own.
func serveUnix(t *testing.T, path string, delay time.Duration, handle func(i int, c net.Conn)) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	serve := func(ln net.Listener) {
		go func() { <-done; ln.Close() }()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(i, c)
		}
	}
	if delay == 0 {
		// Listening before returning: the caller may connect at once.
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go serve(ln)
		return
	}
	go func() {
		select {
		case <-time.After(delay):
		case <-done:
			return
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Error(err)
			return
		}
		serve(ln)
	}()
}

// sleepingVM starts a stand-in QEMU that only sleeps, with a QMP socket
// path the test serves itself, and Repress every repress.
func sleepingVM(t *testing.T, repress time.Duration) *VM {
	t.Helper()
	o := scriptOptions(t, "exec sleep 30")
	o.QMPSocket = filepath.Join(filepath.Dir(o.SerialLog), "qmp.sock")
	v, err := Start(context.Background(), o, RunOptions{Poll: 5 * time.Millisecond, Repress: repress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	return v
}

// Right after Start QEMU may not have created its QMP socket yet: PowerDown
// retries a socket that is not there. Fails for: ENOENT dropped from notYet.
func TestPowerDownWaitsForSocket(t *testing.T) {
	v := sleepingVM(t, time.Hour)
	serveUnix(t, v.opts.QMPSocket, 300*time.Millisecond, func(_ int, c net.Conn) { qemutest.ServeQMP(c) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.PowerDown(ctx); err != nil {
		t.Errorf("PowerDown before the socket exists: %v, want it to wait for the socket", err)
	}
}

// PowerDown on a QEMU that has exited says so (ErrExited) at once, rather
// than retrying the dead socket until its deadline. Fails for: the exited case
// in PowerDown deleted.
func TestPowerDownAfterExit(t *testing.T) {
	v := startFake(t, fakeOptions(t, "fake.exit=0", true))
	<-v.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := v.PowerDown(ctx); !errors.Is(err, ErrExited) {
		t.Errorf("PowerDown after QEMU exited = %v, want ErrExited", err)
	}
}

// Stop's error names the last press's failure within grace, not the first:
// here the monitor first hangs up, then greets with something that is not
// QMP. Fails for: pressErr kept from the first failure.
func TestStopNamesLastPressError(t *testing.T) {
	v := sleepingVM(t, 30*time.Millisecond)
	serveUnix(t, v.opts.QMPSocket, 0, func(i int, c net.Conn) {
		defer c.Close()
		if i > 0 {
			fmt.Fprintln(c, `{"hello": 1}`)
		}
	})
	exit, err := v.Stop(context.Background(), 400*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "QMP banner") {
		t.Errorf("Stop = %v, want the last press's failure (no QMP banner)", err)
	}
	if !exit.Killed {
		t.Errorf("exit = %+v, want killed", exit)
	}
}

// Stop presses the power button at once, not first after RunOptions.Repress.
// Fails for: the first press() deleted.
func TestStopPressesAtOnce(t *testing.T) {
	v, ctx := bootedWith(t, fakeOptions(t, "", true), RunOptions{Poll: 5 * time.Millisecond, Repress: time.Hour})
	exit, err := v.Stop(ctx, 3*time.Second)
	if err != nil || !exit.Clean() {
		t.Errorf("Stop = %+v, %v; want a clean power-off from the first press", exit, err)
	}
}

// When the caller's context ends before grace, Stop's error wraps the
// context's error (an interrupted CLI says it was interrupted). Fails for: the
// ctx.Err() case in Stop.
func TestStopCallerContextEnds(t *testing.T) {
	v, _ := startBooted(t, "fake.hang", true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	exit, err := v.Stop(ctx, 20*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want the caller's context error", err)
	}
	if !exit.Killed {
		t.Errorf("exit = %+v, want killed", exit)
	}
}

// A socket that answers with something other than a QMP greeting is named
// as such. Fails for: the greeting.QMP == nil check deleted.
func TestQMPNotAMonitor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	serveUnix(t, path, 0, func(_ int, c net.Conn) {
		defer c.Close()
		fmt.Fprintln(c, `{"hello": 1}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := QMP(ctx, path, "query-status"); err == nil || !strings.Contains(err.Error(), "QMP banner") {
		t.Errorf("QMP on a socket that is not a monitor = %v, want 'no QMP banner'", err)
	}
}

// Cancelling the context ends a QMP exchange at once, even one whose
// context has no deadline (a monitor that never greets), and the error
// wraps context.Canceled; without a cancelled context the I/O error is
// wrapped instead. Fails for: the AfterFunc that cuts the connection's deadline
// deleted; ctxErr's condition negated.
func TestQMPContextAndIOErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	serveUnix(t, path, 0, func(i int, c net.Conn) {
		if i == 0 {
			time.Sleep(15 * time.Second) // never greets
		}
		c.Close()
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := QMP(ctx, path, "query-status")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("QMP cancelled while waiting for the greeting = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("QMP returned %v after its context was cancelled", d)
	}
	_, err = QMP(context.Background(), path, "query-status")
	if !errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		t.Errorf("QMP on a monitor that hangs up = %v, want io.EOF", err)
	}
}

// Command is a value: appending an option to one copy does not overwrite
// what another copy appended (Build returns a clipped slice). Fails for:
// slices.Clip dropped from Build's result.
func TestCommandCopiesDoNotShareAppends(t *testing.T) {
	c, err := Build(Options{Kernel: "k", SerialLog: "s"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := c, c
	a.Options = append(a.Options, Option{Name: "-S"})
	b.Options = append(b.Options, Option{Name: "-snapshot"})
	if last := a.Options[len(a.Options)-1].Name; last != "-S" {
		t.Errorf("a copy's appended option is now %q: the copies share their array", last)
	}
}

// Stop on a QEMU that has already exited by itself returns its Exit and no
// error, with or without a QMP socket. Fails for: the early return on finished
// deleted (a VM without a socket then got "no QMP socket").
func TestStopAfterExitWithoutQMP(t *testing.T) {
	v := startFake(t, fakeOptions(t, "fake.exit=0", false))
	<-v.Done()
	exit, err := v.Stop(context.Background(), time.Second)
	if err != nil || !exit.Clean() {
		t.Errorf("Stop after a clean exit = %+v, %v; want it clean, no error", exit, err)
	}
}

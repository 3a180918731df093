package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/qemu/qemutest"
)

// The runner tests start this test binary as a fake QEMU (env fakeQEMUEnv=1):
// it reads the same argv real QEMU would get, writes the serial log, serves
// a QMP socket and acts on words in -append. That tests the runner's
// process handling without a kernel; qemu_boot_test.go boots a real one.
const fakeQEMUEnv = "SNPBOOT_FAKE_QEMU"

func TestMain(m *testing.M) {
	if os.Getenv(fakeQEMUEnv) == "1" {
		os.Exit(fakeQEMU(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeQEMU behaviours, chosen by words in -append:
//
//	fake.lines=N   print N numbered lines after "fake: booted"
//	fake.exit=N    exit with status N right after printing
//	fake.stderr    print an error on stderr before exiting
//	fake.hang      ignore system_powerdown (Stop must kill)
//	fake.deaf=N    lose the first N system_powerdown presses (the guest
//	               does not listen yet), logging "fake: press lost"
//	fake.hangup=N  close the first N monitor connections before the
//	               greeting, logging "fake: monitor hung up"
//	fake.partial   end the log with a line that has no newline
//	fake.flood=N   print N Katana-like log lines of 100 bytes, at once
//	fake.longline=N print N bytes without a newline
//	fake.orphan    leave a child that holds stderr open for two seconds
//	               (QEMU's exit is seen before its stderr ends)
//
// Otherwise it waits for QMP system_powerdown, prints "reboot: Power down"
// and exits 0.
func fakeQEMU(args []string) int {
	serial, qmp := qemutest.ChardevPaths(args)
	var appendLine string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-append" {
			appendLine = args[i+1]
		}
	}
	words := map[string]string{}
	for _, w := range strings.Fields(appendLine) {
		k, v, _ := strings.Cut(w, "=")
		words[k] = v
	}
	log, err := os.OpenFile(serial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
		return 1
	}
	defer log.Close()
	var ln net.Listener
	if qmp != "" {
		if ln, err = net.Listen("unix", qmp); err != nil {
			fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(log, "fake: booted append=%q\r\n", appendLine)
	n, _ := strconv.Atoi(words["fake.lines"])
	for i := range n {
		fmt.Fprintf(log, "line %d\n", i)
		time.Sleep(time.Millisecond)
	}
	if n, _ := strconv.Atoi(words["fake.flood"]); n > 0 {
		w := bufio.NewWriterSize(log, 1<<20)
		for i := range n {
			fmt.Fprintf(w, "katana: INFO block produced number=%09d hash=0x0123456789abcdef0123456789abcdef0123456789\n", i)
		}
		w.Flush()
	}
	if n, _ := strconv.Atoi(words["fake.longline"]); n > 0 {
		fmt.Fprint(log, strings.Repeat("x", n))
	}
	if _, ok := words["fake.partial"]; ok {
		fmt.Fprint(log, "no newline at the end")
	}
	if _, ok := words["fake.stderr"]; ok {
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -kernel x: could not open kernel file")
	}
	if _, ok := words["fake.orphan"]; ok {
		c := exec.Command("sleep", "2")
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
			return 1
		}
	}
	if v, ok := words["fake.daemon"]; ok {
		// A helper a --qemu wrapper (or QEMU) left behind, still
		// holding QEMU's stderr: here for v seconds.
		c := exec.Command("sleep", v)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
			return 1
		}
	}
	if v, ok := words["fake.exit"]; ok {
		code, _ := strconv.Atoi(v)
		return code
	}
	if ln == nil {
		select {}
	}
	deaf, _ := strconv.Atoi(words["fake.deaf"])
	hangup, _ := strconv.Atoi(words["fake.hangup"])
	for {
		conn, err := ln.Accept()
		if err != nil {
			return 1
		}
		if hangup > 0 {
			hangup--
			conn.Close()
			fmt.Fprintln(log, "fake: monitor hung up")
			continue
		}
		if qemutest.ServeQMP(conn) {
			if _, hang := words["fake.hang"]; hang {
				continue
			}
			if deaf > 0 {
				deaf--
				fmt.Fprintln(log, "fake: press lost")
				continue
			}
			fmt.Fprintln(log, "reboot: Power down")
			return 0
		}
	}
}

func fakeOptions(t *testing.T, appendLine string, qmp bool) Options {
	t.Helper()
	t.Setenv(fakeQEMUEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := Options{Binary: exe, Kernel: "vmlinuz", Append: appendLine, SerialLog: filepath.Join(dir, "a,b serial.log")}
	if qmp {
		o.QMPSocket = filepath.Join(dir, "qmp.sock")
	}
	return o
}

func startFake(t *testing.T, o Options) *VM {
	t.Helper()
	var console []string
	v, err := Start(context.Background(), o, RunOptions{Console: func(l string) { console = append(console, l) }, Poll: 5 * time.Millisecond, Repress: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { v.Kill() })
	return v
}

// startBooted starts the fake QEMU with appendLine (and a QMP socket if
// qmp) and waits for its first console line; the context bounds the test.
func startBooted(t *testing.T, appendLine string, qmp bool) (*VM, context.Context) {
	t.Helper()
	v := startFake(t, fakeOptions(t, appendLine, qmp))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if _, err := v.WaitForLine(ctx, "fake: booted"); err != nil {
		t.Fatal(err)
	}
	return v, ctx
}

func TestRunnerLinesAndExitStatus(t *testing.T) {
	o := fakeOptions(t, "fake.lines=300 fake.partial fake.exit=3 fake.stderr", false)
	v := startFake(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	line, err := v.WaitForLine(ctx, "line 299")
	if err != nil {
		t.Fatal(err)
	}
	if line != "line 299" {
		t.Errorf("WaitForLine returned %q, want the whole line %q", line, "line 299")
	}
	_, m, err := v.WaitForRegexp(ctx, regexp.MustCompile(`^fake: booted append="(.*)"$`))
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != o.Append {
		t.Errorf("fake QEMU saw -append %q, want %q (one argv element, \\r stripped)", m[1], o.Append)
	}
	exit, err := v.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 3 || exit.Killed || exit.Signal != "" || exit.Clean() {
		t.Errorf("exit = %+v, want status 3, not killed, not clean", exit)
	}
	if !strings.Contains(exit.Stderr, "could not open kernel file") {
		t.Errorf("exit.Stderr = %q, want QEMU's error", exit.Stderr)
	}
	lines := v.Lines()
	if got, want := len(lines), 1+300+1; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	if diff := cmp.Diff("no newline at the end", lines[len(lines)-1]); diff != "" {
		t.Errorf("last (unterminated) line (-want +got):\n%s", diff)
	}
	// After exit, a wait for a line that never came fails with ErrExited
	// and quotes the tail of the log.
	_, err = v.WaitForLine(ctx, "never printed")
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "no newline at the end") {
		t.Errorf("WaitForLine after exit = %v, want ErrExited with the last lines", err)
	}
	if v.Log() != strings.Join(lines, "\n")+"\n" {
		t.Errorf("Log() disagrees with Lines()")
	}
}

func TestRunnerStopGraceful(t *testing.T) {
	v := startFake(t, fakeOptions(t, "fake.lines=1", true))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := v.WaitForLine(ctx, "line 0"); err != nil {
		t.Fatal(err)
	}
	exit, err := v.Stop(ctx, 10*time.Second)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !exit.Clean() {
		t.Errorf("exit = %v, want clean", exit)
	}
	if _, err := v.WaitForLine(ctx, "reboot: Power down"); err != nil {
		t.Errorf("power-down line not seen: %v", err)
	}
	// Stop on an exited VM returns the same exit.
	again, err := v.Stop(ctx, time.Second)
	if err != nil || again != exit {
		t.Errorf("second Stop = %v, %v; want %v, nil", again, err, exit)
	}
}

// A press the guest does not hear yet (firmware, early boot) is not the
// end of the graceful path: Stop presses again until the guest powers off.
func TestRunnerStopPressesAgain(t *testing.T) {
	v, ctx := startBooted(t, "fake.deaf=2", true)
	exit, err := v.Stop(ctx, 3*time.Second)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !exit.Clean() {
		t.Errorf("exit = %v, want clean", exit)
	}
	lost := 0
	for _, l := range v.Lines() {
		if l == "fake: press lost" {
			lost++
		}
	}
	if lost != 2 {
		t.Errorf("%d presses lost before the power-off, want 2", lost)
	}
}

// A press that fails (the monitor cut the connection; a busy monitor past
// the QMP timeout is the same) does not end the graceful path either:
// Stop presses again within the grace period.
func TestRunnerStopAfterFailedPress(t *testing.T) {
	v, ctx := startBooted(t, "fake.hangup=2", true)
	exit, err := v.Stop(ctx, 10*time.Second)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !exit.Clean() || exit.Killed {
		t.Errorf("exit = %+v, want clean, not killed", exit)
	}
	if _, err := v.WaitForLine(ctx, "reboot: Power down"); err != nil {
		t.Errorf("power-down line not seen: %v", err)
	}
}

// When no press gets through at all, the error says so and names the
// press's failure, after the grace period.
func TestRunnerStopNoPressGetsThrough(t *testing.T) {
	v, ctx := startBooted(t, "fake.hangup=1000000", true)
	start := time.Now()
	exit, err := v.Stop(ctx, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no press of the power button got through within 300ms") || !strings.Contains(err.Error(), "greeting") {
		t.Errorf("Stop error = %v, want the failed press and the grace period named", err)
	}
	if !exit.Killed {
		t.Errorf("exit = %+v, want killed", exit)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Stop returned after %v, before the grace period", d)
	}
}

func TestRunnerStopKillsAfterGrace(t *testing.T) {
	v, ctx := startBooted(t, "fake.hang", true)
	start := time.Now()
	exit, err := v.Stop(ctx, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not power off within 300ms") {
		t.Errorf("Stop error = %v, want the grace period named", err)
	}
	if !exit.Killed || exit.Signal != "killed" || exit.Code != -1 || exit.Clean() {
		t.Errorf("exit = %+v, want killed by SIGKILL (code -1)", exit)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Stop returned after %v, before the grace period", d)
	}
}

func TestRunnerStopWithoutQMPKills(t *testing.T) {
	v, ctx := startBooted(t, "", false)
	exit, err := v.Stop(ctx, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no QMP socket") {
		t.Errorf("Stop error = %v, want 'no QMP socket'", err)
	}
	if !exit.Killed {
		t.Errorf("exit = %+v, want killed", exit)
	}
}

func TestRunnerWaitTimeoutQuotesLog(t *testing.T) {
	v := startFake(t, fakeOptions(t, "fake.lines=2", true))
	// The lines to quote are there first: the fake QEMU's start (a test
	// binary, race-built under make test) is not part of the 300 ms, which
	// a loaded machine could spend before "line 1" was printed.
	printed, cancelPrinted := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelPrinted()
	if _, err := v.WaitForLine(printed, "line 1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := v.WaitForLine(ctx, "guestinit: katana started")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("WaitForLine = %v, want a deadline error quoting the last lines", err)
	}
}

func TestRunnerWaitUntil(t *testing.T) {
	v := startFake(t, fakeOptions(t, "", true))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	calls := 0
	err := v.WaitUntil(ctx, time.Millisecond, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("WaitUntil = %v after %d calls, want nil after 3", err, calls)
	}
	if err := v.PowerDown(ctx); err != nil {
		t.Fatal(err)
	}
	err = v.WaitUntil(ctx, 5*time.Millisecond, func(context.Context) error { return errors.New("never ready") })
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "never ready") {
		t.Errorf("WaitUntil after power-off = %v, want ErrExited with the probe error", err)
	}
}

func TestQMPErrors(t *testing.T) {
	v, ctx := startBooted(t, "", true)
	_, err := QMP(ctx, v.opts.QMPSocket, "no_such_command")
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("QMP(no_such_command) = %v, want a QMPError of class CommandNotFound", err)
	}
	_, err = QMP(ctx, filepath.Join(t.TempDir(), "missing.sock"), "query-status")
	if err == nil || !strings.Contains(err.Error(), "connecting to the QMP socket") {
		t.Errorf("QMP on a missing socket = %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{Binary: filepath.Join(dir, "no-qemu"), Kernel: "k", SerialLog: filepath.Join(dir, "s.log")}, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "starting qemu") {
		t.Errorf("Start with a missing binary = %v", err)
	}
	_, err = Start(context.Background(), Options{Binary: "qemu-no-such-binary", Kernel: "k", SerialLog: filepath.Join(dir, "s.log")}, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("Start with a binary not in PATH = %v, want the install hint", err)
	}
	// A path to a binary that is not there: the hint too, and the serial
	// log Start created is gone again.
	_, err = Start(context.Background(), Options{Binary: filepath.Join(dir, "no-qemu"), Kernel: "k", SerialLog: filepath.Join(dir, "s.log")}, RunOptions{})
	if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("Start with a missing binary path = %v, want ErrNoBinary and the install hint", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "s.log")); err == nil {
		t.Errorf("Start that could not run QEMU left its serial log behind")
	}
	// A serial log that cannot be there (under a regular file; on a
	// read-only file system likewise): no "removing" of a file that does
	// not exist, but why it cannot be created.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Binary: "true", Kernel: "k", SerialLog: filepath.Join(file, "s.log")}, RunOptions{})
	if !errors.Is(err, ErrSerialLog) || strings.Contains(err.Error(), "removing") || !strings.Contains(err.Error(), "creating the serial log") {
		t.Errorf("Start with a serial log under a file = %v, want ErrSerialLog creating it", err)
	}
	// Something other than a file at the serial log's path (a device node
	// such as /dev/null, a FIFO, a symlink, a folder) is refused, and left
	// where it is: Start replaces a previous log, nothing else.
	fifo, link, sub := filepath.Join(dir, "fifo"), filepath.Join(dir, "link"), filepath.Join(dir, "sub")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{fifo: "a FIFO", link: "a symbolic link", sub: "a folder"} {
		before, _ := os.Lstat(path)
		_, err = Start(context.Background(), Options{Binary: "true", Kernel: "k", SerialLog: path}, RunOptions{})
		if !errors.Is(err, ErrSerialLog) || !strings.Contains(err.Error(), path+" is "+kind+", which run does not replace") {
			t.Errorf("Start with the serial log at %s = %v, want ErrSerialLog naming it", kind, err)
		}
		if after, err := os.Lstat(path); err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
			t.Errorf("Start removed or replaced %s at the serial log's path (%v)", kind, err)
		}
	}
	_, err = Start(context.Background(), Options{Kernel: "k"}, RunOptions{})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Start with invalid options = %v, want ErrInvalid", err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// QEMU runs in a process group of its own: the terminal's Ctrl-C goes to
// the foreground process group, and must reach only the runner's caller
// (which stops the guest gracefully), not QEMU, which would end at once.
func TestRunnerOwnProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups and Pdeathsig are set on Linux only")
	}
	a := sysProcAttr()
	if a == nil || !a.Setpgid || a.Pgid != 0 || a.Pdeathsig != syscall.SIGKILL {
		t.Fatalf("sysProcAttr() = %+v, want Setpgid (a new group) and Pdeathsig SIGKILL", a)
	}
	v := startFake(t, fakeOptions(t, "", true))
	pgid, err := syscall.Getpgid(v.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if pgid != v.Pid() || pgid == syscall.Getpgrp() {
		t.Errorf("QEMU (pid %d) is in process group %d, want its own (ours is %d)", v.Pid(), pgid, syscall.Getpgrp())
	}
}

// A QEMU that exited by itself is not reported as killed, even when Kill
// comes after its exit but before the runner has its status: here QEMU's
// child holds its stderr open, so the runner waits on after QEMU is gone.
func TestRunnerKillAfterExitIsNotAKill(t *testing.T) {
	// A race-built fake QEMU (go test -race) sleeps a second on exit by
	// default, as long as the orphan holds stderr: no window left.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	v, ctx := startBooted(t, "fake.orphan fake.exit=0", false)
	for syscall.Kill(v.Pid(), 0) == nil { // until QEMU has been reaped
		if ctx.Err() != nil {
			t.Fatal("the fake QEMU did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-v.Done():
		t.Fatal("the runner finished before the orphan closed stderr: the test needs that window")
	default:
	}
	exit := v.Kill()
	if exit.Killed || exit.Code != 0 || exit.Signal != "" || !exit.Clean() {
		t.Errorf("Kill after QEMU exited 0 by itself = %+v, want status 0, not killed", exit)
	}
}

// A guest that logs a lot over its life (Katana logs blocks and RPC calls to
// the console, for weeks): the runner keeps a bounded window of recent
// lines, not the whole console, while the Console callback and the serial
// log file still get every line.
func TestRunnerKeepsBoundedWindow(t *testing.T) {
	const n = 500_000 // 50 MB of console
	o := fakeOptions(t, fmt.Sprintf("fake.flood=%d fake.exit=0", n), false)
	var seen int
	var last string
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	v, err := Start(context.Background(), o, RunOptions{Console: func(l string) { seen++; last = l }, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := v.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("the runner holds %d MiB after %d console lines (%d in Lines()): it grows with the console", grew>>20, n, len(v.Lines()))
	}
	lines := v.Lines()
	if len(lines) < KeepLines || len(lines) > 2*KeepLines {
		t.Errorf("Lines() has %d lines, want the last %d to %d", len(lines), KeepLines, 2*KeepLines)
	}
	want := fmt.Sprintf("katana: INFO block produced number=%09d hash=0x0123456789abcdef0123456789abcdef0123456789", n-1)
	if lines[len(lines)-1] != want || last != want {
		t.Errorf("last line %q (Lines) and %q (Console), want %q", lines[len(lines)-1], last, want)
	}
	if seen != n+1 {
		t.Errorf("the Console callback saw %d lines, want all %d", seen, n+1)
	}
	if l, err := v.WaitForLine(ctx, fmt.Sprintf("number=%09d", n-KeepLines)); err != nil || !strings.HasSuffix(l, "0123456789") {
		t.Errorf("WaitForLine for a line within the window = %q, %v", l, err)
	}
	if _, err := v.WaitForLine(ctx, "fake: booted"); !errors.Is(err, ErrExited) {
		t.Errorf("WaitForLine for a line older than the window = %v, want ErrExited", err)
	}
	b, err := os.ReadFile(o.SerialLog)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != n+1 {
		t.Errorf("the serial log file has %d lines, want all %d", got, n+1)
	}
	runtime.KeepAlive(v)
}

// A console that never ends its line (a runaway payload printing without
// newlines) is cut into lines of MaxLineBytes, not buffered without end.
func TestRunnerCutsLongLines(t *testing.T) {
	v := startFake(t, fakeOptions(t, "fake.longline=200000 fake.exit=0", false))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := v.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	lines := v.Lines()
	want := []int{len(lines[0]), MaxLineBytes, MaxLineBytes, MaxLineBytes, 200000 - 3*MaxLineBytes}
	var got []int
	for _, l := range lines {
		got = append(got, len(l))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("line lengths (-want +got):\n%s", diff)
	}
}

// A line of exactly MaxLineBytes is one line, whether its newline comes in
// the same read or the next; one byte more is cut.
func TestLineOfMaxBytes(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes)
	for _, tc := range []struct {
		name  string
		reads []string
		want  []int
	}{
		{"with its newline", []string{long + "\n"}, []int{MaxLineBytes}},
		{"newline in the next read", []string{long, "\n"}, []int{MaxLineBytes}},
		{"one byte more", []string{long + "y", "\n"}, []int{MaxLineBytes, 1}},
		{"one byte more, with its newline", []string{long + "y\n"}, []int{MaxLineBytes, 1}},
	} {
		v := &VM{}
		for _, r := range tc.reads {
			v.feed([]byte(r))
		}
		var got []int
		for _, l := range v.Lines() {
			got = append(got, len(l))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: line lengths (-want +got):\n%s", tc.name, diff)
		}
	}
}

// The line window's bounds, fed as the serial reader feeds it: it trims
// only when it holds more than 2*KeepLines lines or 2*KeepBytes bytes, then
// to the newest KeepLines lines, fewer when they exceed KeepBytes. Empty
// lines are lines.
func TestLineWindowBounds(t *testing.T) {
	newVM := func() *VM { return &VM{} }

	v := newVM()
	if l := v.LastLine(); l != "" {
		t.Errorf("LastLine of an empty console = %q", l)
	}
	v.feed([]byte("a\n\n\r\nb\n"))
	if l := v.LastLine(); l != "b" {
		t.Errorf("LastLine = %q, want b", l)
	}
	if diff := cmp.Diff([]string{"a", "", "", "b"}, v.Lines()); diff != "" {
		t.Errorf("empty lines (-want +got):\n%s", diff)
	}

	// Short lines: the line bound.
	v = newVM()
	var b strings.Builder
	for i := range 2 * KeepLines {
		fmt.Fprintf(&b, "%d\n", i)
	}
	v.feed([]byte(b.String()))
	if n := len(v.Lines()); n != 2*KeepLines {
		t.Errorf("after %d lines the window holds %d, want all", 2*KeepLines, n)
	}
	v.feed([]byte("last\n"))
	lines := v.Lines()
	if len(lines) != KeepLines || lines[0] != strconv.Itoa(KeepLines+1) || lines[KeepLines-1] != "last" {
		t.Errorf("after %d lines the window holds %d, %q to %q; want the newest %d", 2*KeepLines+1, len(lines), lines[0], lines[len(lines)-1], KeepLines)
	}

	// Long lines: the byte bound. 32 KiB lines: KeepBytes holds exactly 128.
	const size = 32 << 10
	per := KeepBytes / size
	v = newVM()
	line := func(i int) string { return fmt.Sprintf("%06d", i) + strings.Repeat("x", size-6) }
	for i := range 2 * per {
		v.feed([]byte(line(i) + "\n"))
	}
	if n := len(v.Lines()); n != 2*per {
		t.Errorf("at exactly 2*KeepBytes the window holds %d lines, want all %d", n, 2*per)
	}
	v.feed([]byte(line(2*per) + "\n"))
	lines = v.Lines()
	if len(lines) != per || lines[0] != line(per+1) || lines[per-1] != line(2*per) {
		t.Errorf("after one more line the window holds %d lines; want the newest %d (KeepBytes)", len(lines), per)
	}
}

// A waiter sees every line added after it started waiting, even one the
// window drops before the waiter's goroutine runs again: here the line
// comes first in a read of more lines than the window keeps.
func TestWaitSeesLinesTheWindowDrops(t *testing.T) {
	v := &VM{finished: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		l, err := v.WaitForLine(ctx, "katana started")
		got <- result{l, err}
	}()
	for waiting := 0; waiting == 0; time.Sleep(time.Millisecond) {
		v.mu.Lock()
		waiting = len(v.waiters)
		v.mu.Unlock()
	}
	var b strings.Builder
	b.WriteString("guestinit: katana started pid=9\n")
	for i := range 3 * KeepLines {
		fmt.Fprintf(&b, "block %d\n", i)
	}
	v.feed([]byte(b.String()))
	if l := v.Lines(); strings.Contains(l[0], "katana") {
		t.Fatalf("the window holds %d lines from %q: the test needs the line dropped", len(l), l[0])
	}
	r := <-got
	if r.err != nil || r.line != "guestinit: katana started pid=9" {
		t.Errorf("WaitForLine = %q, %v; want the dropped line", r.line, r.err)
	}
	// A wait that ends (here by its context) leaves no waiter behind.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := v.WaitForLine(cctx, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForLine on a cancelled context: %v", err)
	}
	v.mu.Lock()
	n := len(v.waiters)
	v.mu.Unlock()
	if n != 0 {
		t.Errorf("%d waiters left after the waits ended", n)
	}
}

// Exit.Stderr keeps the last StderrTail bytes of QEMU's stderr.
func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for _, w := range []string{"0123", "4567"} {
		if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	if s := tb.String(); s != "01234567" {
		t.Errorf("at the limit: %q, want all 8 bytes", s)
	}
	tb.Write([]byte("89abc"))
	if s := tb.String(); s != "56789abc" {
		t.Errorf("past the limit: %q, want the last 8 bytes", s)
	}
}

// A Console that blocks (run --console with a stalled stderr: a terminal
// on XOFF, a pipe nobody reads) must not keep Kill from killing QEMU, nor
// QEMU from being reaped: it was called with the VM's lock held, which
// both take. (Kill returns once the log is read to its end, which waits
// for the Console.)
func TestRunnerKillWhileConsoleBlocks(t *testing.T) {
	o := fakeOptions(t, "fake.lines=3", true)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	v, err := Start(context.Background(), o, RunOptions{Console: func(string) {
		entered <- struct{}{}
		<-release
	}, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	<-entered // the log's reader is inside Console now
	done := make(chan Exit, 1)
	go func() { done <- v.Kill() }()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(v.Pid(), 0) == nil {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("QEMU (pid %d) still there 5s after Kill, with a Console that blocks", v.Pid())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if e := <-done; !e.Killed {
		t.Errorf("Kill: %+v, want killed", e)
	}
}

// The serial console is the guest's bytes, read in chunks of any size:
// feeding them never panics, no line is longer than MaxLineBytes, the lines
// hold every byte but the newlines and line-ending CRs, and the same bytes
// give the same lines however they are cut.
func FuzzFeed(f *testing.F) {
	f.Add([]byte("fake: booted\r\nline 0\n\nno newline"), uint16(3))
	f.Add([]byte(strings.Repeat("x", MaxLineBytes+5)+"\n"), uint16(1000))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		lines := func(step int) []string {
			var got []string
			v := &VM{run: RunOptions{Console: func(l string) { got = append(got, l) }}}
			for i := 0; i < len(data); i += step {
				v.feed(data[i:min(i+step, len(data))])
			}
			if len(v.partial) > 0 {
				got = append(got, string(v.partial))
			}
			return got
		}
		whole := lines(max(len(data), 1))
		if cut > 0 {
			if diff := cmp.Diff(whole, lines(int(cut))); diff != "" {
				t.Fatalf("cut every %d bytes, the lines differ (-whole +cut):\n%s", cut, diff)
			}
		}
		n := 0
		for _, l := range whole {
			if len(l) > MaxLineBytes {
				t.Fatalf("a line of %d bytes, more than MaxLineBytes", len(l))
			}
			n += len(l)
		}
		kept := len(bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n"), nil))
		if n > len(data) || n < kept-bytes.Count(data, []byte("\r")) {
			t.Fatalf("%d bytes of lines from %d bytes of console", n, len(data))
		}
	})
}

// A --qemu that exists but whose interpreter does not (a wrapper script's
// #! line, a binary's ELF loader from another system) makes execve fail
// with ENOENT too: that is not a missing binary, and the message must not
// say to install QEMU.
func TestStartBinaryWithMissingInterpreter(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu-wrapper")
	if err := os.WriteFile(bin, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Binary: bin, Kernel: "k", SerialLog: filepath.Join(dir, "s.log")}, RunOptions{})
	if err == nil || errors.Is(err, ErrNoBinary) || strings.Contains(err.Error(), "apt-get install") || !strings.Contains(err.Error(), "interpreter") {
		t.Errorf("Start with an existing binary whose interpreter is missing = %v; want an error naming the missing interpreter, not ErrNoBinary", err)
	}
}

// A Start that cannot run QEMU (no such binary: --qemu mistyped) leaves a
// previous serial log as it was: it once removed it before finding out,
// losing the log of the guest's last run, exit 1.
func TestStartWithoutBinaryKeepsPreviousLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "serial.log")
	if err := os.WriteFile(log, []byte("the previous boot's console\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Binary: filepath.Join(dir, "no-qemu"), Kernel: "k", SerialLog: log}, RunOptions{})
	if !errors.Is(err, ErrNoBinary) {
		t.Fatalf("Start = %v, want ErrNoBinary", err)
	}
	if b, err := os.ReadFile(log); err != nil || string(b) != "the previous boot's console\n" {
		t.Errorf("previous serial log now %q, %v; want it kept", b, err)
	}
}

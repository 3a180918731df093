package klog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestPrintf(t *testing.T) {
	var b strings.Builder
	l := New(&b, func() time.Duration { return 3*time.Second + 14159*time.Microsecond })
	l.Printf("stage=mounts ok")
	l.Printf("boot error: %s\n", "two\nlines")
	want := "[    3.014159] guestinit: stage=mounts ok\n" +
		"[    3.014159] guestinit: boot error: two | lines\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// One call is one line, whatever the message holds, and the timestamp is
// the time since boot in seconds and whole microseconds, like the kernel's.
func TestPrintfLines(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Duration
		format string
		args   []any
		want   string
	}{
		{"at boot", 0, "starting", nil, "[    0.000000] guestinit: starting\n"},
		{"microseconds truncated", time.Second - 1, "x", nil, "[    0.999999] guestinit: x\n"},
		{"wider than five digits", 123456*time.Second + 789012*time.Microsecond, "x", nil, "[123456.789012] guestinit: x\n"},
		{"trailing newlines", time.Second, "a\n\n\n", nil, "[    1.000000] guestinit: a\n"},
		{"newline only", time.Second, "\n", nil, "[    1.000000] guestinit: \n"},
		{"empty", time.Second, "", nil, "[    1.000000] guestinit: \n"},
		{"inner newlines", time.Second, "%s", []any{"a\nb\n\nc"}, "[    1.000000] guestinit: a | b |  | c\n"},
		{"percent in an argument", time.Second, "arg %q", []any{"100%"}, "[    1.000000] guestinit: arg \"100%\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			New(&b, func() time.Duration { return tc.at }).Printf(tc.format, tc.args...)
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetOutput(t *testing.T) {
	var before, after strings.Builder
	l := New(&before, func() time.Duration { return 0 })
	l.Printf("one")
	l.SetOutput(&after)
	l.Printf("two")
	if got, want := before.String(), "[    0.000000] guestinit: one\n"; got != want {
		t.Errorf("first writer got %q, want %q", got, want)
	}
	if got, want := after.String(), "[    0.000000] guestinit: two\n"; got != want {
		t.Errorf("writer after SetOutput got %q, want %q", got, want)
	}
}

// A logger without a clock uses SinceBoot.
func TestNewDefaultClock(t *testing.T) {
	var b strings.Builder
	l := New(&b, nil)
	lo := SinceBoot().Truncate(time.Microsecond)
	l.Printf("x")
	hi := SinceBoot()
	var sec, usec int64
	if _, err := fmt.Sscanf(b.String(), "[%d.%d] guestinit: x\n", &sec, &usec); err != nil {
		t.Fatalf("line %q: %v", b.String(), err)
	}
	if got := time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond; got < lo || got > hi {
		t.Errorf("timestamp %v, want SinceBoot at the call, between %v and %v", got, lo, hi)
	}
}

type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	return len(p), nil
}

func TestOneWritePerLine(t *testing.T) {
	w := &countingWriter{}
	l := New(w, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); l.Printf("line %d", i) }()
	}
	wg.Wait()
	if len(w.writes) != 50 {
		t.Fatalf("got %d writes, want 50", len(w.writes))
	}
	for _, s := range w.writes {
		if strings.Count(s, "\n") != 1 || !strings.Contains(s, "] guestinit: line ") {
			t.Errorf("write %q is not one whole line", s)
		}
	}
}

// Loggers share writers that are not safe for concurrent use (meant for
// -race), also while the output is replaced: every line arrives whole.
func TestConcurrentPrintfAndSetOutput(t *testing.T) {
	var a, b bytes.Buffer
	l := New(&a, func() time.Duration { return 0 })
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() { defer wg.Done(); l.Printf("line %d", i) }()
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				l.SetOutput(&b)
			} else {
				l.SetOutput(&a)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(a.String()+b.String(), "\n")
	if lines[len(lines)-1] != "" || len(lines)-1 != n {
		t.Fatalf("got %d lines, want %d:\n%s%s", len(lines)-1, n, a.String(), b.String())
	}
	for _, s := range lines[:n] {
		if !strings.HasPrefix(s, "[    0.000000] guestinit: line ") {
			t.Errorf("line %q is not whole", s)
		}
	}
}

func TestSinceBootAdvances(t *testing.T) {
	a := SinceBoot()
	time.Sleep(2 * time.Millisecond)
	b := SinceBoot()
	if a <= 0 || b <= a {
		t.Errorf("SinceBoot: %v then %v, want positive and increasing", a, b)
	}
}

// SinceBoot agrees with the kernel's own time since boot, /proc/uptime
// (CLOCK_BOOTTIME in hundredths of a second, truncated), read before and
// after it.
func TestSinceBootIsUptime(t *testing.T) {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), " /proc/uptime ") {
		t.Skip("skipping: /proc/uptime is replaced by a mount here (lxcfs?), so it is not the kernel's time since boot; run on a host or in a container without that mount")
	}
	lo := uptime(t)
	got := SinceBoot()
	hi := uptime(t) + 10*time.Millisecond
	if got < lo || got >= hi {
		t.Errorf("SinceBoot() = %v, want it between /proc/uptime read before (%v) and after (%v, plus its 10ms resolution)", got, lo, hi)
	}
}

func uptime(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Skipf("no /proc/uptime to compare with (%v); mount proc to run this test", err)
	}
	f := strings.Fields(string(b))
	sec, frac, ok := strings.Cut(f[0], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	cs, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 2 || err1 != nil || err2 != nil {
		t.Fatalf("/proc/uptime %q: want seconds with two decimals", b)
	}
	return time.Duration(s)*time.Second + time.Duration(cs)*10*time.Millisecond
}

// No message can pass for another line or rewrite the console: control
// characters are escaped (a file name from an appended archive, say).
func TestPrintfEscapesControls(t *testing.T) {
	var b strings.Builder
	l := New(&b, func() time.Duration { return time.Second })
	l.Printf("integrity: /etc/x\r[    1.000000] guestinit: stage=integrity ok\x1b[2K\x7f tab\tkept é \xff \u009b2K \u0085[    2.0] \x9b2J \ufffd")
	want := "[    1.000000] guestinit: integrity: /etc/x\\x0d[    1.000000] guestinit: stage=integrity ok\\x1b[2K\\x7f tab\tkept é \\xff \\u009b2K \\u0085[    2.0] \\x9b2J \ufffd\n"
	if got := b.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// FuzzEscapeControls: whatever a message holds, what reaches the console
// is UTF-8 with no control character but the tab, and a message without
// any is kept as it is.
func FuzzEscapeControls(f *testing.F) {
	f.Add("plain text é")
	f.Add("\x1b[2K\r\n\u009b\u0085\x9b\xff\t")
	f.Fuzz(func(t *testing.T, s string) {
		out := escapeControls(s)
		if !utf8.ValidString(out) || strings.ContainsFunc(out, isControl) {
			t.Fatalf("escapeControls(%q) = %q: a control character or invalid UTF-8 left", s, out)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) && out != s {
			t.Fatalf("escapeControls(%q) = %q: changed a message that needed nothing", s, out)
		}
	})
}

// gatedWriter is a console that takes nothing until opened: Write says
// when it is entered, then blocks until gate is closed.
type gatedWriter struct {
	entered chan struct{}
	gate    chan struct{}
	mu      sync.Mutex
	b       strings.Builder
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

// A console that stops draining (the host stopped reading the serial
// line) does not block the logger, and so the stop and the power-off that
// log: with Async, Printf queues and returns; lines that find the queue
// full are dropped and counted, and the count goes out with the next line
// or with Flush, which waits a bounded time and says whether the queue
// was written.
func TestPrintfStalledConsole(t *testing.T) {
	g := &gatedWriter{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	l := New(g, func() time.Duration { return 2 * time.Second })
	l.Async(4)
	l.Printf("line 0")
	<-g.entered // the writer holds line 0, blocked
	done := make(chan struct{})
	go func() {
		for i := 1; i < 20; i++ {
			l.Printf("line %d", i) // 1 to 4 queued, 5 to 19 dropped
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the logger blocked on a console that does not drain")
	}
	if l.Flush(50 * time.Millisecond) {
		t.Error("Flush reported the queue written while the console does not drain")
	}
	close(g.gate) // the console drains again
	if !l.Flush(10 * time.Second) {
		t.Error("Flush timed out on a console that drains")
	}
	l.Printf("after")
	if !l.Flush(10 * time.Second) {
		t.Error("Flush timed out on a console that drains")
	}
	var want strings.Builder
	for i := range 5 {
		fmt.Fprintf(&want, "[    2.000000] guestinit: line %d\n", i)
	}
	want.WriteString("[    2.000000] guestinit: 15 lines not written: the console did not drain\n[    2.000000] guestinit: after\n")
	g.mu.Lock()
	got := g.b.String()
	g.mu.Unlock()
	if got != want.String() {
		t.Errorf("console got\n%s\nwant\n%s", got, want.String())
	}
}

// Without Async, Printf writes at once, and Flush has nothing to wait for.
func TestFlushWithoutAsync(t *testing.T) {
	var b strings.Builder
	l := New(&b, func() time.Duration { return 0 })
	l.Printf("x")
	if !l.Flush(0) || b.String() != "[    0.000000] guestinit: x\n" {
		t.Errorf("Flush without Async, console %q", b.String())
	}
}

// Flush returns only once the console has been drained (tcdrain) after the
// lines queued before it were written, and gives up at its deadline when the
// drain does not end.
func TestFlushDrainsConsole(t *testing.T) {
	var b strings.Builder
	var seen []string
	release := make(chan struct{})
	l := New(&b, func() time.Duration { return 0 })
	l.drain = func(w io.Writer) {
		if w != io.Writer(&b) {
			t.Errorf("drain got writer %T, want the console", w)
		}
		seen = append(seen, b.String())
		<-release
	}
	l.Async(8)
	l.Printf("a")
	l.Printf("b")
	if l.Flush(50 * time.Millisecond) {
		t.Error("Flush reported done while the console was still draining")
	}
	close(release)
	if !l.Flush(10 * time.Second) {
		t.Error("Flush timed out with a drain that returns")
	}
	want := "[    0.000000] guestinit: a\n[    0.000000] guestinit: b\n"
	if len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("drain saw %q, want the two lines written before each of the 2 drains", seen)
	}
}

// drainTTY leaves writers that are no tty alone: it returns at once for a
// pipe nobody reads, a file and a plain io.Writer.
func TestDrainTTYNotATTY(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.WriteString("unread")
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan struct{})
	go func() {
		drainTTY(w)
		drainTTY(f)
		drainTTY(&strings.Builder{})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("drainTTY waited on a writer that is no tty")
	}
}

package klog

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// stalled returns an Async logger of queue n on a console that holds its
// first line until g.gate is closed, with that first line ("line 0")
// already taken by the writer goroutine.
func stalled(t *testing.T, n int) (*Logger, *gatedWriter) {
	t.Helper()
	g := &gatedWriter{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	l := New(g, func() time.Duration { return 2 * time.Second })
	l.Async(n)
	l.Printf("line 0")
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never took line 0")
	}
	return l, g
}

func (g *gatedWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.String()
}

const at2 = "[    2.000000] guestinit: "

// A message that is valid UTF-8 is escaped too: the existing tests mix
// every control with an invalid byte, so none reaches the fast path with a
// control in it. A bare carriage return or escape sequence must not reach
// the console (fails for: `utf8.ValidString(s) && ` -> `utf8.ValidString(s) || `
// at klog.go:197).
func TestEscapesValidUTF8(t *testing.T) {
	var b strings.Builder
	New(&b, func() time.Duration { return time.Second }).Printf("a\rb\x1b[2K\u009bc")
	if got, want := b.String(), "[    1.000000] guestinit: a\\x0db\\x1b[2K\\u009bc\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Bytes that are not UTF-8 are escaped even when the message has no
// control character: a lone 0x9b is CSI to an 8-bit terminal (fails for:
// dropping `utf8.ValidString(s) && ` at klog.go:197).
func TestEscapesInvalidUTF8Alone(t *testing.T) {
	var b strings.Builder
	New(&b, func() time.Duration { return time.Second }).Printf("x\x9b2J")
	if got, want := b.String(), "[    1.000000] guestinit: x\\x9b2J\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The ends of the C1 range: U+0080 is written as \u0080 (a \x80 would read
// as the invalid byte 0x80), U+009F (APC) is escaped, and U+00A0, the first
// character after it, is kept (fails for changes at klog.go:206 `r < 0x80` ->
// `r <= 0x80`, klog.go:218 `r <= 0x9f` -> `r < 0x9f` and -> `r <= 0xa0`).
func TestC1Bounds(t *testing.T) {
	for in, want := range map[string]string{
		"a\u0080b": `a\u0080b`,
		"a\u009fb": `a\u009fb`,
		"a\u00a0b": "a\u00a0b",
		"a\x80b":   `a\x80b`,
	} {
		if got := escapeControls(in); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}

// With Async, a Printf that finds room after drops carries the count
// before its own line, and only once; a single drop counts (fails for
// changes at klog.go:171 `> 0` -> `> 1`, klog.go:172 note after the line or
// left out, klog.go:176 count not reset).
func TestPrintfCarriesDropCount(t *testing.T) {
	for _, drops := range []int{1, 3} {
		l, g := stalled(t, 1)
		l.Printf("queued")
		for range drops {
			l.Printf("dropped")
		}
		close(g.gate)
		// Wait until the queue has room again, without Flush (which
		// would carry the count itself).
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(g.String(), "queued") {
			if time.Now().After(deadline) {
				t.Fatal("console never got the queued line")
			}
			time.Sleep(time.Millisecond)
		}
		l.Printf("next")
		l.Printf("last")
		if !l.Flush(10 * time.Second) {
			t.Fatal("Flush timed out on a console that drains")
		}
		want := at2 + "line 0\n" + at2 + "queued\n" +
			at2 + strconv.Itoa(drops) + " lines not written: the console did not drain\n" +
			at2 + "next\n" + at2 + "last\n"
		if got := g.String(); got != want {
			t.Errorf("%d dropped: console got\n%s\nwant\n%s", drops, got, want)
		}
	}
}

// Flush carries a count of one dropped line too (fails for: klog.go:128
// `l.dropped > 0` -> `l.dropped > 1`).
func TestFlushCarriesOneDrop(t *testing.T) {
	l, g := stalled(t, 1)
	l.Printf("queued")
	l.Printf("dropped")
	close(g.gate)
	if !l.Flush(10 * time.Second) {
		t.Fatal("Flush timed out on a console that drains")
	}
	want := at2 + "line 0\n" + at2 + "queued\n" + at2 + "1 lines not written: the console did not drain\n"
	if got := g.String(); got != want {
		t.Errorf("console got\n%s\nwant\n%s", got, want)
	}
}

// Async is called once: a second call keeps the first queue and its bound
// (fails for: the `return` at klog.go:91 removed, which makes a second,
// larger queue and so drops nothing).
func TestAsyncTwiceKeepsQueue(t *testing.T) {
	l, g := stalled(t, 1)
	l.Async(100)
	for range 5 {
		l.Printf("more")
	}
	close(g.gate)
	if !l.Flush(10 * time.Second) {
		t.Fatal("Flush timed out on a console that drains")
	}
	if got := g.String(); !strings.Contains(got, "4 lines not written") {
		t.Errorf("a second Async changed the queue: console got\n%s", got)
	}
}

// A flush marker without a note writes nothing: one write per line, and no
// empty write(2) to a console that may be blocked (fails for: klog.go:103
// `it.line != ""` -> `true`).
func TestFlushWritesNothingEmpty(t *testing.T) {
	w := &countingWriter{}
	l := New(w, func() time.Duration { return 0 })
	l.Async(4)
	l.Printf("x")
	if !l.Flush(10 * time.Second) {
		t.Fatal("Flush timed out")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.writes) != 1 || w.writes[0] != "[    0.000000] guestinit: x\n" {
		t.Errorf("writes %q, want the one line", w.writes)
	}
}

type panickingWriter struct{}

func (panickingWriter) Write([]byte) (int, error) { panic("console write") }

// A writer that panics ends the logging, not PID 1: the writer goroutine
// recovers (fails for: the recover at klog.go:98 removed, which crashes the
// whole test binary).
func TestWriterPanicIsContained(t *testing.T) {
	l := New(panickingWriter{}, func() time.Duration { return 0 })
	l.Async(4)
	l.Printf("x")
	if l.Flush(100 * time.Millisecond) {
		t.Error("Flush reported the queue written after the writer died")
	}
}

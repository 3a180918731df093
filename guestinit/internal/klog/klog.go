// Package klog is the guest init's console logger: every line is
//
//	[SSSSS.UUUUUU] guestinit: MESSAGE
//
// with the seconds since boot (CLOCK_BOOTTIME; the kernel's printk
// timestamps use a slightly different clock, so the two agree to within
// tens of milliseconds, not exactly) and one prefix. Lines are written with
// a single write(2) each so that concurrent loggers never interleave within
// a line (but for one case: a signal arriving while a write waits on a full
// console ends it short, and the rest of the line follows in a second
// write, which Katana's output may precede). Control
// characters in a message (a carriage return, an escape sequence in a file
// name) are written escaped, so that no message can pass for another line.
//
// Once Async is called, Printf only queues its line and a goroutine of the
// logger's writes them in order: the host reads the serial console and can
// stop draining it, and the init must still stop Katana and power off
// (Flush, before the power-off, waits a bounded time for the queue and
// for the console to send what it holds, tcdrain(3)). A
// line that finds the queue full is dropped, and the next one that fits
// says how many were. The writes themselves block, as Katana's do on the
// same console: a non-blocking open of a tty makes the kernel's write lock
// a try-lock, so a line would fail whenever Katana was writing.
package klog

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Prefix starts every message, after the timestamp.
const Prefix = "guestinit: "

// Logger writes prefixed, timestamped lines. The zero value is not usable;
// use New.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Duration
	// With Async: the queue the writer goroutine drains, and the lines
	// dropped since the last one queued.
	q       chan item
	dropped int
	// drain waits until w has sent what it holds (a tty's output
	// buffer); the writer goroutine calls it for Flush.
	drain func(w io.Writer)
}

// item is a queued line, or (done set) a flush marker.
type item struct {
	line string
	done chan struct{}
}

// New returns a logger writing to w. now gives the time since boot; nil
// means SinceBoot.
func New(w io.Writer, now func() time.Duration) *Logger {
	if now == nil {
		now = SinceBoot
	}
	return &Logger{w: w, now: now, drain: drainTTY}
}

// drainTTY waits, as tcdrain(3) does, until the tty behind w has sent its
// output: a write to the serial console returns once the line is in the
// kernel's buffer, and reboot(2) does not wait for the UART to empty it.
// Anything but a tty is left alone.
//
// ENOTTY (files, pipes) ends it at once. EINTR is not restarted, SA_RESTART
// or not: tty_ioctl returns it whenever a signal is pending after
// tty_wait_until_sent, and PID 1 gets a SIGCHLD for every process that
// exits during the power-off. So it waits again; Flush bounds the wait.
func drainTTY(w io.Writer) {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		for tcdrain(int(f.Fd())) == unix.EINTR {
		}
	}
}

// tcdrain is tcdrain(3) as the kernel's TCSBRK with a non-zero argument; a
// variable for the tests.
var tcdrain = func(fd int) error { return unix.IoctlSetInt(fd, unix.TCSBRK, 1) }

// SetOutput replaces the writer (after the console has been reopened).
// With Async, lines already queued go to the new writer too.
func (l *Logger) SetOutput(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

// Async makes Printf queue its lines, up to n, for a goroutine that writes
// them, so that no caller waits for the console. It is called once.
func (l *Logger) Async(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.q != nil {
		return
	}
	q := make(chan item, n)
	l.q = q
	go func() {
		// PID 1's goroutine: a panic (none is expected of a write)
		// ends the logging, not the init.
		defer func() { recover() }()
		for it := range q {
			l.mu.Lock()
			w := l.w
			l.mu.Unlock()
			if it.line != "" {
				io.WriteString(w, it.line) // nothing better to do with a console write error
			}
			if it.done != nil {
				l.drain(w)
				close(it.done)
			}
		}
	}()
}

// Flush waits at most d for the lines queued so far to be written, with a
// line saying how many were dropped if some were, and for a tty console
// to send them, and reports whether they were (true at once without
// Async).
func (l *Logger) Flush(d time.Duration) bool {
	deadline := time.Now().Add(d)
	done := make(chan struct{})
	for {
		l.mu.Lock()
		if l.q == nil {
			l.mu.Unlock()
			return true
		}
		marker := item{done: done}
		if l.dropped > 0 {
			marker.line = droppedNote(l.now(), l.dropped)
		}
		sent := false
		select {
		case l.q <- marker:
			sent, l.dropped = true, 0
		default: // full: try again shortly, as long as d allows
		}
		l.mu.Unlock()
		if sent {
			break
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// Printf logs one line; a trailing newline in format is not needed. Newlines
// inside the message are replaced by " | " so that one call is one line.
func (l *Logger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.TrimRight(msg, "\n")
	msg = strings.ReplaceAll(msg, "\n", " | ")
	msg = escapeControls(msg)
	d := l.now()
	line := stamp(d) + msg + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.q == nil {
		io.WriteString(l.w, line) // nothing better to do with a console write error
		return
	}
	if l.dropped > 0 {
		line = droppedNote(d, l.dropped) + line
	}
	select {
	case l.q <- item{line: line}:
		l.dropped = 0
	default:
		l.dropped++
	}
}

// droppedNote is the line that says n lines were dropped, stamped d.
func droppedNote(d time.Duration, n int) string {
	return fmt.Sprintf("%s%d lines not written: the console did not drain\n", stamp(d), n)
}

func stamp(d time.Duration) string {
	return fmt.Sprintf("[%5d.%06d] %s", d/time.Second, (d%time.Second)/time.Microsecond, Prefix)
}

// escapeControls writes the C0 control characters but the tab, and DEL,
// as \xNN, the C1 controls (U+0080 to U+009F: CSI, NEL, ..., which
// terminals act on too) as \uNNNN, and bytes that are not UTF-8 (a lone
// 0x9b is CSI to an 8-bit terminal) as \xNN; every other character is
// kept.
func escapeControls(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case isControl(r) && r < 0x80:
			fmt.Fprintf(&b, "\\x%02x", r)
		case isControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) }

// SinceBoot returns the time since boot from CLOCK_BOOTTIME (0 if the clock
// cannot be read, which does not happen on Linux).
func SinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

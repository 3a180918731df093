// Package klog is the guest init's console logger: every line is
//
//	[SSSSS.UUUUUU] guestinit: MESSAGE
//
// with the seconds since boot (CLOCK_BOOTTIME; the kernel's printk
// timestamps use a slightly different clock, so the two agree to within
// tens of milliseconds, not exactly) and one prefix. Lines are written with a single write(2) each so
// that concurrent loggers never interleave within a line. Control
// characters in a message (a carriage return, an escape sequence in a file
// name) are written escaped, so that no message can pass for another line.
//
// On a console whose writes can time out (OpenConsole's), a line the
// console does not take within LineTimeout is dropped, and so are the next
// ones until it drains again (then a line says how many): the host reads
// the serial console and can stop draining it, and the init must still
// stop Katana and power off.
package klog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LineTimeout is how long a line may wait for the console to take it.
const LineTimeout = 100 * time.Millisecond

// stalledTimeout is the wait while the console is known not to drain.
const stalledTimeout = time.Millisecond

// Prefix starts every message, after the timestamp.
const Prefix = "guestinit: "

// Logger writes prefixed, timestamped lines. The zero value is not usable;
// use New.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Duration
	// The console's state, for a writer with write deadlines.
	stalled bool // the last line timed out
	partial bool // ... after writing part of it
	dropped int  // lines dropped since the last one written
}

// New returns a logger writing to w. now gives the time since boot; nil
// means SinceBoot.
func New(w io.Writer, now func() time.Duration) *Logger {
	if now == nil {
		now = SinceBoot
	}
	return &Logger{w: w, now: now}
}

// SetOutput replaces the writer (after the console has been reopened).
func (l *Logger) SetOutput(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

// Printf logs one line; a trailing newline in format is not needed. Newlines
// inside the message are replaced by " | " so that one call is one line.
func (l *Logger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.TrimRight(msg, "\n")
	msg = strings.ReplaceAll(msg, "\n", " | ")
	msg = escapeControls(msg)
	d := l.now()
	line := l.stamp(d) + msg + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	l.write(d, line)
}

func (l *Logger) stamp(d time.Duration) string {
	return fmt.Sprintf("[%5d.%06d] %s", d/time.Second, (d%time.Second)/time.Microsecond, Prefix)
}

// deadliner is a writer whose writes can time out (an *os.File the runtime
// polls: OpenConsole's).
type deadliner interface{ SetWriteDeadline(time.Time) error }

// write writes one line; l.mu is held. Nothing better can be done with a
// console write error than to go on.
func (l *Logger) write(d time.Duration, line string) {
	dl, ok := l.w.(deadliner)
	timeout := LineTimeout
	if l.stalled {
		timeout = stalledTimeout
	}
	if !ok || dl.SetWriteDeadline(time.Now().Add(timeout)) != nil {
		io.WriteString(l.w, line)
		return
	}
	defer dl.SetWriteDeadline(time.Time{})
	if l.dropped > 0 || l.partial {
		note := ""
		if l.partial {
			note = "\n" // end the line cut short
		}
		if l.dropped > 0 {
			note += fmt.Sprintf("%s%d lines not written: the console did not drain\n", l.stamp(d), l.dropped)
		}
		line = note + line
	}
	n, err := io.WriteString(l.w, line)
	switch {
	case err == nil:
		l.stalled, l.partial, l.dropped = false, false, 0
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.stalled, l.partial = true, n > 0
		l.dropped++
	}
}

// escapeControls writes the C0 control characters but the tab, and DEL,
// as \xNN; every other byte is kept.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; isControl(rune(c)) {
			fmt.Fprintf(&b, "\\x%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// OpenConsole opens the console for the logger alone, write-only and
// non-blocking (the runtime polls it, so its writes can time out), in a
// file description of its own: Katana's descriptors on the console, which
// must block, are another open of it.
func OpenConsole(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening console %s for the log: %w", path, err)
	}
	return f, nil
}

// SinceBoot returns the time since boot from CLOCK_BOOTTIME (0 if the clock
// cannot be read, which does not happen on Linux).
func SinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

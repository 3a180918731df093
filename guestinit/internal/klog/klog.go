// Package klog is the guest init's console logger: every line is
//
//	[SSSSS.UUUUUU] guestinit: MESSAGE
//
// with the seconds since boot (CLOCK_BOOTTIME; the kernel's printk
// timestamps use a slightly different clock, so the two agree to within
// tens of milliseconds, not exactly) and one prefix. Lines are written with a single write(2) each so
// that concurrent loggers never interleave within a line.
package klog

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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
	d := l.now()
	line := fmt.Sprintf("[%5d.%06d] %s%s\n", d/time.Second, (d%time.Second)/time.Microsecond, Prefix, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line) // nothing better to do with a console write error
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

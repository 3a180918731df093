package klog

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// drainTTY waits again when a signal cut the wait short (the kernel does
// not restart TCSBRK), and stops at any other answer.
func TestDrainTTYRetriesEINTR(t *testing.T) {
	saved := tcdrain
	t.Cleanup(func() { tcdrain = saved })
	for _, tc := range []struct {
		answers []error
		calls   int
	}{
		{[]error{unix.EINTR, unix.EINTR, nil}, 3},
		{[]error{unix.ENOTTY}, 1},
		{[]error{unix.EINTR, unix.EIO}, 2},
	} {
		calls := 0
		tcdrain = func(int) error {
			err := tc.answers[min(calls, len(tc.answers)-1)]
			calls++
			return err
		}
		drainTTY(os.Stderr)
		if calls != tc.calls {
			t.Errorf("answers %v: %d calls, want %d", tc.answers, calls, tc.calls)
		}
	}
	// What has no descriptor is left alone.
	calls := 0
	tcdrain = func(int) error { calls++; return nil }
	drainTTY(&gatedWriter{})
	if calls != 0 {
		t.Errorf("a writer without Fd: %d calls, want 0", calls)
	}
}

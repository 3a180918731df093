package doctor

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// Without Options.Memlock, the check reads the process's own soft limit
// (set here under the hard limit, which needs no privilege to lower to).
func TestMemlockOwnLimit(t *testing.T) {
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_MEMLOCK, &orig) })
	tests := []struct {
		name   string
		cur    uint64
		mib    int
		status Status
		detail string
	}{
		{"4 MiB for 4 MiB", 4 << 20, 4, Pass, "4 MiB"},
		{"4 MiB for 5 MiB", 4 << 20, 5, Fail, "4096 KiB (ulimit -l)"},
		{"unlimited", unix.RLIM_INFINITY, 1 << 20, Pass, "unlimited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cur > orig.Max {
				t.Skipf("skipping: the hard RLIMIT_MEMLOCK is %d; run with a higher one (ulimit -H -l, or CAP_SYS_RESOURCE)", orig.Max)
			}
			if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: tc.cur, Max: orig.Max}); err != nil {
				t.Fatal(err)
			}
			rs := Run(context.Background(), Options{Root: t.TempDir(), QEMU: script(t, "exit 1"), MemoryMiB: tc.mib, IPCLock: noIPCLock})
			r := result(t, rs, "memlock limit covers")
			if r.Status != tc.status || r.Detail != tc.detail {
				t.Errorf("soft limit %d, %d MiB: %s %q, want %s %q", tc.cur, tc.mib, r.Status, r.Detail, tc.status, tc.detail)
			}
		})
	}
}

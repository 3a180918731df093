package payload

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Whatever /proc/meminfo holds, checkMemory refuses a payload only on a
// readable "MemAvailable: N kB" line (the first) below the payload and
// Headroom, and then says how much there is in MiB; anything else is
// not a reason to stop the boot.
func FuzzMemInfo(f *testing.F) {
	f.Add([]byte("MemTotal:         983496 kB\nMemFree:          910932 kB\nMemAvailable:     844080 kB\nBuffers: 0 kB\n"), int64(100<<20))
	f.Add([]byte("MemAvailable: 9007199254740991 kB\n"), int64(1<<62))
	f.Add([]byte("MemAvailable: 1 kB\nMemAvailable: 9999999 kB\n"), int64(0))
	f.Add([]byte("MemAvailable:\t12 34 kB"), int64(1))
	f.Fuzz(func(t *testing.T, meminfo []byte, size int64) {
		if size < 0 || size > 1<<40 {
			return // the frame list bounds a payload's size far below
		}
		p := filepath.Join(t.TempDir(), "meminfo")
		if err := os.WriteFile(p, meminfo, 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkMemory(p, size)
		// The first MemAvailable line, read independently.
		var avail int64 = -1
		for _, l := range strings.Split(string(meminfo), "\n") {
			rest, ok := strings.CutPrefix(l, "MemAvailable:")
			if !ok {
				continue
			}
			if fs := strings.Fields(rest); len(fs) == 2 && fs[1] == "kB" {
				if kb, perr := strconv.ParseInt(fs[0], 10, 64); perr == nil && kb >= 0 && kb <= (1<<63-1)/1024 {
					avail = kb * 1024
				}
			}
			break
		}
		if avail < 0 || avail >= size+Headroom {
			if err != nil {
				t.Fatalf("meminfo %q (available %d) refused a payload of %d bytes: %v", meminfo, avail, size, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("meminfo %q: %d bytes available, yet a payload of %d bytes (plus %d) was let through", meminfo, avail, size, Headroom)
		}
		if !strings.Contains(err.Error(), strconv.FormatInt(avail>>20, 10)+" MiB") || bytes.ContainsAny([]byte(err.Error()), "\n\x1b") {
			t.Fatalf("refusal %q does not name the %d MiB available", err, avail>>20)
		}
	})
}

package netcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tests added after a mutation-testing sample of the network setup: each
// pins a decision that the rest of the suite let change unnoticed.

// A setting whose write fails (the kernel refuses the value) is a boot
// error, even though closing the file then succeeds: the close's nil must
// not replace the write's error. /dev/full refuses every write (ENOSPC)
// and closes fine.
func TestHardenSysctlsWriteError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	procSys := t.TempDir()
	p := filepath.Join(procSys, "net/ipv4/conf/all/accept_redirects")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", p); err != nil {
		t.Fatal(err)
	}
	err := hardenSysctls(procSys, "eth0")
	if err == nil || !strings.Contains(err.Error(), "setting "+p+" to 0") {
		t.Errorf("hardenSysctls with a write that fails: %v, want an error naming %s", err, p)
	}
}

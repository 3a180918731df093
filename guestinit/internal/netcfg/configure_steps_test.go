package netcfg

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

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

// A kernel that refuses the address is a boot error naming it: here IPv6
// is disabled on eth0, so adding fd00::5/64 fails.
func TestConfigureAddressRefused(t *testing.T) {
	_, o := nsWithLoopback(t, true)
	err := inNS(t, *o.Namespace, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", []byte("1"), 0)
	})
	if err != nil {
		t.Skipf("cannot disable IPv6 on eth0: %v", err)
	}
	n, err := bootcfg.ParseNet("fd00::5/64")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Configure(context.Background(), n, o)
	if err == nil || !strings.Contains(err.Error(), "adding fd00::5/64 to eth0") {
		t.Fatalf("Configure with IPv6 disabled on eth0: %v, want the address refused", err)
	}
}

// /etc/resolv.conf is readable by everyone: Katana's resolver need not run
// as root.
func TestWriteResolvConfWorldReadable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteResolvConf(root, []netip.Addr{netip.MustParseAddr("10.0.2.3")}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, "etc", "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("resolv.conf mode %v, want readable by group and others", st.Mode().Perm())
	}
}

// A resolv.conf that cannot be replaced (here a non-empty directory in its
// place) is an error naming it, and leaves no resolv.conf.tmp behind.
func TestWriteResolvConfRenameFails(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "resolv.conf", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteResolvConf(root, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "etc", "resolv.conf")) {
		t.Fatalf("WriteResolvConf over a directory: %v, want an error naming resolv.conf", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc", "resolv.conf.tmp")); !os.IsNotExist(err) {
		t.Errorf("resolv.conf.tmp left behind after a failed write (Lstat: %v)", err)
	}
}

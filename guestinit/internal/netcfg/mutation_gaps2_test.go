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

// Tests added after a second mutation-testing sample of the network setup.

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

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The domain's passt learns eth0's address from the manifest's katana.net
// (<ip>, which libvirt passes as --address and --netmask): passt would
// otherwise give the guest the host's own address and forward to that
// until the guest sends a packet. What libvirt cannot give passt (a
// resolver in eth0's subnet, a route for a guest without a gateway) is
// warned about. Each domain validates against libvirt's schema (and
// against 11.3's with SNPBOOT_LIBVIRT_SCHEMAS).
func TestLibvirtPasstGetsKatanaNetAddress(t *testing.T) {
	f := newRunFixture(t)
	tests := []struct {
		name   string
		net    string // katana.net; "" the fixture's manifest (the default)
		ip     string // wanted in the XML; "" none
		warn   []string
		noWarn []string
	}{
		{"default", "", `<ip family="ipv4" address="10.0.2.15" prefix="24"></ip>`,
			[]string{"warning: katana.net's DNS server 10.0.2.3 is in eth0's subnet 10.0.2.0/24"}, []string{"no gateway"}},
		{"other subnet", "192.168.7.5/24,gw=192.168.7.1,dns=9.9.9.9", `<ip family="ipv4" address="192.168.7.5" prefix="24"></ip>`,
			nil, []string{"DNS server", "no gateway"}},
		{"prefix libvirt refuses", "10.0.2.20/29,gw=10.0.2.17,dns=9.9.9.9", `<ip family="ipv4" address="10.0.2.20"></ip>`, nil, []string{"DNS server"}},
		{"no gateway", "10.0.2.15/24", `<ip family="ipv4" address="10.0.2.15" prefix="24"></ip>`,
			[]string{"warning: katana.net gives eth0 no gateway"}, nil},
		{"ipv6", "fd00::5/64,gw=fd00::1", `<ip family="ipv6" address="fd00::5"></ip>`,
			[]string{"warning: katana.net gives eth0 only the IPv6 address fd00::5"}, nil},
		{"none", "none", "", nil, []string{"katana.net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := f.manifest
			if tt.net != "" {
				m = filepath.Join(f.dir, "net-"+strings.ReplaceAll(tt.name, " ", "-")+".json")
				if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
					"--cmdline", "console=ttyS0 panic=-1 katana.net="+tt.net, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", m); code != exitOK {
					t.Fatalf("manifest: exit %d\n%s", code, stderr)
				}
			}
			out := filepath.Join(f.dir, "passt-"+strings.ReplaceAll(tt.name, " ", "-")+".xml")
			_, stderr, code := runHB(t, "libvirt", "--manifest", m, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
				"--cid", "3", "--forward", "15051:5050", "-o", out)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ip != "" && !strings.Contains(string(b), tt.ip) {
				t.Errorf("the domain lacks %s:\n%s", tt.ip, b)
			}
			if n := strings.Count(string(b), "<ip "); tt.ip == "" && n != 0 || tt.ip != "" && n != 1 {
				t.Errorf("%d <ip> elements:\n%s", n, b)
			}
			for _, w := range tt.warn {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.noWarn {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			validateLibvirt(t, out)
		})
	}
}

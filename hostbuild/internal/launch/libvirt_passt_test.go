package launch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/qemu"
)

// passt, unlike QEMU's SLIRP, gives the guest the host's own address
// unless told otherwise (passt(1) -a), and it forwards an inbound
// connection to the IPv4 address it last saw the guest use, which starts
// as that configured address (passt conf.c addr_seen = addr, fwd.c
// fwd_nat_from_host, tap.c). The guest configures eth0 statically from
// katana.net and may never send a packet first, so the domain must give
// passt katana.net's address: libvirt maps <ip family='ipv4'
// address= prefix=> to passt's --address and --netmask (qemu_passt.c,
// since 9.0), accepts an IPv4 prefix of 4 to 27 only and an IPv6 one of
// 64 only, and refuses <route> on type='user' (qemu_validate.c).
func TestLibvirtXMLGivesPasstKatanaNetAddress(t *testing.T) {
	for _, tc := range []struct {
		net  string // katana.net, "" for the default
		want []ipXML
	}{
		{"", []ipXML{{Family: "ipv4", Address: "10.0.2.15", Prefix: 24}}},
		{"192.168.7.5/24,gw=192.168.7.1", []ipXML{{Family: "ipv4", Address: "192.168.7.5", Prefix: 24}}},
		{"10.1.0.9/8,gw=10.0.0.1,dns=1.1.1.1", []ipXML{{Family: "ipv4", Address: "10.1.0.9", Prefix: 8}}},
		// libvirt refuses prefix 28 to 32: the address alone (the netmask
		// passt derives goes only into DHCP, which the guest does not use).
		{"10.0.2.20/28,gw=10.0.2.17", []ipXML{{Family: "ipv4", Address: "10.0.2.20"}}},
		{"10.0.2.20/32,gw=10.0.2.2", []ipXML{{Family: "ipv4", Address: "10.0.2.20"}}},
		{"fd00::5/64,gw=fd00::1", []ipXML{{Family: "ipv6", Address: "fd00::5"}}},
		{"fd00::5/120", []ipXML{{Family: "ipv6", Address: "fd00::5"}}},
		{"none", nil},
	} {
		t.Run(tc.net, func(t *testing.T) {
			cmdline := "console=ttyS0 panic=-1"
			if tc.net != "" {
				cmdline += " katana.net=" + tc.net
			}
			f := newFixtureCmdline(t, cmdline, []int{1})
			o := f.plain()
			o.Forwards = []qemu.Forward{{HostPort: 15050, GuestPort: 5050}}
			p := prepare(t, o)
			d, b := libvirtXML(t, p, "katana")
			if len(d.Devices.Interfaces) != 1 {
				t.Fatalf("%d interfaces, want 1:\n%s", len(d.Devices.Interfaces), b)
			}
			if diff := cmp.Diff(tc.want, d.Devices.Interfaces[0].IPs); diff != "" {
				t.Errorf("the passt interface's <ip> (-want +got):\n%s", diff)
			}
			if strings.Contains(string(b), "<route") {
				t.Errorf("a <route> in the domain, which libvirt refuses on type='user':\n%s", b)
			}
		})
	}
}

// What libvirt cannot give passt is said: a DNS server in eth0's subnet
// (QEMU's 10.0.2.3 among them) is no resolver under passt, which has
// none of its own there and sends the queries on to that address on the
// host's network (libvirt has no <interface> setting for passt's
// --dns-forward); a guest without a default route cannot answer a
// forwarded connection, which passt presents as coming from the client's
// address or, for a client on the host, the host's default gateway;
// the forwards are IPv4 and reach no IPv6-only guest.
func TestLibvirtNetWarnings(t *testing.T) {
	for _, tc := range []struct {
		net      string
		forwards bool
		want     []string // substrings, one warning each
	}{
		{"", true, []string{"DNS server 10.0.2.3 is in eth0's subnet 10.0.2.0/24"}},
		{"10.0.2.15/24,gw=10.0.2.2,dns=1.1.1.1;10.0.2.3", false, []string{"DNS server 10.0.2.3 is in eth0's subnet"}},
		{"10.0.2.15/24,gw=10.0.2.2,dns=1.1.1.1", true, nil},
		{"10.0.2.15/24,gw=10.0.2.2", true, nil},
		{"192.168.7.5/24,gw=192.168.7.1,dns=192.168.7.1", true, []string{"DNS server 192.168.7.1 is in eth0's subnet 192.168.7.0/24"}},
		{"10.0.2.15/24,dns=9.9.9.9", true, []string{"katana.net gives eth0 no gateway"}},
		{"10.0.2.15/24,dns=9.9.9.9", false, nil},
		{"fd00::5/64,gw=fd00::1,dns=2001:4860:4860::8888", true, []string{"only the IPv6 address fd00::5"}},
		{"none", true, nil},
	} {
		t.Run(tc.net, func(t *testing.T) {
			cmdline := "console=ttyS0 panic=-1"
			if tc.net != "" {
				cmdline += " katana.net=" + tc.net
			}
			f := newFixtureCmdline(t, cmdline, []int{1})
			o := f.plain()
			if tc.forwards {
				o.Forwards = []qemu.Forward{{HostPort: 15050, GuestPort: 5050}}
			}
			p := prepare(t, o)
			got := LibvirtNetWarnings(p)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q, want %q in it", got[i], w)
				}
			}
		})
	}
}

package bootcfg

import (
	"net/netip"
	"strings"
	"testing"
)

// ParseNet's broadcast and link-local refusals are exactly as wide as
// documented: an IPv4 link-local DNS server needs no zone and is taken
// (clouds serve DNS at 169.254.169.253/254); the broadcast address of a
// /30 is refused (only /31 and /32 have none); an address ending in .255
// outside the subnet is no broadcast address of it.
func TestParseNetBroadcastAndLinkLocalBounds(t *testing.T) {
	for _, tc := range []struct {
		in, err string // err: part of the error, "" to accept
	}{
		{"10.0.2.15/24,dns=169.254.169.253", ""},
		{"169.254.10.2/16,gw=169.254.0.1,dns=169.254.169.254", ""},
		{"10.0.2.13/30,gw=10.0.2.14", ""},
		{"10.0.2.13/30,gw=10.0.2.15", "gw: 10.0.2.15 is the broadcast address of 10.0.2.12/30"},
		{"10.0.2.15/30", "address 10.0.2.15: the broadcast address of 10.0.2.12/30"},
		{"10.0.2.15/24,gw=10.0.2.2,dns=192.0.2.255", ""},
		{"10.0.3.1/24,gw=10.0.2.255", ""},
	} {
		n, err := ParseNet(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseNet(%q): %v; want it accepted", tc.in, err)
		case tc.err == "" && n.Addr != netip.MustParsePrefix(strings.Split(tc.in, ",")[0]):
			t.Errorf("ParseNet(%q) = %+v", tc.in, n)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseNet(%q) = %+v, %v; want an error naming %q", tc.in, n, err, tc.err)
		}
	}
}

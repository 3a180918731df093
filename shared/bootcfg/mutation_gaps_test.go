package bootcfg

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// Tests added after a mutation-testing sample of the command line parser:
// each pins a decision that the rest of the suite let change unnoticed.

// The bare prefix in another case ("KATANA.", no name after it) is a
// katana.* key in the wrong case like any other: refused, not passed to
// the kernel (which would ignore it, and so the operator's setting).
// After "--" it is refused as any katana.* key there is.
func TestBarePrefixAnyCase(t *testing.T) {
	for _, tc := range []struct {
		in  string
		err error
	}{
		{"KATANA.=1", ErrUnknownKey},
		{"quiet Katana.", ErrUnknownKey},
		{"quiet -- katana.=1", ErrAfterDashes},
		{"quiet -- KATANA.", ErrAfterDashes},
	} {
		if c, err := Parse(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) = kernel params %q, error %v; want %v", tc.in, c.KernelParams, err, tc.err)
		}
	}
}

// Format writes katana.net when only the DNS servers differ from the
// default: the guest must get the servers asked for, not the default's.
// Each case goes through Format and back through Parse.
func TestFormatNetDiffersOnlyInDNS(t *testing.T) {
	for _, dns := range [][]netip.Addr{
		{netip.MustParseAddr("1.1.1.1")},
		{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("1.1.1.1")},
		nil,
	} {
		c := Default()
		c.Net.DNS = dns
		line, err := Format(c, nil)
		if err != nil {
			t.Fatalf("Format with DNS %v: %v", dns, err)
		}
		got, err := Parse(line)
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if !slices.Equal(got.Net.DNS, dns) {
			t.Errorf("Format with DNS %v wrote %q, which parses to DNS %v", dns, line, got.Net.DNS)
		}
	}
	// Equal itself, which Format and checkSettings rely on.
	a, b := Default().Net, Default().Net
	b.DNS = []netip.Addr{netip.MustParseAddr("1.1.1.1")}
	if a.Equal(b) {
		t.Errorf("%v.Equal(%v) = true, want false (DNS differ)", a, b)
	}
}

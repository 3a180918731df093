package bootcfg

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

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

// katana.args words are separated by every ASCII whitespace byte the
// package doc names, \v included; QuoteArgs quotes a word that has one,
// so it survives Format and Parse whole.
func TestSplitArgsEveryASCIISpace(t *testing.T) {
	for _, sp := range []string{" ", "\t", "\n", "\v", "\f", "\r"} {
		got, err := SplitArgs("a" + sp + "b")
		if err != nil || !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("SplitArgs(%q) = %q, %v; want [a b]", "a"+sp+"b", got, err)
		}
		if sp == "\n" {
			continue // Format refuses a newline (the EFI stub ends the line there)
		}
		c := Default()
		c.Args = []string{"x" + sp + "y"}
		line, err := Format(c, nil)
		if err != nil {
			t.Errorf("Format(args %q): %v", c.Args, err)
			continue
		}
		back, err := Parse(line)
		if err != nil || !slices.Equal(back.Args, c.Args) {
			t.Errorf("Format(args %q) = %q, which parses to args %q (%v)", c.Args, line, back.Args, err)
		}
	}
}

// katana.agent=tcp: port 0 (the agent would listen on a port nobody
// knows) and addresses not in netip's canonical form are refused, so that
// one setting has one spelling on the measured command line.
func TestParseAgentTCPStrict(t *testing.T) {
	for _, v := range []string{
		"tcp:10.0.2.15:0",
		"tcp:[::]:0",
		"tcp:[2001:DB8::1]:8080",   // upper case
		"tcp:[2001:db8:0::1]:8080", // a zero group not compressed
		"tcp:[2001:0db8::1]:8080",  // a leading zero
		"tcp:10.0.2.15:080",        // port with a leading zero
	} {
		if a, err := ParseAgent(v); err == nil {
			t.Errorf("ParseAgent(%q) = %v, want an error", v, a)
		}
		if _, err := Parse("katana.agent=" + v); !errors.Is(err, ErrBadValue) {
			t.Errorf("Parse(katana.agent=%s) = %v, want ErrBadValue", v, err)
		}
	}
	for _, v := range []string{"tcp:10.0.2.15:1", "tcp:[2001:db8::1]:65535"} {
		if a, err := ParseAgent(v); err != nil || a.String() != v {
			t.Errorf("ParseAgent(%q) = %v, %v; want it back", v, a, err)
		}
	}
}

// Format takes each kernel parameter exactly as the kernel splits it:
// one padded with whitespace would come back from Parse without it.
func TestFormatRefusesPaddedKernelParam(t *testing.T) {
	for _, kp := range []string{" quiet", "quiet ", "\tquiet", "quiet\t\t"} {
		line, err := Format(Default(), []string{kp})
		if !errors.Is(err, ErrUnformattable) {
			t.Errorf("Format(kernel param %q) = %q, %v; want ErrUnformattable", kp, line, err)
		}
	}
}

// Format refuses a Net that katana.net cannot express: katana.net=none
// with an address would silently drop the address.
func TestFormatRefusesContradictoryNet(t *testing.T) {
	c := Default()
	c.Net = Net{None: true, Addr: netip.MustParsePrefix("10.0.0.5/24")}
	if line, err := Format(c, nil); !errors.Is(err, ErrUnformattable) {
		t.Errorf("Format(Net{None, 10.0.0.5/24}) = %q, %v; want ErrUnformattable", line, err)
	}
	c.Net = Net{None: true, Gateway: netip.MustParseAddr("10.0.0.1")}
	if line, err := Format(c, nil); !errors.Is(err, ErrUnformattable) {
		t.Errorf("Format(Net{None, gw 10.0.0.1}) = %q, %v; want ErrUnformattable", line, err)
	}
}

package agentapi

import (
	"errors"
	"testing"
)

func FuzzParseDialAddr(f *testing.F) {
	for _, s := range []string{"vsock:3:1024", "tcp:localhost:1024", "tcp:[::1]:1", "vsock:4294967295:1", "tcp::1", "tcp:[a:b]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseDialAddr(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddr) {
				t.Fatalf("ParseDialAddr(%q): %v does not wrap ErrBadAddr", s, err)
			}
			return
		}
		if a.Network == "vsock" && (a.CID < 3 || a.CID == 0xffffffff || a.Port == 0 || a.Port == 0xffffffff) ||
			a.Network == "tcp" && (a.Host == "" || a.Port == 0 || a.Port > 65535) {
			t.Fatalf("ParseDialAddr(%q) accepted %+v", s, a)
		}
		b, err := ParseDialAddr(a.String())
		if err != nil || a != b {
			t.Fatalf("%q parsed to %+v, which formats to %q and reparses to %+v, %v", s, a, a.String(), b, err)
		}
	})
}

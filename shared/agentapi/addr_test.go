package agentapi

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseListenAddr(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Addr
		wantErr bool
	}{
		{in: "vsock:1024", want: Addr{Network: "vsock", Port: 1024}},
		{in: "tcp:0.0.0.0:1024", want: Addr{Network: "tcp", Host: "0.0.0.0", Port: 1024}},
		{in: "tcp:[::]:8080", want: Addr{Network: "tcp", Host: "::", Port: 8080}},
		{in: "tcp::1024", want: Addr{Network: "tcp", Port: 1024}},
		{in: "tcp:127.0.0.1:0", want: Addr{Network: "tcp", Host: "127.0.0.1"}},
		{in: "tcp:localhost:1024", wantErr: true},
		{in: "tcp:1.2.3.4:65535", want: Addr{Network: "tcp", Host: "1.2.3.4", Port: 65535}},
		{in: "tcp:1.2.3.4:65536", wantErr: true},
		{in: "tcp:65536", wantErr: true},
		{in: "tcp:1.2.3.4:65536x", wantErr: true},
		{in: "vsock:0", wantErr: true},
		{in: "vsock:-1", wantErr: true},
		{in: "vsock:+5", wantErr: true},
		{in: "vsock:3:1024", wantErr: true},
		{in: "udp:1.2.3.4:5", wantErr: true},
		{in: "1024", wantErr: true},
		{in: "", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseListenAddr(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadAddr) {
					t.Fatalf("ParseListenAddr(%q) = %+v, %v; want ErrBadAddr", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			again, err := ParseListenAddr(got.String())
			if err != nil || again != got {
				t.Errorf("String() %q does not round-trip: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseDialAddr(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Addr
		wantErr bool
	}{
		{in: "vsock:3:1024", want: Addr{Network: "vsock", CID: 3, Port: 1024}},
		{in: "tcp:localhost:1024", want: Addr{Network: "tcp", Host: "localhost", Port: 1024}},
		{in: "tcp:127.0.0.1:1", want: Addr{Network: "tcp", Host: "127.0.0.1", Port: 1}},
		{in: "tcp:localhost:65535", want: Addr{Network: "tcp", Host: "localhost", Port: 65535}},
		{in: "tcp:localhost:65536", wantErr: true},
		{in: "vsock:3:4294967294", want: Addr{Network: "vsock", CID: 3, Port: 4294967294}},
		{in: "vsock:3:4294967295", wantErr: true},
		{in: "vsock:2:1024", wantErr: true},
		{in: "vsock:1024", wantErr: true},
		{in: "tcp::1024", wantErr: true},
		{in: "tcp:localhost:0", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDialAddr(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadAddr) {
					t.Fatalf("ParseDialAddr(%q) = %+v, %v; want ErrBadAddr", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// The guest's katana.agent value: whatever it is, a refusal wraps
// ErrBadAddr and names the value; an accepted address is one the agent
// can listen on (a vsock port, a tcp IP or any address and a port that
// fits) and formats back to itself.
func FuzzParseListenAddr(f *testing.F) {
	for _, s := range []string{"vsock:1024", "tcp:0.0.0.0:1024", "tcp:[::1]:1", "vsock:3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseListenAddr(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddr) || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseListenAddr(%q): %v does not wrap ErrBadAddr and name the value", s, err)
			}
			return
		}
		if a.Network == "vsock" && (a.CID != 0 || a.Port == 0 || a.Port == 0xffffffff) ||
			a.Network == "tcp" && (a.Host != "" && net.ParseIP(a.Host) == nil || a.Port > 65535) ||
			a.Network != "vsock" && a.Network != "tcp" {
			t.Fatalf("ParseListenAddr(%q) accepted %+v", s, a)
		}
		b, err := ParseListenAddr(a.String())
		if err != nil || a != b {
			t.Fatalf("%q parsed to %+v, which formats to %q and reparses to %+v, %v", s, a, a.String(), b, err)
		}
	})
}

// VMADDR_CID_ANY (2^32-1) is no guest's CID: --cid refuses it, so must --addr.
func TestParseDialAddrRefusesCIDAny(t *testing.T) {
	if a, err := ParseDialAddr("vsock:4294967295:1024"); err == nil {
		t.Errorf("ParseDialAddr(vsock:4294967295:1024) = %v, want an error (VMADDR_CID_ANY)", a)
	}
}

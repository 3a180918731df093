package launch

import (
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/qemu"
)

// A --forward reaches the guest at the address its cmdline's katana.net
// gives eth0: QEMU's hostfwd without a guest address connects to
// 10.0.2.15 (its DHCP server's first address), where a guest configured
// otherwise does not answer.
func TestPrepareForwardsGoToKatanaNetAddress(t *testing.T) {
	for _, tc := range []struct {
		net     string // katana.net, "" for the default
		hostfwd string // wanted in -netdev
	}{
		{"", "hostfwd=tcp:127.0.0.1:15050-:5050"},
		{"10.0.2.15/24", "hostfwd=tcp:127.0.0.1:15050-:5050"},
		{"10.0.2.20/24,gw=10.0.2.2,dns=10.0.2.3", "hostfwd=tcp:127.0.0.1:15050-10.0.2.20:5050"},
		{"192.168.7.5/24,gw=192.168.7.1", "hostfwd=tcp:127.0.0.1:15050-192.168.7.5:5050"},
		{"none", "hostfwd=tcp:127.0.0.1:15050-:5050"},
		{"fd00::5/64,gw=fd00::1", "hostfwd=tcp:127.0.0.1:15050-:5050"},
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
			for _, c := range []qemu.Command{p.Command, p.ExecCommand} {
				if nd := argAfter(c, "-netdev"); !strings.Contains(nd, tc.hostfwd+",") && !strings.HasSuffix(nd, tc.hostfwd) {
					t.Errorf("-netdev %q, want %q", nd, tc.hostfwd)
				}
			}
		})
	}
}

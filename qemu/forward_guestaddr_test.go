package qemu

import (
	"strings"
	"testing"
)

// Forwards connect to GuestAddr when it is set (a guest whose eth0 is not
// at QEMU's default 10.0.2.15); anything but an IPv4 address is refused,
// as hostfwd would not parse it.
func TestBuildForwardsToGuestAddr(t *testing.T) {
	o := Options{Kernel: "k", SerialLog: "s", GuestAddr: "10.0.2.20", Forwards: []Forward{{HostPort: 15050, GuestPort: 5050}}}
	c, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	args := c.Args()
	for i, a := range args {
		if a == "-netdev" && !strings.Contains(args[i+1], "hostfwd=tcp:127.0.0.1:15050-10.0.2.20:5050") {
			t.Errorf("-netdev %q, want the forward to 10.0.2.20:5050", args[i+1])
		}
	}
	for _, bad := range []string{"fd00::5", "::ffff:10.0.2.20", "10.0.2.20,restrict=off", "host"} {
		o.GuestAddr = bad
		if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
			t.Errorf("GuestAddr %q: %v, want it refused", bad, err)
		}
	}
}

package agent

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// TestListenIPv4WildcardStaysIPv4: katana.agent=tcp:0.0.0.0:PORT names
// every IPv4 address, and nothing more. Go's net.Listen("tcp", "0.0.0.0:P")
// opens a dual-stack AF_INET6 socket instead, so the unauthenticated agent
// (POST /v1/shutdown) would also answer on eth0's IPv6 link-local address,
// which katana.net never turns off.
func TestListenIPv4WildcardStaysIPv4(t *testing.T) {
	l, err := Listen("tcp:0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	probe.Close()
	c, err := net.DialTimeout("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("katana.agent=tcp:0.0.0.0:%d: the agent answers on [::1]:%d (listener %v): it listens on IPv6 too", port, port, l.Addr())
	}
	c, err = net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		t.Fatalf("not reachable on IPv4: %v", err)
	}
	c.Close()
}

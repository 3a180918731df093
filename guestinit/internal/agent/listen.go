package agent

import (
	"fmt"
	"net"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// Listen opens the listener for a katana.agent value: "vsock:PORT" listens on
// every local CID (VMADDR_CID_ANY) so it does not need /dev/vsock;
// "tcp:HOST:PORT" listens on TCP (plain-QEMU tests), on HOST's family
// only: Go would make "0.0.0.0" a dual-stack socket that answers on IPv6
// too (eth0's link-local address), which the setting does not name.
func Listen(spec string) (net.Listener, error) {
	a, err := agentapi.ParseListenAddr(spec)
	if err != nil {
		return nil, err
	}
	switch a.Network {
	case "vsock":
		return listenVsock(a.Port)
	case "tcp":
		network := "tcp"
		if ip := net.ParseIP(a.Host); ip != nil && ip.To4() != nil {
			network = "tcp4"
		}
		l, err := net.Listen(network, a.HostPort())
		if err != nil {
			return nil, fmt.Errorf("agent: listening on %s: %w", a, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("agent: unsupported network %q", a.Network)
}

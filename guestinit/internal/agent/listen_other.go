//go:build !linux

package agent

import (
	"fmt"
	"net"
)

func listenVsock(port uint32) (net.Listener, error) {
	return nil, fmt.Errorf("agent: vsock port %d: not implemented on this platform", port)
}

package agent

import (
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

func listenVsock(port uint32) (net.Listener, error) {
	l, err := vsock.ListenContextID(unix.VMADDR_CID_ANY, port, nil)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, fmt.Errorf("agent: listening on vsock port %d (are the vsock and vmw_vsock_virtio_transport modules loaded, and does QEMU have -device vhost-vsock-pci?): %w", port, err)
		}
		return nil, fmt.Errorf("agent: listening on vsock port %d: %w", port, err)
	}
	return l, nil
}

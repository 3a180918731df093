package agent

import (
	"fmt"

	labi "github.com/google/go-sev-guest/client/linuxabi"
	"golang.org/x/sys/unix"
)

// sevGuest is an open /dev/sev-guest.
type sevGuest struct{ fd int }

// OpenSevGuest opens the sev-guest device read-write, close-on-exec. The
// descriptor lives as long as the agent.
func OpenSevGuest(path string) (Ioctler, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, noDeviceErr(path, err)
	}
	return &sevGuest{fd: fd}, nil
}

// Ioctl issues one sev-guest command (the same ABI conversion as
// go-sev-guest's LinuxDevice, without its self-throttle).
func (d *sevGuest) Ioctl(command uintptr, argument any) (uintptr, error) {
	req, ok := argument.(*labi.SnpUserGuestRequest)
	if !ok {
		return 0, fmt.Errorf("sev-guest: unexpected ioctl argument %T", argument)
	}
	conv := req.ABI()
	res, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), command, uintptr(conv.Pointer()))
	if err := conv.Finish(req); err != nil {
		return 0, fmt.Errorf("sev-guest: finishing request: %w", err)
	}
	// The kernel may write back garbage firmware status on errors other than
	// EIO (go-sev-guest issue 5).
	if errno != unix.EIO {
		req.FwErr = 0
	}
	if errno != 0 {
		return 0, errno
	}
	return res, nil
}

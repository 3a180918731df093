package agent

import (
	"errors"

	"golang.org/x/sys/unix"
)

var errAlreadyMounted = errors.New("already mounted")

func mountConfigfsAt(dir string) error {
	err := unix.Mount("configfs", dir, "configfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if errors.Is(err, unix.EBUSY) {
		return errAlreadyMounted
	}
	return err
}

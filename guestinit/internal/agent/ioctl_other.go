//go:build !linux

package agent

import "fmt"

// OpenSevGuest is only available on Linux.
func OpenSevGuest(path string) (Ioctler, error) {
	return nil, fmt.Errorf("%w: %s: not implemented on this platform", ErrNoDevice, path)
}

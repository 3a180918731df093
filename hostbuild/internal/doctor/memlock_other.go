//go:build !linux

package doctor

import "errors"

func memlock() (uint64, error) { return 0, errors.New("not supported on this platform") }

//go:build !linux

package agent

import "errors"

var errAlreadyMounted = errors.New("already mounted")

func mountConfigfsAt(string) error { return errors.New("not implemented on this platform") }

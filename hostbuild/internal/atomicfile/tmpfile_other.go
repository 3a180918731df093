//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("O_TMPFILE not supported")

var forceNamed = false

// openUnnamed: only Linux has O_TMPFILE.
func openUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	return nil, errUnsupported
}

func linkUnnamed(f *os.File, dir, pattern string) (string, error) {
	return "", errUnsupported
}

//go:build !linux

package launch

import "os"

// sealedCopy is f itself where there is no memfd: a write into the file
// after the check then changes what boots.
func sealedCopy(what string, f *os.File, n int64) (*os.File, error) { return f, nil }

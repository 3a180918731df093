//go:build !linux

package atomicfile

import "testing"

// unnamed skips the test: only Linux has O_TMPFILE.
func unnamed(t *testing.T, dir string) {
	t.Helper()
	t.Skip("skipping: only Linux has O_TMPFILE, which this test is about")
}

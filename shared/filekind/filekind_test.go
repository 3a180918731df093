package filekind

import (
	"io/fs"
	"testing"
)

func TestDescribe(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		0o644:                             "a regular file",
		fs.ModeDir | 0o755:                "a folder",
		fs.ModeSymlink | 0o777:            "a symbolic link",
		fs.ModeDevice | fs.ModeCharDevice: "a character device",
		fs.ModeDevice | 0o660:             "a block device",
		fs.ModeNamedPipe | 0o600:          "a FIFO",
		fs.ModeSocket | 0o755:             "a socket",
		fs.ModeIrregular | 0o644:          "a file of mode ?rw-r--r--",
	} {
		if got := Describe(m); got != want {
			t.Errorf("Describe(%v) = %q, want %q", m, got, want)
		}
	}
}

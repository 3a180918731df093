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

func linkUnnamedTo(f *os.File, path string) error { return errUnsupported }

func lockFile(f *os.File) {}

// removeUnlocked removes nothing: without flock a running writer's
// temporary file cannot be told from a killed one's.
func removeUnlocked(path string) bool { return false }

// RenameNoReplace renames oldpath to newpath unless newpath exists (checked,
// then renamed: only Linux has RENAME_NOREPLACE).
func RenameNoReplace(oldpath, newpath string) error { return renameChecked(oldpath, newpath) }

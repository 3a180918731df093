package atomicfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// errUnsupported: the file system (or kernel) cannot make unnamed files.
var errUnsupported = errors.New("O_TMPFILE not supported")

// forceNamed makes Create use named temporary files (tests).
var forceNamed = false

// openUnnamed opens an unnamed regular file in dir (O_TMPFILE; os.OpenFile
// adds O_CLOEXEC). It returns errUnsupported when dir's file system or the
// kernel lacks O_TMPFILE: EOPNOTSUPP from the file system, EISDIR from a
// kernel older than 3.11 (which sees only O_DIRECTORY), EINVAL otherwise.
func openUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	if forceNamed {
		return nil, errUnsupported
	}
	f, err := os.OpenFile(dir, unix.O_TMPFILE|os.O_WRONLY, perm)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, errUnsupported
		}
		return nil, err
	}
	// Commit links the file through /proc; without /proc it could not, so
	// find out now, before any data is written.
	if _, err := os.Stat(procPath(f)); err != nil {
		f.Close()
		return nil, errUnsupported
	}
	return f, nil
}

func procPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// linkUnnamed gives the unnamed file f a new name in dir made from pattern,
// and returns it. linkat through /proc/self/fd with AT_SYMLINK_FOLLOW needs
// no privilege (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
func linkUnnamed(f *os.File, dir, pattern string) (string, error) {
	for range 100 {
		name := tempName(dir, pattern)
		err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", &os.LinkError{Op: "linkat", Old: procPath(f), New: name, Err: err}
		}
	}
	return "", fmt.Errorf("no unused temporary name in %s after 100 tries", dir)
}

// linkUnnamedTo gives the unnamed file f the name path, which must not
// exist: an error wrapping fs.ErrExist if it does (linkat never replaces).
func linkUnnamedTo(f *os.File, path string) error {
	if err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "linkat", Old: procPath(f), New: path, Err: err}
	}
	return nil
}

// lockFile takes an exclusive lock on f (flock, dropped by the kernel when
// the process dies), best effort: where the file system has no flock,
// removeUnlocked cannot take it either and removes nothing.
func lockFile(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }

// removeUnlocked removes the regular file at path if nobody holds its lock
// (lockFile) and path still names the file locked, and reports whether it
// did. A file renamed to its path since it was opened here is not removed:
// the name is gone, or names another file.
func removeUnlocked(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || held.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	if unix.Lstat(path, &now) != nil || now.Dev != held.Dev || now.Ino != held.Ino {
		return false
	}
	return os.Remove(path) == nil
}

// RenameNoReplace renames oldpath to newpath and fails with an error
// wrapping fs.ErrExist if newpath exists (renameat2 RENAME_NOREPLACE):
// rename(2) would silently replace an empty folder created there since
// newpath was checked. Where the file system lacks RENAME_NOREPLACE it
// checks, then renames.
func RenameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return renameChecked(oldpath, newpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

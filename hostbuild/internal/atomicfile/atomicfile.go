// Package atomicfile writes output files so that they appear at their path
// complete or not at all: a failed, cancelled or killed run leaves neither a
// partial file at the path nor a temporary file beside it.
//
// On Linux the data goes to an unnamed file (open(dir, O_TMPFILE)), which
// has no directory entry until Commit: if the process dies, even by SIGKILL,
// the kernel frees it. Commit syncs it and links it to the path when nothing
// is there yet; otherwise it links it under a unique temporary name
// (.NAME.N.tmp, which a SIGKILL between the link and the rename leaves
// behind), renames that over the path. Either way it syncs the folder. Where the file
// system has no O_TMPFILE, a named temporary file beside the path is used
// instead (os.CreateTemp, then the same rename), which a SIGKILL can leave
// behind.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/katana-tee/snpboot/shared/filekind"
)

// File is an output file being written. Write to it, then Commit to put it
// at its path, or Abort to drop it.
type File struct {
	f    *os.File
	path string
	perm os.FileMode
	// tmp is the temporary file's name, or "" while it has none (O_TMPFILE).
	tmp  string
	done bool
}

// Create starts a file that Commit will put at path with permissions perm
// (exactly, whatever the umask).
func Create(path string, perm os.FileMode) (*File, error) {
	// Refused here, before the caller's work: the rename in Commit would
	// fail at the end with "file exists", naming neither the cause nor
	// the fix.
	if err := notAFolder(path); err != nil {
		return nil, err
	}
	dir := Dir(path)
	f, err := openUnnamed(dir, perm)
	if err == nil {
		// Locked before it has a name, until Commit has renamed it: a
		// .NAME.N.tmp nobody holds the lock of is a killed run's
		// (RemoveStale).
		lockFile(f)
		return &File{f: f, path: path, perm: perm}, nil
	}
	if err != errUnsupported {
		return nil, fmt.Errorf("creating a temporary file beside %s: %w", path, err)
	}
	f, err = os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file beside %s: %w", path, err)
	}
	lockFile(f)
	return &File{f: f, path: path, perm: perm, tmp: f.Name()}, nil
}

// CheckPath refuses a path Create would refuse without writing anything
// (a folder), for a caller that has work to do first.
func CheckPath(path string) error { return notAFolder(path) }

// CheckFolder refuses, for a caller with work to do first, a path whose
// folder does not exist or is not a folder: Create would fail only at the
// end, naming its temporary file.
func CheckFolder(path string) error {
	dir := Dir(path)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("its folder %s cannot be used (%w): create it, or write elsewhere", dir, err)
	case !st.IsDir():
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// notAFolder refuses a path that is a folder. Lstat, as the rename sees
// it: a symlink to a folder is replaced, like any symlink.
func notAFolder(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	switch t := fi.Mode().Type(); {
	case t.IsDir():
		return fmt.Errorf("%s is a folder; give a file path", path)
	case t == 0 || t&fs.ModeSymlink != 0:
		return nil
	default:
		// The rename would put a regular file in its place ("-o /dev/null"
		// as root replaced the system's null device).
		return fmt.Errorf("%s is %s, which an output would replace; give a file path", path, filekind.Describe(t))
	}
}

// Dir is the folder that holds path as the kernel resolves it: path
// without its last element. Not filepath.Dir, which cleans "a/../out" to
// ".": the kernel goes through a (which must exist, and whose target's
// parent ".." is, when a is a symlink), and the temporary file must be
// made in the folder the rename puts it in (the same file system, and the
// folder synced after the rename).
func Dir(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "."
	}
	if d := strings.TrimRight(path[:i], "/"); d != "" {
		return d
	}
	return "/"
}

// joinRaw is dir + "/" + name without filepath.Join's cleaning (see Dir).
func joinRaw(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// tempPattern is the os.CreateTemp pattern of a temporary file for path:
// hidden, and named after it so that a leftover is easy to trace.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".*.tmp" }

// Write writes to the file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit syncs the file and renames it over its path, then syncs the
// folder. On error nothing is left beside the path and the path is
// unchanged. The File is closed either way.
func (f *File) Commit() (err error) {
	if f.done {
		return fmt.Errorf("writing %s: already committed or aborted", f.path)
	}
	defer func() {
		if err != nil {
			f.Abort()
		}
	}()
	if err := f.f.Chmod(f.perm); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", f.path, err)
	}
	if f.tmp == "" {
		// A path that does not exist yet gets the file straight:
		// linkat never replaces (EEXIST), and no temporary name exists
		// that a kill could leave beside the path.
		err := linkUnnamedTo(f.f, f.path)
		if err == nil {
			f.done = true
			f.f.Close() // synced above: nothing is lost
			SyncDir(Dir(f.path))
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		tmp, err := linkUnnamed(f.f, Dir(f.path), tempPattern(f.path))
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		f.tmp = tmp
	}
	beforeRename()
	if err := os.Rename(f.tmp, f.path); err != nil {
		if ferr := notAFolder(f.path); ferr != nil { // made since Create
			return ferr
		}
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	f.done = true
	// Closed (its lock released) only now that the temporary name is
	// gone; the data were synced above.
	f.f.Close()
	// The rename is durable once the folder is synced; a failure here
	// cannot undo it, and the data itself is already on disk.
	SyncDir(Dir(f.path))
	return nil
}

// beforeRename runs in Commit once the file has a temporary name, before it
// is renamed to its path: a test seam (a kill there).
var beforeRename = func() {}

// RemoveStale removes the temporary files (.NAME.N.tmp) that runs killed
// while they wrote path left beside it (between the link and the rename of
// Commit, or, where the file system has no O_TMPFILE, at any time before the
// rename), and returns their paths. A temporary file whose lock is held is
// that of a run still writing path, and is kept; so is anything else.
func RemoveStale(path string) []string {
	dir, base := Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		mid, own := strings.CutPrefix(n, "."+base+".")
		mid, tmp := strings.CutSuffix(mid, ".tmp")
		if !own || !tmp || mid == "" || strings.Trim(mid, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if p := joinRaw(dir, n); removeUnlocked(p) {
			removed = append(removed, p)
		}
	}
	return removed
}

// SyncDir makes the renames and removals done in dir durable (fsync of the
// folder). It is best effort: by then a failure cannot undo them, and the
// files' data were synced before they were renamed.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Abort drops the file: nothing is left beside the path, which is
// unchanged. It does nothing after Commit or a second time.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// WriteFile writes data to path atomically with permissions perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// tempName is a name for pattern ("prefix*suffix") that is unlikely to
// exist yet.
func tempName(dir, pattern string) string {
	for i := range len(pattern) {
		if pattern[i] == '*' {
			return joinRaw(dir, fmt.Sprintf("%s%d%s", pattern[:i], rand.Uint32(), pattern[i+1:]))
		}
	}
	return joinRaw(dir, pattern)
}

// MkdirTemp makes a new folder in dir named from pattern (as
// os.CreateTemp's) and returns its name. Unlike os.MkdirTemp's (0700), its
// mode is 0777 less the umask, as mkdir makes a folder: for a folder that
// is renamed into place as an output.
func MkdirTemp(dir, pattern string) (string, error) {
	for range 100 {
		name := tempName(dir, pattern)
		err := os.Mkdir(name, 0o777)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no unused temporary name in %s after 100 tries", dir)
}

// renameChecked renames oldpath to newpath after checking that newpath does
// not exist (racy: RenameNoReplace's fallback).
func renameChecked(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}

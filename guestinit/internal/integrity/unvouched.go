package integrity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// ErrUnvouched marks an entry of the unpacked initrd that neither the
// content list nor the layout vouches for.
var ErrUnvouched = errors.New("not vouched for by the content list or the layout")

// Unvouched walks the unpacked initrd under root and returns an error
// naming the first entry, in path order, that the content list and the
// layout do not vouch for: a regular file the list does not name (the list
// itself aside), a folder the layout does not declare that holds no listed
// file, a symbolic link or device node the layout does not declare just
// so, anything else (a FIFO, a socket), and any entry whose owner, group or
// mode is not what hostbuild pack writes (the caller's user and group,
// root in the guest; files 0644 or 0755, folders as the layout declares
// them or 0755). Only root's own file system is walked: the init calls it
// before it mounts anything, so that nothing is hidden under a mount point.
//
// The kernel unpacks every cpio archive concatenated in an initrd, and
// applies an archive's owner and mode to a path an earlier one made, so
// whoever appends one adds files the content list need not name and that
// the init would otherwise never look at, where Katana could read or run
// them (a config under /etc/katana/, a sidecar on PATH), or changes what
// may write the files it does check. The host tools refuse such an initrd
// (hostbuild inspect, manifest), and the init refuses to boot on one. This
// is no defence against an archive that also replaces /init: only the
// launch measurement, checked by a verifier, covers that.
func Unvouched(root string, list initrdlayout.Contents, layout []initrdlayout.Entry) error {
	declared := map[string]initrdlayout.Entry{}
	for _, e := range layout {
		declared[e.Path] = e
	}
	rules := initrdlayout.NewRules(layout, list, uint32(os.Getuid()), uint32(os.Getgid()))
	refuse := func(why string) error {
		return fmt.Errorf("integrity: %s (an archive appended to the initrd?); refusing to boot: %w", why, ErrUnvouched)
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return fmt.Errorf("integrity: %w", &os.PathError{Op: "lstat", Path: root, Err: err})
	}
	rootDev := st.Dev
	// The root folder's mode is the kernel's (pack writes no entry for
	// it), but an archive's "." entry would give it its owner.
	if why := rules.Owner(".", st.Uid, st.Gid); why != "" {
		return refuse(why)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("integrity: walking the initrd: %w", err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("integrity: %w", err)
		}
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("integrity: %w", &os.PathError{Op: "lstat", Path: p, Err: err})
		}
		if st.Dev != rootDev {
			// A mount point of the init's: what is under it is not the
			// initrd's (and what the initrd had there is hidden).
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		e, isDeclared := declared[rel]
		if why := rules.Owner(rel, st.Uid, st.Gid); why != "" {
			return refuse(why)
		}
		perm := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if why := rules.Mode(rel, initrdlayout.KindDir, perm); why != "" {
				return refuse(why)
			}
			return nil
		case unix.S_IFREG:
			_, listed := list[rel]
			if !listed && rel != initrdlayout.ContentsPath {
				return fmt.Errorf("integrity: /%s is in the initrd but not in its content list (a cpio archive appended after hostbuild pack?); refusing to boot where Katana could read or run a file no one checked: %w", rel, ErrUnvouched)
			}
			if why := rules.Mode(rel, initrdlayout.KindFile, perm); why != "" {
				return refuse(why)
			}
			return nil
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("integrity: %w", err)
			}
			if isDeclared && e.Kind == initrdlayout.KindSymlink && e.Target == target {
				return nil
			}
			return fmt.Errorf("integrity: /%s is a symbolic link to %q the layout does not declare; refusing to boot: %w", rel, target, ErrUnvouched)
		case unix.S_IFCHR, unix.S_IFBLK:
			kind := initrdlayout.KindCharDev
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				kind = initrdlayout.KindBlockDev
			}
			maj, mnr := unix.Major(st.Rdev), unix.Minor(st.Rdev)
			if isDeclared && e.Kind == kind && e.Major == maj && e.Minor == mnr && initrdlayout.PermBits(e.Mode) == perm {
				return nil
			}
			return fmt.Errorf("integrity: /%s is a %s %d:%d (mode %04o) the layout does not declare; refusing to boot: %w", rel, kind, maj, mnr, perm, ErrUnvouched)
		default:
			return fmt.Errorf("integrity: /%s is a %s, which the layout never makes; refusing to boot: %w", rel, kindName(d.Type()), ErrUnvouched)
		}
	})
}

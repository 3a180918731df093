package integrity_test

// A model of the kernel's initramfs unpacker (Linux 6.1 init/initramfs.c),
// for the tests that feed the trees it leaves to the init's checks: a
// truncated initrd, an archive appended to one. It follows the kernel on
// what these tests rely on, function by function:
//
//   - unpack_to_rootfs: an uncompressed archive starts at a '0' at a 4-byte
//     offset, NULs between archives are skipped; a stream the unpacker
//     cannot use (no cpio magic, "broken padding") ends the unpack, and so
//     does any error (message set): what was unpacked stays. The main
//     archive of hostbuild pack is compressed: a cut inside it makes the
//     decompressor fail ("Initramfs unpacking failed"), after it has
//     flushed some prefix of the decompressed archive, and nothing after it
//     is unpacked (the while loop ends on message). A cut in the
//     uncompressed frames archive is silent: the loop ends when the input
//     does, whatever the state.
//   - do_header: newc magic 070701, next_header = end of name and body,
//     4-aligned; name_len 0 or > PATH_MAX: skipped; a symlink whose target
//     is > PATH_MAX: skipped; a non-regular entry with a body: skipped.
//   - do_name: the name must end in NUL; "TRAILER!!!" frees the hard-link
//     table; clean_path; a regular file: maybe_link, then open O_WRONLY|
//     O_CREAT (O_TRUNC unless linked), fchown, fchmod, truncate to
//     body_len when it is not 0, then the body written as it comes (a cut
//     leaves the file its full size with a zero tail); a folder: mkdir,
//     chown, chmod; a device, FIFO or socket: unless linked, mknod, chown,
//     chmod.
//   - do_symlink: clean_path(name, 0), symlink, lchown.
//   - clean_path: an entry at the path of another type is removed (rmdir
//     for a folder, which fails when it is not empty; unlink otherwise).
//   - maybe_link/find_link: an entry with nlink >= 2 whose (dev major,
//     minor, ino, type) an earlier one of the same archive had is linked to
//     that one's name.
//
// Paths are joined to the model's root lexically: the tests use no ".."
// and no path through a symbolic link, where the kernel's lookup would
// differ.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// cpioEntry is one newc record.
type cpioEntry struct {
	name               string
	mode               uint32 // type | permission bits
	uid, gid           uint32
	nlink, ino         uint32
	data               []byte // body: a file's bytes, a symlink's target
	devMajor, devMinor uint32
	rdevMaj, rdevMin   uint32
}

// newcArchive writes entries and a trailer as one newc archive, the way
// hostbuild pack (hostbuild/internal/newc) writes them.
func newcArchive(entries []cpioEntry) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	write := func(e cpioEntry) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			e.ino, e.mode, e.uid, e.gid, e.nlink, 0, len(e.data), e.devMajor, e.devMinor, e.rdevMaj, e.rdevMin, len(e.name)+1, 0)
		b.WriteString(e.name)
		b.WriteByte(0)
		pad()
		b.Write(e.data)
		pad()
	}
	for _, e := range entries {
		write(e)
	}
	write(cpioEntry{name: "TRAILER!!!", nlink: 1})
	return b.Bytes()
}

// kernelUnpack unpacks the uncompressed archives of initrd into root as
// Linux 6.1 does, and returns the kernel's error message ("" when it
// prints none).
func kernelUnpack(root string, initrd []byte) string {
	u := &unpacker{root: root, links: map[[4]uint32]string{}}
	return u.run(initrd)
}

type unpacker struct {
	root  string
	links map[[4]uint32]string // find_link's table
}

const pathMax = 4096

func nAlign(n int) int { return ((n + 1) &^ 3) + 2 }

func (u *unpacker) path(name string) string { return filepath.Join(u.root, name) }

func (u *unpacker) run(b []byte) string {
	off := 0
	for off < len(b) {
		switch {
		case b[off] == 0:
			off++
			continue
		case b[off] == '0' && off%4 == 0:
		default:
			return "invalid magic at start of compressed archive"
		}
		// One record (the state machine runs on until the input ends).
		if len(b)-off < 110 {
			return "" // Collect: waits for bytes that never come
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			return "no cpio magic"
		}
		var f [13]uint64
		for i := range f {
			f[i], _ = strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		}
		ino, mode, uid, gid, nlink := uint32(f[0]), uint32(f[1]), int(f[2]), int(f[3]), f[4]
		bodyLen, nameLen := int(f[6]), int(f[11])
		devMaj, devMin := uint32(f[7]), uint32(f[8])
		rdev := int(unix.Mkdev(uint32(f[9]), uint32(f[10])))
		off += 110
		next := (off + nAlign(nameLen) + bodyLen + 3) &^ 3
		typ := mode & unix.S_IFMT
		skipTo := func() string {
			if next > len(b) {
				return ""
			}
			off = next
			return "\x00" // go on
		}
		if nameLen <= 0 || nameLen > pathMax {
			if m := skipTo(); m != "\x00" {
				return m
			}
			continue
		}
		if typ == unix.S_IFLNK {
			if bodyLen > pathMax {
				if m := skipTo(); m != "\x00" {
					return m
				}
				continue
			}
			if len(b)-off < nAlign(nameLen)+bodyLen {
				return ""
			}
			name := b[off : off+nameLen]
			if name[nameLen-1] != 0 {
				return "malformed archive"
			}
			target := string(b[off+nAlign(nameLen) : off+nAlign(nameLen)+bodyLen])
			p := u.path(string(name[:nameLen-1]))
			u.cleanPath(p, 0)
			os.Symlink(target, p)
			os.Lchown(p, uid, gid)
		} else if typ == unix.S_IFREG || bodyLen == 0 {
			if len(b)-off < nAlign(nameLen) {
				return ""
			}
			name := b[off : off+nameLen]
			if name[nameLen-1] != 0 {
				return "malformed archive"
			}
			n := string(name[:bytes.IndexByte(name, 0)]) // the kernel uses the name as a C string
			if n == "TRAILER!!!" {
				clear(u.links)
			} else if m := u.name(n, mode, uid, gid, nlink, ino, devMaj, devMin, rdev, b[off+nAlign(nameLen):], bodyLen); m != "\x00" {
				return m
			}
		}
		if m := skipTo(); m != "\x00" {
			return m
		}
		// do_reset: NULs, then a record only at a 4-byte offset.
		for off < len(b) && b[off] == 0 {
			off++
		}
		if off < len(b) && off%4 != 0 {
			return "broken padding"
		}
	}
	return ""
}

// name is do_name (and do_copy) for a regular file, folder or node; rest
// is the input after the name. It returns "\x00" to go on, "" when the
// input ended inside the body.
func (u *unpacker) name(n string, mode uint32, uid, gid int, nlink uint64, ino, devMaj, devMin uint32, rdev int, rest []byte, bodyLen int) string {
	p := u.path(n)
	typ := mode & unix.S_IFMT
	u.cleanPath(p, typ)
	perm := mode & 0o7777
	switch typ {
	case unix.S_IFREG:
		ml := u.maybeLink(p, nlink, ino, devMaj, devMin, typ)
		if ml < 0 {
			return "\x00"
		}
		flags := unix.O_WRONLY | unix.O_CREAT
		if ml != 1 {
			flags |= unix.O_TRUNC
		}
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, perm)
		if err != nil {
			return "\x00"
		}
		defer unix.Close(fd)
		unix.Fchown(fd, uid, gid)
		unix.Fchmod(fd, perm)
		if bodyLen > 0 {
			unix.Ftruncate(fd, int64(bodyLen))
		}
		have := min(bodyLen, len(rest))
		if have > 0 {
			if _, err := unix.Write(fd, rest[:have]); err != nil {
				return "write error"
			}
		}
		if have < bodyLen {
			return ""
		}
	case unix.S_IFDIR:
		unix.Mkdir(p, perm)
		os.Chown(p, uid, gid)
		unix.Chmod(p, perm)
	case unix.S_IFBLK, unix.S_IFCHR, unix.S_IFIFO, unix.S_IFSOCK:
		if u.maybeLink(p, nlink, ino, devMaj, devMin, typ) == 0 {
			unix.Mknod(p, mode, rdev)
			os.Chown(p, uid, gid)
			unix.Chmod(p, perm)
		}
	}
	return "\x00"
}

func (u *unpacker) cleanPath(p string, typ uint32) {
	var st unix.Stat_t
	if unix.Lstat(p, &st) == nil && (st.Mode^typ)&unix.S_IFMT != 0 {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			unix.Rmdir(p)
		} else {
			unix.Unlink(p)
		}
	}
}

func (u *unpacker) maybeLink(p string, nlink uint64, ino, devMaj, devMin, typ uint32) int {
	if nlink < 2 {
		return 0
	}
	k := [4]uint32{devMaj, devMin, ino, typ}
	old, ok := u.links[k]
	if !ok {
		u.links[k] = p
		return 0
	}
	u.cleanPath(p, 0)
	if unix.Link(old, p) != nil {
		return -1
	}
	return 1
}

package atomicfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// unnamed skips the test when the kernel cannot make unnamed files in dir
// (O_TMPFILE) or /proc is missing. It asks the kernel itself: Create must
// use unnamed files wherever they work, so its own choice cannot decide.
func unnamed(t *testing.T, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Skipf("skipping: the file system of %s has no O_TMPFILE (%v); set TMPDIR to a folder on ext4, xfs, btrfs or tmpfs", dir, err)
	}
	unix.Close(fd)
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("skipping: %v; mount /proc", err)
	}
}

// The temporary name a commit over an existing file goes through is hidden
// and named after the path (.NAME.<number>.tmp), so that a leftover is easy
// to trace; the inotify events of the folder show it. (A new path gets the
// unnamed file straight: TestKilledCommitOfNewPathLeavesNoTemporary.)
func TestTemporaryName(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			forceNamed = named
			defer func() { forceNamed = false }()
			dir := t.TempDir()
			if !named {
				unnamed(t, dir)
			}
			if err := os.WriteFile(filepath.Join(dir, "out.img"), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
			if err != nil {
				t.Skipf("skipping: no inotify here (%v): run on a Linux host or container that allows inotify_init1 (raise fs.inotify.max_user_instances if it is exhausted)", err)
			}
			defer unix.Close(in)
			if _, err := unix.InotifyAddWatch(in, dir, unix.IN_CREATE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO); err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(filepath.Join(dir, "out.img"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			n, err := unix.Read(in, buf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
				mask := binary.NativeEndian.Uint32(b[4:8])
				l := int(binary.NativeEndian.Uint32(b[12:16]))
				name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+l], "\x00"))
				b = b[unix.SizeofInotifyEvent+l:]
				switch {
				case mask&unix.IN_CREATE != 0:
					got = append(got, "create "+name)
				case mask&unix.IN_MOVED_FROM != 0:
					got = append(got, "move "+name)
				case mask&unix.IN_MOVED_TO != 0:
					got = append(got, "to "+name)
				}
			}
			want := regexp.MustCompile(`^create (\.out\.img\.[0-9]+\.tmp) move (\.out\.img\.[0-9]+\.tmp) to out\.img$`)
			m := want.FindStringSubmatch(strings.Join(got, " "))
			if m == nil || m[1] != m[2] {
				t.Errorf("folder events %q, want the creation of .out.img.<number>.tmp and its rename to out.img", got)
			}
		})
	}
}

// An output path that holds a device node, a FIFO or a socket is refused
// and left as it is: the rename would replace it with a regular file
// ("hostbuild pack -o /dev/null" as root replaced the system's /dev/null).
func TestWriteFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]fs.FileMode{}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	paths[fifo] = fs.ModeNamedPipe
	if os.Geteuid() == 0 {
		null := filepath.Join(dir, "null")
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		paths[null] = fs.ModeDevice | fs.ModeCharDevice
	}
	for p, typ := range paths {
		err := WriteFile(p, []byte("output"), 0o644)
		fi, serr := os.Lstat(p)
		if serr != nil {
			t.Fatal(serr)
		}
		if err == nil || fi.Mode().Type() != typ {
			t.Errorf("WriteFile(%s) = %v; now %v, want an error and the %v left as it was", p, err, fi.Mode().Type(), typ)
		}
	}
}

package integrity

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// vouchedRoot is makeRoot's tree plus the layout's folders, link and (as
// root) device nodes: what a good initrd unpacks to.
func vouchedRoot(t *testing.T) (string, initrdlayout.Contents, []initrdlayout.Entry) {
	t.Helper()
	root := makeRoot(t, files)
	layout, err := initrdlayout.Base()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range layout {
		p := filepath.Join(root, e.Path)
		switch e.Kind {
		case initrdlayout.KindDir:
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, e.Mode.Perm()|e.Mode&(fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid))
			}
		case initrdlayout.KindSymlink:
			err = os.Symlink(e.Target, p)
		case initrdlayout.KindCharDev:
			err = unix.Mknod(p, unix.S_IFCHR|uint32(e.Mode.Perm()), int(unix.Mkdev(e.Major, e.Minor)))
			if err == nil {
				err = os.Chmod(p, e.Mode.Perm()) // mknod applies the umask
			} else if errors.Is(err, unix.EPERM) {
				err = nil // not root: the device cases skip themselves
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, list, layout
}

func TestUnvouchedGoodTree(t *testing.T) {
	root, list, layout := vouchedRoot(t)
	if err := Unvouched(root, list, layout); err != nil {
		t.Fatalf("Unvouched on a good tree: %v", err)
	}
}

func TestUnvouchedRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		add  func(root string) error
		want string // in the error
	}{
		{"file not in the list", func(root string) error {
			return os.WriteFile(filepath.Join(root, "etc/ld.so.preload"), []byte("x"), 0o644)
		}, "/etc/ld.so.preload is in the initrd but not in its content list"},
		{"folder off the list's paths", func(root string) error {
			os.Mkdir(filepath.Join(root, "etc/katana"), 0o755)
			return os.WriteFile(filepath.Join(root, "etc/katana/config.toml"), []byte("x"), 0o644)
		}, "folder /etc/katana is neither the layout's nor on the way to a listed file"},
		{"empty folder off the list's paths", func(root string) error {
			return os.Mkdir(filepath.Join(root, "etc/plugins.d"), 0o755)
		}, "folder /etc/plugins.d is neither"},
		{"layout folder's mode", func(root string) error {
			return os.Chmod(filepath.Join(root, "etc"), 0o777)
		}, "folder /etc has mode 0777, not 0755"},
		{"sticky bit off /tmp", func(root string) error {
			return os.Chmod(filepath.Join(root, "tmp"), 0o777)
		}, "folder /tmp has mode 0777, not 1777"},
		{"folder on a listed path's mode", func(root string) error {
			return os.Chmod(filepath.Join(root, "lib/modules/6.1"), 0o775)
		}, "folder /lib/modules/6.1 has mode 0775, not 0755"},
		{"listed file made setuid", func(root string) error {
			return os.Chmod(filepath.Join(root, "init"), os.ModeSetuid|0o755)
		}, "/init has mode 4755, not 0644 or 0755"},
		{"listed file made writable by all", func(root string) error {
			return os.Chmod(filepath.Join(root, "etc/hosts"), 0o666)
		}, "/etc/hosts has mode 0666"},
		{"root folder given away", func(root string) error {
			return os.Lchown(root, 1234, 1234)
		}, "/ is owned by 1234:1234"},
		{"listed file given away", func(root string) error {
			return os.Lchown(filepath.Join(root, "etc/hosts"), 1234, 1234)
		}, "/etc/hosts is owned by 1234:1234, not 0:0"},
		{"file beside the list", func(root string) error {
			return os.WriteFile(filepath.Join(root, initrdlayout.ContentsPath+".new"), []byte("x"), 0o644)
		}, "/" + initrdlayout.ContentsPath + ".new is in the initrd"},
		{"link the layout lacks", func(root string) error {
			return os.Symlink("/init", filepath.Join(root, "bin/sh"))
		}, `/bin/sh is a symbolic link to "/init" the layout does not declare`},
		{"layout link to elsewhere", func(root string) error {
			os.Remove(filepath.Join(root, "var/run"))
			return os.Symlink("/etc", filepath.Join(root, "var/run"))
		}, `/var/run is a symbolic link to "/etc"`},
		{"link over a listed file", func(root string) error {
			os.Remove(filepath.Join(root, "etc/hosts"))
			return os.Symlink("/init", filepath.Join(root, "etc/hosts"))
		}, `/etc/hosts is a symbolic link`},
		{"FIFO", func(root string) error {
			return unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644)
		}, "/etc/fifo is a FIFO, which the layout never makes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, list, layout := vouchedRoot(t)
			if err := c.add(root); errors.Is(err, unix.EPERM) {
				t.Skipf("%v: run the tests as root to check this case", err)
			} else if err != nil {
				t.Fatal(err)
			}
			err := Unvouched(root, list, layout)
			if !errors.Is(err, ErrUnvouched) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unvouched = %v, want an ErrUnvouched naming %q", err, c.want)
			}
		})
	}
}

func TestUnvouchedDevices(t *testing.T) {
	root, list, layout := vouchedRoot(t)
	if _, err := os.Lstat(filepath.Join(root, "dev/null")); err != nil {
		t.Skipf("device nodes cannot be made here (%v): run the tests as root to check them", err)
	}
	if err := Unvouched(root, list, layout); err != nil {
		t.Fatalf("the layout's device nodes: %v", err)
	}
	for _, c := range []struct {
		name       string
		path       string
		mode       uint32
		maj, minor uint32
		want       string
	}{
		{"another device at a layout path", "dev/null", unix.S_IFCHR | 0o666, 1, 1, "/dev/null is a chardev 1:1 (mode 0666) the layout does not declare"},
		{"a layout device's mode", "dev/null", unix.S_IFCHR | 0o600, 1, 3, "/dev/null is a chardev 1:3 (mode 0600)"},
		{"a block device", "dev/null", unix.S_IFBLK | 0o666, 1, 3, "/dev/null is a blockdev 1:3"},
		{"a device elsewhere", "etc/mem", unix.S_IFCHR | 0o600, 1, 1, "/etc/mem is a chardev 1:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, list, layout := vouchedRoot(t)
			p := filepath.Join(root, c.path)
			os.Remove(p)
			if err := unix.Mknod(p, c.mode, int(unix.Mkdev(c.maj, c.minor))); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(c.mode&0o777)); err != nil {
				t.Fatal(err)
			}
			err := Unvouched(root, list, layout)
			if !errors.Is(err, ErrUnvouched) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unvouched = %v, want an ErrUnvouched naming %q", err, c.want)
			}
		})
	}
}

// What the init mounts is not the initrd's: a file on a tmpfs mounted
// inside the tree is not looked at, nor the mount point itself.
func TestUnvouchedSkipsMounts(t *testing.T) {
	root, list, layout := vouchedRoot(t)
	run := filepath.Join(root, "run")
	if err := unix.Mount("tmpfs", run, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): run the tests as root to check that mounts are skipped", err)
	}
	t.Cleanup(func() { unix.Unmount(run, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(run, "katana.pid"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unvouched(root, list, layout); err != nil {
		t.Fatalf("Unvouched looked under a mount: %v", err)
	}
	// The same file on the initrd's own file system is refused.
	if err := os.WriteFile(filepath.Join(root, "var/katana.pid"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unvouched(root, list, layout); !errors.Is(err, ErrUnvouched) {
		t.Fatalf("Unvouched = %v, want ErrUnvouched for /var/katana.pid", err)
	}
}

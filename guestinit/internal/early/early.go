// Package early is the guest init's first step: the declarative table of
// file systems to mount (Table), mounting it under a root, unmounting it
// again before power-off, and reopening the standard descriptors on the
// console.
package early

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Mount is one entry of the mount table.
type Mount struct {
	Target string // absolute path in the guest
	FSType string
	Source string
	Flags  uintptr
	Data   string
	Mode   os.FileMode // of the mount point if it has to be created
	// Optional entries may fail (the kernel may lack the file system); the
	// failure is reported but does not stop the boot.
	Optional bool
}

const (
	nosuid = unix.MS_NOSUID
	nodev  = unix.MS_NODEV
	noexec = unix.MS_NOEXEC
)

// Table is what the init mounts first, in order (parents before children).
// There is no debugfs, securityfs or efivarfs: a confidential guest does not
// need them.
var Table = []Mount{
	{Target: "/proc", FSType: "proc", Source: "proc", Flags: nosuid | nodev | noexec, Mode: 0o555},
	{Target: "/sys", FSType: "sysfs", Source: "sysfs", Flags: nosuid | nodev | noexec, Mode: 0o555},
	{Target: "/dev", FSType: "devtmpfs", Source: "devtmpfs", Flags: nosuid, Data: "mode=0755", Mode: 0o755},
	{Target: "/dev/pts", FSType: "devpts", Source: "devpts", Flags: nosuid | noexec, Data: "newinstance,ptmxmode=0666,mode=0620", Mode: 0o755},
	{Target: "/dev/shm", FSType: "tmpfs", Source: "shm", Flags: nosuid | nodev, Data: "mode=1777", Mode: 0o1777},
	{Target: "/run", FSType: "tmpfs", Source: "run", Flags: nosuid | nodev, Data: "mode=0755", Mode: 0o755},
	{Target: "/tmp", FSType: "tmpfs", Source: "tmp", Flags: nosuid | nodev, Data: "mode=1777", Mode: 0o1777},
}

// Late is mounted after the kernel modules are loaded: configfs
// (configfs-tsm attestation on 6.7+) is a module on Debian kernels, and
// optional because older kernels have nothing to put there.
var Late = []Mount{
	{Target: "/sys/kernel/config", FSType: "configfs", Source: "configfs",
		Flags: nosuid | nodev | noexec, Mode: 0o755, Optional: true},
}

// All is Table followed by Late: what UnmountAll undoes.
func All() []Mount { return append(append([]Mount(nil), Table...), Late...) }

// Mounter performs mount(2); tests replace it.
type Mounter func(source, target, fstype string, flags uintptr, data string) error

// Options configure MountAll and UnmountAll.
type Options struct {
	Root  string  // prefix of every target; "" or "/" for the real root
	Mount Mounter // nil: unix.Mount
}

// Result is what MountAll did with one entry.
type Result struct {
	Mount Mount
	Err   error // nil when mounted or already mounted
}

// MountAll creates the mount points and mounts the table in order. It stops
// at the first failure of a required entry and returns its error; failures
// of optional entries are in the results only. An entry whose target is
// already a mount point of the same type (EBUSY) counts as mounted.
func MountAll(table []Mount, o Options) ([]Result, error) {
	mount := o.Mount
	if mount == nil {
		mount = unix.Mount
	}
	var res []Result
	for _, m := range table {
		err := mountOne(m, o.Root, mount)
		res = append(res, Result{Mount: m, Err: err})
		if err != nil && !m.Optional {
			return res, err
		}
	}
	return res, nil
}

func mountOne(m Mount, root string, mount Mounter) error {
	target := filepath.Join("/", root, m.Target)
	if err := os.MkdirAll(target, m.Mode.Perm()); err != nil {
		return fmt.Errorf("creating mount point %s: %w", target, err)
	}
	if err := mount(m.Source, target, m.FSType, m.Flags, m.Data); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil
		}
		return fmt.Errorf("mounting %s on %s: %w", m.FSType, target, err)
	}
	return nil
}

// UnmountAll detaches the table's targets in reverse order (lazily, so a
// busy file system cannot block the power-off) and returns the errors it
// met, joined. Not-mounted targets are skipped silently.
func UnmountAll(table []Mount, root string, unmount func(target string, flags int) error) error {
	if unmount == nil {
		unmount = unix.Unmount
	}
	var errs []error
	for i := len(table) - 1; i >= 0; i-- {
		target := filepath.Join("/", root, table[i].Target)
		if err := unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", target, err))
		}
	}
	return errors.Join(errs...)
}

// OpenConsole opens path (normally /dev/console) read-write, blocking, and
// without making it a controlling terminal: a file description of its own,
// whose status flags (O_NONBLOCK) no other opener shares.
func OpenConsole(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening console %s: %w", path, err)
	}
	// Blocking, for Katana's stdout and stderr and the init's log alike:
	// os.OpenFile makes a tty non-blocking for the runtime's poller (f.Fd
	// undoes it, and so does this, explicitly), and a non-blocking open of
	// a tty turns the kernel's write lock into a try-lock, so that writes
	// fail whenever another writer holds it.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, fmt.Errorf("console %s: %w", path, err)
	}
	return f, nil
}

// ReopenConsole opens path (normally /dev/console) as OpenConsole does and
// makes it descriptors 0, 1 and 2. It returns the opened file, which stays
// open.
func ReopenConsole(path string) (*os.File, error) {
	f, err := OpenConsole(path)
	if err != nil {
		return nil, err
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return nil, fmt.Errorf("dup console onto fd %d: %w", fd, err)
		}
	}
	return f, nil
}

// SysRqPath is the sysctl that enables the magic SysRq keys, under /proc.
const SysRqPath = "proc/sys/kernel/sysrq"

// DisableSysRq turns the magic SysRq keys off (root is "/" in the guest).
// Debian's kernel enables some by default (sync, remount read-only,
// reboot, power off, RT nicing) and takes them from the serial console:
// a BREAK on the host's serial line would reach the guest's kernel. The
// host is not to have a control channel into the guest beyond the agent.
// (A "sysrq_always_enabled" on the cmdline would win: shared/bootcfg
// refuses it.)
func DisableSysRq(root string) error {
	if err := writeSysctl(root, SysRqPath, "0"); err != nil {
		return fmt.Errorf("disabling magic SysRq: %w", err)
	}
	return nil
}

// Kernel-code locks: sysctls that, once 1, stay 1 until the machine
// reboots, under /proc.
const (
	ModulesDisabledPath   = "proc/sys/kernel/modules_disabled"
	KexecLoadDisabledPath = "proc/sys/kernel/kexec_load_disabled"
)

// LockKernelCode stops any more code from entering the kernel until the
// guest powers off (root is "/" in the guest): no module load
// (modules_disabled) and no kexec into another kernel
// (kexec_load_disabled), each a one-way switch. The init calls it once it
// has loaded the initrd's modules, so that the kernel code running stays
// the measured kernel's and the measured initrd's modules whatever a root
// process does later; after a kexec the guest would run an unmeasured
// kernel under the same launch measurement. A kernel built without kexec
// has no kexec_load_disabled: nothing to lock there.
func LockKernelCode(root string) error {
	var errs []error
	if err := writeSysctl(root, ModulesDisabledPath, "1"); err != nil {
		errs = append(errs, fmt.Errorf("disabling module loading: %w", err))
	}
	if err := writeSysctl(root, KexecLoadDisabledPath, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("disabling kexec: %w", err))
	}
	return errors.Join(errs...)
}

// writeSysctl writes value and a newline to the file rel under root, which
// must exist (a sysctl is never created).
func writeSysctl(root, rel, value string) error {
	p := filepath.Join(root, rel)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

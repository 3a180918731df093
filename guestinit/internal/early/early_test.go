package early

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The table is part of the security posture: pin it.
func TestTableContents(t *testing.T) {
	type row struct {
		Target, FSType string
		NoSuid, NoDev  bool
		NoExec         bool
		Optional       bool
	}
	var got []row
	for _, m := range All() {
		got = append(got, row{m.Target, m.FSType, m.Flags&unix.MS_NOSUID != 0, m.Flags&unix.MS_NODEV != 0,
			m.Flags&unix.MS_NOEXEC != 0, m.Optional})
	}
	want := []row{
		{"/proc", "proc", true, true, true, false},
		{"/sys", "sysfs", true, true, true, false},
		{"/dev", "devtmpfs", true, false, false, false},
		{"/dev/pts", "devpts", true, false, true, false},
		{"/dev/shm", "tmpfs", true, true, false, false},
		{"/run", "tmpfs", true, true, false, false},
		{"/tmp", "tmpfs", true, true, false, false},
		{"/sys/kernel/config", "configfs", true, true, true, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mount table (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, m := range All() {
		if seen[m.Target] {
			t.Errorf("%s mounted twice", m.Target)
		}
		if parent := filepath.Dir(m.Target); parent != "/" && !seen[parent] && parent != "/sys/kernel" {
			t.Errorf("%s comes before its parent %s", m.Target, parent)
		}
		seen[m.Target] = true
		for _, bad := range []string{"debugfs", "securityfs", "efivarfs", "tracefs"} {
			if m.FSType == bad {
				t.Errorf("%s must not be mounted in a confidential guest", bad)
			}
		}
	}
}

type call struct{ Source, Target, FSType, Data string }

func TestMountAll(t *testing.T) {
	root := t.TempDir()
	var calls []call
	fake := func(source, target, fstype string, flags uintptr, data string) error {
		calls = append(calls, call{source, target, fstype, data})
		switch fstype {
		case "configfs":
			return unix.ENODEV // module not loaded: optional
		case "devpts":
			return unix.EBUSY // already mounted: fine
		}
		return nil
	}
	res, err := MountAll(All(), Options{Root: root, Mount: fake})
	if err != nil {
		t.Fatalf("MountAll: %v", err)
	}
	if len(calls) != len(All()) || len(res) != len(All()) {
		t.Fatalf("got %d calls, %d results, want %d", len(calls), len(res), len(All()))
	}
	for i, m := range All() {
		if calls[i].Target != filepath.Join(root, m.Target) {
			t.Errorf("call %d target %s, want under root", i, calls[i].Target)
		}
		if fi, err := os.Stat(filepath.Join(root, m.Target)); err != nil || !fi.IsDir() {
			t.Errorf("mount point %s not created: %v", m.Target, err)
		}
	}
	if last := res[len(res)-1]; !errors.Is(last.Err, unix.ENODEV) {
		t.Errorf("configfs result = %v, want ENODEV kept in the results", last.Err)
	}
	if res[3].Err != nil {
		t.Errorf("EBUSY (already mounted) should count as mounted, got %v", res[3].Err)
	}
}

func TestMountAllStopsOnRequired(t *testing.T) {
	n := 0
	fake := func(source, target, fstype string, flags uintptr, data string) error {
		n++
		if fstype == "sysfs" {
			return unix.EPERM
		}
		return nil
	}
	_, err := MountAll(Table, Options{Root: t.TempDir(), Mount: fake})
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("err = %v, want EPERM", err)
	}
	if n != 2 {
		t.Errorf("mounted %d entries, want to stop after the second", n)
	}
}

func TestUnmountAllReverse(t *testing.T) {
	var got []string
	err := UnmountAll(All(), "/r", func(target string, flags int) error {
		if flags != unix.MNT_DETACH {
			t.Errorf("flags %d, want MNT_DETACH", flags)
		}
		got = append(got, target)
		if target == "/r/tmp" {
			return unix.EINVAL // not mounted: skipped
		}
		if target == "/r/run" {
			return unix.EPERM
		}
		return nil
	})
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("err = %v, want the EPERM of /run", err)
	}
	if got[0] != "/r/sys/kernel/config" || got[len(got)-1] != "/r/proc" {
		t.Errorf("unmount order %v, want reverse of the table", got)
	}
}

func TestReopenConsoleMissing(t *testing.T) {
	_, err := ReopenConsole(filepath.Join(t.TempDir(), "console"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

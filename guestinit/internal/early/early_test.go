package early

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// The table is part of the security posture: pin it.
func TestTableContents(t *testing.T) {
	type row struct {
		Target, FSType, Source string
		NoSuid, NoDev          bool
		NoExec                 bool
		OtherFlags             uintptr
		Data                   string
		Mode                   os.FileMode
		Optional               bool
	}
	var got []row
	for _, m := range All() {
		got = append(got, row{m.Target, m.FSType, m.Source, m.Flags&unix.MS_NOSUID != 0, m.Flags&unix.MS_NODEV != 0,
			m.Flags&unix.MS_NOEXEC != 0, m.Flags &^ (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC), m.Data, m.Mode, m.Optional})
	}
	want := []row{
		{"/proc", "proc", "proc", true, true, true, 0, "", 0o555, false},
		{"/sys", "sysfs", "sysfs", true, true, true, 0, "", 0o555, false},
		{"/dev", "devtmpfs", "devtmpfs", true, false, false, 0, "mode=0755", 0o755, false},
		{"/dev/pts", "devpts", "devpts", true, false, true, 0, "newinstance,ptmxmode=0666,mode=0620", 0o755, false},
		{"/dev/shm", "tmpfs", "shm", true, true, false, 0, "mode=1777", 0o1777, false},
		{"/run", "tmpfs", "run", true, true, false, 0, "mode=0755", 0o755, false},
		{"/tmp", "tmpfs", "tmp", true, true, false, 0, "mode=1777", 0o1777, false},
		{"/sys/kernel/config", "configfs", "configfs", true, true, true, 0, "", 0o755, true},
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

type call struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

// recorder is a fake Mounter that records its calls and fails the file
// system types in fail with their error.
func recorder(calls *[]call, fail map[string]error) Mounter {
	return func(source, target, fstype string, flags uintptr, data string) error {
		*calls = append(*calls, call{source, target, fstype, flags, data})
		return fail[fstype]
	}
}

// MountAll passes every field of every entry to mount(2), under the root,
// creates the missing mount points with the entry's mode, keeps the
// failures of optional entries in the results and counts EBUSY (already
// mounted) as mounted.
func TestMountAll(t *testing.T) {
	defer unix.Umask(unix.Umask(0)) // the modes as given, whatever the umask
	root := t.TempDir()
	var calls []call
	fake := recorder(&calls, map[string]error{
		"configfs": unix.ENODEV, // module not loaded: optional
		"devpts":   unix.EBUSY,  // already mounted: fine
	})
	res, err := MountAll(All(), Options{Root: root, Mount: fake})
	if err != nil {
		t.Fatalf("MountAll: %v", err)
	}
	var wantCalls []call
	var wantRes []Result
	for _, m := range All() {
		wantCalls = append(wantCalls, call{m.Source, filepath.Join(root, m.Target), m.FSType, m.Flags, m.Data})
		r := Result{Mount: m}
		if m.FSType == "configfs" {
			r.Err = unix.ENODEV
		}
		wantRes = append(wantRes, r)
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("mount calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRes, res, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, m := range All() {
		fi, err := os.Stat(filepath.Join(root, m.Target))
		if err != nil || !fi.IsDir() {
			t.Errorf("mount point %s not created: %v", m.Target, err)
			continue
		}
		if got, want := fi.Mode().Perm(), m.Mode.Perm(); got != want {
			t.Errorf("mount point %s has mode %v, want %v", m.Target, got, want)
		}
	}
}

func TestMountAllErrors(t *testing.T) {
	tests := []struct {
		name      string
		table     []Mount
		fail      map[string]error
		blocked   string // a file where this mount point should be
		wantCalls []string
		wantErrs  []error // one per result
		wantErr   string  // MountAll's error, "ROOT" for the root
		wantIs    error   // what MountAll's error wraps
	}{
		{
			name:      "a required mount fails",
			table:     Table,
			fail:      map[string]error{"sysfs": unix.EPERM},
			wantCalls: []string{"/proc", "/sys"},
			wantErrs:  []error{nil, unix.EPERM},
			wantErr:   "mounting sysfs on ROOT/sys: operation not permitted",
			wantIs:    unix.EPERM,
		},
		{
			name:      "a required mount point cannot be created",
			table:     Table,
			blocked:   "/proc",
			wantCalls: nil,
			wantErrs:  []error{unix.ENOTDIR},
			wantErr:   "creating mount point ROOT/proc: mkdir ROOT/proc: not a directory",
			wantIs:    unix.ENOTDIR,
		},
		{
			name:      "an optional mount point cannot be created",
			table:     []Mount{Late[0], Table[5]},
			blocked:   "/sys/kernel",
			wantCalls: []string{"/run"},
			wantErrs:  []error{unix.ENOTDIR, nil},
		},
		{
			name:      "an optional mount fails",
			table:     []Mount{Late[0], Table[5]},
			fail:      map[string]error{"configfs": unix.ENODEV},
			wantCalls: []string{"/sys/kernel/config", "/run"},
			wantErrs:  []error{unix.ENODEV, nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.blocked != "" {
				p := filepath.Join(root, tc.blocked)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var calls []call
			res, err := MountAll(tc.table, Options{Root: root, Mount: recorder(&calls, tc.fail)})
			var gotCalls []string
			for _, c := range calls {
				gotCalls = append(gotCalls, strings.TrimPrefix(c.Target, root))
			}
			if diff := cmp.Diff(tc.wantCalls, gotCalls); diff != "" {
				t.Errorf("mount calls (-want +got):\n%s", diff)
			}
			var gotErrs []error
			for i, r := range res {
				if r.Mount != tc.table[i] {
					t.Errorf("result %d is for %+v, want %+v", i, r.Mount, tc.table[i])
				}
				gotErrs = append(gotErrs, r.Err)
			}
			if diff := cmp.Diff(tc.wantErrs, gotErrs, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("errors in the results (-want +got):\n%s", diff)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("MountAll: %v, want nil", err)
				}
				return
			}
			if want := strings.ReplaceAll(tc.wantErr, "ROOT", root); err == nil || err.Error() != want {
				t.Errorf("MountAll: %v, want %s", err, want)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("MountAll: %v, want it to wrap %v", err, tc.wantIs)
			}
		})
	}
}

// UnmountAll detaches lazily in reverse order, goes on after a failure,
// skips targets that are not mounted (EINVAL) or missing (ENOENT) and
// joins the other errors in the order it met them.
func TestUnmountAll(t *testing.T) {
	var all []string
	for i := len(All()) - 1; i >= 0; i-- {
		all = append(all, "/r"+All()[i].Target)
	}
	tests := []struct {
		name    string
		errs    map[string]error
		wantErr string
		wantIs  []error
	}{
		{name: "all unmounted"},
		{
			name: "not mounted or missing",
			errs: map[string]error{"/r/tmp": unix.EINVAL, "/r/sys/kernel/config": unix.ENOENT, "/r/proc": fmt.Errorf("wrapped: %w", unix.EINVAL)},
		},
		{
			name:    "failures",
			errs:    map[string]error{"/r/run": unix.EPERM, "/r/tmp": unix.EINVAL, "/r/dev": unix.EBUSY, "/r/proc": unix.EACCES},
			wantErr: "unmounting /r/run: operation not permitted\nunmounting /r/dev: device or resource busy\nunmounting /r/proc: permission denied",
			wantIs:  []error{unix.EPERM, unix.EBUSY, unix.EACCES},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := UnmountAll(All(), "/r", func(target string, flags int) error {
				if flags != unix.MNT_DETACH {
					t.Errorf("unmount %s with flags %#x, want MNT_DETACH", target, flags)
				}
				got = append(got, target)
				return tc.errs[target]
			})
			if diff := cmp.Diff(all, got); diff != "" {
				t.Errorf("unmounted (-want +got):\n%s", diff)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("UnmountAll: %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("UnmountAll: %v, want\n%s", err, tc.wantErr)
			}
			for _, is := range tc.wantIs {
				if !errors.Is(err, is) {
					t.Errorf("UnmountAll: %v, want it to wrap %v", err, is)
				}
			}
		})
	}
}

func TestReopenConsoleMissing(t *testing.T) {
	_, err := ReopenConsole(filepath.Join(t.TempDir(), "console"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

// consoleEnv names the file that TestReopenConsoleHelper reopens.
const consoleEnv = "EARLY_TEST_CONSOLE"

// consoleInput is what the test puts in the console for the helper to
// read from its descriptor 0.
const consoleInput = "console input\n"

// TestReopenConsoleHelper is the helper process of TestReopenConsole (the
// test binary, started from the test inside this package's namespaces):
// ReopenConsole replaces its descriptors 0, 1 and 2, so it cannot run in
// the test process. It reports on descriptor 3 what they are afterwards.
func TestReopenConsoleHelper(t *testing.T) {
	path, ok := os.LookupEnv(consoleEnv)
	if !ok {
		t.Skip("helper process of TestReopenConsole; it runs only when that test starts it")
	}
	report := os.NewFile(3, "report")
	defer report.Close()
	f, err := ReopenConsole(path)
	if err != nil {
		fmt.Fprintf(report, "ReopenConsole: %v\n", err)
		return
	}
	// Whether each descriptor blocks, read before f.Fd() below (os.File.Fd
	// clears O_NONBLOCK of a file Go polls, which would hide it).
	var blocking [3]string
	for fd := range blocking {
		blocking[fd] = "blocking"
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
			blocking[fd] = fmt.Sprintf("non-blocking (%v)", err)
		}
	}
	var console unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &console); err != nil {
		fmt.Fprintf(report, "fstat of the returned file: %v\n", err)
		return
	}
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			fmt.Fprintf(report, "fd %d: %v\n", fd, err)
			continue
		}
		what := "not the console"
		if st.Dev == console.Dev && st.Ino == console.Ino {
			what = "the console"
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			fmt.Fprintf(report, "fd %d: F_GETFL: %v\n", fd, err)
			continue
		}
		access := map[int]string{unix.O_RDONLY: "read-only", unix.O_WRONLY: "write-only", unix.O_RDWR: "read-write"}[fl&unix.O_ACCMODE]
		fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			fmt.Fprintf(report, "fd %d: F_GETFD: %v\n", fd, err)
			continue
		}
		inherit := "inherited by exec"
		if fdfl&unix.FD_CLOEXEC != 0 {
			inherit = "close-on-exec"
		}
		fmt.Fprintf(report, "fd %d: %s, %s, %s, %s\n", fd, what, access, inherit, blocking[fd])
	}
	buf := make([]byte, 64)
	n, err := unix.Read(0, buf)
	fmt.Fprintf(report, "read from fd 0: %q %v\n", buf[:max(n, 0)], err)
	for fd := 1; fd <= 2; fd++ {
		_, err := unix.Write(fd, fmt.Appendf(nil, "written to fd %d\n", fd))
		fmt.Fprintf(report, "write to fd %d: %v\n", fd, err)
	}
	// The helper is a session leader without a controlling terminal: the
	// console must not become one (O_NOCTTY).
	if sid, err := unix.IoctlGetInt(0, unix.TIOCGSID); err == nil {
		fmt.Fprintf(report, "controlling terminal of session %d\n", sid)
	} else {
		fmt.Fprintf(report, "no controlling terminal (%v)\n", err)
	}
}

// ReopenConsole makes descriptors 0, 1 and 2 the console, read-write,
// blocking (on a non-blocking tty the kernel's write lock is a try-lock,
// and Katana's and the init's writes would fail with EAGAIN whenever the
// other holds it) and inherited by the programs the init starts, and the
// console does not become the init's controlling terminal. Tested on a file and on a
// pseudo-terminal the test creates, never on /dev/console.
func TestReopenConsole(t *testing.T) {
	tests := []struct {
		name string
		// open creates the console and returns its path and, for a file,
		// what to read back afterwards.
		open func(t *testing.T) (path string, content func() string)
	}{
		{"temporary file", func(t *testing.T) (string, func() string) {
			path := filepath.Join(t.TempDir(), "console")
			if err := os.WriteFile(path, []byte(consoleInput), 0o600); err != nil {
				t.Fatal(err)
			}
			return path, func() string {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
		}},
		{"pseudo-terminal", func(t *testing.T) (string, func() string) {
			ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				t.Skipf("no pseudo-terminal to test on (%v); the temporary file case still runs", err)
			}
			t.Cleanup(func() { ptmx.Close() })
			if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
				t.Fatalf("unlocking the pseudo-terminal: %v", err)
			}
			n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
			if err != nil {
				t.Fatalf("pseudo-terminal number: %v", err)
			}
			if _, err := ptmx.WriteString(consoleInput); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/dev/pts/%d", n), nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, content := tc.open(t)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestReopenConsoleHelper$")
			cmd.Env = append(os.Environ(), consoleEnv+"="+path)
			cmd.ExtraFiles = []*os.File{pw}
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
			if err := cmd.Start(); err != nil {
				t.Fatalf("starting the helper: %v", err)
			}
			pw.Close()
			var report bytes.Buffer
			if _, err := report.ReadFrom(pr); err != nil {
				t.Errorf("reading the helper's report: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper: %v\n%s", err, stderr.String())
			}
			want := "fd 0: the console, read-write, inherited by exec, blocking\n" +
				"fd 1: the console, read-write, inherited by exec, blocking\n" +
				"fd 2: the console, read-write, inherited by exec, blocking\n" +
				fmt.Sprintf("read from fd 0: %q <nil>\n", consoleInput) +
				"write to fd 1: <nil>\n" +
				"write to fd 2: <nil>\n" +
				"no controlling terminal (inappropriate ioctl for device)\n"
			if diff := cmp.Diff(want, report.String()); diff != "" {
				t.Errorf("helper's descriptors after ReopenConsole (-want +got):\n%s", diff)
			}
			if content == nil {
				return
			}
			// The descriptors share one open file: the writes follow the
			// input read through descriptor 0.
			want = consoleInput + "written to fd 1\nwritten to fd 2\n"
			if got := content(); !strings.HasPrefix(got, want) {
				t.Errorf("console file holds %q, want it to start with %q", got, want)
			}
		})
	}
}

func TestDisableSysRq(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, SysRqPath)
	if err := DisableSysRq(root); err == nil || !strings.Contains(err.Error(), "disabling magic SysRq") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("without the sysctl: %v, want an error wrapping ErrNotExist", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("438\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := DisableSysRq(root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "0\n" {
		t.Errorf("%s = %q, want \"0\\n\"", SysRqPath, b)
	}
}

// LockKernelCode sets both one-way switches; a kernel without kexec (no
// kexec_load_disabled) is no error, a missing modules_disabled is.
func TestLockKernelCode(t *testing.T) {
	root := t.TempDir()
	mods, kexec := filepath.Join(root, ModulesDisabledPath), filepath.Join(root, KexecLoadDisabledPath)
	if err := os.MkdirAll(filepath.Dir(mods), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := LockKernelCode(root); err == nil || !strings.Contains(err.Error(), "disabling module loading") || !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "kexec") {
		t.Errorf("without either sysctl: %v, want only modules_disabled's absence, wrapping ErrNotExist", err)
	}
	for _, p := range []string{mods, kexec} {
		if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := LockKernelCode(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mods, kexec} {
		if b, _ := os.ReadFile(p); string(b) != "1\n" {
			t.Errorf("%s = %q, want \"1\\n\"", p, b)
		}
	}
	// A sysctl that cannot be written (here a folder) is reported.
	if err := os.Remove(kexec); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(kexec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := LockKernelCode(root); err == nil || !strings.Contains(err.Error(), "disabling kexec") {
		t.Errorf("kexec_load_disabled a folder: %v, want it reported", err)
	}
}

// OpenConsole gives a file description of its own, blocking: a status
// flag its holder sets (Katana making its stdout non-blocking) is not the
// init's, as it would be on a dup of the init's console.
func TestOpenConsoleOwnDescription(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var init, katana *os.File
	for _, f := range []**os.File{&init, &katana} {
		var err error
		if *f, err = OpenConsole(path); err != nil {
			t.Fatal(err)
		}
		defer (*f).Close()
	}
	flags := func(f *os.File) int {
		t.Helper()
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	for name, f := range map[string]*os.File{"init's": init, "katana's": katana} {
		if fl := flags(f); fl&unix.O_NONBLOCK != 0 || fl&unix.O_ACCMODE != unix.O_RDWR {
			t.Errorf("%s console: flags %#x, want read-write and blocking", name, fl)
		}
	}
	if err := unix.SetNonblock(int(katana.Fd()), true); err != nil {
		t.Fatal(err)
	}
	if fl := flags(init); fl&unix.O_NONBLOCK != 0 {
		t.Errorf("katana's O_NONBLOCK reached the init's console description (flags %#x)", fl)
	}
}

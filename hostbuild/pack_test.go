package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// TestMain lets a test re-run this binary as `hostbuild` in a child process
// with another environment (umask, TZ, locale, GOMAXPROCS, working folder).
// The child handles signals as main does. Started through a link named
// fakeQEMUName, the binary is a fake QEMU instead (run_test.go).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeQEMUName {
		os.Exit(fakeQEMU(os.Args[1:]))
	}
	if os.Getenv("HOSTBUILD_TEST_MAIN") == "1" {
		if u := os.Getenv("HOSTBUILD_TEST_UMASK"); u != "" {
			n, _ := strconv.ParseUint(u, 8, 32)
			syscall.Umask(int(n))
		}
		// A command whose work never looks at the context, as any
		// step may not: TestSecondSignalEndsCommand's.
		register(command{name: ignoresContextCommand, run: func(context.Context, []string, io.Writer, io.Writer) int {
			time.Sleep(time.Minute)
			return exitOK
		}})
		ctx, stop := interruptContext()
		if os.Getenv("HOSTBUILD_TEST_SIGNALS") == "1" {
			fmt.Fprintln(os.Stderr, signalsReady)
		}
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// ignoresContextCommand is a command of the child TestMain runs
// (HOSTBUILD_TEST_MAIN=1) that works for a minute without looking at its
// context.
const ignoresContextCommand = "test-ignores-context"

// signalsReady is the line a child started with HOSTBUILD_TEST_SIGNALS=1
// prints once it catches SIGINT, SIGTERM and SIGHUP.
const signalsReady = "hostbuild test: signals ready"

// ignored reports whether sig was ignored when this process started (the
// SigIgn mask of /proc/self/status; Go keeps an inherited "ignore" for the
// signals it does not handle).
func ignored(t *testing.T, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatalf("SigIgn %q: %v", hex, err)
			}
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	t.Fatal("no SigIgn line in /proc/self/status")
	return false
}

func hostbuild(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "HOSTBUILD_TEST_MAIN=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// stage writes the inputs of a pack into dir; order reverses the creation
// order of the module files so directory order differs between stagings.
func stage(t *testing.T, dir string, reverse bool) {
	t.Helper()
	files := []struct {
		rel  string
		data []byte
	}{
		{"guestinit", testelf.Executable("", []byte("init"))},
		{"katana", testelf.Executable("", bytes.Repeat([]byte("katana"), 5000))},
		{"k/lib/modules/6.9.0-t/kernel/a/virtio.ko", testelf.Module("depends=", "name=virtio")},
		{"k/lib/modules/6.9.0-t/kernel/a/virtio_pci.ko", testelf.Module("depends=virtio", "name=virtio_pci")},
		{"k/lib/modules/6.9.0-t/kernel/b/virtio_net.ko", testelf.Module("depends=virtio", "name=virtio_net")},
		{"k/lib/modules/6.9.0-t/kernel/c/vsock.ko", testelf.Module("depends=", "name=vsock")},
	}
	if reverse {
		for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
			files[i], files[j] = files[j], files[i]
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// Two builds from two stagings of the same inputs, in two processes whose
// environments differ in every way the issue names, give the same bytes.
func TestPackReproducibleAcrossEnvironments(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	stage(t, a, false)
	stage(t, b, true)
	future := "203001011200"
	exec.Command("touch", "-t", future, filepath.Join(b, "katana"), filepath.Join(b, "guestinit")).Run()
	envs := [][]string{
		{"TZ=UTC", "LC_ALL=C", "GOMAXPROCS=2", "HOSTBUILD_TEST_UMASK=022", "SOURCE_DATE_EPOCH=1700000000"},
		{"TZ=Pacific/Kiritimati", "LC_ALL=tr_TR.UTF-8", "LANG=ja_JP.UTF-8", "GOMAXPROCS=1", "HOSTBUILD_TEST_UMASK=077", "SOURCE_DATE_EPOCH=1700000000"},
	}
	mods := [][]string{
		{"--module", "virtio_net", "--module", "virtio_pci", "--module", "vsock"},
		{"--module", "vsock", "--module", "virtio-pci", "--module", "virtio_net"},
	}
	var sums []string
	for i, dir := range []string{a, b} {
		args := append([]string{"pack", "-q", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "k", "-o", "out.img"}, mods[i]...)
		if i == 1 {
			// From another working folder, with absolute paths.
			args = append([]string{"pack", "-q", "--init", filepath.Join(b, "guestinit"), "--payload", filepath.Join(b, "katana"),
				"--kernel-modules", filepath.Join(b, "k/lib/modules/6.9.0-t"), "-o", filepath.Join(b, "out.img")}, mods[i]...)
			dir = t.TempDir()
		}
		out, errOut, code := hostbuild(t, dir, envs[i], args...)
		if code != 0 {
			t.Fatalf("pack in env %v: exit %d\n%s", envs[i], code, errOut)
		}
		sums = append(sums, strings.Fields(out)[0])
	}
	if sums[0] != sums[1] {
		out, _, _ := hostbuild(t, a, nil, "diff", filepath.Join(a, "out.img"), filepath.Join(b, "out.img"))
		t.Errorf("builds differ: %s vs %s\n%s", sums[0], sums[1], out)
	}
}

// --kernel-modules spelled as an absolute path, a relative path from inside
// the tree ("." and "..") or through a symlink gives the same initrd: the
// release is the folder's real name, not the path as typed.
func TestPackSameBytesWhateverTheModulesPath(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	rel := filepath.Join(dir, "k/lib/modules/6.9.0-t")
	if err := os.Symlink(rel, filepath.Join(dir, "mods")); err != nil {
		t.Fatal(err)
	}
	var first string
	for _, tc := range []struct{ cwd, modules string }{
		{dir, rel},
		{rel, "."},
		{filepath.Join(rel, "kernel"), ".."},
		{dir, "mods"},
		{dir, "k"},
	} {
		out, errOut, code := hostbuild(t, tc.cwd, nil, "pack", "-q", "--init", filepath.Join(dir, "guestinit"), "--payload", filepath.Join(dir, "katana"),
			"--kernel-modules", tc.modules, "-o", filepath.Join(dir, "out.img"))
		if code != 0 {
			t.Fatalf("--kernel-modules %s in %s: exit %d\n%s", tc.modules, tc.cwd, code, errOut)
		}
		sum := strings.Fields(out)[0]
		if first == "" {
			first = sum
		} else if sum != first {
			t.Errorf("--kernel-modules %s in %s: sha256 %s, want %s as with the absolute path", tc.modules, tc.cwd, sum, first)
		}
	}
}

func TestDiffExitCodes(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	packArgs := func(out string, extra ...string) []string {
		return append([]string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", out}, extra...)
	}
	for _, args := range [][]string{packArgs("a.img"), packArgs("b.img"), packArgs("c.img", "--module", "vsock")} {
		if _, e, code := hostbuild(t, dir, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, e)
		}
	}
	tests := []struct {
		a, b string
		code int
		want string
	}{
		{"a.img", "b.img", 0, "identical"},
		{"a.img", "c.img", 1, "removed  lib/modules/6.9.0-t/kernel/b/virtio_net.ko"},
		{"a.img", "nope.img", 2, "nope.img"},
		{"a.img", "katana", 2, "not an initrd"},
	}
	for _, tc := range tests {
		out, errOut, code := hostbuild(t, dir, nil, "diff", tc.a, tc.b)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("diff %s %s: exit %d, output %q; want exit %d and %q", tc.a, tc.b, code, out+errOut, tc.code, tc.want)
		}
	}
	out, _, code := hostbuild(t, dir, nil, "inspect", "--json", "a.img")
	if code != 0 || !strings.Contains(out, `"path": "bin/katana.zst"`) || !strings.Contains(out, `"compression": "zstd+none"`) {
		t.Errorf("inspect --json: exit %d\n%s", code, out)
	}
}

// pack prints the SHA-256 of the file it wrote and its path on stdout, and
// its progress on stderr unless -q; a failed pack over an existing initrd
// keeps it byte for byte and leaves no other file. --source-date-epoch
// takes the whole range of cpio mtimes, and overrides $SOURCE_DATE_EPOCH,
// which is checked the same way.
func TestPackOutputs(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	pack := func(env []string, extra ...string) (string, string, int) {
		t.Helper()
		// Unset unless given: the caller's environment may set it.
		env = append([]string{"SOURCE_DATE_EPOCH="}, env...)
		return hostbuild(t, dir, env, append([]string{"pack", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k"}, extra...)...)
	}
	list := func() string {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	out, errOut, code := pack(nil, "-o", "out.img")
	if code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	img := filepath.Join(dir, "out.img")
	if want := fileSHA256(t, img) + "  out.img\n"; out != want {
		t.Errorf("stdout %q, want %q (the written file's SHA-256)", out, want)
	}
	for _, w := range []string{"hostbuild pack: kernel 6.9.0-t: ", "hostbuild pack: wrote out.img: "} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, errOut)
		}
	}
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	files := list()
	if _, errOut, code := pack(nil, "--module", "no_such_mod", "-o", "out.img"); code != exitFail {
		t.Errorf("pack with an unknown module: exit %d, want %d\n%s", code, exitFail, errOut)
	}
	if after, err := os.ReadFile(img); err != nil || !bytes.Equal(after, before) {
		t.Errorf("a failed pack changed out.img (%v)", err)
	}
	if got := list(); got != files {
		t.Errorf("after a failed pack the folder holds %s, want %s", got, files)
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string // in stderr
	}{
		{"epoch 0", nil, []string{"--source-date-epoch", "0"}, exitOK, ""},
		{"epoch 2^32-1", nil, []string{"--source-date-epoch", "4294967295"}, exitOK, ""},
		{"env epoch", []string{"SOURCE_DATE_EPOCH=1700000000"}, nil, exitOK, ""},
		{"bad env epoch", []string{"SOURCE_DATE_EPOCH=yesterday"}, nil, exitUsage, `$SOURCE_DATE_EPOCH "yesterday" is not a whole number of seconds`},
		{"env epoch out of range", []string{"SOURCE_DATE_EPOCH=-1"}, nil, exitUsage, "$SOURCE_DATE_EPOCH -1 is out of range"},
		{"flag over env", []string{"SOURCE_DATE_EPOCH=yesterday"}, []string{"--source-date-epoch", "1700000000"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := pack(tc.env, append(tc.args, "-q", "-o", "e.img")...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
	// The epoch is the mtime of every entry: the env's and the flag's
	// 1700000000 give the same bytes, 0 others.
	sum := func(env []string, args ...string) string {
		t.Helper()
		out, errOut, code := pack(env, append(args, "-q", "-o", "e.img")...)
		if code != exitOK {
			t.Fatalf("pack: exit %d\n%s", code, errOut)
		}
		return strings.Fields(out)[0]
	}
	env, flag, zero := sum([]string{"SOURCE_DATE_EPOCH=1700000000"}), sum(nil, "--source-date-epoch", "1700000000"), sum(nil)
	if env != flag || env == zero {
		t.Errorf("SHA-256 with $SOURCE_DATE_EPOCH=1700000000 %s, with --source-date-epoch 1700000000 %s, with neither %s: want the first two equal, the third different", env, flag, zero)
	}
	// An epoch from the environment is said (it is measured, and some
	// environments set it unasked); one from the flag is not.
	note := "warning: every entry's mtime is 1700000000, from $SOURCE_DATE_EPOCH in the environment"
	for _, q := range [][]string{nil, {"-q"}} {
		if _, errOut, _ := pack([]string{"SOURCE_DATE_EPOCH=1700000000"}, append(q, "-o", "n.img")...); !strings.Contains(errOut, note) {
			t.Errorf("pack %q with $SOURCE_DATE_EPOCH: stderr %q, want %q", q, errOut, note)
		}
	}
	if _, errOut, _ := pack([]string{"SOURCE_DATE_EPOCH=5"}, "-o", "n.img", "--source-date-epoch", "1700000000"); strings.Contains(errOut, "from $SOURCE_DATE_EPOCH") {
		t.Errorf("pack --source-date-epoch: stderr %q names the environment", errOut)
	}
}

func TestPackUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pack"}, "--payload and -o are required"},
		{[]string{"pack", "--payload", "x", "-o", "y", "--source-date-epoch", "yesterday"}, "not a whole number"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		_, errOut, code := hostbuild(t, t.TempDir(), nil, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, exitUsage, tc.want)
		}
	}
}

// Inputs, flags and the output folder are checked before the payload is
// encoded (seconds for a real Katana), and a --source-date-epoch out of
// range is a usage error like one that is not a number.
func TestPackChecksBeforeEncoding(t *testing.T) {
	dir, ovmf := stageBuild(t)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("# not an executable\n"), 0o644)
	pack := func(extra ...string) []string {
		return append([]string{"pack", "--init", "guestinit", "--payload", "katana", "-o", "out.img"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"negative epoch", pack("--source-date-epoch", "-5"), exitUsage, "--source-date-epoch -5 is out of range: cpio mtimes are 32-bit unsigned seconds"},
		{"epoch past 2106", pack("--source-date-epoch", "4294967296"), exitUsage, "out of range"},
		{"module without a tree", pack("--module", "virtio_net"), exitUsage, "--module virtio_net needs --kernel-modules DIR"},
		{"--file without DEST", pack("--file", "README.md"), exitUsage, `--file "README.md": want SOURCE:DEST`},
		{"--file outside /etc/katana", pack("--file", "README.md:/etc/hosts"), exitUsage, "DEST must be a file under /etc/katana/"},
		{"--file missing", pack("--file", "nope.toml:/etc/katana/chain.toml"), exitFail, "--file nope.toml: no such file or directory"},
		{"unknown module", pack("--kernel-modules", "k", "--module", "nosuchmod"), exitFail, `module "nosuchmod" is not in`},
		{"init not an ELF", []string{"pack", "--init", "README.md", "--payload", "katana", "-o", "out.img"}, exitFail, "init README.md: not an ELF executable"},
		{"output folder missing", []string{"pack", "--init", "guestinit", "--payload", "katana", "-o", "nope/out.img"}, exitFail,
			"-o nope/out.img: its folder nope cannot be used (no such file or directory): create it"},
		{"output folder a file", []string{"pack", "--init", "guestinit", "--payload", "katana", "-o", "README.md/out.img"}, exitFail, "README.md is not a folder"},
		{"output a folder", []string{"pack", "--init", "guestinit", "--payload", "katana", "-o", "k"}, exitFail, "k is a folder; give a file path"},
		{"build: init not a Go program", []string{"build", "--init", "katana", "--payload", "katana", "--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "bout"},
			exitFail, "--init: reading Go build info of init katana"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := hostbuild(t, dir, nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
			if strings.Contains(errOut, "encoding") {
				t.Errorf("the payload was encoded before the error:\n%s", errOut)
			}
			for _, out := range []string{"out.img", "bout"} {
				if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
					t.Errorf("a failed run left %s", out)
				}
			}
		})
	}
}

// Without --kernel-modules the initrd holds no module: a kernel that has
// virtio_net, vsock and the button driver as modules (Debian's) then boots
// a guest without eth0, agent or graceful power-off. pack and build say so
// on stderr, with -q too (it silences progress only); -h says the default
// module list needs --kernel-modules.
func TestPackWarnsWithoutKernelModules(t *testing.T) {
	dir, ovmf := stageBuild(t)
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"pack", []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "a.img"}, true},
		{"pack with modules", []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "b.img"}, false},
		{"build", []string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"}, true},
		{"build with modules", []string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
			"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := hostbuild(t, dir, nil, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			errOut = withoutNoSEVGuest(errOut)
			warned := strings.Contains(errOut, "warning: no --kernel-modules: the initrd holds no kernel module") &&
				strings.Contains(errOut, "no eth0, no attestation agent") && strings.Contains(errOut, "pass --kernel-modules DIR")
			if warned != tc.warn || (!tc.warn && errOut != "") {
				t.Errorf("stderr %q; want the warning: %v", errOut, tc.warn)
			}
		})
	}
	help, _, _ := hostbuild(t, dir, nil, "pack", "-h")
	if !strings.Contains(help, "default with --kernel-modules: virtio_pci") {
		t.Errorf("pack -h does not say the default modules need --kernel-modules:\n%s", help)
	}
}

// The first SIGINT, SIGTERM or SIGHUP cancels the command's context; a
// step that never looks at it (ignoresContextCommand; inspect was one)
// must still be ended by the second signal. Before interruptContext,
// every later signal was swallowed too and inspect of a large file ran to
// its end (about 6 s per GiB of NUL bytes).
func TestSecondSignalEndsCommand(t *testing.T) {
	type signals struct {
		first, second syscall.Signal
		gap           time.Duration // between the two
	}
	// A gap long enough for the first to be taken before the second comes
	// on a loaded machine: the runtime keeps one pending signal of a kind,
	// so a second SIGTERM that came before the first was taken would be
	// the same one (300 ms failed once, with two test runs on two cores).
	const gap = time.Second
	cases := []signals{
		{syscall.SIGINT, syscall.SIGINT, gap},
		{syscall.SIGTERM, syscall.SIGTERM, gap},
		{syscall.SIGHUP, syscall.SIGHUP, gap},
		// Back to back: the second comes before the command has given the
		// signals their default action back, and must not be lost. (Two
		// of the same signal sent at once may arrive as one.)
		{syscall.SIGINT, syscall.SIGTERM, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v then %v after %v", c.first, c.second, c.gap), func(t *testing.T) {
			if ignored(t, c.second) {
				// nohup, or a background job of a non-interactive shell:
				// the child inherits the disposition, and Go gives an
				// ignored signal back its "ignore" after the first.
				t.Skipf("skipping: %v is ignored in this process (started under nohup or as a background job?), so the command rightly ignores a second one; run the tests from a foreground shell to enable", c.second)
			}
			cmd := exec.Command(os.Args[0], ignoresContextCommand)
			cmd.Env = append(os.Environ(), "HOSTBUILD_TEST_MAIN=1", "HOSTBUILD_TEST_SIGNALS=1")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stderr)
			if !lines.Scan() || lines.Text() != signalsReady {
				t.Fatalf("child's first stderr line is %q, want %q", lines.Text(), signalsReady)
			}
			go io.Copy(io.Discard, stderr)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			cmd.Process.Signal(c.first)
			if c.gap > 0 {
				select {
				case err := <-done:
					t.Fatalf("the first %v ended the command (%v): it should only cancel the context", c.first, err)
				case <-time.After(c.gap):
				}
			}
			cmd.Process.Signal(c.second)
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok {
					t.Fatalf("command after %v and %v: %v, want death by %v", c.first, c.second, err, c.second)
				}
				// Sent back to back, the two may reach the command in
				// either order (two threads, each taking one): it dies by
				// the one it took second.
				ws := ee.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != c.second && (c.gap > 0 || ws.Signal() != c.first) {
					t.Errorf("command after %v and %v: %v, want death by %v", c.first, c.second, err, c.second)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("command still runs 10 s after %v and %v", c.first, c.second)
			}
		})
	}
}

// A pack or build stopped by a signal says so, naming the signal and what
// became of the output, not "context canceled", and leaves no output.
func TestInterruptedSaysSo(t *testing.T) {
	dir, ovmf := stageBuild(t)
	t.Chdir(dir)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(Interrupted{syscall.SIGINT})
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Error("Interrupted is not a context.Canceled")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "out.img"},
			"hostbuild pack: interrupted (SIGINT); out.img was not written (left as it was)\n"},
		{[]string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "bout"},
			"hostbuild build: interrupted (SIGINT); the files in bout are as they were\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(ctx, tc.args, &stdout, &stderr)
		if code != exitFail || stderr.String() != tc.want || strings.Contains(stderr.String(), "context canceled") {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.args[0], code, stderr.String(), exitFail, tc.want)
		}
		for _, out := range []string{"out.img", "bout/initrd.img", "bout/manifest.json"} {
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s: an interrupted run left %s", tc.args[0], out)
			}
		}
	}
}

// --module replaces the default list: README once said "add it with
// --module qemu_fw_cfg", which packed that module alone, and the guest had
// no eth0. pack and build warn, with -q too, naming each default the
// kernel has that was left out and the flags that keep them.
func TestPackWarnsWhenModuleDropsDefaults(t *testing.T) {
	dir, ovmf := stageBuild(t)
	const warn = "warning: --module replaces the default modules, and these were not packed: virtio_pci virtio_net; " +
		"without them the guest may get no eth0, no attestation agent or no graceful power-off. " +
		"To add modules to the defaults, name these too: --module virtio_pci --module virtio_net\n"
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"pack", []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "--module", "vsock", "-o", "a.img"}, true},
		{"pack naming every default", []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
			"--module", "vsock", "--module", "virtio-pci", "--module", "virtio_net", "-o", "b.img"}, false},
		{"build", []string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "--module", "vsock",
			"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := hostbuild(t, dir, nil, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := ""
			if tc.warn {
				want = "hostbuild " + tc.args[0] + ": " + warn
			}
			if errOut = withoutNoSEVGuest(errOut); errOut != want {
				t.Errorf("stderr %q; want %q", errOut, want)
			}
		})
	}
}

// pack --file puts the operator's file under /etc/katana/, as inspect
// shows, and build takes the flag too.
func TestPackFile(t *testing.T) {
	dir, ovmf := stageBuild(t)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte("chain_id = \"KATANA\"\n"), 0o644)
	sum := sha256.Sum256([]byte("chain_id = \"KATANA\"\n"))
	_, errOut, code := hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "katana",
		"--file", "config.toml:/etc/katana/chain/config.toml", "-o", "out.img")
	if code != exitOK {
		t.Fatalf("pack --file: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "file: /etc/katana/chain/config.toml (") {
		t.Errorf("pack did not say it packed the file:\n%s", errOut)
	}
	out, errOut, code := hostbuild(t, dir, nil, "inspect", "out.img")
	if code != exitOK {
		t.Fatalf("inspect: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, hex.EncodeToString(sum[:])) || !strings.Contains(out, "etc/katana/chain/config.toml") {
		t.Errorf("inspect does not list the file with its SHA-256:\n%s", out)
	}
	_, errOut, code = hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz", "--ovmf", ovmf,
		"--file", "config.toml:/etc/katana/chain/config.toml", "--exec", "katana:/usr/local/bin/vrf-server", "-o", "bout")
	if code != exitOK {
		t.Fatalf("build --file --exec: exit %d\n%s", code, errOut)
	}
	// The manifest lists both, as the guest sees them.
	side, _ := os.ReadFile(filepath.Join(dir, "katana"))
	sideSum := sha256.Sum256(side)
	m, err := manifest.Load(filepath.Join(dir, "bout", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantBuild := []manifest.OperatorFile{{Path: "/etc/katana/chain/config.toml", Size: 20, SHA256: hex.EncodeToString(sum[:])},
		{Path: "/usr/local/bin/vrf-server", Size: int64(len(side)), SHA256: hex.EncodeToString(sideSum[:])}}
	if f := m.Components.Files; f == nil || !slices.Equal(*f, wantBuild) {
		t.Errorf("build's manifest lists the operator's files %+v, want %+v", f, wantBuild)
	}
	want := wantBuild[:1]
	// So does manifest, when it reads the initrd (--payload or --init).
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out.img",
		"--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--init", "guestinit", "-o", "m.json"); code != exitOK {
		t.Fatalf("manifest: exit %d\n%s", code, errOut)
	}
	if m, err = manifest.Load(filepath.Join(dir, "m.json")); err != nil {
		t.Fatal(err)
	}
	if f := m.Components.Files; f == nil || !slices.Equal(*f, want) {
		t.Errorf("manifest --init lists the operator's files %+v, want %+v", f, want)
	}
}

// A default module named with --module that the kernel lacks is skipped
// with a warning that -q does not hide.
func TestPackWarnsNamedAbsentDefault(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	_, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--payload", "katana", "--init", "guestinit", "--kernel-modules", "k",
		"--module", "virtio_pci", "--module", "tsm", "-o", "i.img")
	if code != exitOK || !strings.Contains(errOut, "hostbuild pack: warning: --module tsm: kernel 6.9.0-t does not have it; skipped, as it is from the default list") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// withoutNoSEVGuest drops the warning that stage's module tree has no
// sev-guest driver (TestPackWarnsNoAttestationModule checks it).
func withoutNoSEVGuest(stderr string) string {
	var keep []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.Contains(l, "has no sev-guest driver") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

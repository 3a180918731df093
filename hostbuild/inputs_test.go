package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// A missing or wrong input is reported, in every command, with the flag
// that named it and the fix, before any other work: once build, measure
// and manifest said "opening kernel: open /nonexist: ..." and pack
// "payload /nonexist: stat /nonexist: ...".
func TestMissingInputsNameTheFlag(t *testing.T) {
	dir, ovmf := stageBuild(t)
	const nope = "/nonexistent/file"
	const missing = ": no such file or directory (check the path)"
	build := func(extra ...string) []string {
		args := []string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"}
		return withFlags(args, extra...)
	}
	manifestArgs := func(extra ...string) []string {
		args := []string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "vmlinuz", "--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json"}
		return withFlags(args, extra...)
	}
	measureArgs := func(extra ...string) []string {
		return withFlags([]string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", "vmlinuz"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"pack --payload", []string{"pack", "--init", "guestinit", "--payload", nope, "-o", "x.img"}, "hostbuild pack: --payload " + nope + missing},
		{"pack --init default", []string{"pack", "--payload", "katana", "-o", "x.img"},
			"hostbuild pack: --init out/guestinit" + missing[:len(missing)-1] + "; it is the default --init: 'make build' builds it, or pass --init)"},
		{"pack --ca-bundle", []string{"pack", "--init", "guestinit", "--payload", "katana", "--ca-bundle", nope, "-o", "x.img"}, "--ca-bundle " + nope + missing},
		{"pack --kernel-modules a file", []string{"pack", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "vmlinuz", "-o", "x.img"},
			"--kernel-modules vmlinuz: not a folder (check the path)"},
		{"build --kernel", build("--kernel", nope), "hostbuild build: --kernel " + nope + missing},
		{"build --ovmf", build("--ovmf", nope), "hostbuild build: --ovmf " + nope + missing},
		{"build --payload", build("--payload", nope), "hostbuild build: --payload " + nope + missing},
		{"build --kernel-modules", build("--kernel-modules", nope), "hostbuild build: --kernel-modules " + nope + missing},
		{"manifest --kernel", manifestArgs("--kernel", nope), "hostbuild manifest: --kernel " + nope + missing},
		{"manifest --initrd", manifestArgs("--initrd", nope), "hostbuild manifest: --initrd " + nope + missing},
		{"manifest --ovmf a folder", manifestArgs("--ovmf", "k"), "hostbuild manifest: --ovmf k: a folder, not a file (check the path)"},
		{"manifest --payload", manifestArgs("--payload", nope), "hostbuild manifest: --payload " + nope + missing},
		{"measure --ovmf", measureArgs("--ovmf", nope), "hostbuild measure: --ovmf " + nope + missing},
		{"measure --kernel", measureArgs("--kernel", nope), "hostbuild measure: --kernel " + nope + missing},
		{"measure --initrd", measureArgs("--initrd", nope), "hostbuild measure: --initrd " + nope + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, errOut, code := hostbuild(t, dir, nil, tc.args...)
			if code != exitFail || stdout != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, errOut, exitFail, tc.want)
			}
		})
	}
}

// README: every command's -h lists its exit codes. pack, build and cmdline
// once had no "Exit status" section; a bad --compress was exit 1 though a
// usage error.
func TestHelpListsExitStatus(t *testing.T) {
	for _, name := range []string{"pack", "build", "cmdline"} {
		help, _, code := runHB(t, name, "-h")
		if code != exitOK || !strings.Contains(help, "Exit status: 0 ") || !strings.Contains(help, "2 usage error") {
			t.Errorf("%s -h: exit %d, no \"Exit status\" section with 0 and 2:\n%s", name, code, help)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pack", "--payload", "x", "-o", "y", "--compress", "lz4"}, `--compress "lz4": want zstd, gzip, none`},
		{[]string{"pack", "--payload", "x", "-o", "y", "--payload-encoding", "raw"}, `--payload-encoding "raw": want frames or inline`},
	} {
		if _, stderr, code := runHB(t, tc.args...); code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	// "hostbuild help run" is run's help.
	if out, _, code := runHB(t, "help", "run"); code != exitOK || !strings.HasPrefix(out, "Usage: hostbuild run") {
		t.Errorf("help run: exit %d, stdout %.80q; want run's usage", code, out)
	}
	if _, errOut, code := runHB(t, "help", "rnu"); code != exitUsage || !strings.Contains(errOut, `unknown command "rnu"`) {
		t.Errorf("help rnu: exit %d, stderr %q; want a usage error naming it", code, errOut)
	}
	// version and help are listed but are no subcommands: the list.
	for _, w := range []string{"version", "help", "-h"} {
		if out, _, code := runHB(t, "help", w); code != exitOK || !strings.Contains(out, "Commands:") {
			t.Errorf("help %s: exit %d, stdout %.60q; want the list", w, code, out)
		}
	}
}

// TestCommandDispatch: hostbuild alone prints the command list and is a
// usage error; help, -h and --help print it and succeed; version and
// --version print the version; a bad flag is a usage error and -h a
// command's help, exit 0.
func TestCommandDispatch(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // prefix
		stderr     string // substring
		wantOutput bool
	}{
		{nil, exitUsage, "hostbuild dev: build, measure, launch and attest", "", true},
		{[]string{"help"}, exitOK, "hostbuild dev: build, measure, launch and attest", "", true},
		{[]string{"-h"}, exitOK, "hostbuild dev: build, measure, launch and attest", "", true},
		{[]string{"--help"}, exitOK, "hostbuild dev: build, measure, launch and attest", "", true},
		{[]string{"version"}, exitOK, "hostbuild dev\n", "", false},
		{[]string{"--version"}, exitOK, "hostbuild dev\n", "", false},
		// An argument these take none of is a mistake, not ignored.
		{[]string{"version", "extra"}, exitUsage, "", `hostbuild version: unexpected argument "extra"`, false},
		{[]string{"--version", "extra"}, exitUsage, "", `hostbuild version: unexpected argument "extra"`, false},
		{[]string{"help", "pack", "extra"}, exitUsage, "", `hostbuild help: unexpected argument "extra"`, false},
		{[]string{"help", "version"}, exitOK, "hostbuild dev: build, measure, launch and attest", "", false},
		{[]string{"run", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus", false},
		{[]string{"run", "-h"}, exitOK, "Usage: hostbuild run", "", false},
		{[]string{"run", "--plain", "-h"}, exitOK, "", "Exit status: 0 the guest powered off cleanly", false},
		{[]string{"run", "--manifest", "m.json"}, exitUsage, "", "hostbuild run: --kernel and --initrd are required\nrun 'hostbuild run -h' for the flags\n", false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runHB(t, tc.args...)
			if code != tc.code || !strings.HasPrefix(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, stdout starting %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.wantOutput {
				// Every command, sorted, with its summary.
				var names []string
				for _, l := range strings.Split(stdout, "\n") {
					if f := strings.Fields(l); len(l) > 2 && l[:2] == "  " && len(f) > 1 {
						names = append(names, f[0])
					}
				}
				want := append(slices.Sorted(maps.Keys(commands)), "version")
				if strings.Join(names, " ") != strings.Join(want, " ") {
					t.Errorf("commands listed: %q, want %q\n%s", names, want, stdout)
				}
			} else if tc.stdout == "" && stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// An output path that is one of the inputs is refused before any work,
// naming both flags, and the input is left as it was: "pack -o
// out/guestinit" once replaced the default --init with the initrd,
// "manifest -o" the initrd with the manifest, "libvirt -o" the manifest
// with the XML and "run --serial-log" truncated the kernel, all with exit 0.
// A symlink output is not its target: the atomic write replaces the link.
// A module file in --kernel-modules is an input too.
func TestOutputIsAnInput(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "katana"), filepath.Join(dir, "out", "initrd.img")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "guestinit"), filepath.Join(dir, "out", "guestinit")); err != nil {
		t.Fatal(err)
	}
	const modPath = "k/lib/modules/6.9.0-t/kernel/b/virtio_net.ko"
	if err := os.Symlink("k/lib/modules/6.9.0-t/kernel", filepath.Join(dir, "klink")); err != nil {
		t.Fatal(err)
	}
	manifestArgs := []string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "vmlinuz", "--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4"}
	f := newRunFixture(t)
	launchArgs := func(cmd string, extra ...string) []string {
		args := []string{cmd, "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "--vcpus", "1"}
		if cmd == "run" {
			args = append(args, "--plain")
		}
		return append(args, extra...)
	}
	for _, tc := range []struct {
		name, input string
		args        []string
		want        string
	}{
		{"pack -o the default --init", filepath.Join(dir, "out", "guestinit"), []string{"pack", "-q", "--payload", "katana", "-o", "out/guestinit"},
			"hostbuild pack: -o out/guestinit is also the --init file: writing it would replace that input; give another output path"},
		{"pack -o --payload by another name", filepath.Join(dir, "katana"), []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", filepath.Join(dir, "katana")},
			"hostbuild pack: -o " + filepath.Join(dir, "katana") + " is the same file as --payload katana: "},
		{"build OUTDIR/initrd.img is --payload (a hard link)", filepath.Join(dir, "katana"),
			[]string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"},
			"hostbuild build: output out/initrd.img is the same file as --payload katana: "},
		{"pack -o a module of --kernel-modules", filepath.Join(dir, modPath),
			[]string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", modPath},
			"hostbuild pack: -o " + modPath + " is a file of the --kernel-modules folder k that pack reads (a kernel module, modules.builtin or modules.builtin.modinfo): writing it would replace that input; give another output path"},
		{"pack -o a module through a symlink to the tree", filepath.Join(dir, modPath),
			[]string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "klink/b/virtio_net.ko"},
			"hostbuild pack: -o klink/b/virtio_net.ko is a file of the --kernel-modules folder k"},
		{"manifest -o --initrd", filepath.Join(dir, "vmlinuz"), append(manifestArgs, "-o", "vmlinuz"), "hostbuild manifest: -o vmlinuz is also the --kernel file"},
		{"measure --manifest-out --kernel", filepath.Join(dir, "vmlinuz"),
			[]string{"measure", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "vmlinuz", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest-out", "vmlinuz"},
			"hostbuild measure: --manifest-out vmlinuz is also the --kernel file"},
		{"libvirt -o --manifest", f.manifest, launchArgs("libvirt", "-o", f.manifest), "hostbuild libvirt: -o " + f.manifest + " is also the --manifest file"},
		{"libvirt --serial-log --kernel", f.kernel, launchArgs("libvirt", "--serial-log", f.kernel), "hostbuild libvirt: --serial-log " + f.kernel + " is also the --kernel file"},
		{"run --serial-log --initrd", f.initrd, launchArgs("run", "--serial-log", f.initrd), "hostbuild run: --serial-log " + f.initrd + " is also the --initrd file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			stdout, errOut, code := hostbuild(t, dir, nil, tc.args...)
			if code != exitFail || stdout != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, errOut, exitFail, tc.want)
			}
			if after, err := os.ReadFile(tc.input); err != nil || !bytes.Equal(after, before) {
				t.Errorf("the input %s changed (%v)", tc.input, err)
			}
		})
	}
	t.Run("an output in the module tree that pack does not read", func(t *testing.T) {
		if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "k/initrd.img"); code != exitOK {
			t.Fatalf("exit %d, stderr %q; want 0", code, errOut)
		}
		if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "k/initrd.img"); code != exitOK {
			t.Fatalf("again, over the first: exit %d, stderr %q; want 0", code, errOut)
		}
		// A symlink to a module, as an output, is replaced, not followed.
		if err := os.Symlink(filepath.Join(dir, modPath), filepath.Join(dir, "link.ko")); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(filepath.Join(dir, modPath))
		if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "link.ko"); code != exitOK {
			t.Fatalf("-o a symlink to a module: exit %d, stderr %q; want 0", code, errOut)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, modPath)); !bytes.Equal(after, before) {
			t.Error("the module behind the symlink changed")
		}
	})
	t.Run("a symlink to an input is replaced, not followed", func(t *testing.T) {
		if err := os.Symlink("vmlinuz", filepath.Join(dir, "m.json")); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(filepath.Join(dir, "vmlinuz"))
		if _, errOut, code := hostbuild(t, dir, nil, append(manifestArgs, "-o", "m.json")...); code != exitOK {
			t.Fatalf("exit %d, stderr %q; want 0", code, errOut)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "vmlinuz")); !bytes.Equal(after, before) {
			t.Error("the kernel changed")
		}
	})
}

// A --manifest that is a folder (build's -o, say) is named as such, with
// the file to give: it was "reading manifest out: read out: is a directory".
func TestManifestIsAFolder(t *testing.T) {
	f := newRunFixture(t)
	want := "manifest " + f.dir + " is a folder: give the manifest file in it (e.g. " + filepath.Join(f.dir, "manifest.json") + ", as hostbuild build writes it)"
	for _, args := range [][]string{
		{"run", "--plain", "--dry-run", "--manifest", f.dir, "--kernel", f.kernel, "--initrd", f.initrd},
		{"libvirt", "--manifest", f.dir, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3"},
		{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", f.dir},
		{"verify", "--min-tcb", "none", f.dir, "--manifest", f.dir},
	} {
		_, stderr, code := runHB(t, args...)
		if code != exitFail || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", args[0], code, stderr, exitFail, want)
		}
	}
}

// A bad flag value prints the flag package's one-line reason, after the
// command's name as every message, and a pointer to -h, not the whole help after it (60 lines for run, which hid the
// reason); a duration without its unit says what a duration looks like.
func TestBadFlagIsShort(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--stop-timeout", "90x"}, "hostbuild run: invalid value \"90x\" for flag -stop-timeout: time: unknown unit \"x\" in duration \"90x\"\n" +
			"hostbuild run: --stop-timeout takes a duration, e.g. 90s, 5m or 1h30m, or whole seconds\nrun 'hostbuild run -h' for the flags\n"},
		{[]string{"attest", "--min-tcb", "none", "--timeout", "5x"}, "hostbuild attest: invalid value \"5x\" for flag -timeout: time: unknown unit \"x\" in duration \"5x\"\n" +
			"hostbuild attest: --timeout takes a duration, e.g. 90s, 5m or 1h30m, or whole seconds\nrun 'hostbuild attest -h' for the flags\n"},
		{[]string{"pack", "--bogus"}, "hostbuild pack: flag provided but not defined: -bogus\nrun 'hostbuild pack -h' for the flags\n"},
		{[]string{"ovmf", "x.fd", "--bogus"}, "hostbuild ovmf: flag provided but not defined: -bogus\nrun 'hostbuild ovmf -h' for the flags\n"},
	} {
		_, stderr, code := runHB(t, tc.args...)
		if code != exitUsage || stderr != tc.want {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// bzImageRelease and checkBzImage read a file given to the builder:
// whatever its bytes, the release has no spaces or NULs, or is "", and
// neither panics (checkBzImage once indexed past its 0x206-byte header).
func FuzzBzImageRelease(f *testing.F) {
	f.Add(fakeBzImageRelease("6.1.0-57-amd64"))
	f.Add(fakeBzImageRelease("6.1.0\x1157-amd64\x1b[2K\u202e"))
	f.Add(fakeBzImage(""))
	f.Add([]byte("HdrS"))
	f.Add(append(make([]byte, 0x202), "HdrS\x04\x02"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "vmlinuz")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkBzImage(p); err != nil && !printable.Is(err.Error()) {
			t.Fatalf("checkBzImage prints the image's bytes raw: %q", err)
		}
		rel, err := bzImageRelease(p)
		if err != nil {
			t.Fatal(err)
		}
		// At most 256 bytes, each quoted in 4 characters at most (\x1b).
		if strings.ContainsAny(rel, " \x00") || len(rel) > 2+4*256 || !printable.Is(rel) {
			t.Fatalf("release %q", rel)
		}
		// Printed in checkKernelRelease's refusal: never raw (found by
		// fuzzing: "6.1.0\x1157-amd64", ESC and CR reached the terminal).
		if err := checkKernelRelease(p, "--kernel-modules x", "0.0.0-none"); err != nil && !printable.Is(err.Error()) {
			t.Fatalf("checkKernelRelease prints the image's bytes raw: %q", err)
		}
	})
}

// run --stop-timeout takes whole seconds as cmdline --stop-timeout and
// katana.stop_timeout do (run once refused "90" that cmdline took).
func TestSecondsOrDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90": 90 * time.Second, "1m30s": 90 * time.Second, "0": 0, "250ms": 250 * time.Millisecond} {
		var d time.Duration
		if err := (secondsOrDuration{&d}).Set(in); err != nil || d != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"90x", "", "1.5", "-5"} {
		var d time.Duration
		if err := (secondsOrDuration{&d}).Set(in); err == nil {
			t.Errorf("Set(%q) = %v, want an error", in, d)
		}
	}
}

// A panic of the main goroutine exits 1 (a bug), with the panic and where
// it happened, not the runtime's 2 (which is the usage error's).
func TestExitOnPanic(t *testing.T) {
	var stderr strings.Builder
	code := -1
	func() {
		defer exitOnPanic(&stderr, func(c int) { code = c })
		var m map[string]int
		m["x"] = 1 // assignment to entry in nil map
	}()
	if code != exitFail || !strings.HasPrefix(stderr.String(), "hostbuild: internal error (a bug, please report it with this text): assignment to entry in nil map\n") ||
		!strings.Contains(stderr.String(), "TestExitOnPanic") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	// Without a panic it does nothing.
	code = -1
	func() { defer exitOnPanic(&stderr, func(c int) { code = c }) }()
	if code != -1 {
		t.Errorf("exit %d without a panic", code)
	}
}

// The help names what a duration flag takes (a flag.Value's placeholder is
// "value" unless its usage backquotes one).
func TestHelpNamesDurationFlags(t *testing.T) {
	for cmd, want := range map[string]string{"run": "-ready-timeout duration", "attest": "-timeout duration"} {
		help, _, _ := runHB(t, cmd, "-h")
		if !strings.Contains(help, want) {
			t.Errorf("%s -h lacks %q", cmd, want)
		}
	}
}

// Required flags left out are named, and only those.
func TestMissingFlagsNamedAlone(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--payload", "k", "--ovmf", "o"}, "hostbuild build: --kernel and -o are required\n"},
		{[]string{"run", "--kernel", "k"}, "hostbuild run: --manifest and --initrd are required\n"},
		{[]string{"libvirt", "--manifest", "m", "--ovmf", "o", "--kernel", "k", "--initrd", "i"}, "hostbuild libvirt: --cid is required\n"},
		{[]string{"pack", "--payload", "k"}, "hostbuild pack: -o is required\n"},
		{[]string{"manifest", "--ovmf", "o", "--cmdline", "x"}, "hostbuild manifest: --kernel, --initrd, --vcpus, --vcpu-type and -o are required\n"},
		{[]string{"reproduce"}, "hostbuild reproduce: --manifest, --ovmf, --kernel and --initrd are required\n"},
	} {
		_, stderr, code := runHB(t, tc.args...)
		if code != exitUsage || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// Text from the files given to the builder reaches the terminal quoted:
// a kernel image's release (build and manifest printed it raw in their
// release-mismatch refusal) and a module's softdep= words (pack's warning),
// where ESC, CR and U+202E could erase and forge lines (found by review).
func TestInputTextEscaped(t *testing.T) {
	const evil = "6.9.1\x1b[2K\rhostbuild:\u202eOK"
	dir, ovmf := stageBuild(t)
	if err := os.WriteFile(filepath.Join(dir, "evil"), fakeBzImageRelease(evil), 0o644); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "kv/lib/modules/6.9.0-t/kernel/virtio.ko")
	if err := os.MkdirAll(filepath.Dir(mod), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, testelf.Module("depends=", "name=virtio", "vermagic=6.9.0-t SMP preempt mod_unload modversions ", "softdep=pre: evil"+evil[5:]), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "kv",
		"--module", "virtio", "--kernel", "evil", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "bad")
	if code != exitUsage && code != exitFail || !strings.Contains(errOut, `is kernel release "6.9.1\x1b[2K\rhostbuild:\u202eOK"`) {
		t.Errorf("build with a kernel of another release: exit %d, stderr %q; want the release quoted", code, errOut)
	}
	buildOut := errOut
	_, errOut, code = hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "kv",
		"--module", "virtio", "-o", "out.img")
	if code != exitOK || !strings.Contains(errOut, `soft dependency "evil\x1b[2K"`) {
		t.Errorf("pack: exit %d, stderr %q; want the softdep warning with the name quoted", code, errOut)
	}
	for _, out := range []string{buildOut, errOut} {
		if strings.ContainsAny(out, "\x1b\r\u202e") {
			t.Errorf("raw control characters from the input files on stderr: %q", out)
		}
	}
}

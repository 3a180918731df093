package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
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
		return append(args, extra...)
	}
	manifestArgs := func(extra ...string) []string {
		args := []string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "vmlinuz", "--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json"}
		return append(args, extra...)
	}
	measureArgs := func(extra ...string) []string {
		return append([]string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", "vmlinuz"}, extra...)
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
		_, stderr, code := runHB(t, name, "-h")
		if code != exitOK || !strings.Contains(stderr, "Exit status: 0 ") || !strings.Contains(stderr, "2 usage error") {
			t.Errorf("%s -h: exit %d, no \"Exit status\" section with 0 and 2:\n%s", name, code, stderr)
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
		{[]string{"run", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus", false},
		{[]string{"run", "-h"}, exitOK, "", "Exit status: 0 the guest powered off cleanly", false},
		{[]string{"run", "--manifest", "m.json"}, exitUsage, "", "hostbuild run: --manifest, --kernel and --initrd are required\nrun 'hostbuild run -h' for the flags\n", false},
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

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodBuild stages a build's inputs (stageBuild) and builds into
// abs("out") once: abs names a staged input, args gives that build's
// command line with extra flags, and previous holds the files it wrote.
func goodBuild(t *testing.T) (abs func(string) string, ovmf string, args func(...string) []string, previous map[string][]byte) {
	t.Helper()
	dir, ovmf := stageBuild(t)
	abs = func(name string) string { return filepath.Join(dir, name) }
	args = func(extra ...string) []string {
		return append([]string{"build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
			"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", abs("out")}, extra...)
	}
	if code, _, errOut := runCmd(t, "", args()...); code != exitOK {
		t.Fatalf("good build: exit %d\n%s", code, errOut)
	}
	previous = map[string][]byte{}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		b, err := os.ReadFile(abs("out/" + n))
		if err != nil {
			t.Fatal(err)
		}
		previous[n] = b
	}
	return abs, ovmf, args, previous
}

// A failed build leaves the previous files as they were (README), also
// when it fails while moving the new ones in: the previous manifest was
// removed first and the files renamed one by one, so a rename failing
// half-way left the new initrd, the old cmdline and no manifest.
func TestBuildMoveFailureKeepsPreviousOutputs(t *testing.T) {
	abs, _, args, before := goodBuild(t)
	kept := func(what string) {
		t.Helper()
		for n, b := range before {
			if after, err := os.ReadFile(abs("out/" + n)); err != nil || !bytes.Equal(after, b) {
				t.Errorf("%s: previous %s not kept (err %v, %d bytes, was %d)", what, n, err, len(after), len(b))
			}
		}
		if ents, _ := filepath.Glob(abs("out/.build-*")); len(ents) != 0 {
			t.Errorf("%s: left %v", what, ents)
		}
	}

	// The new cmdline's rename fails, after the new initrd's.
	for _, failOn := range []string{buildInitrd, buildCmdline, buildManifest} {
		buildRename = func(oldpath, newpath string) error {
			if filepath.Base(oldpath) == failOn && strings.Contains(oldpath, buildTmpPrefix) {
				return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errors.New("injected failure")}
			}
			return os.Rename(oldpath, newpath)
		}
		code, _, errOut := runCmd(t, "", args("--args", "--other")...)
		buildRename = os.Rename
		if code != exitFail || !strings.Contains(errOut, "injected failure") || !strings.Contains(errOut, "(the previous files in "+abs("out")+" are as they were)") {
			t.Errorf("rename of %s failing: exit %d: %s", failOn, code, errOut)
		}
		kept("rename of " + failOn + " failing")
	}

	// A folder that appears where the cmdline goes while the build runs
	// (after its first check of the outputs) is refused before anything
	// moves, and left alone.
	buildPacked = func() {
		os.Remove(abs("out/cmdline"))
		os.MkdirAll(abs("out/cmdline/x"), 0o755)
	}
	defer func() { buildPacked = func() {} }()
	code, _, errOut := runCmd(t, "", args("--args", "--other")...)
	if code != exitFail || !strings.Contains(errOut, abs("out/cmdline")+" is a folder, not a file: move it away") {
		t.Errorf("a folder where the cmdline goes: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(abs("out/cmdline/x")); err != nil {
		t.Errorf("the folder in the way was touched: %v", err)
	}
	delete(before, buildCmdline)
	kept("a folder in the way")
}

// moveOutputs alone: a previous file that cannot be kept as a hard link
// (a file system without them, or fs.protected_hardlinks refusing another
// user's read-only initrd: emulated by the name being taken in tmp) is
// renamed aside instead, and put back like the others when a later rename
// fails. And when putting one back fails too, the previous manifest stays
// out: it would describe files that are not there (it was put back beside
// the new initrd).
func TestMoveOutputsWithoutHardLinks(t *testing.T) {
	setup := func(t *testing.T) (out, tmp string) {
		out, tmp = moveFixture(t, true)
		os.WriteFile(filepath.Join(tmp, buildInitrd+".previous"), nil, 0o644) // os.Link(out/initrd.img, ...) fails
		return out, tmp
	}
	contents := func(out string) map[string]string {
		m := map[string]string{}
		for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
			if b, err := os.ReadFile(filepath.Join(out, n)); err == nil {
				m[n] = string(b)
			}
		}
		return m
	}
	t.Cleanup(func() { buildRename = os.Rename })

	t.Run("a later rename fails", func(t *testing.T) {
		out, tmp := setup(t)
		buildRename = func(o, n string) error {
			if filepath.Base(o) == buildCmdline && filepath.Dir(o) == tmp {
				return &os.LinkError{Op: "rename", Old: o, New: n, Err: errors.New("injected")}
			}
			return os.Rename(o, n)
		}
		err := moveOutputs(tmp, out)
		if err == nil || !strings.Contains(err.Error(), "are as they were") {
			t.Fatalf("moveOutputs: %v", err)
		}
		for n, b := range contents(out) {
			if b != "old "+n {
				t.Errorf("%s is %q after the failure, want the previous one", n, b)
			}
		}
		if len(contents(out)) != 3 {
			t.Errorf("left %v, want the three previous files", contents(out))
		}
	})
	t.Run("putting one back fails too", func(t *testing.T) {
		out, tmp := setup(t)
		buildRename = func(o, n string) error {
			if filepath.Base(o) == buildCmdline && filepath.Dir(o) == tmp ||
				filepath.Base(o) == buildInitrd+".previous" {
				return &os.LinkError{Op: "rename", Old: o, New: n, Err: errors.New("injected")}
			}
			return os.Rename(o, n)
		}
		err := moveOutputs(tmp, out)
		if err == nil || !strings.Contains(err.Error(), "is not as it was and has no manifest, build again") {
			t.Fatalf("moveOutputs: %v", err)
		}
		if got := contents(out); got[buildManifest] != "" {
			t.Errorf("left %v: the previous manifest is back without its initrd", got)
		}
	})
}

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A failed build leaves the previous files as they were (README), also
// when it fails while moving the new ones in: the previous manifest was
// removed first and the files renamed one by one, so a rename failing
// half-way left the new initrd, the old cmdline and no manifest.
func TestBuildMoveFailureKeepsPreviousOutputs(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	args := func(extra ...string) []string {
		return append([]string{"build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
			"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", abs("out")}, extra...)
	}
	if code, _, errOut := runCmd(t, "", args()...); code != exitOK {
		t.Fatalf("good build: exit %d\n%s", code, errOut)
	}
	before := map[string][]byte{}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		b, err := os.ReadFile(abs("out/" + n))
		if err != nil {
			t.Fatal(err)
		}
		before[n] = b
	}
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

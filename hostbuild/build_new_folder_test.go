package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A build that fails once it has made its -o folder (and the folders
// above it that did not exist) left them behind, empty: a failed build
// must leave nothing, and a folder it made is something.
func TestFailedBuildLeavesNoNewFolder(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	out := abs("new/launch")
	code, _, errOut := runCmd(t, "", "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--module", "no_such_module", "--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", out)
	if code != exitFail || !strings.Contains(errOut, "no_such_module") {
		t.Fatalf("build with an unknown module: exit %d, want %d naming it:\n%s", code, exitFail, errOut)
	}
	if _, err := os.Lstat(abs("new")); err == nil {
		t.Errorf("the failed build left %s, which it made (want nothing)", abs("new"))
	}

	// A folder that was there before stays, empty or not.
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "", "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--module", "no_such_module", "--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", out)
	if code != exitFail {
		t.Fatalf("build with an unknown module: exit %d:\n%s", code, errOut)
	}
	if fi, err := os.Stat(out); err != nil || !fi.IsDir() {
		t.Errorf("the failed build removed %s, which was there before it: %v", out, err)
	}
}

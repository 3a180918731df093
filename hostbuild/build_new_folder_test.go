package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// missingFolders names each folder MkdirAll makes once, deepest first,
// whatever the spelling of -o: a trailing slash or a "." is no folder of
// its own (a name given twice would stop the removal at the second, gone,
// and leave the parents).
func TestMissingFolders(t *testing.T) {
	dir := t.TempDir()
	want := []string{filepath.Join(dir, "new/launch"), filepath.Join(dir, "new")}
	for _, out := range []string{dir + "/new/launch", dir + "/new/launch/", dir + "/new/./launch//"} {
		if got := missingFolders(out); !slices.Equal(got, want) {
			t.Errorf("missingFolders(%q) = %q, want %q", out, got, want)
		}
	}
	if got := missingFolders(dir); len(got) != 0 {
		t.Errorf("missingFolders of a folder that exists = %q, want none", got)
	}
}

// A failed build removes only the folders it made that are empty: what
// another program put in one meanwhile stays, and so does the folder.
func TestFailedBuildKeepsOthersFilesInItsNewFolder(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	out := abs("new/launch")
	other := filepath.Join(out, "notes.txt")
	buildPacked = func() { os.WriteFile(other, []byte("not the build's\n"), 0o644) }
	buildRename = func(oldpath, newpath string) error {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errors.New("injected failure")}
	}
	defer func() { buildPacked, buildRename = func() {}, os.Rename }()
	code, _, errOut := runCmd(t, "", "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", out)
	if code != exitFail || !strings.Contains(errOut, "injected failure") {
		t.Fatalf("build whose renames fail: exit %d, want %d:\n%s", code, exitFail, errOut)
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "not the build's\n" {
		t.Errorf("the failed build removed %s, which it did not write: %q, %v", other, b, err)
	}
}

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A build killed between making its temporary folder and marking it as
// locked leaves an empty, unmarked .build-N.tmp. Every build holds the
// output folder's lock while it runs, so the next build, holding it, knows
// no build of this version is setting that folder up: it removes it and
// says so. One that is not empty is left alone (it is not what a build
// setting up looks like).
func TestBuildRemovesEmptyUnmarkedBuildFolder(t *testing.T) {
	dir, ovmf := stageBuild(t)
	out := filepath.Join(dir, "launch")
	empty := filepath.Join(out, buildTmpPrefix+"7.tmp")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "build", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "launch")
	if code != exitOK {
		t.Fatalf("build: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the empty folder %s of a build killed as it started is still there (%v)", empty, err)
	}
	if !strings.Contains(errOut, "removed "+buildTmpPrefix+"7.tmp") {
		t.Errorf("build did not say it removed the folder:\n%s", errOut)
	}
}

// removeStaleBuildDirs leaves an empty unmarked folder whose lock another
// process holds (a build of an older version, setting it up).
func TestRemoveStaleBuildDirsKeepsLockedEmptyFolder(t *testing.T) {
	out := t.TempDir()
	d := filepath.Join(out, buildTmpPrefix+"8.tmp")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := flockDir(d)
	if err != nil {
		t.Fatal(err)
	}
	removeStaleBuildDirs(out, t.Logf)
	if _, err := os.Stat(d); err != nil {
		t.Errorf("a locked, empty build folder was removed: %v", err)
	}
	f.Close()
	removeStaleBuildDirs(out, t.Logf)
	if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unlocked, empty, unmarked build folder is still there (%v)", err)
	}
}

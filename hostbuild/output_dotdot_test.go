package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// "pack -o missing/../initrd.img": the kernel cannot resolve the path
// (missing does not exist), so the output is refused before any work,
// naming its folder, as for any missing folder. The check looked at
// filepath.Dir's lexical folder (".") and passed: pack did all its work
// and failed at the final rename, naming its temporary file.
func TestPackOutputThroughMissingFolderRefusedFirst(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	_, stderr, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "missing/../initrd.img")
	if code != exitFail || !strings.Contains(stderr, "its folder missing/.. cannot be used") || strings.Contains(stderr, ".tmp") {
		t.Errorf("pack -o missing/../initrd.img: exit %d, stderr %q; want exit %d refusing the folder missing/.. before any work", code, stderr, exitFail)
	}
	if _, err := os.Lstat(dir + "/initrd.img"); err == nil {
		t.Errorf("pack wrote %s/initrd.img", dir)
	}
}

// "build -o a/../launch": the kernel goes through a, and mkdir -p made it;
// a failed build left it behind (the folders it removes were listed from
// the lexically cleaned path, "launch"). And with a a symlink the kernel's
// a/.. is its target's parent: build made its folder and temporary folder
// there but wrote into the lexical one, failing with "open
// launch/.build-N.tmp/.locked: no such file or directory" and leaving the
// folder it made.
func TestBuildOutputThroughDotDot(t *testing.T) {
	t.Run("missing folder", func(t *testing.T) {
		dir, ovmf := stageBuild(t)
		abs := func(name string) string { return filepath.Join(dir, name) }
		before, _ := os.ReadDir(dir)
		code, _, errOut := runCmd(t, "", "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
			"--module", "no_such_module", "--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", dir+"/a/../launch")
		if code != exitFail || !strings.Contains(errOut, "no_such_module") {
			t.Fatalf("build with an unknown module: exit %d, want %d naming it:\n%s", code, exitFail, errOut)
		}
		if after, _ := os.ReadDir(dir); len(after) != len(before) {
			t.Errorf("the failed build left %v in %s (was %v): want nothing new", after, dir, before)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir, ovmf := stageBuild(t)
		abs := func(name string) string { return filepath.Join(dir, name) }
		if err := os.MkdirAll(abs("x/y"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("x/y", abs("link")); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCmd(t, "", "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
			"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", dir+"/link/../launch")
		if code != exitOK {
			t.Fatalf("build -o link/../launch: exit %d:\n%s", code, errOut)
		}
		for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
			if _, err := os.Stat(abs("x/launch/" + n)); err != nil {
				t.Errorf("%s not where the kernel resolves link/../launch: %v", n, err)
			}
		}
		if _, err := os.Lstat(abs("launch")); err == nil {
			t.Errorf("build made %s, which link/../launch does not name", abs("launch"))
		}
	})
}

// outFolder changes only a path with ".." after a folder name, to what
// the kernel resolves (the existing part) and mkdir -p makes (the rest).
func TestOutFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/x/y", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x/y", dir+"/link"); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		dir + "/new/launch":         dir + "/new/launch",
		dir + "/./new//launch/":     dir + "/./new//launch/",
		"../launch":                 "../launch",
		"../../launch":              "../../launch",
		dir + "/a/../launch":        dir + "/launch",
		dir + "/a/b/../../launch":   dir + "/launch",
		dir + "/x/../launch":        dir + "/launch",
		dir + "/link/../launch":     dir + "/x/launch",
		dir + "/link/new/../launch": dir + "/x/y/launch",
		dir + "/link/../../launch/": dir + "/launch",
	} {
		if got := outFolder(in); got != want {
			t.Errorf("outFolder(%q) = %q, want %q", in, got, want)
		}
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Makefile's VERSION, which build records in every manifest, is the
// same wherever a commit is built (its comment says so): also in a clone
// that has a release tag on it and one that does not (a shallow or
// --no-tags CI clone). git describe named the tag in one and the commit
// in the other.
func TestMakeVersionSameWithOrWithoutTags(t *testing.T) {
	_, git, version := versionClone(t)
	plain := version()
	git("tag", "-a", "-m", "a release", "v9.9.9")
	if tagged := version(); tagged != plain {
		t.Errorf("VERSION is %q in a clone without tags and %q once the commit is tagged: manifests written from one commit differ by clone", plain, tagged)
	}
}

// A Go file git does not track is compiled into the init (or hostbuild)
// all the same: the bytes, and the launch measurement, are no longer the
// commit's, and git describe --dirty, which looks at tracked files only,
// did not say so. Untracked test files and testdata are not built.
func TestMakeVersionDirtyWithUntrackedGoFile(t *testing.T) {
	clone, _, version := versionClone(t)
	clean := version()
	if strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("VERSION of a fresh clone is %q", clean)
	}
	for _, f := range []string{"guestinit/extra_test.go", "guestinit/testdata/x.go"} {
		writeUntracked(t, filepath.Join(clone, f))
	}
	if v := version(); v != clean {
		t.Errorf("with an untracked test file and testdata, VERSION is %q, want %q (neither is built)", v, clean)
	}
	for _, f := range []string{"guestinit/extra.go", "shared/bootcfg/asm_amd64.s"} {
		p := filepath.Join(clone, f)
		writeUntracked(t, p)
		if v := version(); v != clean+"-dirty" {
			t.Errorf("with an untracked %s, VERSION is %q, want %q", f, v, clean+"-dirty")
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

func writeUntracked(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// versionClone clones this checkout (without tags) with this checkout's
// Makefile committed in it, and returns the clone, a git runner in it, and
// a function that reads the Makefile's VERSION there (the one hostbuild is
// linked with). It skips without git, make or a git checkout.
func versionClone(t *testing.T) (clone string, git func(args ...string) string, version func() string) {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not on PATH")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH: the test reads the Makefile's VERSION (apt-get install make; .ci/deps.sh does)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout: VERSION is dev")
	}
	clone = filepath.Join(t.TempDir(), "clone")
	run := func(dir, bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q in %s: %v\n%s", bin, args, dir, err, out)
		}
		return string(out)
	}
	run(root, gitBin, "-c", "safe.directory=*", "clone", "-q", "--no-tags", root, clone)
	// This checkout's Makefile, committed in the clone (which has HEAD's).
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clone, "Makefile"), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	run(clone, gitBin, "commit", "-q", "--allow-empty", "-a", "-m", "this checkout's Makefile")
	git = func(args ...string) string { t.Helper(); return run(clone, gitBin, args...) }
	version = func() string {
		t.Helper()
		// -n prints the recipes, with the version hostbuild is linked with.
		m := regexp.MustCompile(`main\.version=([^' ]*)`).FindStringSubmatch(run(clone, makeBin, "-n", "OUT="+t.TempDir(), "build"))
		if m == nil {
			t.Fatal("make -n build: no -X main.version=")
		}
		return m[1]
	}
	return clone, git, version
}

// Untracked files go never builds do not mark VERSION dirty: a vendor
// folder (`go mod vendor`, for an offline build: the Makefile builds with
// -mod=readonly, from the modules go.sum pins, vendor folder or not), a
// file whose name starts with "." or "_" (an editor's lock file, .#main.go),
// or one in a folder whose name starts with "." (the .cache folder).
func TestMakeVersionCleanWithFilesGoIgnores(t *testing.T) {
	clone, _, version := versionClone(t)
	clean := version()
	if strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("VERSION of a fresh clone is %q", clean)
	}
	for _, f := range []string{"vendor/golang.org/x/sys/unix/asm_linux_amd64.s", "vendor/golang.org/x/sys/unix/syscall.go",
		"guestinit/.#main.go", "guestinit/_scratch.go", ".cache/tool/main.go"} {
		writeUntracked(t, filepath.Join(clone, f))
		if v := version(); v != clean {
			t.Errorf("with an untracked %s, which go does not build, VERSION is %q, want %q", f, v, clean)
		}
	}
}

// A checkout whose path has a single quote (/home/o'brien/snpboot) gets
// the same VERSION as any other: the path is quoted for the shell, not
// cut short by its quote (a shell syntax error, and a hostbuild linked
// with an empty version, recorded in every manifest it writes).
func TestMakeVersionInPathWithQuote(t *testing.T) {
	clone, git, version := versionClone(t)
	want := version()
	quoted := filepath.Join(t.TempDir(), "o'brien")
	git("clone", "-q", clone, quoted)
	cmd := exec.Command("make", "-n", "OUT="+t.TempDir(), "build")
	cmd.Dir = quoted
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build in %q: %v\n%s", quoted, err, out)
	}
	m := regexp.MustCompile(`main\.version=([^' ]*)`).FindStringSubmatch(string(out))
	if m == nil || m[1] != want {
		t.Errorf("make -n build in %q: VERSION %q, want %q\n%s", quoted, m, want, out)
	}
}

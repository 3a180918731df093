package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Files git does not track (so git status may hide them, and `git
// describe --dirty`, the version, ignores them) must not change the init's
// bytes, its launch measurement: each test builds the init with make guest
// from this checkout and from a copy with such a file, and compares.

// copyCheckout copies what make guest reads to a fresh folder and returns
// it, with the make and go binaries; it skips without them.
func copyCheckout(t *testing.T) (root, copyRoot, makeBin, goBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping two builds of the init (run without -short to include it)")
	}
	var err error
	if goBin, err = exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH: cannot build the init (make test puts /usr/local/go/bin on PATH)")
	}
	if makeBin, err = exec.LookPath("make"); err != nil {
		t.Skip("make not on PATH: the test builds with the Makefile's recipe (apt-get install make; .ci/deps.sh does)")
	}
	if root, err = filepath.Abs(".."); err != nil {
		t.Fatal(err)
	}
	copyRoot = filepath.Join(t.TempDir(), "checkout")
	if err := os.Mkdir(copyRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"Makefile", "go.mod", "go.sum", "guestinit", "shared", "initrd-layout"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(root, p), filepath.Join(copyRoot, p)).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", p, err, out)
		}
	}
	return root, copyRoot, makeBin, goBin
}

// makeGuest builds the init in dir with make guest and returns its bytes.
func makeGuest(t *testing.T, makeBin, dir string) []byte {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(makeBin, "-s", "--no-print-directory", "OUT="+out, "VERSION=test", "guest")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make guest in %s: %v\n%s", dir, err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "guestinit"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A vendor folder beside go.mod (`go mod vendor`, as an operator who
// builds offline makes one) switches go build to -mod=vendor by itself:
// the init is then other bytes (its build info lists no module sums), and
// the manifest's init_build_info shows no difference. make guest builds
// from the modules go.sum pins, vendor folder or not.
func TestGuestBuildIgnoresVendorFolder(t *testing.T) {
	root, copyRoot, makeBin, goBin := copyCheckout(t)
	// From the module cache the other builds use: no network.
	vendor := exec.Command(goBin, "mod", "vendor")
	vendor.Dir = copyRoot
	vendor.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Skipf("go mod vendor (needs the modules in the module cache): %v\n%s", err, out)
	}
	if !bytes.Equal(makeGuest(t, makeBin, root), makeGuest(t, makeBin, copyRoot)) {
		t.Errorf("the init built beside a vendor folder (%s) differs from the one built without (%s): the measurement would depend on an untracked folder", copyRoot, root)
	}
}

// The init embeds initrd-layout's /etc files: a stray file beside them (an
// editor's backup, passwd~, or patch's passwd.orig: not named by
// layout.txt, never packed) must not be embedded too.
func TestGuestBuildIgnoresStrayLayoutFiles(t *testing.T) {
	root, copyRoot, makeBin, _ := copyCheckout(t)
	for _, name := range []string{"passwd~", "hosts.orig"} {
		if err := os.WriteFile(filepath.Join(copyRoot, "initrd-layout", "etc", name), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(makeGuest(t, makeBin, root), makeGuest(t, makeBin, copyRoot)) {
		t.Errorf("the init built with stray files in %s differs from the one built without (%s): the measurement would depend on files the layout does not name", filepath.Join(copyRoot, "initrd-layout", "etc"), root)
	}
}

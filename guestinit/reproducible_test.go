package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The init binary is part of the launch measurement, so its bytes must not
// depend on where or how it is built. Build it with the Makefile's own
// recipe (make guest), twice: from this checkout, and from a copy of the
// sources at another path with another time zone, locale, umask and
// GOMAXPROCS, an empty build cache (so the compiler really runs again),
// GOFLAGS, GOEXPERIMENT, GOFIPS140 and GOAMD64 (in the environment and
// in a `go env -w` file), and a go.work above the copy whose godebug line
// would change the bytes if the recipe let them through. Both must be
// identical.
func TestGuestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping two builds of the init (run without -short to include it)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH: cannot build the init (make test puts /usr/local/go/bin on PATH)")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH: the test builds with the Makefile's recipe (apt-get install make; .ci/deps.sh does)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	copyRoot := filepath.Join(elsewhere, "checkout")
	for _, p := range []string{"Makefile", "go.mod", "go.sum", "guestinit", "shared", "initrd-layout"} {
		if out, err := exec.Command("mkdir", "-p", filepath.Dir(filepath.Join(copyRoot, p))).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(root, p), filepath.Join(copyRoot, p)).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", p, err, out)
		}
	}
	build := func(dir string, env ...string) string {
		out := t.TempDir()
		cmd := exec.Command("sh", "-c", `umask "$UMASK_FOR_TEST" && exec "$0" "$@"`, makeBin, "-s", "--no-print-directory", "OUT="+out, "VERSION=test", "guest")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make guest in %s: %v\n%s", dir, err, b)
		}
		b, err := os.ReadFile(filepath.Join(out, "guestinit"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	a := build(root, "UMASK_FOR_TEST=022", "TZ=UTC", "LC_ALL=C", "GOMAXPROCS=2", "GOFLAGS=", "GOAMD64=v1")
	// Settings saved with `go env -w` live in GOENV's file, which go reads
	// for a variable the environment leaves empty.
	goenv := filepath.Join(t.TempDir(), "go.env")
	if err := os.WriteFile(goenv, []byte("GOFLAGS=-gcflags=all=-N\nGOEXPERIMENT=nocoverageredesign\nGOFIPS140=latest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// go looks for go.work in every folder above the module: its godebug
	// line changes the init's default GODEBUG (and so its bytes).
	work := []byte("go 1.26.0\n\nuse ./checkout\n\ngodebug panicnil=1\n")
	if err := os.WriteFile(filepath.Join(elsewhere, "go.work"), work, 0o644); err != nil {
		t.Fatal(err)
	}
	b := build(copyRoot, "UMASK_FOR_TEST=077", "TZ=Asia/Kathmandu", "LC_ALL=de_DE.UTF-8", "GOMAXPROCS=1", "GOCACHE="+t.TempDir(),
		"GOFLAGS=-tags=netgo -gcflags=all=-N", "GOEXPERIMENT=nocoverageredesign", "GOAMD64=v3", "GOFIPS140=latest", "GOENV="+goenv)
	if a != b {
		t.Errorf("the init built from %s is %s, from %s %s: the measurement would depend on the build machine", root, a, copyRoot, b)
	}
}

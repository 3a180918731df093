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
// depend on where or how it is built. Build it as the Makefile does, twice:
// from this checkout, and from a copy of the sources at another path with
// another time zone, locale, umask and GOMAXPROCS, and an empty build cache
// (so the compiler really runs again). Both must be identical.
func TestGuestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping two builds of the init (run without -short to include it)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH: cannot build the init (make test puts /usr/local/go/bin on PATH)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	copyRoot := filepath.Join(t.TempDir(), "elsewhere", "checkout")
	for _, p := range []string{"go.mod", "go.sum", "guestinit", "shared", "initrd-layout"} {
		if out, err := exec.Command("mkdir", "-p", filepath.Dir(filepath.Join(copyRoot, p))).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(root, p), filepath.Join(copyRoot, p)).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", p, err, out)
		}
	}
	build := func(dir string, env ...string) string {
		out := filepath.Join(t.TempDir(), "guestinit")
		// The flags of the Makefile's build target.
		cmd := exec.Command("sh", "-c", `umask "$UMASK_FOR_TEST" && exec "$0" "$@"`, goBin, "build",
			"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "./guestinit")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1"}, env...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build in %s: %v\n%s", dir, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	a := build(root, "UMASK_FOR_TEST=022", "TZ=UTC", "LC_ALL=C", "GOMAXPROCS=2")
	b := build(copyRoot, "UMASK_FOR_TEST=077", "TZ=Asia/Kathmandu", "LC_ALL=de_DE.UTF-8", "GOMAXPROCS=1", "GOCACHE="+t.TempDir())
	if a != b {
		t.Errorf("the init built from %s is %s, from %s %s: the measurement would depend on the build machine", root, a, copyRoot, b)
	}
}

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A run killed between linking its new output under a temporary name
// (.NAME.N.tmp) and renaming it over the previous file leaves that
// temporary file. The next run writing the same output removes it (nobody
// holds its lock: the run that made it is gone) and says so; other names
// are left alone.
func TestPackRemovesKilledRunsTemporary(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	args := []string{"pack", "-q", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "k", "-o", "out.img"}
	if _, errOut, code := hostbuild(t, dir, nil, args...); code != exitOK {
		t.Fatalf("first pack: exit %d: %s", code, errOut)
	}
	left := filepath.Join(dir, ".out.img.4242.tmp")
	others := []string{".out.img.x1.tmp", ".other.img.4242.tmp", "out.img.4242.tmp"}
	for _, n := range append([]string{filepath.Base(left)}, others...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("a complete initrd of a killed run"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code := hostbuild(t, dir, nil, args...)
	if code != exitOK {
		t.Fatalf("second pack: exit %d: %s", code, errOut)
	}
	if _, err := os.Lstat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed run's %s is still there (%v)", left, err)
	}
	if !strings.Contains(errOut, "removed .out.img.4242.tmp beside out.img") {
		t.Errorf("pack did not say it removed %s:\n%s", left, errOut)
	}
	for _, n := range others {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, not a temporary file of out.img, was removed: %v", n, err)
		}
	}
}

package main

import (
	"os"
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

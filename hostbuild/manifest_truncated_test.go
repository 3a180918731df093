package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pack-made initrd cut short (an interrupted copy) given to manifest
// without --payload/--init was taken for "not an initrd this tool reads":
// the manifest was written, exit 0, without a word, as if another builder
// had made it, while inspect and diff reject the same file ("truncated
// data"). It is still recorded by its bytes (another builder's archive may
// be one the kernel reads), with a warning.
func TestManifestTruncatedInitrd(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "i.img"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cut.img"), b[:len(b)-1000], 0o644)
	if _, errOut, code := hostbuild(t, dir, nil, "inspect", "cut.img"); code == exitOK {
		t.Fatalf("inspect accepts the cut initrd:\n%s", errOut)
	}
	_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "cut.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json")
	if code != exitOK || !strings.Contains(errOut, "hostbuild manifest: warning: --initrd cut.img is an initrd archive, but a broken one: ") || !strings.Contains(errOut, "truncated") {
		t.Errorf("manifest of a truncated hostbuild initrd: exit %d, no warning naming it:\n%s", code, errOut)
	}
	// The whole one: no warning.
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m2.json"); code != exitOK || strings.Contains(errOut, "warning") {
		t.Errorf("manifest of the whole initrd: exit %d:\n%s", code, errOut)
	}
}

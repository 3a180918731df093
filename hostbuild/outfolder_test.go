package main

import (
	"strings"
	"testing"
)

// TestOutputIsAFolder: an existing folder given as the output file is
// refused naming it, not with "rename ...: file exists" after the work.
func TestOutputIsAFolder(t *testing.T) {
	f := newRunFixture(t)
	out := t.TempDir()
	for _, args := range [][]string{
		{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "-o", out},
		{"manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out},
		{"measure", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--append", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest", out},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, stderr, code := runHB(t, args...)
			if code != exitFail || !strings.Contains(stderr, out+" is a folder; give a file path") || strings.Contains(stderr, "file exists") {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitFail, out+" is a folder; give a file path")
			}
		})
	}
	t.Run("pack", func(t *testing.T) {
		dir := t.TempDir()
		stage(t, dir, false)
		_, stderr, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", out)
		if code != exitFail || !strings.Contains(stderr, out+" is a folder; give a file path") {
			t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitFail, out+" is a folder; give a file path")
		}
	})
}

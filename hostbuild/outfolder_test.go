package main

import (
	"bytes"
	"os"
	"path/filepath"
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
		{"measure", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--append", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest-out", out},
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

// "-" as an output file is refused naming the flag: the outputs are
// written atomically by name, and "-" made a file called "-" (manifest
// printed "-: 1 measurements").
func TestOutputDashIsNotStdout(t *testing.T) {
	f := newRunFixture(t)
	dir := t.TempDir()
	stage(t, dir, false)
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"-o", []string{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "-o", "-"}},
		{"-o", []string{"manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cmdline", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "-"}},
		{"--manifest-out", []string{"measure", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--append", "console=ttyS0", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest-out", "-"}},
		{"-o", []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "-"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			_, stderr, code := hostbuild(t, dir, nil, tc.args...)
			want := tc.flag + " -: this output is a file, not standard output"
			if code != exitFail || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitFail, want)
			}
			if _, err := os.Lstat(filepath.Join(dir, "-")); err == nil {
				t.Errorf("a file named - was written")
			}
		})
	}
}

// pack -o TREE/modules.builtin.modinfo is refused: pack reads that file
// (the aliases of built-in modules); it was replaced with the initrd.
// kmod.Open reads modules.builtin.modinfo (the built-ins' aliases, which
// meet soft dependencies): pack -o must not replace it, as it refuses to
// replace modules.builtin.
func TestPackOutputIsBuiltinModinfo(t *testing.T) {
	dir, _ := stageBuild(t)
	const p = "k/lib/modules/6.9.0-t/modules.builtin.modinfo"
	before := []byte("sha256_generic.alias=sha256\x00")
	if err := os.WriteFile(filepath.Join(dir, p), before, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", p)
	if code != exitFail || !strings.Contains(errOut, "is a file of the --kernel-modules folder k that pack reads") {
		t.Errorf("exit %d, stderr %q; want exit %d refusing the output", code, errOut, exitFail)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, p)); !bytes.Equal(after, before) {
		t.Errorf("modules.builtin.modinfo was replaced (%d bytes now)", len(after))
	}
}

// kmod.Open now reads a release folder whose kernel/ is a symlink, and a
// package root whose lib/modules/RELEASE is one: pack -o on a module (or
// modules.builtin) reached through such a tree must be refused as for a
// plain tree, or the initrd replaces a file pack reads.
func TestPackOutputInSymlinkedTree(t *testing.T) {
	for _, tc := range []struct{ tree, out, input string }{
		{"k2", "k2/lib/modules/6.9.0-t/kernel/b/virtio_net.ko", "k/lib/modules/6.9.0-t/kernel/b/virtio_net.ko"},
		{"k3", "k3/lib/modules/6.9.0-t/kernel/b/virtio_net.ko", "k/lib/modules/6.9.0-t/kernel/b/virtio_net.ko"},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			dir, _ := stageBuild(t)
			real := filepath.Join(dir, "k/lib/modules/6.9.0-t")
			// a release folder whose kernel/ is a symlink
			if err := os.MkdirAll(filepath.Join(dir, "k2/lib/modules/6.9.0-t"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(real, "kernel"), filepath.Join(dir, "k2/lib/modules/6.9.0-t/kernel")); err != nil {
				t.Fatal(err)
			}
			// a package root whose release folder is a symlink
			if err := os.MkdirAll(filepath.Join(dir, "k3/lib/modules"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, filepath.Join(dir, "k3/lib/modules/6.9.0-t")); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, tc.input)
			before, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			_, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", tc.tree, "-o", tc.out)
			after, _ := os.ReadFile(in)
			if code != exitFail || !strings.Contains(errOut, "is a file of the --kernel-modules folder") || !bytes.Equal(after, before) {
				t.Errorf("pack -o %s: exit %d, stderr %q; module now %d bytes (was %d); want exit 1 refusing the output, module unchanged", tc.out, code, errOut, len(after), len(before))
			}
		})
	}
}

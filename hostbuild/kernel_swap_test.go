package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// replaceFile renames a new file with b over path, as a package manager or
// "cp new tmp && mv tmp path" replaces a file while another reads it.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// releaseSwapFixture stages an initrd whose modules are release 6.9.0-t
// (built with a kernel of that release) and the kernels "same" (6.9.0-t)
// and "other" (6.9.1-t).
func releaseSwapFixture(t *testing.T) (abs func(string) string, ovmf string, same, other []byte) {
	t.Helper()
	dir, ovmf := stageBuild(t)
	abs = func(n string) string { return filepath.Join(dir, n) }
	same, other = fakeBzImageRelease("6.9.0-t"), fakeBzImageRelease("6.9.1-t")
	os.WriteFile(abs("same"), same, 0o644)
	mod := abs("kv/lib/modules/6.9.0-t/kernel/virtio.ko")
	os.MkdirAll(filepath.Dir(mod), 0o755)
	os.WriteFile(mod, testelf.Module("depends=", "name=virtio", "vermagic=6.9.0-t SMP preempt mod_unload modversions "), 0o644)
	if _, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "kv",
		"--module", "virtio", "--kernel", "same", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "ok"); code != exitOK {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	return abs, ovmf, same, other
}

// The check that the kernel's release is the one of the initrd's modules
// (manifest, measure --manifest-out, build, reproduce) must be about the
// kernel whose SHA-256 the manifest records. It read the kernel again, by
// its path, after the measurement had hashed it: a kernel of another
// release renamed over the path in between (here at the seam after
// measuring) was the one checked, and a manifest recording a kernel whose
// modules do not load was written with exit 0 (reproduce said such a
// manifest reproduces).
func TestKernelReleaseCheckedOnMeasuredKernel(t *testing.T) {
	abs, ovmf, same, other := releaseSwapFixture(t)
	swapAfterMeasuring := func(path string, b []byte) {
		t.Helper()
		manifestGenerated = func() { replaceFile(t, path, b) }
		t.Cleanup(func() { manifestGenerated = func() {} })
	}
	inProcess := func(args ...string) (string, int) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return stderr.String(), code
	}
	const refusal = "holds modules built for release 6.9.0-t"
	// written reports whether out records the kernel "other".
	recordsOther := func(out string) bool {
		m, err := manifest.Load(out)
		return err == nil && m.Components.Kernel.SHA256 == sha256Hex(other)
	}

	for _, cmd := range []string{"manifest", "measure"} {
		t.Run(cmd, func(t *testing.T) {
			k, out := abs(cmd+"-kernel"), abs(cmd+".json")
			os.WriteFile(k, other, 0o644)
			swapAfterMeasuring(k, same)
			args := []string{"manifest", "--ovmf", ovmf, "--kernel", k, "--initrd", abs("ok/initrd.img"),
				"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}
			if cmd == "measure" {
				args = []string{"measure", "--ovmf", ovmf, "--kernel", k, "--initrd", abs("ok/initrd.img"),
					"--append", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest-out", out}
			}
			errOut, code := inProcess(args...)
			if code != exitFail || !strings.Contains(errOut, refusal) || recordsOther(out) {
				t.Errorf("%s measured the 6.9.1-t kernel, then found 6.9.0-t at the path: exit %d, manifest records the 6.9.1-t kernel: %v; want exit 1 saying %q\n%s",
					cmd, code, recordsOther(out), refusal, errOut)
			}
		})
	}

	t.Run("build", func(t *testing.T) {
		// The kernel build checks before packing is 6.9.0-t; 6.9.1-t is
		// renamed over it once the initrd is packed (before the
		// measurement), 6.9.0-t again once measured.
		k := abs("build-kernel")
		os.WriteFile(k, same, 0o644)
		buildPacked = func() { replaceFile(t, k, other) }
		t.Cleanup(func() { buildPacked = func() {} })
		swapAfterMeasuring(k, same)
		errOut, code := inProcess("build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("kv"),
			"--module", "virtio", "--kernel", k, "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", abs("swapped"))
		out := abs("swapped/" + buildManifest)
		if code != exitFail || !strings.Contains(errOut, refusal) || recordsOther(out) {
			t.Errorf("build measured the 6.9.1-t kernel, then found 6.9.0-t at the path: exit %d, manifest records the 6.9.1-t kernel: %v; want exit 1 saying %q\n%s",
				code, recordsOther(out), refusal, errOut)
		}
	})

	t.Run("reproduce", func(t *testing.T) {
		// A manifest of the 6.9.1-t kernel with the initrd of 6.9.0-t
		// modules, as another tool (or an older hostbuild) wrote it.
		k := abs("reproduce-kernel")
		os.WriteFile(k, other, 0o644)
		m, err := manifest.Generate(context.Background(), manifest.GenerateOptions{OVMF: ovmf, Kernel: k, Initrd: abs("ok/initrd.img"),
			Cmdline: "console=ttyS0 panic=-1", VCPUs: []int{1}, VCPUTypes: []string{"EPYC-v4"}, ToolName: "hostbuild", ToolVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		m.Components.Files = &[]manifest.OperatorFile{} // what the initrd's content list vouches for: none
		mp := abs("reproduce.json")
		if err := manifest.WriteFile(mp, m); err != nil {
			t.Fatal(err)
		}
		swapAfterMeasuring(k, same)
		errOut, code := inProcess("reproduce", "--manifest", mp, "--ovmf", ovmf, "--kernel", k, "--initrd", abs("ok/initrd.img"))
		if code != exitFail || !strings.Contains(errOut, refusal) {
			t.Errorf("reproduce measured the 6.9.1-t kernel, then found 6.9.0-t at the path: exit %d; want exit 1 saying %q\n%s", code, refusal, errOut)
		}
	})
}

// build checks its kernel and OVMF before packing (a kernel that is no
// bzImage is refused; DebugSwap with a kernel older than 6.6, an OVMF
// QEMU cannot start, are warned of), then measures them once packed. Those
// checks opened the paths on their own: a file renamed over a path once
// the initrd was packed was measured and recorded in the manifest
// unchecked (an ELF vmlinux, exit 0; a 6.1 kernel with DebugSwap, an
// unlaunchable OVMF, without a warning). What the manifest records is
// what must be checked.
func TestBuildChecksMeasuredKernelAndOVMF(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(n string) string { return filepath.Join(dir, n) }
	suffix, err := os.ReadFile("testdata/ovmf_AmdSev_suffix.bin")
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(abs("katana"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(ovmf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		kernel      []byte // the kernel checked before packing
		swap        string // the file renamed over once packed
		with        []byte
		code        int
		want        string
		recordsWith bool // the manifest, if written, must record with
	}{
		{"kernel 6.1 with DebugSwap", fakeBzImageRelease("6.12.0-t"), "kernel", fakeBzImageRelease("6.1.0-57-amd64"), exitOK,
			"ask for DebugSwap, but --kernel " + abs("kernel") + " is Linux 6.1.0-57-amd64", true},
		{"OVMF QEMU cannot start", fakeBzImageRelease("6.12.0-t"), "OVMF.fd", suffix, exitOK, "run cannot launch it", true},
		{"kernel an ELF", fakeBzImageRelease("6.12.0-t"), "kernel", elf, exitFail, "an ELF file (an uncompressed vmlinux?), not a bzImage", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(abs("kernel"), tc.kernel, 0o644)
			os.WriteFile(ovmf, good, 0o644)
			buildPacked = func() { replaceFile(t, abs(tc.swap), tc.with) }
			defer func() { buildPacked = func() {} }()
			out := abs("out-" + strings.ReplaceAll(tc.name, " ", "-"))
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"),
				"--kernel", abs("kernel"), "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--guest-features", "0x21", "-o", out}, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%s renamed over once packed: exit %d, want %d and %q\n%s", tc.swap, code, tc.code, tc.want, stderr.String())
			}
			m, err := manifest.Load(filepath.Join(out, buildManifest))
			if tc.recordsWith && err == nil {
				rec := m.Components.Kernel.SHA256
				if tc.swap == "OVMF.fd" {
					rec = m.Components.OVMF.SHA256
				}
				if rec != sha256Hex(tc.with) {
					t.Errorf("the manifest does not record the %s renamed over the path", tc.swap)
				}
			}
			if !tc.recordsWith && err == nil {
				t.Errorf("a manifest was written for a refused build")
			}
		})
	}
}

// run and libvirt warn of a kernel that is no bzImage, and run of
// DebugSwap with a kernel older than 6.6: of the kernel the launch boots,
// the copy checked against the manifest. They read the path on their own,
// before that check: with another file there then (replaced before the
// check), the kernel launched was never looked at, and the warning (or
// its absence) was about a file that does not boot.
func TestLaunchWarnsOfCheckedKernel(t *testing.T) {
	f := newRunFixture(t)
	elf := append([]byte("\x7fELF"), bytes.Repeat([]byte{'v'}, 0x400)...)
	k61 := fakeBzImageRelease("6.1.0-57-amd64")
	kernel := filepath.Join(f.dir, "kernel")
	for _, tc := range []struct {
		name           string
		measured       []byte // what the manifest records, renamed over the path before the check
		features, want string
	}{
		{"not a bzImage", elf, "0x1", "an ELF file (an uncompressed vmlinux?), not a bzImage"},
		{"DebugSwap with Linux 6.1", k61, "0x21", "ask for DebugSwap, but --kernel " + kernel + " is Linux 6.1.0-57-amd64"},
	} {
		os.WriteFile(kernel, tc.measured, 0o644)
		m := filepath.Join(f.dir, "m.json")
		if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", kernel, "--initrd", f.initrd, "--cmdline", runFixtureCmdline,
			"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--guest-features", tc.features, "-o", m); code != exitOK {
			t.Fatalf("manifest: exit %d\n%s", code, stderr)
		}
		for _, args := range [][]string{
			{"run", "--dry-run", "--ovmf", f.ovmf, "--cid", "3"},
			{"libvirt", "--ovmf", f.ovmf, "--cid", "3", "-o", filepath.Join(t.TempDir(), "d.xml")},
		} {
			if args[0] == "libvirt" && tc.features != "0x1" {
				continue // libvirt does not ask for DebugSwap
			}
			t.Run(tc.name+"/"+args[0], func(t *testing.T) {
				// Before the check, the path holds a 6.12 bzImage.
				os.WriteFile(kernel, fakeBzImageRelease("6.12.0-t"), 0o644)
				launchPreparing = func() { replaceFile(t, kernel, tc.measured) }
				defer func() { launchPreparing = func() {} }()
				_, stderr, code := runHB(t, append(args, "--manifest", m, "--kernel", kernel, "--initrd", f.initrd)...)
				if code != exitOK || !strings.Contains(stderr, tc.want) {
					t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and a warning %q about the kernel checked", code, stderr, tc.want)
				}
			})
		}
	}
}

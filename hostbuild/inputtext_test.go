package main

// Text from the files given to the builder that reaches stderr (an
// initrd's entry names and module releases, a module tree's file names
// and depends= words) is quoted or escaped, never raw: a terminal would
// run its control sequences (found by review).

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// manifest --initrd: the initrd's lib/modules/<release> folder is text
// from an input file, printed in the release-mismatch refusal.
func TestInitrdTextQuoted(t *testing.T) {
	dir, ovmf := stageBuild(t)
	os.WriteFile(filepath.Join(dir, "same"), fakeBzImageRelease("6.9.0-t"), 0o644)
	mod := filepath.Join(dir, "kv/lib/modules/6.9.0-t/kernel/virtio.ko")
	os.MkdirAll(filepath.Dir(mod), 0o755)
	os.WriteFile(mod, testelf.Module("depends=", "name=virtio"), 0o644)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "kv",
		"--module", "virtio", "-o", "ok.img"); code != exitOK {
		t.Fatalf("pack: %d %s", code, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ok.img"))
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	var extra bytes.Buffer
	w := newc.NewWriter(&extra)
	for _, h := range []newc.Header{
		{Name: "lib/modules/6.9\x1b[2K\rhostbuild: ok\u202e", Mode: newc.TypeDir | 0o755, NLink: 2},
		{Name: "lib/modules/6.9\x1b[2K\rhostbuild: ok\u202e/x.ko", Mode: newc.TypeReg | 0o644, NLink: 1, Size: 1},
	} {
		h := h
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size == 1 {
			w.Write([]byte{'x'})
		}
	}
	w.Close()
	os.WriteFile(filepath.Join(dir, "evil.img"), append(b, extra.Bytes()...), 0o644)
	_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "same", "--initrd", "evil.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json")
	t.Logf("exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(errOut, "\x1b\r\u202e") {
		t.Errorf("raw control text from the initrd's module folder on stderr: %q", errOut)
	}
	// Another entry, outside lib/modules: checkVouched's refusal.
	extra.Reset()
	w = newc.NewWriter(&extra)
	h := newc.Header{Name: "etc/x\x1b[2K\rhostbuild: ok", Mode: newc.TypeReg | 0o644, NLink: 1, Size: 1}
	w.WriteHeader(&h)
	w.Write([]byte{'x'})
	w.Close()
	os.WriteFile(filepath.Join(dir, "evil2.img"), append(b, extra.Bytes()...), 0o644)
	_, errOut, code = hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "same", "--initrd", "evil2.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m2.json")
	t.Logf("exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(errOut, "\x1b\r\u202e") {
		t.Errorf("raw control text from an initrd entry's name on stderr: %q", errOut)
	}
	out, errOut, code := hostbuild(t, dir, nil, "inspect", "evil2.img")
	t.Logf("inspect exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(out+errOut, "\x1b\r\u202e") {
		t.Errorf("inspect: raw control text: %q", out+errOut)
	}
}

// pack's softdep warning names candidates from the tree's file names.
func TestSoftdepCandidatesQuoted(t *testing.T) {
	dir, _ := stageBuild(t)
	base := filepath.Join(dir, "kv/lib/modules/6.9.0-t/kernel")
	os.MkdirAll(base, 0o755)
	os.WriteFile(filepath.Join(base, "virtio.ko"), testelf.Module("depends=", "name=virtio", "softdep=pre: evil"), 0o644)
	os.WriteFile(filepath.Join(base, "evil\x1b[2K\rhostbuild: ok.ko"), testelf.Module("depends=", "name=evil"), 0o644)
	_, errOut, code := hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "kv",
		"--module", "virtio", "-o", "out.img")
	t.Logf("exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(errOut, "\x1b\r") {
		t.Errorf("raw control text from a module file name on stderr: %q", errOut)
	}
	_, errOut, code = hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "kv",
		"--module", "evi", "-o", "out2.img")
	t.Logf("exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(errOut, "\x1b\r") {
		t.Errorf("raw control text from a module file name on stderr (suggestion): %q", errOut)
	}
}

func TestDependsQuoted(t *testing.T) {
	dir, _ := stageBuild(t)
	base := filepath.Join(dir, "kv/lib/modules/6.9.0-t/kernel")
	os.MkdirAll(base, 0o755)
	os.WriteFile(filepath.Join(base, "virtio.ko"), testelf.Module("depends=x\x1b[2K\rhostbuild: ok", "name=virtio"), 0o644)
	_, errOut, code := hostbuild(t, dir, nil, "pack", "--init", "guestinit", "--payload", "./katana", "--kernel-modules", "kv",
		"--module", "virtio", "-o", "out.img")
	t.Logf("exit %d; stderr %q", code, errOut)
	if strings.ContainsAny(errOut, "\x1b\r") {
		t.Errorf("raw: %q", errOut)
	}
}

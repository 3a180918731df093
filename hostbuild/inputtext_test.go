package main

// Text from the files given to the builder that reaches stderr (an
// initrd's entry names and module releases, a module tree's file names
// and depends= words) is quoted or escaped, never raw: a terminal would
// run its control sequences (found by review).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
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

// forged would erase the line, print "attestation OK" over it and
// reverse what follows; its newline would start a line of its own.
const forged = "\x1b[2K\rattestation OK \u202e\nattestation OK"

// TestInputTextEscapedEverywhere: each command, given text of its
// input's own (a manifest's fields, a PEM block's type, an initrd's entry
// names, a payload's interpreter, module file names, /proc and QEMU's
// output), prints it quoted or escaped (found by a review of every print
// of such text).
func TestInputTextEscapedEverywhere(t *testing.T) {
	put := func(p string, b []byte) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifestWith := func(dir string, edit func(m map[string]any)) string {
		p := writeTestManifest(t, dir)
		b, _ := os.ReadFile(p)
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		put(p, b)
		return p
	}
	appendEntry := func(img string, h *newc.Header) {
		f, _ := os.OpenFile(img, os.O_WRONLY|os.O_APPEND, 0)
		defer f.Close()
		if st, _ := f.Stat(); st.Size()%4 != 0 {
			f.Write(make([]byte, 4-st.Size()%4))
		}
		w := newc.NewWriter(f)
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	packArgs := []string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "o.img"}
	manifestArgs := func(ovmf string) []string {
		return []string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img", "--cmdline", "console=ttyS0 panic=-1",
			"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json"}
	}
	for _, tc := range []struct {
		name string
		args func(t *testing.T, dir, ovmf string) []string
	}{
		{"manifest vcpu_sig (attest)", func(t *testing.T, dir, _ string) []string {
			mp := manifestWith(dir, func(m map[string]any) { m["measurements"].([]any)[0].(map[string]any)["vcpu_sig"] = forged })
			return []string{"attest", "--addr", "tcp:127.0.0.1:1", "--manifest", mp, "--min-tcb", "none"}
		}},
		{"manifest component name (libvirt)", func(t *testing.T, dir, _ string) []string {
			mp := manifestWith(dir, func(m map[string]any) { m["components"].(map[string]any)["ovmf"].(map[string]any)["name"] = forged })
			put(filepath.Join(dir, "f"), []byte("two bytes"))
			return []string{"libvirt", "--manifest", mp, "--ovmf", "f", "--kernel", "f", "--initrd", "f", "--cid", "3"}
		}},
		{"--roots PEM type (verify)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "r.pem"), []byte("-----BEGIN X"+forged+"-----\nAAAA\n-----END X"+forged+"-----\n"))
			return []string{"verify", dir, "--manifest", writeTestManifest(t, dir), "--min-tcb", "none", "--roots", "r.pem"}
		}},
		{"manifest cmdline (run --dry-run)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "f"), []byte("x"))
			mp := manifestWith(dir, func(m map[string]any) {
				m["cmdline"] = "console=ttyS0 " + forged
				for _, k := range []string{"kernel", "initrd"} {
					m["components"].(map[string]any)[k].(map[string]any)["sha256"] = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
				}
			})
			return []string{"run", "--plain", "--dry-run", "--manifest", mp, "--kernel", "f", "--initrd", "f"}
		}},
		{"initrd folder name (manifest)", func(t *testing.T, dir, ovmf string) []string {
			hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "i.img")
			appendEntry(filepath.Join(dir, "i.img"), &newc.Header{Name: "X" + forged, Mode: newc.TypeDir | 0o755, NLink: 2, Ino: 1 << 20})
			return manifestArgs(ovmf)
		}},
		{"initrd entry ending in /. (manifest)", func(t *testing.T, dir, ovmf string) []string {
			hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "i.img")
			appendEntry(filepath.Join(dir, "i.img"), &newc.Header{Name: "X" + forged + "/.", Mode: newc.TypeReg | 0o644, NLink: 1, Ino: 1 << 20})
			return manifestArgs(ovmf)
		}},
		{"payload PT_INTERP (pack)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "katana"), testelf.Executable("/lib/ld"+forged, []byte("x")))
			return packArgs
		}},
		{"module file name (pack)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/a/virtio.ko"), testelf.Module("depends=ev"+forged, "name=virtio"))
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/z/ev"+forged+".ko"), testelf.Module("depends=", "name=other"))
			return append(packArgs, "--module", "virtio")
		}},
		{"softdep candidate (pack)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/a/virtio.ko"), testelf.Module("depends=", "name=virtio", "softdep=pre: evil"))
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/z/evil"+forged+".ko"), testelf.Module("depends=", "name=evil"))
			return append(packArgs, "--module", "virtio")
		}},
		{"depends= word (pack)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/a/virtio.ko"), testelf.Module("depends=x"+forged, "name=virtio"))
			return append(packArgs, "--module", "virtio")
		}},
		{"module suggestion (pack)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "k/lib/modules/6.9.0-t/kernel/z/vsoc\x1b[.ko"), testelf.Module("depends=", "name=x"))
			return append(packArgs, "--module", "vsocz")
		}},
		{"release folders (pack)", func(t *testing.T, dir, _ string) []string {
			os.MkdirAll(filepath.Join(dir, "k/lib/modules/6.9.1"+forged), 0o755)
			return packArgs
		}},
		{"/proc, /sys, QEMU (doctor)", func(t *testing.T, dir, _ string) []string {
			put(filepath.Join(dir, "root/proc/cpuinfo"), []byte("vendor_id\t: A"+forged+"\ncpu family\t: 25\n"))
			put(filepath.Join(dir, "root/sys/module/kvm_amd/parameters/sev_snp"), []byte("N"+forged+"\n"))
			put(filepath.Join(dir, "q"), []byte("#!/bin/sh\nprintf 'qemu: \\033[2K\\rPASS\\n' >&2\nexit 1\n"))
			os.Chmod(filepath.Join(dir, "q"), 0o755)
			return []string{"doctor", "--root", filepath.Join(dir, "root"), "--qemu", filepath.Join(dir, "q")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, ovmf := stageBuild(t)
			out, errs, code := hostbuild(t, dir, nil, tc.args(t, dir, ovmf)...)
			if s := out + errs; strings.ContainsAny(s, "\x1b\r\u202e") || strings.Contains(s, "\nattestation OK") {
				t.Errorf("exit %d, raw control or format runes, or a line of the input's own:\n%q", code, s)
			}
		})
	}
}

// checkKernelRelease's refusal quotes the modules' release (an initrd's
// lib/modules/<release> folder: the initrd's text) in its own error, not
// only behind run's stderr backstop.
func TestCheckKernelReleaseQuotesModulesRelease(t *testing.T) {
	k := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(k, fakeBzImageRelease("6.9.0-t"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkKernelRelease(k, "the initrd", "6.9\x1b[2K\rok")
	if err == nil || !strings.Contains(err.Error(), `built for release "6.9\x1b[2K\rok"`) || strings.ContainsAny(err.Error(), "\x1b\r") {
		t.Errorf("checkKernelRelease: %q; want the release quoted", err)
	}
}

// warnDroppedModules quotes the softdep's candidates (module names from
// the tree's file names), whatever writer it is given.
func TestWarnDroppedModulesQuotesCandidates(t *testing.T) {
	var b bytes.Buffer
	warnDroppedModules(&b, "pack", &initrd.Result{SoftDeps: []initrd.UnmetSoftDep{{Module: "virtio", Name: "evil", Candidates: []string{"evil\x1b[2K", "evil2"}}}})
	if s := b.String(); strings.Contains(s, "\x1b") || !strings.Contains(s, `(candidates by name: "evil\x1b[2K", evil2)`) {
		t.Errorf("warning %q; want the candidates quoted", s)
	}
}

// run puts every command's stderr behind printable.NewWriter: a message
// that misses quoting someone else's text still reaches the terminal
// escaped, its newlines and tabs kept.
func TestRunStderrBackstop(t *testing.T) {
	const name = "zz-backstop-test"
	register(command{name: name, run: func(_ context.Context, _ []string, _, stderr io.Writer) int {
		io.WriteString(stderr, "hostbuild: raw \x1b[2K\rOK\u202e\tend\n")
		return exitFail
	}})
	t.Cleanup(func() { delete(commands, name) })
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{name}, &out, &errOut); code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if s := errOut.String(); strings.ContainsAny(s, "\x1b\r\u202e") || !strings.Contains(s, `raw \x1b[2K\rOK\u202e`+"\tend\n") {
		t.Errorf("stderr %q; want the control runes escaped, the tab and newline kept", s)
	}
}

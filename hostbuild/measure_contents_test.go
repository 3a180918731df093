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
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// initrdEntry is one entry of plainInitrdImage: a regular file, or a folder when
// its name ends in "/".
type initrdEntry struct {
	name string
	data []byte
}

// plainInitrdImage writes an uncompressed newc archive with no content list
// (another builder's initrd, not hostbuild pack's), every entry's mtime
// mtime, and returns its path and SHA-256.
func plainInitrdImage(t *testing.T, mtime uint32, files ...initrdEntry) (path, sum string) {
	t.Helper()
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	for _, f := range files {
		h := newc.Header{Name: f.name, Mode: newc.TypeReg | 0o644, NLink: 1, MTime: mtime, Size: uint32(len(f.data))}
		if n, ok := strings.CutSuffix(f.name, "/"); ok {
			h = newc.Header{Name: n, Mode: newc.TypeDir | 0o755, NLink: 2, MTime: mtime}
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "initrd.img")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b.Bytes())
	return path, hex.EncodeToString(s[:])
}

// payloadManifestFor is a manifest whose initrd record is initrdSum and
// whose payload record is payload's (as --payload gives it).
func payloadManifestFor(initrdSum string, payload []byte, epoch int64) *manifest.Manifest {
	s := sha256.Sum256(payload)
	m := &manifest.Manifest{SourceDateEpoch: epoch}
	m.Components.Initrd = manifest.File{Name: "initrd.img", SHA256: initrdSum}
	m.Components.Payload = &manifest.File{Name: "katana", Size: int64(len(payload)), SHA256: hex.EncodeToString(s[:])}
	return m
}

// An initrd without a content list (another builder's) is recorded by
// its bytes, its payload checked: the kernel modules it holds are not
// compared with --kernel's release (only pack's initrds name their
// modules' folder by the release they were packed for).
// Fails for: measure.go checkContents `a.HasContentList()` -> `true`.
func TestContentsPlainInitrdModulesNotReleaseChecked(t *testing.T) {
	payload := []byte("katana")
	img, sum := plainInitrdImage(t, 0, initrdEntry{"bin/", nil}, initrdEntry{"bin/katana", payload},
		initrdEntry{"lib/", nil}, initrdEntry{"lib/modules/", nil}, initrdEntry{"lib/modules/9.9.9-other/", nil},
		initrdEntry{"lib/modules/9.9.9-other/v.ko", []byte("module")})
	kernel := kernelHead{path: "vmlinuz", head: fakeBzImageRelease("6.1.0-t")}
	kernel.size = int64(len(kernel.head))
	m := payloadManifestFor(sum, payload, 0)
	if err := checkContents(context.Background(), img, "katana", "", kernel, m, func(w string) { t.Errorf("warning: %s", w) }); err != nil {
		t.Errorf("checkContents of an initrd without a content list: %v", err)
	}
	if m.Components.Files != nil {
		t.Errorf("operator's files %v recorded for an initrd without a content list", *m.Components.Files)
	}
}

// The SOURCE_DATE_EPOCH is taken from the entries' common mtime only for
// an initrd with a content list (pack's): another builder's initrd keeps
// the environment's, and a different explicit one is not refused.
// Fails for: measure.go checkContents drops `&& a.HasContentList()` from the
// CommonMTime condition.
func TestContentsPlainInitrdEpochNotTaken(t *testing.T) {
	payload := []byte("katana")
	img, sum := plainInitrdImage(t, 1234, initrdEntry{"bin/", nil}, initrdEntry{"bin/katana", payload})
	for _, epoch := range []int64{0, 5} {
		m := payloadManifestFor(sum, payload, epoch)
		if err := checkContents(context.Background(), img, "katana", "", kernelHead{}, m, func(w string) { t.Errorf("warning: %s", w) }); err != nil {
			t.Errorf("epoch %d: checkContents: %v", epoch, err)
		}
		if m.SourceDateEpoch != epoch {
			t.Errorf("epoch %d: recorded %d, the mtime of an initrd hostbuild pack did not make", epoch, m.SourceDateEpoch)
		}
	}
}

// The initrd's bytes are read twice (measured, then listed): a second
// reading that gives another SHA-256 than the manifest's record is
// refused, as the records would describe another initrd than the
// measurement.
// Fails for: measure.go checkContents `a.SHA256 != m.Components.Initrd.SHA256` -> `false`.
func TestContentsInitrdChangedWhileRead(t *testing.T) {
	payload := []byte("katana")
	img, _ := plainInitrdImage(t, 0, initrdEntry{"bin/", nil}, initrdEntry{"bin/katana", payload})
	m := payloadManifestFor(strings.Repeat("ab", 32), payload, 0)
	err := checkContents(context.Background(), img, "katana", "", kernelHead{}, m, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("checkContents with another initrd SHA-256 recorded: %v; want a refusal", err)
	}
}

// An initrd whose files cannot be told (an entry with a ".." component)
// cannot vouch for --init either, given alone: refused naming --init.
// Fails for: measure.go checkContents `(p != nil || in != nil)` -> `(p != nil)`;
// `if p == nil {` -> `if p != nil {` (names --payload).
func TestContentsInitAloneUnknownPayload(t *testing.T) {
	initBin := []byte("the init")
	img, sum := plainInitrdImage(t, 0, initrdEntry{"init", initBin}, initrdEntry{"etc/", nil}, initrdEntry{"etc/../x", []byte("x")})
	s := sha256.Sum256(initBin)
	m := &manifest.Manifest{}
	m.Components.Initrd = manifest.File{SHA256: sum}
	m.Components.Init = &manifest.File{Name: "guestinit", Size: int64(len(initBin)), SHA256: hex.EncodeToString(s[:])}
	err := checkContents(context.Background(), img, "", "guestinit", kernelHead{}, m, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "--init guestinit cannot be checked against --initrd "+img) {
		t.Errorf("checkContents, --init alone, a \"..\" entry: %v; want --init named as what cannot be checked", err)
	}
}

// --payload against an initrd that holds no payload (neither
// bin/katana nor frames): refused, saying so.
// Fails for: measure.go checkContents `a.Payload == nil` -> `false` (nil dereference).
func TestContentsNoPayloadInInitrd(t *testing.T) {
	payload := []byte("katana")
	img, sum := plainInitrdImage(t, 0, initrdEntry{"bin/", nil}, initrdEntry{"bin/other", payload})
	m := payloadManifestFor(sum, payload, 0)
	err := checkContents(context.Background(), img, "katana", "", kernelHead{}, m, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "--payload katana cannot be checked against --initrd "+img+": it holds no payload") {
		t.Errorf("checkContents, an initrd without a payload: %v; want a refusal saying it holds none", err)
	}
}

// --init against an initrd whose /init is not a regular file (a
// folder): refused as having no /init file, not compared as a file.
// Fails for: measure.go checkContents drops `|| e.Type != "file"`.
func TestContentsInitNotAFile(t *testing.T) {
	initBin := []byte("the init")
	img, sum := plainInitrdImage(t, 0, initrdEntry{"init/", nil})
	s := sha256.Sum256(initBin)
	m := &manifest.Manifest{}
	m.Components.Initrd = manifest.File{SHA256: sum}
	m.Components.Init = &manifest.File{Name: "guestinit", Size: int64(len(initBin)), SHA256: hex.EncodeToString(s[:])}
	err := checkContents(context.Background(), img, "", "guestinit", kernelHead{}, m, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "it has no /init file") {
		t.Errorf("checkContents, /init a folder: %v; want \"it has no /init file\"", err)
	}
}

// A pack initrd's operator's files are recorded by the absolute path the
// guest has them at, and one with none records an empty list (not
// "absent", which says the initrd has no content list).
// Fails for: measure.go checkContents `Path: "/" + e.Path` -> `Path: e.Path`;
// `files := []manifest.OperatorFile{}` -> `var files []manifest.OperatorFile`.
func TestContentsOperatorFilesRecorded(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	if err := os.WriteFile(filepath.Join(dir, "chain.toml"), []byte("[chain]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // the manifest's "files", as JSON
	}{
		{nil, `"files": []`},
		{[]string{"--file", "chain.toml:/etc/katana/chain.toml"}, `"path": "/etc/katana/chain.toml"`},
	} {
		img := filepath.Join(dir, "i.img")
		args := append([]string{"pack", "-q", "--init", "guestinit", "--payload", "katana", "--source-date-epoch", "0", "-o", img}, tc.args...)
		if _, errOut, code := hostbuild(t, dir, nil, args...); code != exitOK {
			t.Fatalf("pack %q: exit %d\n%s", tc.args, code, errOut)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		m := &manifest.Manifest{Schema: manifest.Schema}
		m.Components.Initrd = manifest.File{Name: "i.img", Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
		if err := checkContents(context.Background(), img, "", "", kernelHead{}, m, func(w string) { t.Errorf("warning: %s", w) }); err != nil {
			t.Fatalf("pack %q: checkContents: %v", tc.args, err)
		}
		j, err := manifest.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(j), tc.want) {
			t.Errorf("pack %q: the manifest does not record %s:\n%s", tc.args, tc.want, j)
		}
	}
}

// reproduce needs --init exactly when the manifest records an init: its
// absence, or an --init for a manifest without one, is a usage error (2)
// naming the fix, not a difference (3). With every file, the summary says
// what else reproduced.
// Fails for: reproduce.go reproducedExtras `m.Components.Payload != nil` -> `== nil`; `m.Components.Init != nil && *initBin == ""` -> `false`;
// `m.Components.Init == nil && *initBin != ""` -> `false`.
func TestReproduceInitFlagMatchesRecord(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "out"); code != exitOK {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	mpath := filepath.Join(dir, "out", "manifest.json")
	files := []string{"--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out/initrd.img", "--payload", "katana"}
	orig, err := manifest.Load(mpath)
	if err != nil {
		t.Fatal(err)
	}
	// With every file: the summary names what else reproduced.
	out, errOut, code := hostbuild(t, dir, nil, append([]string{"reproduce", "--manifest", mpath, "--init", "guestinit"}, files...)...)
	if code != exitOK || !strings.Contains(out, "the OVMF, kernel and initrd hashes, the payload, the init and its build info, the (empty) list of operator's files match") {
		t.Errorf("with every file: exit %d, want %d and the summary\n%s%s", code, exitOK, out, errOut)
	}
	_, errOut, code = hostbuild(t, dir, nil, append([]string{"reproduce", "--manifest", mpath}, files...)...)
	if code != exitUsage || !strings.Contains(errOut, "records an init (guestinit, SHA-256 "+orig.Components.Init.SHA256+"): give it with --init FILE") {
		t.Errorf("without --init: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	m, _ := manifest.Load(mpath)
	m.Components.Init, m.InitBuildInfo = nil, nil
	noInit := filepath.Join(t.TempDir(), "manifest.json")
	if err := manifest.WriteFile(noInit, m); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = hostbuild(t, dir, nil, append([]string{"reproduce", "--manifest", noInit, "--init", "guestinit"}, files...)...)
	if code != exitUsage || !strings.Contains(errOut, "records no init: drop --init") {
		t.Errorf("--init for a manifest without one: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
}

// A manifest of another builder's initrd (no content list) reproduces
// with the manifest's SOURCE_DATE_EPOCH, which no file can say, and when
// another hostbuild version wrote it; a file's
// name is noted only when it differs, and "has the bytes" is said only
// of the same bytes: a same-size kernel with other bytes under another
// name is a difference, with no such note.
// Fails for: reproduce.go drops `again.SourceDateEpoch = m.SourceDateEpoch`;
// `m.Tool != again.Tool` -> `false`; drops `stdout = printable.NewWriter(stdout)`;
// drops `f.rec.Name != f.here.Name && `; drops `&& f.rec.SHA256 == f.here.SHA256`.
func TestReproducePlainInitrdEpochAndNames(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if err := os.WriteFile(filepath.Join(dir, "plain.img"), []byte("another builder's initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "plain.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--source-date-epoch", "42", "-o", "m.json"); code != exitOK {
		t.Fatalf("manifest: exit %d\n%s", code, errOut)
	}
	out, errOut, code := hostbuild(t, dir, []string{"SOURCE_DATE_EPOCH=7"}, "reproduce", "--manifest", "m.json", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "plain.img")
	if code != exitOK || !strings.Contains(errOut, "note: source_date_epoch 42 is the manifest's") || strings.Contains(errOut, "names are not compared") {
		t.Errorf("reproduce: exit %d, want %d, the epoch noted and no name note\n%s%s", code, exitOK, out, errOut)
	}
	// Written by another version of hostbuild: not compared, noted.
	m, err := manifest.Load(filepath.Join(dir, "m.json"))
	if err != nil {
		t.Fatal(err)
	}
	m.Tool.Version = "v0.0.1-elsewhere"
	if err := manifest.WriteFile(filepath.Join(dir, "m-other.json"), m); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = hostbuild(t, dir, nil, "reproduce", "--manifest", "m-other.json", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "plain.img")
	if code != exitOK || !strings.Contains(errOut, "was written by hostbuild v0.0.1-elsewhere") {
		t.Errorf("another tool version: exit %d, want %d and a note\n%s%s", code, exitOK, out, errOut)
	}
	// The manifest's text in the differences on stdout is escaped: a C1
	// control or a bidi override (which JSON leaves raw) in a name.
	m.Tool.Version = version
	m.Components.OVMF.Name = "OVMF\u009b2J\u202e.fd"
	m.Components.OVMF.Size++
	if err := manifest.WriteFile(filepath.Join(dir, "m-c1.json"), m); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = hostbuild(t, dir, nil, "reproduce", "--manifest", "m-c1.json", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "plain.img")
	if code != exitRunRefused || !strings.Contains(out, "does NOT reproduce") || strings.ContainsAny(out+errOut, "\u009b\u202e") {
		t.Errorf("a C1 control in a name: exit %d, want %d and no raw control on stdout\n%q", code, exitRunRefused, out+errOut)
	}
	k, err := os.ReadFile(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Clone(k)
	other[len(other)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, "other-kernel"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = hostbuild(t, dir, nil, "reproduce", "--manifest", "m.json", "--ovmf", ovmf, "--kernel", "other-kernel", "--initrd", "plain.img")
	if code != exitRunRefused || strings.Contains(errOut, "has the bytes the manifest records") {
		t.Errorf("same-size other kernel: exit %d, want %d and no \"has the bytes\" note\n%s%s", code, exitRunRefused, out, errOut)
	}
}

// measureInputs writes an OVMF image (the fixture behind 0xff fill to 4
// MiB, as stageBuild does), a kernel with a boot header and another
// builder's initrd, and returns their paths.
func measureInputs(t *testing.T) (dir, ovmf, kernel, initrdPath string) {
	t.Helper()
	dir = t.TempDir()
	suffix, err := os.ReadFile("testdata/ovmf_AmdSev_suffix.bin")
	if err != nil {
		t.Fatal(err)
	}
	ovmf, kernel, initrdPath = filepath.Join(dir, "OVMF.fd"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for p, b := range map[string][]byte{
		ovmf:       append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...),
		kernel:     fakeBzImage("not really a kernel"),
		initrdPath: []byte("another builder's initrd"),
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ovmf, kernel, initrdPath
}

// measure --manifest-out writes a manifest only for what run launches:
// mode snp with the firmware's own hash and a vCPU type, no signature.
// Fails for: measure.go runMeasure `o.Mode != measure.ModeSNP || o.SnpOVMFHash != ""`
// -> `o.Mode != measure.ModeSNP`, and -> `o.SnpOVMFHash != ""`; `o.VCPUType == "" || o.VCPUSigSet` -> `o.VCPUType == ""`.
func TestMeasureManifestOutRefusals(t *testing.T) {
	dir, ovmf, kernel, initrdPath := measureInputs(t)
	out := filepath.Join(dir, "m.json")
	base := []string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", kernel, "--initrd", initrdPath,
		"--append", "console=ttyS0 panic=-1", "--manifest-out", out}
	checkUsageRefusals(t, base, out, []usageRefusal{
		{[]string{"--snp-ovmf-hash", strings.Repeat("ab", 48)}, "--manifest-out needs mode snp without --snp-ovmf-hash"},
		{[]string{"--mode", "snp:ovmf-hash"}, "--manifest-out needs mode snp without --snp-ovmf-hash"},
		{[]string{"--vcpu-sig", "0x800f12"}, "--manifest-out needs --vcpu-type (QEMU is launched with -cpu TYPE) and no --vcpu-sig/--vcpu-family"},
	})
}

// usageRefusal is a usage error checkUsageRefusals expects: the flags added to
// (or replacing those of) the base command, and a part of the message.
type usageRefusal struct {
	extra []string
	want  string
}

// checkUsageRefusals runs base with each case's flags and checks a usage
// error (2) with its message, nothing on stdout, and no file at out.
func checkUsageRefusals(t *testing.T, base []string, out string, cases []usageRefusal) {
	t.Helper()
	for _, tc := range cases {
		stdout, stderr, code := runHB(t, withFlags(base, tc.extra...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want %d and %q", base[0], tc.extra, code, stdout, stderr, exitUsage, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s %q: refused, but wrote %s", base[0], tc.extra, out)
			os.Remove(out)
		}
	}
}

// measure --manifest-out records the --guest-features it measured with,
// and the manifest's measurement is the one printed without it.
// Fails for: measure.go runMeasure `g.VMMType, g.GuestFeatures = o.VMMType, o.GuestFeatures`
// -> `o.VMMType, 1`.
func TestMeasureManifestOutGuestFeatures(t *testing.T) {
	dir, ovmf, kernel, initrdPath := measureInputs(t)
	out := filepath.Join(dir, "m.json")
	args := []string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", kernel, "--initrd", initrdPath,
		"--append", "console=ttyS0 panic=-1", "--guest-features", "0x21"}
	plain, stderr, code := runHB(t, args...)
	if code != exitOK {
		t.Fatalf("measure: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runHB(t, append(args, "--manifest-out", out)...)
	if code != exitOK || stdout != plain {
		t.Fatalf("measure --manifest-out: exit %d, stdout %q (without it %q): %s", code, stdout, plain, stderr)
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.GuestFeatures != "0x21" || len(m.Measurements) != 1 || m.Measurements[0].Measurement != strings.TrimSpace(plain) {
		t.Errorf("manifest guest_features %s, measurements %+v; want 0x21 and %s", m.GuestFeatures, m.Measurements, plain)
	}
}

// measure --json prints the cmdline as given: "<", ">" and "&" are not
// turned into \u003c, \u003e and \u0026 (a reader comparing it with the
// cmdline text would see another string).
// Fails for: measure.go runMeasure `enc.SetEscapeHTML(false)` -> `true`.
func TestMeasureJSONCmdlineNotHTMLEscaped(t *testing.T) {
	_, ovmf, kernel, _ := measureInputs(t)
	const line = `console=ttyS0 katana.args="--a <b> && c"`
	stdout, stderr, code := runHB(t, "measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", kernel, "--append", line, "--json")
	if code != exitOK || !strings.Contains(stdout, `"cmdline": "console=ttyS0 katana.args=\"--a <b> && c\""`) {
		t.Errorf("exit %d, stdout %s, stderr %s; want the cmdline unescaped", code, stdout, stderr)
	}
}

// An unknown --vcpu-type is refused even when --vcpu-sig (which
// overrides it) is given, and the refusal points at --vcpu-sig.
// Fails for: measure.go sevFlags.options `if f.vcpuType != ""` -> `if false`.
func TestMeasureUnknownVCPUTypeWithSig(t *testing.T) {
	_, ovmf, _, _ := measureInputs(t)
	for _, extra := range [][]string{nil, {"--vcpu-sig", "0x800f12"}} {
		args := append([]string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-Zen9"}, extra...)
		stdout, stderr, code := runHB(t, args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--vcpu-type: ") || !strings.Contains(stderr, "or give the signature with --vcpu-sig") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and the --vcpu-type refusal", extra, code, stdout, stderr, exitUsage)
		}
	}
}

// Settings manifest.Generate refuses as invalid are usage errors (2), as
// -h says; a negative --source-date-epoch is refused naming the flag.
// Fails for: measure.go generateExit drops `|| errors.Is(err, manifest.ErrInvalid)`,
// or `errors.Is(err, measure.ErrUsage) || `;
// manifestOnly.options `g.SourceDateEpoch < 0` -> `< -1`; manifest.go
// runManifest drops the parseGuestFeatures error return.
func TestManifestInvalidSettingsAreUsage(t *testing.T) {
	dir, ovmf, kernel, initrdPath := measureInputs(t)
	out := filepath.Join(dir, "m.json")
	base := []string{"manifest", "--ovmf", ovmf, "--kernel", kernel, "--initrd", initrdPath, "--cmdline", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}
	checkUsageRefusals(t, base, out, []usageRefusal{
		{[]string{"--vmm-type", "kvm"}, `unknown VMM type "kvm"`},
		{[]string{"--vcpus", "100000"}, "vCPU count 100000 out of range"},
		{[]string{"--source-date-epoch", "-1"}, "hostbuild manifest: --source-date-epoch -1 is negative"},
		{[]string{"--guest-features", "0"}, "--guest-features 0 lacks bit 0 (SNPActive)"},
	})
}

// manifest records the --guest-features it measured with.
// Fails for: manifest.go runManifest `g.GuestFeatures = feat` -> `_ = feat`.
func TestManifestGuestFeatures(t *testing.T) {
	dir, ovmf, kernel, initrdPath := measureInputs(t)
	out := filepath.Join(dir, "m.json")
	if _, stderr, code := runHB(t, "manifest", "--ovmf", ovmf, "--kernel", kernel, "--initrd", initrdPath, "--cmdline", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--guest-features", "0x21", "-o", out); code != exitOK {
		t.Fatalf("manifest: exit %d: %s", code, stderr)
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want, stderr, code := runHB(t, "measure", "--ovmf", ovmf, "--kernel", kernel, "--initrd", initrdPath, "--append", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--guest-features", "0x21")
	if code != exitOK {
		t.Fatalf("measure: exit %d: %s", code, stderr)
	}
	if m.GuestFeatures != "0x21" || m.Measurements[0].Measurement != strings.TrimSpace(want) {
		t.Errorf("manifest guest_features %s, measurement %s; want 0x21 and %s", m.GuestFeatures, m.Measurements[0].Measurement, want)
	}
}

// A progress line whose prefix cannot be written reports the error.
// Fails for: pack.go prefixWriter.Write `return 0, err` -> `return 0, nil`.
func TestPrefixWriterError(t *testing.T) {
	if n, err := (prefixWriter{failWriter{}, "hostbuild pack: "}).Write([]byte("line\n")); n != 0 || err == nil {
		t.Errorf("Write to a failing writer: %d, %v; want 0 and the error", n, err)
	}
}

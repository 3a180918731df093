package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

type manifestInputs struct {
	dir, ovmf, kernel, initrd, payload string
}

func makeManifestInputs(t *testing.T) manifestInputs {
	t.Helper()
	shared := sharedMeasureDir(t)
	dir := t.TempDir()
	in := manifestInputs{
		dir:     dir,
		ovmf:    filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin"),
		kernel:  vectorInput(t, shared, dir, "inputs/k.bin", ""),
		initrd:  vectorInput(t, shared, dir, "inputs/i.bin", ""),
		payload: filepath.Join(dir, "katana"),
	}
	if err := os.WriteFile(in.payload, []byte("payload"), 0o755); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestManifestCommand(t *testing.T) {
	in := makeManifestInputs(t)
	const cmdline = `console=ttyS0 katana.args="--http.addr 0.0.0.0"`
	args := func(out string) []string {
		return []string{"manifest", "--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd,
			"--cmdline", cmdline, "--vcpus", "1,2,4", "--vcpu-type", "EPYC-v4,EPYC-Genoa",
			"--source-date-epoch", "42", "-o", out}
	}
	a, b := filepath.Join(in.dir, "a.json"), filepath.Join(in.dir, "b.json")
	for _, out := range []string{a, b} {
		stdout, stderr, code := runHB(t, args(out)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "6 measurements") {
			t.Errorf("stdout %q", stdout)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two runs with the same inputs wrote different bytes")
	}
	m, err := manifest.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{m.Cmdline, m.SourceDateEpoch, m.GuestPolicy, m.GuestFeatures, m.VMMType, m.Tool.Name, m.Components.Payload == nil, len(m.Measurements)}
	want := []any{cmdline, int64(42), "0x30000", "0x1", "QEMU", "hostbuild", true, 6}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest fields (-want +got):\n%s", diff)
	}
	// vectors.json A-QEMU-2-EPYC-v4-0x1-k_i_cmd has the same inputs with another cmdline;
	// measure must agree with the manifest entry for the same configuration.
	stdout, stderr, code := runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", cmdline)
	if code != exitOK {
		t.Fatal(stderr)
	}
	if e, ok := m.Allows(strings.TrimSpace(stdout)); !ok || e.VCPUs != 2 || e.VCPUType != "EPYC-v4" {
		t.Errorf("measure printed %s, manifest entry %+v, %v", stdout, e, ok)
	}

	// measure --manifest-out: the single-entry manifest carries what it printed.
	single := filepath.Join(in.dir, "single.json")
	t.Setenv("SOURCE_DATE_EPOCH", "7")
	stdout2, stderr, code := runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", cmdline, "--manifest-out", single)
	if code != exitOK || stdout2 != stdout {
		t.Fatalf("measure --manifest-out: exit %d, stdout %q (want %q), stderr %s", code, stdout2, stdout, stderr)
	}
	sm, err := manifest.Load(single)
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.Measurements) != 1 || sm.Measurements[0].Measurement != strings.TrimSpace(stdout) || sm.SourceDateEpoch != 7 {
		t.Errorf("single manifest: %+v, epoch %d", sm.Measurements, sm.SourceDateEpoch)
	}
}

func TestManifestCommandErrors(t *testing.T) {
	in := makeManifestInputs(t)
	out := filepath.Join(in.dir, "m.json")
	base := []string{"--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd, "--cmdline", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}
	with := func(extra ...string) []string { return withFlags(base, extra...) }
	without := func(flag string) []string {
		var r []string
		for i := 0; i < len(base); i += 2 {
			if base[i] != flag {
				r = append(r, base[i], base[i+1])
			}
		}
		return r
	}
	x64 := filepath.Join(filepath.Dir(in.ovmf), "ovmf_OvmfX64_suffix.bin")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no output", without("-o"), exitUsage, "-o is required"},
		{"no kernel", without("--kernel"), exitUsage, "hostbuild manifest: --kernel is required"},
		// The init refuses an unknown katana.* key at boot: so must manifest.
		{"no cmdline", without("--cmdline"), exitUsage, "--cmdline is required"},
		{"unknown katana key", with("--cmdline", "console=ttyS0 panic=-1 katana.bogus=1"), exitUsage, `unknown katana.* key: "katana.bogus=1"`},
		{"bad katana value", with("--cmdline", "katana.on_exit=halt"), exitUsage, "want poweroff, reboot or restart"},
		{"bad vcpus", with("--vcpus", "1,x"), exitUsage, "comma-separated list"},
		{"zero vcpus", with("--vcpus", "0"), exitUsage, "positive counts"},
		{"empty type", with("--vcpu-type", "EPYC-v4,"), exitUsage, "empty type"},
		{"vcpus twice", with("--vcpus", "1,2,1"), exitUsage, `--vcpus "1,2,1": 1 given twice`},
		{"type twice", with("--vcpu-type", "EPYC-v4, EPYC-v4"), exitUsage, `--vcpu-type "EPYC-v4, EPYC-v4": EPYC-v4 given twice`},
		{"cmdline with a newline", with("--cmdline", "console=ttyS0\npanic=-1"), exitUsage, "--cmdline: the guest would not get this cmdline byte for byte"},
		{"cmdline too long", with("--cmdline", "console=ttyS0 "+strings.Repeat("a", 2100)), exitUsage, "--cmdline: the guest would not get the whole cmdline"},
		{"unknown type", with("--vcpu-type", "EPYC-Zen9"), exitUsage, "unknown vCPU type"},
		{"bad policy", with("--policy", "0x1"), exitUsage, "reserved, must be 1"},
		{"bad epoch env", nil, exitUsage, "SOURCE_DATE_EPOCH"},
		{"plain firmware", with("--ovmf", x64), exitFail, "unmeasured"},
		{"missing init", with("--init", filepath.Join(in.dir, "nope")), exitFail, "--init " + filepath.Join(in.dir, "nope") + ": no such file or directory (check the path)"},
		{"init not Go", with("--init", in.kernel), exitFail, "Go build info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "bad epoch env" {
				t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
				args = base
			}
			_, stderr, code := runHB(t, append([]string{"manifest"}, args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed run left %s (%v)", out, err)
			}
		})
	}
}

// --payload and --init are recorded only when the initrd holds them: the
// measurement covers the initrd's bytes alone, and attest shows the
// payload record as what the guest runs.
func TestManifestChecksPayloadAndInitAgainstInitrd(t *testing.T) {
	dir, ovmf := stageBuild(t)
	for _, enc := range []string{"frames", "inline"} {
		if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana",
			"--payload-encoding", enc, "-o", enc+".img"); code != exitOK {
			t.Fatalf("pack: exit %d\n%s", code, errOut)
		}
	}
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sum := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	write("other", testelf.Executable("", []byte("another payload")))
	// A Go binary (manifest records the init's build info) that is not the packed /init.
	goBin, err := os.ReadFile(filepath.Join(dir, "guestinit"))
	if err != nil {
		t.Fatal(err)
	}
	write("other-init", append(goBin, "x"...))
	// The packed initrd with an archive appended whose entry goes through
	// "..": which file it replaces only the kernel can tell.
	packed, err := os.ReadFile(filepath.Join(dir, "frames.img"))
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	w := newc.NewWriter(&extra)
	if err := w.WriteHeader(&newc.Header{Name: "etc/../bin/katana", Mode: newc.TypeReg | 0o755, NLink: 1, Size: 1}); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Close()
	pad := make([]byte, (4-len(packed)%4)%4)
	write("dotdot.img", append(append(packed, pad...), extra.Bytes()...))
	// The packed initrd with a sidecar appended that its content list
	// does not name: Katana would find and run it.
	extra.Reset()
	w = newc.NewWriter(&extra)
	for _, h := range []newc.Header{{Name: "usr/local/bin", Mode: newc.TypeDir | 0o755, NLink: 2}, {Name: "usr/local/bin/vrf-server", Mode: newc.TypeReg | 0o755, NLink: 1, Size: 1}} {
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, h.Size))
	}
	w.Close()
	write("unlisted.img", append(append(packed, pad...), extra.Bytes()...))
	write("plain.img", []byte("not an initrd"))

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"frames: payload and init match", []string{"--initrd", "frames.img", "--payload", "katana", "--init", "guestinit"}, exitOK, nil},
		{"inline: payload and init match", []string{"--initrd", "inline.img", "--payload", "katana", "--init", "guestinit"}, exitOK, nil},
		{"another payload", []string{"--initrd", "frames.img", "--payload", "other"}, exitFail,
			[]string{"--payload other (SHA-256 " + sum("other") + ") is not the payload of --initrd frames.img (SHA-256 " + sum("katana"), "pack the initrd again"}},
		{"inline: another payload", []string{"--initrd", "inline.img", "--payload", "other"}, exitFail,
			[]string{"is not the payload of --initrd inline.img (SHA-256 " + sum("katana")}},
		{"another init", []string{"--initrd", "frames.img", "--payload", "katana", "--init", "other-init"}, exitFail,
			[]string{"--init other-init (SHA-256 " + sum("other-init") + ") is not the /init of --initrd frames.img (SHA-256 " + sum("guestinit")}},
		{"payload unknown", []string{"--initrd", "dotdot.img", "--payload", "katana"}, exitFail,
			[]string{"--payload katana cannot be checked against --initrd dotdot.img", `"etc/../bin/katana" has a ".." component`}},
		{"not an initrd", []string{"--initrd", "plain.img", "--init", "guestinit"}, exitFail,
			[]string{"cannot be read as an initrd", "leave them out"}},
		// Without --payload and --init an initrd with a content list is
		// still read: what the list does not vouch for is refused.
		{"no flags: packed", []string{"--initrd", "frames.img"}, exitOK, nil},
		{"no flags: not an initrd", []string{"--initrd", "plain.img"}, exitOK, nil},
		{"no flags: a file the list does not name", []string{"--initrd", "unlisted.img"}, exitFail,
			[]string{"--initrd unlisted.img holds what its content list does not vouch for", "usr/local/bin/vrf-server"}},
		{"no flags: payload unknown", []string{"--initrd", "dotdot.img"}, exitFail,
			[]string{"--initrd dotdot.img holds what its content list does not vouch for", `"etc/../bin/katana" has a ".." component`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "m.json")
			os.Remove(out)
			args := append([]string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--cmdline", "console=ttyS0 panic=-1",
				"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}, tc.args...)
			_, errOut, code := hostbuild(t, dir, nil, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if _, err := os.Stat(out); (err == nil) != (tc.code == exitOK) {
				t.Errorf("exit %d, manifest written: %v", code, err == nil)
			}
		})
	}
}

// -h gives one default for --source-date-epoch: the flag's placeholder
// value (-1) once showed up beside the documented one.
func TestSourceDateEpochHelpDefault(t *testing.T) {
	for _, cmd := range []string{"manifest", "measure"} {
		help, _, code := runHB(t, cmd, "-h")
		if code != exitOK || !strings.Contains(help, "(default: $SOURCE_DATE_EPOCH, else 0;") || strings.Contains(help, "(default -1)") {
			t.Errorf("%s -h: exit %d, source-date-epoch help:\n%s", cmd, code, help)
		}
	}
}

// $SOURCE_DATE_EPOCH at the end of its range: 0 (the Unix epoch, what
// reproducible-build tooling sets for "no date") is recorded, -1 is refused.
func TestManifestSourceDateEpochEnvBounds(t *testing.T) {
	in := makeManifestInputs(t)
	out := filepath.Join(in.dir, "m.json")
	args := []string{"manifest", "--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd, "--cmdline", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}

	t.Setenv("SOURCE_DATE_EPOCH", "0")
	if _, stderr, code := runHB(t, args...); code != exitOK {
		t.Fatalf("SOURCE_DATE_EPOCH=0: exit %d: %s", code, stderr)
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.SourceDateEpoch != 0 {
		t.Errorf("SOURCE_DATE_EPOCH=0 recorded %d", m.SourceDateEpoch)
	}
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "-1")
	_, stderr, code := runHB(t, args...)
	if code != exitUsage || !strings.Contains(stderr, `$SOURCE_DATE_EPOCH "-1" is not a non-negative integer`) {
		t.Errorf("SOURCE_DATE_EPOCH=-1: exit %d, stderr %q; want %d and a refusal", code, stderr, exitUsage)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused SOURCE_DATE_EPOCH left %s (%v)", out, err)
	}

	// Past 32 bits: pack refuses it (cpio mtimes), so no initrd has it.
	t.Setenv("SOURCE_DATE_EPOCH", "4294967296")
	_, stderr, code = runHB(t, args...)
	if code != exitUsage || !strings.Contains(stderr, "$SOURCE_DATE_EPOCH 4294967296 is out of range") {
		t.Errorf("SOURCE_DATE_EPOCH=2^32: exit %d, stderr %q; want %d and a refusal", code, stderr, exitUsage)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "4294967295")
	if _, stderr, code := runHB(t, args...); code != exitOK {
		t.Errorf("SOURCE_DATE_EPOCH=2^32-1: exit %d: %s", code, stderr)
	}
}

// measure --manifest-out --json prints the JSON of the measurement the manifest
// records, steps included (without --json measure takes the digest from the
// manifest; with it, the steps need the inputs measured again).
func TestMeasureManifestJSON(t *testing.T) {
	in := makeManifestInputs(t)
	out := filepath.Join(in.dir, "m.json")
	stdout, stderr, code := runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", "console=ttyS0 panic=-1", "--manifest-out", out, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Measurement string `json:"measurement"`
		Steps       []struct {
			Digest string `json:"digest"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("decoding --json output: %v\n%s", err, stdout)
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Measurements) != 1 || doc.Measurement != m.Measurements[0].Measurement || len(doc.Steps) == 0 || doc.Steps[len(doc.Steps)-1].Digest != doc.Measurement {
		t.Errorf("--json printed measurement %s with %d steps; the manifest records %+v", doc.Measurement, len(doc.Steps), m.Measurements)
	}

	// An initrd rewritten between the two readings: the JSON would print
	// one measurement and the manifest hold another, both exit 0.
	orig, err := os.ReadFile(in.initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(in.initrd, orig, 0o644)
	measureComputed = func() { os.WriteFile(in.initrd, append(bytes.Clone(orig), 0), 0o644) }
	defer func() { measureComputed = func() {} }()
	stdout, stderr, code = runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", "console=ttyS0 panic=-1", "--manifest-out", out, "--json")
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "an input changed while it was read") {
		t.Errorf("initrd rewritten between the readings: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	if now, err := manifest.Load(out); err != nil || now.Measurements[0].Measurement != m.Measurements[0].Measurement {
		t.Errorf("the failed run replaced %s (%v)", out, err)
	}
}

// A --cmdline without console=ttyS0 or panic=-1 is recorded (a custom
// setting may be meant) with a warning, as cmdline and build give: without
// the console, run waits out its whole timeout on an empty serial log.
func TestManifestWarnsMissingDefaults(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	for line, want := range map[string][]string{
		"panic=-1":               {"hostbuild manifest: warning: in --cmdline, console=ttyS0 is missing"},
		"console=ttyS0":          {"hostbuild manifest: warning: in --cmdline, panic=-1 is missing"},
		"console=ttyS0 panic=-1": nil,
	} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
			"--cmdline", line, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json")
		if code != exitOK {
			t.Fatalf("%q: exit %d\n%s", line, code, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr %q, want %q", line, errOut, w)
			}
		}
		if want == nil && strings.Contains(errOut, "warning") {
			t.Errorf("%q: stderr %q, want no warning", line, errOut)
		}
	}
}

// A Turin vCPU type is measured (another verifier may check it) with a
// warning that attest refuses its reports.
func TestManifestWarnsTurin(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4,EPYC-Turin", "-o", "m.json")
	if code != exitOK || !strings.Contains(errOut, "hostbuild manifest: warning: --vcpu-type EPYC-Turin: hostbuild attest refuses reports from AMD Turin") ||
		strings.Contains(errOut, "EPYC-v4:") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// An output in a missing folder is refused before any work, naming the
// folder and the fix (it once failed after measuring, with the temporary
// file's name).
func TestOutputFolderCheckedFirst(t *testing.T) {
	dir, ovmf := stageBuild(t)
	os.WriteFile(filepath.Join(dir, "i.img"), []byte("initrd"), 0o644)
	for _, args := range [][]string{
		{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img", "--cmdline", "console=ttyS0 panic=-1",
			"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "nonexist/m.json"},
		{"measure", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img", "--append", "console=ttyS0 panic=-1",
			"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--manifest-out", "nonexist/m.json"},
	} {
		_, errOut, code := hostbuild(t, dir, nil, args...)
		if code != exitFail || !strings.Contains(errOut, "nonexist/m.json: its folder nonexist cannot be used (no such file or directory): create it, or write elsewhere") {
			t.Errorf("%s: exit %d, stderr %q", args[0], code, errOut)
		}
	}
}

// A kernel that is no bzImage (an ELF vmlinux) is measured, as
// sev-snp-measure would, but with a warning: QEMU boots no such launch
// with kernel-hashes=on. build refuses it (TestBuildErrors).
func TestManifestWarnsNotBzImage(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	for kernel, want := range map[string]string{
		"katana":  "hostbuild manifest: warning: --kernel katana: an ELF file (an uncompressed vmlinux?), not a bzImage",
		"vmlinuz": "",
	} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", kernel, "--initrd", "i.img",
			"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json")
		if code != exitOK || want != "" && !strings.Contains(errOut, want) || want == "" && strings.Contains(errOut, "warning") {
			t.Errorf("--kernel %s: exit %d, stderr %q; want %q", kernel, code, errOut, want)
		}
	}
}

// A guest policy that allows debugging is written as given, with a warning
// (manifest, build; run and libvirt when they launch from such a manifest):
// attest would refuse its reports, and the host could read the guest.
func TestWarnsDebugPolicy(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	const warn = "warning: guest policy 0xb0000 allows debugging (bit 19)"
	for policy, want := range map[string]bool{"0xb0000": true, "0x30000": false} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
			"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--policy", policy, "-o", "m-"+policy+".json")
		if code != exitOK || strings.Contains(errOut, "hostbuild manifest: "+warn) != want {
			t.Errorf("manifest --policy %s: exit %d, stderr %q; warning wanted: %v", policy, code, errOut, want)
		}
	}
	// A migration agent (bit 18) is the same risk by another door.
	const warnMA = "warning: guest policy 0x70000 allows a migration agent (bit 18)"
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--policy", "0x70000", "-o", "m-ma.json"); code != exitOK || !strings.Contains(errOut, warnMA) {
		t.Errorf("manifest --policy 0x70000: exit %d, stderr %q; want %q", code, errOut, warnMA)
	}
	_, errOut, code := hostbuild(t, dir, nil, "libvirt", "--manifest", "m-0xb0000.json", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img", "--cid", "3", "-o", "d.xml")
	if code != exitOK || !strings.Contains(errOut, "hostbuild libvirt: "+warn) {
		t.Errorf("libvirt from a debug manifest: exit %d, stderr %q", code, errOut)
	}
}

// The manifest records the SOURCE_DATE_EPOCH a hostbuild pack initrd was
// packed with (its entries' mtime), not this run's environment: the same
// initrd gives the same manifest whatever $SOURCE_DATE_EPOCH holds, and a
// different explicit one is refused.
func TestManifestSourceDateEpochFromInitrd(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, []string{"SOURCE_DATE_EPOCH=1700000000"}, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	args := []string{"manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json"}
	var first []byte
	for _, env := range [][]string{{"SOURCE_DATE_EPOCH="}, {"SOURCE_DATE_EPOCH=0"}, {"SOURCE_DATE_EPOCH=1700000000"}} {
		_, errOut, code := hostbuild(t, dir, env, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s", env, code, errOut)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "m.json"))
		if !bytes.Contains(b, []byte(`"source_date_epoch": 1700000000`)) {
			t.Errorf("%v: the manifest does not record the initrd's epoch:\n%s", env, b)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Errorf("%v: another manifest than with %v", env, "SOURCE_DATE_EPOCH unset")
		}
	}
	_, errOut, code := hostbuild(t, dir, []string{"SOURCE_DATE_EPOCH=1600000000"}, args...)
	if code != exitFail || !strings.Contains(errOut, "SOURCE_DATE_EPOCH 1600000000 (--source-date-epoch or $SOURCE_DATE_EPOCH), but --initrd i.img was packed with 1700000000") {
		t.Errorf("another epoch: exit %d\n%s", code, errOut)
	}
}

// vCPU types with one signature give the same rows (QEMU measures the
// signature only), and under ec2 or gce every type does: a warning says a
// report cannot tell them apart; distinct signatures get none.
func TestManifestWarnsAlikeTypes(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	for _, tc := range []struct{ types, vmm, want string }{
		{"EPYC,EPYC-v4,EPYC-Genoa", "QEMU", "warning: --vcpu-type EPYC and EPYC-v4 have the same signature"},
		{"EPYC-v4,EPYC-Genoa", "gce", "warning: VMM type gce measures no vCPU type"},
		{"EPYC-v4,EPYC-Genoa", "QEMU", ""},
	} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "i.img",
			"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", tc.types, "--vmm-type", tc.vmm, "-o", "m.json")
		if code != exitOK || (tc.want == "") != !strings.Contains(errOut, "warning") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s %s: exit %d, stderr %q; want %q", tc.vmm, tc.types, code, errOut, tc.want)
		}
	}
}

// An OVMF image that measures but that QEMU cannot start an SEV-SNP guest
// on (here an AmdSevX64 build's last 4 KiB: -bios takes only whole 64 KiB
// blocks) gets a warning; the manifest is written all the same.
func TestManifestWarnsOVMFNotLaunchable(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "-o", "i.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	suffix, _ := filepath.Abs("testdata/ovmf_AmdSev_suffix.bin")
	for fw, want := range map[string]string{
		suffix: "hostbuild manifest: warning: --ovmf " + suffix + ": 4096 bytes, not a multiple of 64 KiB: QEMU's -bios, which gives an SEV-SNP guest its firmware, refuses it; run cannot launch it",
		ovmf:   "",
	} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", fw, "--kernel", "vmlinuz", "--initrd", "i.img",
			"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m.json")
		if code != exitOK || want != "" && !strings.Contains(errOut, want) || want == "" && strings.Contains(errOut, "warning") {
			t.Errorf("--ovmf %s: exit %d, stderr %q; want %q", fw, code, errOut, want)
		}
	}
}

// DebugSwap (guest features 0x20) with a kernel older than 6.6, which
// ends the guest at its first instructions, is warned of, naming the
// release; a newer kernel, no DebugSwap, or a kernel naming no release
// is not.
func TestWarnDebugSwapKernel(t *testing.T) {
	dir := t.TempDir()
	kernel := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k61 := kernel("k61", fakeBzImageRelease("6.1.0-57-amd64"))
	k65 := kernel("k65", fakeBzImageRelease("6.5.13"))
	k66 := kernel("k66", fakeBzImageRelease("6.6.0"))
	k612 := kernel("k612", fakeBzImageRelease("6.12.73+deb12-amd64"))
	k7 := kernel("k7", fakeBzImageRelease("7.0.1"))
	k519 := kernel("k519", fakeBzImageRelease("5.19.0"))
	bare := kernel("bare", fakeBzImage(""))
	for _, tc := range []struct {
		kernel   string
		features uint64
		warn     bool
	}{
		{k61, 0x21, true}, {k65, 0x21, true}, {k519, 0x21, true},
		{k61, 0x1, false}, {k66, 0x21, false}, {k612, 0x21, false}, {k7, 0x21, false}, {bare, 0x21, false},
	} {
		var b strings.Builder
		warnDebugSwapKernel(&b, "build", tc.kernel, tc.features)
		got := b.String()
		if tc.warn != (got != "") {
			t.Errorf("%s, features %#x: warning %q, want one: %v", filepath.Base(tc.kernel), tc.features, got, tc.warn)
		}
		if tc.warn && !strings.Contains(got, "DebugSwap") || tc.warn && !strings.Contains(got, "from 6.6 on") {
			t.Errorf("%s: %q does not say what and from which release", filepath.Base(tc.kernel), got)
		}
	}
}

package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
)

func sharedFixture(t *testing.T, rel string) string {
	t.Helper()
	dir := os.Getenv("SHARED_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fixture %s not found (%v); set SHARED_DIR to the shared folder (make test does)", p, err)
	}
	return p
}

func TestExplain(t *testing.T) {
	ovmf := sharedFixture(t, "measure/fixtures/ovmf_AmdSev_suffix.bin")
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	initrd := filepath.Join(dir, "initrd.img")
	os.WriteFile(kernel, []byte(strings.Repeat("kernel", 1000)), 0o644)
	os.WriteFile(initrd, []byte(strings.Repeat("initrd", 1000)), 0o644)
	file := func(p string) manifest.File {
		b, _ := os.ReadFile(p)
		s := sha256.Sum256(b)
		return manifest.File{Name: filepath.Base(p), Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
	}
	const cmdline = "console=ttyS0 panic=-1"
	m := &manifest.Manifest{
		Schema: manifest.Schema, Tool: manifest.Tool{Name: "t"}, Cmdline: cmdline, VMMType: "QEMU",
		GuestFeatures: "0x1", GuestPolicy: "0x30000",
		Components: manifest.Components{OVMF: file(ovmf), Kernel: file(kernel), Initrd: file(initrd)},
	}
	base, err := m.MeasureOptions(ovmf, kernel, initrd, 2, "EPYC-v4")
	if err != nil {
		t.Fatal(err)
	}
	digest := func(o measure.Options) string {
		r, err := measure.Compute(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return r.Hex()
	}
	m.Measurements = []manifest.Measurement{{VCPUs: 2, VCPUType: "EPYC-v4", Measurement: digest(base)}}

	variant := func(edit func(o *measure.Options)) string {
		o := base
		edit(&o)
		return digest(o)
	}
	for _, tc := range []struct {
		name      string
		got       string
		wantInput string
		wantText  string
	}{
		{"3 vCPUs", variant(func(o *measure.Options) { o.VCPUs = 3 }), "vCPU count or type", "3 vCPUs of type EPYC-v4"},
		{"MaxVCPUs vCPUs, the largest count tried", variant(func(o *measure.Options) { o.VCPUs = 4 }), "vCPU count or type", "4 vCPUs of type EPYC-v4"},
		{"VMM type ec2", variant(func(o *measure.Options) { o.VMMType = "ec2" }), "VMM type", "VMM type ec2 instead of QEMU"},
		{"Milan vCPU type", variant(func(o *measure.Options) { o.VCPUType = "EPYC-Milan" }), "vCPU count or type", "of type EPYC-Milan"},
		{"guest features 0x21", variant(func(o *measure.Options) { o.GuestFeatures = 0x21 }), "guest features", "0x21"},
		{"trailing space", variant(func(o *measure.Options) { o.Append = cmdline + " " }), "cmdline", "trailing space"},
		{"firmware only", variant(func(o *measure.Options) { o.Kernel, o.Initrd, o.Append = "", "", "" }), "firmware only", "kernel-hashes"},
		{"nothing matches", strings.Repeat("ab", 48), "", "no variant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Explain(context.Background(), ExplainOptions{Manifest: m, OVMF: ovmf, Kernel: kernel, Initrd: initrd, Got: tc.got, MaxVCPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			gotInput := ""
			if ex.Match != nil {
				gotInput = ex.Match.Input
			}
			if gotInput != tc.wantInput || !strings.Contains(ex.Likely, tc.wantText) {
				t.Errorf("input %q, likely %q; want input %q mentioning %q", gotInput, ex.Likely, tc.wantInput, tc.wantText)
			}
			if len(ex.Files) != 0 || strings.Contains(ex.Likely, "differ from the manifest") {
				t.Errorf("the local files are the manifest's, yet files %q, likely %q", ex.Files, ex.Likely)
			}
		})
	}
	// The initrd was rebuilt after the manifest and the host launched the new
	// one with the manifest's vCPUs: the files drifted, not the vCPUs.
	os.WriteFile(initrd, []byte(strings.Repeat("INITRD", 1000)), 0o644)
	for _, tc := range []struct {
		name, got, wantInput, wantText string
	}{
		{"rebuilt initrd", digest(base), "files", "the local files (not the manifest's) with the manifest's cmdline, 2 vCPUs of type EPYC-v4"},
		{"rebuilt initrd and 3 vCPUs", variant(func(o *measure.Options) { o.VCPUs = 3 }), "files and the vCPU count or type", "which the manifest does not list either"},
		{"rebuilt initrd and guest features 0x21", variant(func(o *measure.Options) { o.GuestFeatures = 0x21 }), "guest features", "0x21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Explain(context.Background(), ExplainOptions{Manifest: m, OVMF: ovmf, Kernel: kernel, Initrd: initrd, Got: tc.got, MaxVCPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			if ex.Match == nil || ex.Match.Input != tc.wantInput || !strings.Contains(ex.Likely, tc.wantText) || !strings.Contains(ex.Likely, "initrd "+initrd+" has SHA-256") {
				t.Errorf("match %+v, likely %q; want input %q mentioning %q and the initrd", ex.Match, ex.Likely, tc.wantInput, tc.wantText)
			}
		})
	}

	// A local file that differs from the manifest is named.
	os.WriteFile(initrd, []byte("other"), 0o644)
	ex, err := Explain(context.Background(), ExplainOptions{Manifest: m, OVMF: ovmf, Kernel: kernel, Initrd: initrd, Got: strings.Repeat("ab", 48), MaxVCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Files) != 1 || !strings.Contains(ex.Files[0], "initrd") || !strings.Contains(ex.Likely, "initrd") {
		t.Errorf("file mismatch not named: %+v", ex)
	}
	if _, err := Explain(context.Background(), ExplainOptions{Manifest: m, OVMF: ovmf}); err == nil {
		t.Error("explain without the files did not say what it needs")
	}
}

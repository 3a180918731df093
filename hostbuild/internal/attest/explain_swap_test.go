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

// --explain hashes the local files, to say whether they are the
// manifest's, then measures its variants from the paths again, once per
// variant. A kernel renamed over its path in between was measured but
// never compared: the explanation named a vCPU setting, of "the
// manifest's files", for a report that matched another kernel. What it
// concludes must be of the bytes it hashed: a file that changed while it
// was read is an error.
func TestExplainFileReplacedWhileMeasuring(t *testing.T) {
	ovmf := sharedFixture(t, "measure/fixtures/ovmf_AmdSev_suffix.bin")
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	initrd := filepath.Join(dir, "initrd.img")
	manifestKernel := []byte(strings.Repeat("kernel", 1000))
	otherKernel := []byte(strings.Repeat("KERNEL", 1000))
	os.WriteFile(kernel, manifestKernel, 0o644)
	os.WriteFile(initrd, []byte(strings.Repeat("initrd", 1000)), 0o644)
	file := func(p string) manifest.File {
		b, _ := os.ReadFile(p)
		s := sha256.Sum256(b)
		return manifest.File{Name: filepath.Base(p), Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
	}
	m := &manifest.Manifest{
		Schema: manifest.Schema, Tool: manifest.Tool{Name: "t"}, Cmdline: "console=ttyS0 panic=-1", VMMType: "QEMU",
		GuestFeatures: "0x1", GuestPolicy: "0x30000",
		Components: manifest.Components{OVMF: file(ovmf), Kernel: file(kernel), Initrd: file(initrd)},
	}
	o, err := m.MeasureOptions(ovmf, kernel, initrd, 3, "EPYC-v4")
	if err != nil {
		t.Fatal(err)
	}
	r, err := measure.Compute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	m.Measurements = []manifest.Measurement{{VCPUs: 2, VCPUType: "EPYC-v4", Measurement: r.Hex()}}
	// The report: 3 vCPUs of another kernel.
	os.WriteFile(kernel+".other", otherKernel, 0o644)
	o.Kernel = kernel + ".other"
	got, err := measure.Compute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}

	explainMeasuring = func() { os.Rename(kernel+".other", kernel) }
	defer func() { explainMeasuring = func() {} }()
	ex, err := Explain(context.Background(), ExplainOptions{Manifest: m, OVMF: ovmf, Kernel: kernel, Initrd: initrd, Got: got.Hex(), MaxVCPUs: 4})
	if err == nil {
		t.Errorf("the kernel was replaced after it was hashed: explanation %+v; want an error saying it changed", ex)
	} else if !strings.Contains(err.Error(), "changed while") {
		t.Errorf("error %q does not say the kernel changed while read", err)
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// build writes the initrd, the cmdline and a manifest whose measurements
// equal what `hostbuild measure` computes for those exact files.
func TestBuildAgreesWithMeasure(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	goInit(t, filepath.Join(dir, "guestinit"))
	ovmf, _ := filepath.Abs("testdata/ovmf_AmdSev_suffix.bin")
	// Any file serves as the kernel for the measurement.
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("not really a kernel"), 0o644)
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "--args", "--http.addr 0.0.0.0 --name 'a b' *", "--agent", "tcp:0.0.0.0:1024",
		"--vcpus", "1,4", "--vcpu-type", "EPYC-v4,EPYC-Genoa", "-o", "out")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	line, err := os.ReadFile(filepath.Join(dir, "out", "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := bootcfg.Parse(string(line))
	if err != nil {
		t.Fatalf("the init would refuse the built cmdline %q: %v", line, err)
	}
	if got := strings.Join(cfg.Args, "|"); got != "--http.addr|0.0.0.0|--name|a b|*" {
		t.Errorf("args read back as %q", got)
	}
	m, err := manifest.Load(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cmdline != string(line) || len(m.Measurements) != 4 {
		t.Fatalf("manifest cmdline %q (file %q), %d measurements", m.Cmdline, line, len(m.Measurements))
	}
	for _, e := range m.Measurements {
		out, errOut, code := hostbuild(t, dir, nil, "measure", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out/initrd.img",
			"--append", string(line), "--vcpus", strconv.Itoa(e.VCPUs), "--vcpu-type", e.VCPUType)
		if code != 0 {
			t.Fatalf("measure: exit %d\n%s", code, errOut)
		}
		if got := strings.TrimSpace(out); got != e.Measurement {
			t.Errorf("vcpus=%d %s: manifest says %s, measure says %s", e.VCPUs, e.VCPUType, e.Measurement, got)
		}
	}
	// A refused setting leaves no manifest behind.
	_, errOut, code = hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz",
		"--ovmf", ovmf, "--args", "it's", "-o", "out")
	if code != exitUsage || !strings.Contains(errOut, "unbalanced single quote") {
		t.Errorf("bad --args: exit %d, %s", code, errOut)
	}
}

// goInit builds the stand-in as a static Go binary: the manifest records
// the init's Go build info, so the init must be a Go program.
func goInit(t *testing.T, dst string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", dst, "./testdata/standin-katana")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, out)
	}
}

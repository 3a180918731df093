package boottest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/qemu"
)

// snpSkip is printed when the hardware tier is not asked for: what it needs
// and how to turn it on.
const snpSkip = "SEV-SNP hardware test (DESIGN.md testing tier 5), off by default: " +
	"set SNPBOOT_SNP=1 on an SEV-SNP host (KVM with SNP enabled, QEMU 9.1 or newer, /dev/sev, /dev/vhost-vsock) " +
	"and SNPBOOT_OVMF=<AmdSevX64 OVMF.fd with SNP_KERNEL_HASHES>, with KERNEL_DIR and OUT_DIR as for 'make test'; " +
	"optional: SNPBOOT_QEMU (QEMU binary), SNPBOOT_CID (guest CID, default 42), SNPBOOT_VCPU_TYPE (default EPYC-v4), " +
	"SNPBOOT_KDS=1 (let hostbuild attest fetch the VCEK from AMD's KDS when the guest has no certificate table), " +
	"SNPBOOT_MIN_TCB=bl=N,tee=N,snp=N,ucode=N (attest's --min-tcb; default none)"

// TestSNPHardware is the operator's path on SEV-SNP hardware, end to end,
// never faked: `hostbuild build` with the host's OVMF, `hostbuild run` in
// SEV-SNP mode (KVM, kernel hashes, vhost-vsock), then
//   - Katana (the stand-in) answers starknet_chainId through the forwarded port;
//   - the init loaded sev_guest (the device exists under SEV-SNP);
//   - `hostbuild attest` over vsock verifies the AMD chain, the REPORT_DATA
//     binding, the measurement and the policy (exit 0), and the measurement
//     it reports is the one the manifest predicted for 1 vCPU of the type;
//   - the same guest checked against a manifest for another cmdline is
//     refused as a measurement mismatch (exit 6);
//   - the ACPI power button stops it cleanly (run exit 0).
func TestSNPHardware(t *testing.T) {
	if os.Getenv("SNPBOOT_SNP") != "1" {
		t.Skip(snpSkip)
	}
	e := needEnv(t)
	ovmf := os.Getenv("SNPBOOT_OVMF")
	if ovmf == "" {
		t.Fatal("SNPBOOT_SNP=1 needs SNPBOOT_OVMF=<AmdSevX64 OVMF.fd with SNP_KERNEL_HASHES>")
	}
	for _, dev := range []string{"/dev/kvm", "/dev/sev", "/dev/vhost-vsock"} {
		if _, err := os.Stat(dev); err != nil {
			t.Fatalf("SNPBOOT_SNP=1 but %s is missing (an SEV-SNP host with kvm_amd sev_snp=1 and vhost_vsock loaded?): %v", dev, err)
		}
	}
	cid := envOr("SNPBOOT_CID", "42")
	vtype := envOr("SNPBOOT_VCPU_TYPE", "EPYC-v4")
	qemuBin := envOr("SNPBOOT_QEMU", qemu.DefaultBinary)

	dir := t.TempDir()
	out := filepath.Join(dir, "build")
	build := exec.Command(e.hostbuild, "build", "-q", "--init", e.init, "--payload", e.standin,
		"--kernel-modules", e.kernelDir, "--kernel", e.vmlinuz, "--ovmf", ovmf,
		"--vcpus", "1", "--vcpu-type", vtype, "--args", fmt.Sprintf("--http.addr 0.0.0.0 --http.port %d", katanaPort), "-o", out)
	build.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("hostbuild build: %v\n%s", err, b)
	}
	manifest, initrd := filepath.Join(out, "manifest.json"), filepath.Join(out, "initrd.img")
	want := manifestMeasurement(t, manifest, vtype)

	hp := freePort(t)
	serial := filepath.Join(dir, "serial.log")
	args := []string{"run", "--qemu", qemuBin, "--manifest", manifest, "--ovmf", ovmf, "--kernel", e.vmlinuz, "--initrd", initrd,
		"--vcpus", "1", "--vcpu-type", vtype, "--cid", cid, "--forward", fmt.Sprintf("127.0.0.1:%d:%d", hp, katanaPort),
		"--serial-log", serial, "--ready-timeout", bootTimeout.String()}
	t.Logf("booting: hostbuild %s", strings.Join(args, " "))
	g := startRun(t, e, args, serial)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	if _, err := g.WaitForLine(ctx, markKatanaStarted); err != nil {
		t.Fatal(err)
	}
	if l := findLine(g, "guestinit: module sev_guest:"); l != "" {
		t.Errorf("the init did not load sev_guest under SEV-SNP: %q", l)
	}
	if err := g.WaitUntil(ctx, 200*time.Millisecond, chainIDProbe(hp)); err != nil {
		t.Fatalf("starknet_chainId through host port %d: %v", hp, err)
	}

	attest := func(manifest string) (int, string, string) {
		// SNPBOOT_MIN_TCB: the TCB floor to check (attest requires one);
		// default none, which the result then warns of.
		minTCB := os.Getenv("SNPBOOT_MIN_TCB")
		if minTCB == "" {
			minTCB = "none"
		}
		a := []string{"attest", "--cid", cid, "--manifest", manifest, "--min-tcb", minTCB, "--json"}
		if os.Getenv("SNPBOOT_KDS") == "1" {
			a = append(a, "--kds")
		}
		cmd := exec.CommandContext(ctx, e.hostbuild, a...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	code, stdout, stderr := attest(manifest)
	if code != 0 {
		t.Fatalf("hostbuild attest against the launch's own manifest: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	var res struct {
		OK           bool   `json:"ok"`
		Measurement  string `json:"measurement"`
		MatchedVCPUs int    `json:"matched_vcpus"`
		MatchedType  string `json:"matched_vcpu_type"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("hostbuild attest --json: %v\n%s", err, stdout)
	}
	if !res.OK || res.Measurement != want || res.MatchedVCPUs != 1 || res.MatchedType != vtype {
		t.Errorf("attest result %+v: want ok, measurement %s (the manifest's for 1 × %s)", res, want, vtype)
	}

	// A manifest for another cmdline predicts another measurement: the
	// running guest's report must not match it.
	other := filepath.Join(dir, "other.json")
	cmdline, err := os.ReadFile(filepath.Join(out, "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	writeManifest(t, e, ovmf, initrd, string(cmdline)+" katana.stop_timeout=31s", vtype, other)
	if code, stdout, stderr := attest(other); code != 6 {
		t.Errorf("hostbuild attest against a manifest for another cmdline: exit %d, want 6 (measurement not in the manifest)\n%s\n%s", code, stdout, stderr)
	}

	if err := g.PowerDown(); err != nil {
		t.Fatal(err)
	}
	expectPowerOff(ctx, t, g, runExitClean)
}

// manifestMeasurement is the manifest's expected measurement for 1 vCPU of
// type vtype.
func manifestMeasurement(t *testing.T, path, vtype string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Measurements []struct {
			VCPUs       int    `json:"vcpus"`
			VCPUType    string `json:"vcpu_type"`
			Measurement string `json:"measurement"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, x := range m.Measurements {
		if x.VCPUs == 1 && x.VCPUType == vtype {
			return x.Measurement
		}
	}
	t.Fatalf("%s has no measurement for 1 × %s", path, vtype)
	return ""
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/doctor"
)

// TestDoctorCLI runs doctor against an empty fake root and a fake old QEMU:
// every failure line must be followed by its fix, and the exit is 1.
func TestDoctorCLI(t *testing.T) {
	root := t.TempDir()
	qemuBin := filepath.Join(t.TempDir(), "qemu")
	script := "#!/bin/sh\ncase $1 in --version) echo 'QEMU emulator version 7.2.22';; -object) echo '  sev-guest';; esac\n"
	if err := os.WriteFile(qemuBin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runHB(t, "doctor", "--root", root, "--qemu", qemuBin)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFail, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	fails := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FAIL  ") {
			fails++
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "      fix: ") {
				t.Errorf("FAIL line without a fix after it: %q", l)
			}
		}
	}
	for _, want := range []string{"FAIL  SEV firmware device /dev/sev", "FAIL  QEMU 9.1 or newer: " + qemuBin + " is QEMU 7.2.22",
		"FAIL  QEMU knows the sev-snp-guest object", "SKIP  OVMF", "FAIL  vhost-vsock device", "checks failed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if fails < 5 {
		t.Errorf("%d failures, want at least 5 (sev, sev_snp, kvm, qemu version, sev-snp-guest, vhost-vsock):\n%s", fails, stdout)
	}
	if _, stderr, code := runHB(t, "doctor", "--memory", "2G"); code != exitUsage || !strings.Contains(stderr, "flag provided but not defined: -memory") {
		t.Errorf("doctor --memory 2G: exit %d, want %d (no memlock check, so no --memory):\n%s", code, exitUsage, stderr)
	}
}

// TestDoctorCLIPasses: a host where every check passes (a fake root whose
// devices are links to /dev/null, a fake QEMU 9.2 with sev-snp-guest, the
// AmdSevX64 OVMF fixture) exits 0 and says so, with no failure or fix; an
// argument is a usage error.
func TestDoctorCLIPasses(t *testing.T) {
	ovmf := filepath.Join(os.Getenv("SHARED_DIR"), "measure", "fixtures", "ovmf_AmdSev_suffix.bin")
	if os.Getenv("SHARED_DIR") == "" {
		ovmf = filepath.Join("..", "..", "shared", "measure", "fixtures", "ovmf_AmdSev_suffix.bin")
	}
	suffix, err := os.ReadFile(ovmf)
	if err != nil {
		t.Skipf("skipping: the OVMF fixture is missing (%v); set SHARED_DIR to the shared folder (make test does)", err)
	}
	// A whole image as QEMU's -bios takes it: the fixture (an AmdSevX64
	// build's last 4 KiB) behind 0xff fill to 4 MiB.
	ovmf = filepath.Join(t.TempDir(), "OVMF.fd")
	if err := os.WriteFile(ovmf, append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runHB(t, append(doctorHost(t, true), "--ovmf", ovmf)...)
	if code != exitOK {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitOK, stdout, stderr)
	}
	if n := strings.Count(stdout, "PASS  "); n != 10 || !strings.Contains(stdout, "PASS  SEV-SNP firmware initialised, signing reports (SNP_PLATFORM_STATUS): API 1.55 build 21, platform INIT, RMP initialised true, 0 guests; reports carry REPORTED_TCB 0xd315000000000004 (bl=4,tee=0,snp=21,ucode=211)\n") || strings.Contains(stdout, "FAIL") || strings.Contains(stdout, "fix:") ||
		!strings.HasSuffix(stdout, "\nall checks passed: this host can launch SEV-SNP guests and attest verifies their reports.\n") {
		t.Errorf("%d PASS lines, want 10 and \"all checks passed\" with no failure:\n%s", n, stdout)
	}
	if _, stderr, code := runHB(t, "doctor", "extra"); code != exitUsage || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("doctor extra: exit %d, stderr %q; want %d and unexpected argument", code, stderr, exitUsage)
	}
}

// doctorHost is a --root tree and a fake QEMU of an SEV-SNP host on which
// every check passes but the OVMF one (skipped without --ovmf) and the
// vhost-vsock one, which fails unless vsock; it returns doctor's argv.
func doctorHost(t *testing.T, vsock bool) []string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"dev", "sys/module/kvm_amd/parameters", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	devs := []string{"sev", "kvm"}
	if vsock {
		devs = append(devs, "vhost-vsock")
	}
	for _, d := range devs {
		if err := os.Symlink("/dev/null", filepath.Join(root, "dev", d)); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"sys/module/kvm_amd/parameters/sev_snp": "Y\n",
		"proc/cpuinfo":                          "vendor_id\t: AuthenticAMD\ncpu family\t: 25\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The tree's /dev/kvm is /dev/null: answer KVM_CAP_VM_TYPES as an
	// SEV-SNP host's KVM does (default, SEV, SEV-ES and SNP VMs).
	doctorVMTypes = func(string) (uint64, error) { return 0x1d, nil }
	t.Cleanup(func() { doctorVMTypes = nil })
	// Its /dev/sev is /dev/null too: answer SNP_PLATFORM_STATUS as a
	// Milan host's firmware does.
	doctorSNPStatus = func(string) (doctor.SNPStatus, error) {
		return doctor.SNPStatus{APIMajor: 1, APIMinor: 55, Build: 21, State: 1, RMPInitialised: true,
			CurrentTCB: 0xd315000000000004, ReportedTCB: 0xd315000000000004}, nil
	}
	t.Cleanup(func() { doctorSNPStatus = nil })
	qemuBin := filepath.Join(t.TempDir(), "qemu")
	script := "#!/bin/sh\ncase $1 in --version) echo 'QEMU emulator version 9.2.0';; -object) echo '  sev-guest'; echo '  sev-snp-guest'; echo '  memory-backend-memfd';; esac\n"
	if err := os.WriteFile(qemuBin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"doctor", "--root", root, "--qemu", qemuBin}
}

// doctor's QEMU checks against a real QEMU 9.1 or newer ($SNPBOOT_QEMU_SNP:
// make test fetches bookworm-backports' 10.0), not only the fake above:
// both pass, whatever the rest of this host lacks.
func TestDoctorRealQEMU(t *testing.T) {
	bin := os.Getenv("SNPBOOT_QEMU_SNP")
	if bin == "" {
		t.Skip("skipping: set SNPBOOT_QEMU_SNP to a qemu-system-x86_64 of version 9.1 or newer (make test fetches one) to check doctor against it")
	}
	stdout, stderr, _ := runHB(t, "doctor", "--qemu", bin)
	for _, w := range []string{"PASS  QEMU 9.1 or newer: " + bin + " is QEMU ", "PASS  QEMU knows the sev-snp-guest object: sev-snp-guest listed by -object help"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("doctor --qemu %s lacks %q:\n%s%s", bin, w, stdout, stderr)
		}
	}
}

// A skipped check is not a passed one: without --ovmf (and here without a
// readable /proc/cpuinfo) doctor must not close with "all checks passed:
// this host can launch SEV-SNP guests and attest verifies their reports".
func TestDoctorSkipsAreNotPasses(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.MkdirAll(filepath.Join(root, "sys/module/kvm_amd/parameters"), 0o755)
	for _, d := range []string{"sev", "kvm", "vhost-vsock"} {
		if err := os.Symlink("/dev/null", filepath.Join(root, "dev", d)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "sys/module/kvm_amd/parameters/sev_snp"), []byte("Y\n"), 0o644)
	doctorVMTypes = func(string) (uint64, error) { return 0x1d, nil } // the tree's /dev/kvm is /dev/null
	t.Cleanup(func() { doctorVMTypes = nil })
	doctorSNPStatus = func(string) (doctor.SNPStatus, error) {
		return doctor.SNPStatus{APIMajor: 1, APIMinor: 55, State: 1}, nil
	}
	t.Cleanup(func() { doctorSNPStatus = nil })
	qemuBin := filepath.Join(t.TempDir(), "qemu")
	os.WriteFile(qemuBin, []byte("#!/bin/sh\ncase $1 in --version) echo 'QEMU emulator version 9.2.0';; -object) echo '  sev-snp-guest';; esac\n"), 0o755)
	stdout, _, code := runHB(t, "doctor", "--root", root, "--qemu", qemuBin)
	if code != exitOK || strings.Count(stdout, "SKIP  ") != 2 {
		t.Fatalf("exit %d, want 0 with two SKIP lines:\n%s", code, stdout)
	}
	if strings.Contains(stdout, "all checks passed") {
		t.Errorf("two checks were skipped, yet doctor says all passed:\n%s", stdout)
	}
}

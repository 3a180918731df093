package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if _, _, code := runHB(t, "doctor", "--memory", "x"); code != exitUsage {
		t.Errorf("doctor --memory x: exit %d, want %d", code, exitUsage)
	}
}

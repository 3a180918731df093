package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// measure --manifest-out writes a manifest that run launches and attest
// checks, like 'hostbuild manifest' does: what 'hostbuild manifest' warns
// of for the same settings (a vCPU type run refuses, a policy that allows
// debugging, an OVMF that QEMU cannot start) must be said here too, not
// left for run or attest to find.
func TestMeasureManifestOutWarnsLikeManifest(t *testing.T) {
	in := makeManifestInputs(t)
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"vCPU type run refuses", []string{"--vcpu-type", "EPYC-Milan"}, "(run refuses it)"},
		{"vCPU type attest cannot verify", []string{"--vcpu-type", "EPYC-Turin"}, "hostbuild attest refuses reports from AMD Turin"},
		{"debug policy", []string{"--vcpu-type", "EPYC-v4", "--policy", "0xb0000"}, "allows debugging (bit 19)"},
		{"OVMF QEMU cannot start", []string{"--vcpu-type", "EPYC-v4"}, "run cannot launch it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.json")
			args := append([]string{"measure", "--vcpus", "1", "--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd,
				"--append", "console=ttyS0 panic=-1", "--manifest-out", out}, tc.extra...)
			_, stderr, code := runHB(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "hostbuild measure: warning: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("measure --manifest-out %s: stderr %q, want a warning containing %q", strings.Join(tc.extra, " "), stderr, tc.want)
			}
		})
	}
}

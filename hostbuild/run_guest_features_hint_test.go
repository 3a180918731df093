package main

import (
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/launch"
	"github.com/katana-tee/snpboot/qemu"
)

// A manifest measured with DebugSwap is launched with debug-swap=on. QEMU
// 10.2+ on a KVM without DebugSwap fails KVM's init after
// check_sev_features (so "failed to initialize kvm" follows): the host
// runs SEV-SNP guests, so the hint must name the guest feature, not send
// the operator to doctor and --plain for SEV-SNP support.
func TestRunQEMUHintGuestFeatureKVMLacks(t *testing.T) {
	const kvm = "this host's KVM cannot run an SEV-SNP guest"
	for _, tc := range []struct {
		name, stderr string
		want         []string
	}{
		{"kvm without DebugSwap (QEMU 10.2+)",
			"qemu-system-x86_64: check_sev_features: VMSA contains unsupported sev_features: 20, supported features: 0\nqemu-system-x86_64: failed to initialize kvm: Operation not permitted",
			[]string{"guest feature", "--guest-features 0x1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := qemuHint(launch.Outcome{Ending: launch.EndedQEMU, Exit: qemu.Exit{Stderr: tc.stderr}}, false)
			if strings.HasPrefix(got, kvm) {
				t.Errorf("qemuHint says the host cannot run SEV-SNP at all: %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("qemuHint = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

// A QEMU before 10.2 has no debug-swap property: it refuses the object
// ("Invalid parameter 'debug-swap'" through QAPI, as QEMU 10.0 says; a
// property error otherwise), which names neither the manifest nor the
// QEMU release needed.
func TestRunQEMUHintDebugSwapNeedsNewerQEMU(t *testing.T) {
	for _, stderr := range []string{
		"qemu-system-x86_64: -object sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,debug-swap=on: Invalid parameter 'debug-swap'",
		"qemu-system-x86_64: -object sev-snp-guest,id=sev0,debug-swap=on: Property 'sev-snp-guest.debug-swap' not found",
	} {
		got := qemuHint(launch.Outcome{Ending: launch.EndedQEMU, Exit: qemu.Exit{Stderr: stderr}}, false)
		for _, w := range []string{"DebugSwap", "QEMU 10.2 or newer", "--qemu", "--guest-features 0x1"} {
			if !strings.Contains(got, w) {
				t.Errorf("qemuHint(%q) = %q, want it to contain %q", stderr, got, w)
			}
		}
	}
}

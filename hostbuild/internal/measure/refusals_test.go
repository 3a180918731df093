package measure

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A precomputed OVMF hash is exactly 48 bytes: a longer one is refused,
// not truncated to its first 48 bytes (a launch digest seeded from part of
// what the operator gave).
func TestOVMFHashSeedExactLength(t *testing.T) {
	f := makeFiles(t)
	for _, seed := range []string{
		strings.Repeat("ab", 49),        // 49 bytes
		strings.Repeat("ab", 48) + "00", // 48 bytes and one more
		strings.Repeat("ab", 47),        // 47 bytes
	} {
		o := Options{VCPUs: 1, VCPUType: "EPYC-v4", OVMF: f.amdsev, SnpOVMFHash: seed}
		r, err := Compute(context.Background(), o)
		if err == nil {
			t.Errorf("Compute with a %d-character OVMF hash = %s, want a usage error", len(seed), r.Hex())
			continue
		}
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "not 96 hex") {
			t.Errorf("Compute with a %d-character OVMF hash: %v, want ErrUsage \"not 96 hex\"", len(seed), err)
		}
	}
}

// Every vCPU type whose QEMU model sets the complex-indexing bit is
// refused, versioned names included: EPYC-X-v1 is the unversioned EPYC-X
// itself, so the two are refused or allowed together; the replacement
// named has the same signature and is not refused itself.
func TestSNPLaunchRefusedEveryVersion(t *testing.T) {
	for _, typ := range []string{
		"EPYC", "EPYC-v1", "EPYC-v2", "EPYC-IBPB", "EPYC-v3",
		"EPYC-Rome", "EPYC-Rome-v1", "EPYC-Rome-v2",
		"EPYC-Milan", "EPYC-Milan-v1",
	} {
		why := SNPLaunchRefused(typ)
		if why == "" {
			t.Errorf("SNPLaunchRefused(%q) = \"\", want a refusal (QEMU's model sets the complex-indexing bit)", typ)
		}
	}
	for _, typ := range []string{"EPYC-v4", "EPYC-Rome-v3", "EPYC-Milan-v2", "EPYC-Genoa", "EPYC-Genoa-v1", "EPYC-Turin"} {
		if why := SNPLaunchRefused(typ); why != "" {
			t.Errorf("SNPLaunchRefused(%q) = %q, want \"\"", typ, why)
		}
	}
	for _, typ := range VCPUTypes() {
		if strings.HasSuffix(typ, "-v1") {
			base := strings.TrimSuffix(typ, "-v1")
			if (SNPLaunchRefused(typ) == "") != (SNPLaunchRefused(base) == "") {
				t.Errorf("SNPLaunchRefused(%q) and SNPLaunchRefused(%q) disagree: version 1 is the unversioned model", typ, base)
			}
		}
		if repl, ok := snpCPUIDRefused[typ]; ok && vcpuSigs[repl] != vcpuSigs[typ] {
			t.Errorf("%s's replacement %s has signature 0x%x, not 0x%x", typ, repl, vcpuSigs[repl], vcpuSigs[typ])
		}
	}
}

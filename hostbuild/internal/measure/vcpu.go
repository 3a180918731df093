package measure

import (
	"fmt"
	"slices"
	"strings"
)

// CPUSig computes the CPUID Fn0000_0001_EAX signature from family, model and
// stepping (AMD CPUID specification #25481).
func CPUSig(family, model, stepping uint32) uint32 {
	famLow, famHigh := family, uint32(0)
	if family > 0xf {
		famLow, famHigh = 0xf, (family-0xf)&0xff
	}
	return famHigh<<20 | (model>>4&0xf)<<16 | famLow<<8 | (model&0xf)<<4 | stepping&0xf
}

// vcpuSigs lists the QEMU CPU models sev-snp-measure knows (a subset of
// QEMU's builtin_x86_defs) with their signatures.
var vcpuSigs = map[string]uint32{
	"EPYC":          CPUSig(23, 1, 2),
	"EPYC-v1":       CPUSig(23, 1, 2),
	"EPYC-v2":       CPUSig(23, 1, 2),
	"EPYC-IBPB":     CPUSig(23, 1, 2),
	"EPYC-v3":       CPUSig(23, 1, 2),
	"EPYC-v4":       CPUSig(23, 1, 2),
	"EPYC-Rome":     CPUSig(23, 49, 0),
	"EPYC-Rome-v1":  CPUSig(23, 49, 0),
	"EPYC-Rome-v2":  CPUSig(23, 49, 0),
	"EPYC-Rome-v3":  CPUSig(23, 49, 0),
	"EPYC-Milan":    CPUSig(25, 1, 1),
	"EPYC-Milan-v1": CPUSig(25, 1, 1),
	"EPYC-Milan-v2": CPUSig(25, 1, 1),
	"EPYC-Genoa":    CPUSig(25, 17, 0),
	"EPYC-Genoa-v1": CPUSig(25, 17, 0),
	"EPYC-Turin":    CPUSig(26, 0, 0),
}

// snpCPUIDRefused maps the known vCPU types that QEMU gives the cache
// topology leaf's complex-indexing bit (CPUID 0x8000001D EDX, from
// epyc_cache_info and its Rome and Milan variants) to the later version of
// the same model that clears it (QEMU 8.1, "target/i386: Add new EPYC CPU
// versions with updated cache_info"): the SEV-SNP firmware's CPUID check
// refuses the bit, so QEMU exits at launch ("SEV-SNP: CPUID validation
// failed for function 0x8000001d ... failed update CPUID page"). The
// unversioned names are version 1 on every QEMU machine type. Each
// replacement has the same signature, so the same launch measurement.
var snpCPUIDRefused = map[string]string{
	"EPYC": "EPYC-v4", "EPYC-v1": "EPYC-v4", "EPYC-v2": "EPYC-v4", "EPYC-IBPB": "EPYC-v4", "EPYC-v3": "EPYC-v4",
	"EPYC-Rome": "EPYC-Rome-v3", "EPYC-Rome-v1": "EPYC-Rome-v3", "EPYC-Rome-v2": "EPYC-Rome-v3",
	"EPYC-Milan": "EPYC-Milan-v2", "EPYC-Milan-v1": "EPYC-Milan-v2",
}

// SNPLaunchRefused says why QEMU cannot launch an SEV-SNP guest with this
// vCPU type, naming the type to use instead, or "" when it can.
func SNPLaunchRefused(vcpuType string) string {
	repl, ok := snpCPUIDRefused[vcpuType]
	if !ok {
		return ""
	}
	return fmt.Sprintf("QEMU's %s model sets the complex-indexing bit of its cache CPUID leaf (0x8000001D), which the SEV-SNP firmware's CPUID check refuses, so QEMU exits at launch; use %s, which has the same signature, so the same launch measurement", vcpuType, repl)
}

// VCPUTypes returns the known vCPU type names, sorted.
func VCPUTypes() []string {
	names := make([]string, 0, len(vcpuSigs))
	for n := range vcpuSigs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// VCPUSigOf returns the signature of a known vCPU type.
func VCPUSigOf(vcpuType string) (uint32, error) {
	sig, ok := vcpuSigs[vcpuType]
	if !ok {
		// QEMU's CPU model names are case-sensitive, and so is this table.
		for _, n := range VCPUTypes() {
			if strings.EqualFold(n, vcpuType) {
				return 0, fmt.Errorf("unknown vCPU type %q: did you mean %q? (names are case-sensitive, as QEMU's -cpu takes them)", vcpuType, n)
			}
		}
		return 0, fmt.Errorf("unknown vCPU type %q (known: %s)", vcpuType, strings.Join(VCPUTypes(), ", "))
	}
	return sig, nil
}

// Alike returns the known vCPU types whose launch measurement equals
// vcpuType's for VMM type vmm, vcpuType included, sorted: QEMU measures
// only the type's signature (CPUID Fn0000_0001_EAX, in each VMSA's RDX),
// so EPYC and EPYC-v4 give one digest; ec2 and gce measure no vCPU type
// at all (nil: every type). An unknown type gives just itself.
func Alike(vmm VMMType, vcpuType string) []string {
	if vmm != VMMQEMU {
		return nil
	}
	sig, ok := vcpuSigs[vcpuType]
	if !ok {
		return []string{vcpuType}
	}
	var same []string
	for _, n := range VCPUTypes() {
		if vcpuSigs[n] == sig {
			same = append(same, n)
		}
	}
	return same
}

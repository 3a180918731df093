package measure

import "fmt"

// VMMType selects the hypervisor whose initial vCPU state and page types are
// modelled. The spelling is sev-snp-measure's (case-sensitive).
type VMMType string

// VMM types.
const (
	VMMQEMU VMMType = "QEMU"
	VMMEC2  VMMType = "ec2"
	VMMGCE  VMMType = "gce"
)

// ParseVMMType validates s; "" means QEMU.
func ParseVMMType(s string) (VMMType, error) {
	switch VMMType(s) {
	case "", VMMQEMU:
		return VMMQEMU, nil
	case VMMEC2, VMMGCE:
		return VMMType(s), nil
	}
	return "", fmt.Errorf("unknown VMM type %q (want QEMU, ec2 or gce)", s)
}

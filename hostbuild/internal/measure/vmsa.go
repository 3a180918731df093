package measure

import "encoding/binary"

// Initial EIP of the BSP: the reset vector just below 4 GiB.
const bspEIP = 0xfffffff0

// Offsets in struct sev_es_save_area (Linux arch/x86/include/asm/svm.h,
// kernel >= 6.10 layout).
const (
	vmsaES          = 0x000
	vmsaCS          = 0x010
	vmsaSS          = 0x020
	vmsaDS          = 0x030
	vmsaFS          = 0x040
	vmsaGS          = 0x050
	vmsaGDTR        = 0x060
	vmsaLDTR        = 0x070
	vmsaIDTR        = 0x080
	vmsaTR          = 0x090
	vmsaEFER        = 0x0d0
	vmsaCR4         = 0x148
	vmsaCR0         = 0x158
	vmsaDR7         = 0x160
	vmsaDR6         = 0x168
	vmsaRFLAGS      = 0x170
	vmsaRIP         = 0x178
	vmsaGPAT        = 0x268
	vmsaRDX         = 0x310
	vmsaSEVFeatures = 0x3b0
	vmsaXCR0        = 0x3e8
	vmsaMXCSR       = 0x408
	vmsaX87FCW      = 0x410
)

func putSeg(p *[pageSize]byte, off int, selector, attrib uint16, limit uint32, base uint64) {
	binary.LittleEndian.PutUint16(p[off:], selector)
	binary.LittleEndian.PutUint16(p[off+2:], attrib)
	binary.LittleEndian.PutUint32(p[off+4:], limit)
	binary.LittleEndian.PutUint64(p[off+8:], base)
}

// vmsaPage builds the initial VMSA of one vCPU as the hypervisor sets it up
// at SNP_LAUNCH_FINISH. eip is bspEIP for vCPU 0 and the firmware's SEV-ES
// reset EIP for the others.
func vmsaPage(vmm VMMType, eip uint32, sig uint32, features uint64) *[pageSize]byte {
	p := new([pageSize]byte)
	csAttr, ssAttr, trAttr := uint16(0x9b), uint16(0x93), uint16(0x8b)
	gpat := uint64(0x0007040600070406)
	rdx := uint64(sig)
	mxcsr, fcw := uint32(0x1f80), uint16(0x37f)
	switch vmm {
	case VMMEC2:
		if eip == bspEIP {
			csAttr = 0x9a
		}
		ssAttr, trAttr = 0x92, 0x83
		rdx, mxcsr, fcw = 0x600, 0, 0
	case VMMGCE:
		gpat = 0x00070106
		rdx, mxcsr, fcw = 0x600, 0, 0
	}
	putSeg(p, vmsaES, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaCS, 0xf000, csAttr, 0xffff, uint64(eip&0xffff0000))
	putSeg(p, vmsaSS, 0, ssAttr, 0xffff, 0)
	putSeg(p, vmsaDS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaFS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaGS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaGDTR, 0, 0, 0xffff, 0)
	putSeg(p, vmsaLDTR, 0, 0x82, 0xffff, 0)
	putSeg(p, vmsaIDTR, 0, 0, 0xffff, 0)
	putSeg(p, vmsaTR, 0, trAttr, 0xffff, 0)
	le := binary.LittleEndian
	le.PutUint64(p[vmsaEFER:], 0x1000)
	le.PutUint64(p[vmsaCR4:], 0x40)
	le.PutUint64(p[vmsaCR0:], 0x10)
	le.PutUint64(p[vmsaDR7:], 0x400)
	le.PutUint64(p[vmsaDR6:], 0xffff0ff0)
	le.PutUint64(p[vmsaRFLAGS:], 0x2)
	le.PutUint64(p[vmsaRIP:], uint64(eip&0xffff))
	le.PutUint64(p[vmsaGPAT:], gpat)
	le.PutUint64(p[vmsaRDX:], rdx)
	le.PutUint64(p[vmsaSEVFeatures:], features)
	le.PutUint64(p[vmsaXCR0:], 0x1)
	le.PutUint32(p[vmsaMXCSR:], mxcsr)
	le.PutUint16(p[vmsaX87FCW:], fcw)
	return p
}

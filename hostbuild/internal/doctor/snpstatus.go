package doctor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
)

// SNPStatus is the SEV firmware's answer to SNP_PLATFORM_STATUS, as the
// host kernel's /dev/sev gives it (include/uapi/linux/psp-sev.h, struct
// sev_user_data_snp_status: 32 packed bytes).
type SNPStatus struct {
	APIMajor, APIMinor uint8
	State              uint8 // 0 UNINIT, 1 INIT
	RMPInitialised     bool
	Build              uint32
	MaskChipID         bool // reports carry a zero CHIP_ID
	MaskChipKey        bool // reports are not signed
	VLEK               bool // a VLEK is loaded: reports are signed with it
	Guests             uint32
	CurrentTCB         uint64 // the installed firmware's TCB
	ReportedTCB        uint64 // the TCB reports carry in REPORTED_TCB
}

// SNPStatusSize is the size of struct sev_user_data_snp_status.
const SNPStatusSize = 32

// ParseSNPStatus decodes struct sev_user_data_snp_status.
func ParseSNPStatus(b []byte) (SNPStatus, error) {
	if len(b) != SNPStatusSize {
		return SNPStatus{}, fmt.Errorf("SNP platform status is %d bytes, want %d", len(b), SNPStatusSize)
	}
	le := binary.LittleEndian
	flags := le.Uint32(b[8:])
	return SNPStatus{
		APIMajor:       b[0],
		APIMinor:       b[1],
		State:          b[2],
		RMPInitialised: b[3]&1 != 0,
		Build:          le.Uint32(b[4:]),
		MaskChipID:     flags&1 != 0,
		MaskChipKey:    flags&2 != 0,
		VLEK:           flags&4 != 0,
		Guests:         le.Uint32(b[12:]),
		CurrentTCB:     le.Uint64(b[16:]),
		ReportedTCB:    le.Uint64(b[24:]),
	}, nil
}

// FirmwareError is an SEV command that the kernel or the firmware refused:
// the ioctl's errno and the firmware's status code (0 when the kernel
// refused it before the firmware saw it).
type FirmwareError struct {
	Errno  unix.Errno
	Status uint32
}

func (e *FirmwareError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%v (firmware status %#x)", e.Errno, e.Status)
	}
	return e.Errno.Error()
}

func (e *FirmwareError) Unwrap() error { return e.Errno }

// The SEV device's one ioctl and the command that asks for the SNP status
// (include/uapi/linux/psp-sev.h: SEV_ISSUE_CMD is _IOWR('S', 0, struct
// sev_issue_cmd), a packed {u32 cmd; u64 data; u32 error}; SNP_PLATFORM_STATUS
// is 9 in its command enum).
const (
	sevIssueCmd       = 0xC0105300
	snpPlatformStatus = 9
)

// readSNPStatus asks the SEV device at path for SNP_PLATFORM_STATUS.
// The kernel needs neither write access nor a capability for it. Kernels
// that predate the command answer EINVAL (it is past their SEV_MAX), and
// so do those with it while the SNP firmware is not initialised: before
// 2025's move of SEV/SNP initialisation to KVM, the ccp driver initialises
// it when it loads (dmesg says why it failed); after it, KVM does when
// kvm_amd loads with sev_snp=1, and kernels with the ccp driver's
// "implicit SEV/SNP init and shutdown in ioctls" initialise it for the
// command and shut it down after.
func readSNPStatus(path string) (SNPStatus, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return SNPStatus{}, err
	}
	defer unix.Close(fd)
	// Its address goes to the kernel inside cmd, where the runtime does
	// not see it: pinned (which also puts it on the heap).
	data := make([]byte, 4096) // the kernel copies SNPStatusSize bytes
	var pin runtime.Pinner
	pin.Pin(&data[0])
	defer pin.Unpin()
	var cmd [16]byte
	binary.LittleEndian.PutUint32(cmd[0:], snpPlatformStatus)
	binary.LittleEndian.PutUint64(cmd[4:], uint64(uintptr(unsafe.Pointer(&data[0]))))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), sevIssueCmd, uintptr(unsafe.Pointer(&cmd[0])))
	runtime.KeepAlive(data)
	if errno != 0 {
		return SNPStatus{}, &FirmwareError{Errno: errno, Status: binary.LittleEndian.Uint32(cmd[12:])}
	}
	return ParseSNPStatus(data[:SNPStatusSize])
}

// checkSNPFirmware reports the SEV-SNP firmware's version, state and the
// TCB its reports carry (what attest --min-tcb compares), and fails when
// the firmware will not sign reports (MASK_CHIP_KEY) or cannot be asked.
//
// It asks only once kvm_amd runs with sev_snp: the firmware is then
// initialised, and the command does not make a kernel with implicit
// initialisation bring SNP up (and shut it down again) just to answer.
func checkSNPFirmware(o Options, sevOK, snpParamOK bool) Result {
	r := Result{Name: "SEV-SNP firmware initialised, signing reports (SNP_PLATFORM_STATUS)"}
	switch {
	case !sevOK:
		r.Status, r.Detail = Skip, "/dev/sev cannot be opened (see above)"
		return r
	case !snpParamOK:
		r.Status, r.Detail = Skip, "not asked while kvm_amd's sev_snp is not enabled (see above): some kernels would initialise the SNP firmware just to answer, and shut it down after"
		return r
	}
	ask := o.SNPStatus
	if ask == nil {
		ask = readSNPStatus
	}
	st, err := ask(filepath.Join(o.Root, "/dev/sev"))
	if err != nil {
		r.Status, r.Detail = Fail, "asking /dev/sev for SNP_PLATFORM_STATUS: "+errText(err)
		r.Fix = "enable SEV-SNP in the BIOS (SMEE, SEV-SNP, SNP memory coverage) and boot a host kernel with SNP host support (Linux 6.11+) with kvm_amd sev_snp=1: EINVAL means the SNP firmware is not initialised (the ccp driver's or KVM's SNP_INIT failed or did not run: dmesg | grep -i -e sev -e snp says why) or the kernel predates the command"
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			r.Fix = "run as root, or give this user read access to /dev/sev"
		}
		return r
	}
	family := uint32(0)
	if _, f, err := cpuInfo(o.Root); err == nil && f > 0 {
		family = uint32(f)
	}
	state := map[uint8]string{0: "UNINIT", 1: "INIT"}[st.State]
	if state == "" {
		state = fmt.Sprintf("state %d", st.State)
	}
	var d strings.Builder
	fmt.Fprintf(&d, "API %d.%d build %d, platform %s, RMP initialised %v, %d guests; reports carry REPORTED_TCB %#016x%s",
		st.APIMajor, st.APIMinor, st.Build, state, st.RMPInitialised, st.Guests, st.ReportedTCB, attest.TCBParts(st.ReportedTCB, family))
	if st.CurrentTCB != st.ReportedTCB {
		fmt.Fprintf(&d, "; the installed firmware's TCB is %#016x%s (the host raises the reported one with SNP_COMMIT or SNP_SET_CONFIG)", st.CurrentTCB, attest.TCBParts(st.CurrentTCB, family))
	}
	if st.MaskChipID {
		d.WriteString("; MASK_CHIP_ID set: reports carry a zero CHIP_ID, so attest --kds cannot fetch this chip's VCEK (give it with --certs) and --chip-id cannot hold")
	}
	if st.VLEK {
		d.WriteString("; a VLEK is loaded: reports are signed with it, not the VCEK")
	}
	r.Detail = d.String()
	if st.MaskChipKey {
		r.Status = Fail
		r.Fix = "clear MASK_CHIP_KEY in the firmware's configuration (SNP_SET_CONFIG; virtee's snphost sets it): with it set, guests get unsigned reports, which attest refuses"
		return r
	}
	r.Status = Pass
	return r
}

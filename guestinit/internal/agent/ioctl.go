package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// vmpckDisabled is what the sev-guest driver's ENOTTY means, on either
// path: it disables its message key (VMPCK) after a request failed on the
// host's or the firmware's side (or the host stayed busy for a minute), so
// that no IV is ever reused, and refuses every request after.
const vmpckDisabled = "the driver refuses every request (ENOTTY): it disabled its message key (VMPCK) after an earlier request failed on the host's or the firmware's side, and no report is possible, for the agent or Katana, until the guest reboots"

// SevGuestPath is the sev-guest driver's device node.
const SevGuestPath = "/dev/sev-guest"

// Ioctler is the device seam: the real /dev/sev-guest (OpenSevGuest) or
// go-sev-guest's fake device (testing.Device) in tests.
type Ioctler interface {
	Ioctl(command uintptr, argument any) (uintptr, error)
}

// fwErrInvalidLength is the firmware status for "certificate buffer too
// small" (abi.GuestRequestInvalidLength; abi itself pulls in protobuf).
const fwErrInvalidLength = 0x100000000

// maxCertTable is the largest certificate buffer the kernel's sev-guest
// driver takes (SEV_FW_BLOB_MAX_SIZE; it refuses a larger one with
// EINVAL), and so also bounds what the host may make the agent allocate.
const maxCertTable = 16 << 10

// SevGuestIoctl quotes through /dev/sev-guest with SNP_GET_EXT_REPORT (as
// the kernel's own configfs-tsm does), falling back to SNP_GET_REPORT when
// the extended request fails. The first extended request asks for the
// certificate table's length (on a host that serves one, the kernel then
// makes a report and discards it), the second gets the report with the
// table; later ones start with the length learned, one request each.
// Unlike go-sev-guest's LinuxDevice it does not sleep 2 s between
// commands: the agent serialises hardware requests; the kernel only waits
// and retries when the host answers busy.
//
// A host table over 16 KiB, which the kernel cannot take, is learned: the
// quotes of the next reaskTooLarge go to SNP_GET_REPORT at once (one
// firmware request each; the report does not depend on the table), and
// the first after it asks again, so that a host that shrinks its table
// serves it again without a reboot.
type SevGuestIoctl struct {
	// Open returns the device; nil means OpenSevGuest(SevGuestPath).
	Open func() (Ioctler, error)
	// VMPL requested in the report (0 by default).
	VMPL uint32

	// Now is the clock for reaskTooLarge; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	dev      Ioctler
	certsLen uint32    // the host's table length, as last learned (over maxCertTable: too large, not asked again until reaskTooLarge after tooLarge)
	tooLarge time.Time // when certsLen over maxCertTable was learned
}

// reaskTooLarge is how long a host table over the kernel's limit is not
// asked for again: each extended request costs a firmware report the
// kernel discards when the table is too large.
const reaskTooLarge = 10 * time.Minute

func (s *SevGuestIoctl) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

var _ Prober = (*SevGuestIoctl)(nil)

// Name implements Quoter.
func (*SevGuestIoctl) Name() string { return agentapi.ProviderSevGuest }

func (s *SevGuestIoctl) device() (Ioctler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev != nil {
		return s.dev, nil
	}
	open := s.Open
	if open == nil {
		open = func() (Ioctler, error) { return OpenSevGuest(SevGuestPath) }
	}
	d, err := open()
	if err != nil {
		return nil, err
	}
	s.dev = d
	return d, nil
}

// Probe opens the device.
func (s *SevGuestIoctl) Probe() error {
	_, err := s.device()
	return err
}

// Quote implements Quoter.
func (s *SevGuestIoctl) Quote(rd [64]byte) ([]byte, []byte, error) {
	d, err := s.device()
	if err != nil {
		return nil, nil, err
	}
	var rsp labi.SnpReportRespABI
	ext := labi.SnpExtendedReportReq{Data: labi.SnpReportReqABI{ReportData: rd, Vmpl: s.VMPL}}
	s.mu.Lock()
	learned := s.certsLen
	if learned > maxCertTable && s.now().Sub(s.tooLarge) >= reaskTooLarge {
		learned = 0 // ask for the length again
	}
	s.mu.Unlock()
	if learned > 0 && learned <= maxCertTable {
		// The kernel reads the length from CertsLength, not the slice.
		ext.Certs, ext.CertsLength = make([]byte, learned), learned
	}
	req := labi.SnpUserGuestRequest{ReqData: &ext, RespData: &rsp}
	var res uintptr
	tooLarge := uint32(0) // a table length the kernel cannot take
	if learned > maxCertTable {
		// Learned before: asking again would cost a firmware report
		// the kernel discards, on every quote.
		tooLarge, err = learned, fmt.Errorf("host certificate table of %d bytes (the kernel takes at most %d), learned from an earlier request: not asked for again before %s", learned, maxCertTable, reaskTooLarge)
	} else {
		res, err = d.Ioctl(labi.IocSnpGetExtendedReport, &req)
	}
	if err != nil && tooLarge == 0 && req.FwErr == fwErrInvalidLength {
		// A table the kernel cannot take is left out, like one a
		// kernel without extended reports cannot give: the report
		// itself does not depend on it (the verifier gets the VCEK
		// from --certs or AMD's KDS).
		if n := ext.CertsLength; n == 0 || n > maxCertTable {
			err = fmt.Errorf("host certificate table of %d bytes (the kernel takes at most %d): %w", n, maxCertTable, err)
			if n > maxCertTable {
				tooLarge = n
			}
		} else {
			ext.Certs = make([]byte, n)
			rsp = labi.SnpReportRespABI{}
			req = labi.SnpUserGuestRequest{ReqData: &ext, RespData: &rsp}
			res, err = d.Ioctl(labi.IocSnpGetExtendedReport, &req)
		}
	}
	var certs []byte
	if err == nil {
		if ext.CertsLength > 0 && int(ext.CertsLength) <= len(ext.Certs) {
			certs = ext.Certs[:ext.CertsLength]
		}
		s.mu.Lock()
		s.certsLen = uint32(len(certs))
		s.mu.Unlock()
	} else {
		// Kernels without extended-report support (or without host
		// certificates) still serve SNP_GET_REPORT.
		extErr, extFw := err, req.FwErr
		s.mu.Lock()
		if tooLarge > 0 && learned <= maxCertTable {
			s.tooLarge = s.now() // learned now, not carried over
		}
		s.certsLen = tooLarge
		s.mu.Unlock()
		rsp = labi.SnpReportRespABI{}
		req = labi.SnpUserGuestRequest{
			ReqData:  &labi.SnpReportReqABI{ReportData: rd, Vmpl: s.VMPL},
			RespData: &rsp,
		}
		res, err = d.Ioctl(labi.IocSnpGetReport, &req)
		if errors.Is(err, syscall.ENOTTY) {
			// Every sev-guest driver serves SNP_GET_REPORT; it answers
			// ENOTTY to every request once it has disabled its message
			// key (VMPCK).
			return nil, nil, fmt.Errorf("sev-guest: %s (extended report: %s): %w", vmpckDisabled, failure(extFw, extErr), err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sev-guest: SNP_GET_REPORT (%s; extended report: %s): %w", failure(req.FwErr, nil), failure(extFw, extErr), err)
		}
	}
	if res != uintptr(labi.EsOk) {
		return nil, nil, fmt.Errorf("sev-guest: %w", &labi.SevEsErr{Result: labi.EsResult(res)})
	}
	if rsp.Status != 0 {
		return nil, nil, fmt.Errorf("sev-guest: report status %#x", rsp.Status)
	}
	out := make([]byte, agentapi.ReportSize)
	copy(out, rsp.Data[:agentapi.ReportSize])
	return out, certs, nil
}

// failure says how a sev-guest request failed: exitinfo2's upper half is
// the host's (VMM's) error, its lower half the firmware's
// (include/uapi/linux/sev-guest.h), and ETIMEDOUT is the driver giving up
// on a host that answered busy for a minute (it disables its key then).
// err may be nil.
func failure(exitinfo2 uint64, err error) string {
	var parts []string
	if vmm := uint32(exitinfo2 >> 32); vmm != 0 {
		name := map[uint32]string{1: " (certificate buffer too small)", 2: " (busy)", 0xffffffff: " (generic)"}[vmm]
		parts = append(parts, fmt.Sprintf("host (VMM) error %#x%s", vmm, name))
	}
	if fw := uint32(exitinfo2); fw != 0 {
		parts = append(parts, fmt.Sprintf("firmware error %#x", fw))
	}
	if errors.Is(err, syscall.ETIMEDOUT) {
		parts = append(parts, "the host answered busy for over a minute and the driver gave up")
	}
	if err != nil {
		parts = append(parts, err.Error())
	}
	if len(parts) == 0 {
		return "no error status"
	}
	return strings.Join(parts, ", ")
}

// noDeviceErr classifies an open error: a missing node or driver is
// ErrNoDevice, anything else (permissions) is reported as is.
func noDeviceErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) {
		return fmt.Errorf("%w: opening %s (is this an SEV-SNP guest, and is the sev-guest module loaded?): %w", ErrNoDevice, path, err)
	}
	return fmt.Errorf("opening %s: %w", path, err)
}

package agent

import (
	"errors"
	"testing"

	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// answerDevice answers each ioctl as told, whatever was asked.
type answerDevice struct {
	calls  int
	answer func(i int, command uintptr, req *labi.SnpUserGuestRequest) (uintptr, error)
}

func (d *answerDevice) Ioctl(command uintptr, argument any) (uintptr, error) {
	d.calls++
	return d.answer(d.calls, command, argument.(*labi.SnpUserGuestRequest))
}

// Whatever the driver answers (a firmware error, a certificate length, a
// status), Quote gives a whole report and a bounded table, or an error.
func FuzzSevGuestAnswers(f *testing.F) {
	f.Add(uint64(fwErrInvalidLength), uint32(4096), true, uint64(0), uint32(4096), false, uint32(0), uint8(0), uint32(2048))
	f.Add(uint64(fwErrInvalidLength), uint32(1<<20), true, uint64(0), uint32(0), true, uint32(0), uint8(0), uint32(0))
	f.Add(uint64(0), uint32(100), false, uint64(0), uint32(0), false, uint32(1), uint8(0), uint32(0))
	f.Fuzz(func(t *testing.T, fw1 uint64, len1 uint32, fail1 bool, fw2 uint64, len2 uint32, fail2 bool, status uint32, res uint8, fill uint32) {
		dev := &answerDevice{answer: func(i int, command uintptr, req *labi.SnpUserGuestRequest) (uintptr, error) {
			fw, n, fail := fw1, len1, fail1
			if i > 1 {
				fw, n, fail = fw2, len2, fail2
			}
			if i > 3 {
				t.Fatalf("%d ioctls for one quote", i)
			}
			if ext, ok := req.ReqData.(*labi.SnpExtendedReportReq); ok {
				ext.CertsLength = n
				for j := 0; j < len(ext.Certs) && uint32(j) < fill; j++ {
					ext.Certs[j] = 0xa5
				}
			}
			if rsp, ok := req.RespData.(*labi.SnpReportRespABI); ok {
				rsp.Status = status
				rsp.Data[0] = 2
			}
			req.FwErr = fw
			if fail {
				return 0, errors.New("EIO")
			}
			return uintptr(res % 4), nil
		}}
		s := &SevGuestIoctl{Open: func() (Ioctler, error) { return dev, nil }}
		rep, certs, err := s.Quote([64]byte{1})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(rep) != agentapi.ReportSize {
			t.Fatalf("report of %d bytes", len(rep))
		}
		if len(certs) > maxCertTable {
			t.Fatalf("a certificate table of %d bytes (bound %d)", len(certs), maxCertTable)
		}
	})
}

package agent

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	test "github.com/google/go-sev-guest/testing"
)

// milanFMS is CPUID(1).EAX of a Milan B1 part; v3 reports carry it so the
// verifier knows the product line.
const milanFMS = 0x00a00f11

// testMeasurement is the launch digest every fake report carries.
var testMeasurement = func() (m [48]byte) {
	for i := range m {
		m[i] = byte(0xa0 + i)
	}
	return m
}()

// fakeReport builds the unsigned report the fake hardware returns for rd:
// version 3, Milan, policy 0x30000 (SMT allowed, no debug), VMPL 0.
func fakeReport(rd [64]byte) [labi.SnpReportRespReportSize]byte {
	r := test.CreateRawReport(&test.TestReportOptions{ReportData: rd[:], Version: 3, FMS: milanFMS})
	binary.LittleEndian.PutUint64(r[0x08:], 0x30000)
	copy(r[0x90:0xC0], testMeasurement[:])
	return r
}

func testSigner(t testing.TB) *test.AmdSigner {
	t.Helper()
	s, err := test.DefaultTestOnlyCertChain("Milan", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatalf("fake AMD signer: %v", err)
	}
	return s
}

// fakeSNP is go-sev-guest's fake sev-guest device (which signs with the fake
// AMD signer) taught to answer any REPORT_DATA: each ioctl first registers a
// fresh report for the request's REPORT_DATA.
type fakeSNP struct {
	mu    sync.Mutex
	dev   *test.Device
	delay time.Duration
	calls atomic.Int64
	busy  atomic.Int32 // concurrent calls in flight (must stay <= 1)
	max   atomic.Int32
	// edit, when set, changes each report before the fake signs it.
	edit func(r []byte)
}

func newFakeSNP(t testing.TB, signer *test.AmdSigner) *fakeSNP {
	t.Helper()
	d, err := test.TcDevice(nil, &test.DeviceOptions{Signer: signer, Now: time.Now(), Product: abi.DefaultSevProduct()})
	if err != nil {
		t.Fatalf("fake device: %v", err)
	}
	return &fakeSNP{dev: d}
}

func (f *fakeSNP) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	n := f.busy.Add(1)
	defer f.busy.Add(-1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	f.calls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	req, ok := arg.(*labi.SnpUserGuestRequest)
	if !ok {
		return 0, fmt.Errorf("fake: unexpected argument %T", arg)
	}
	var rd [64]byte
	var vmpl uint32
	switch r := req.ReqData.(type) {
	case *labi.SnpReportReqABI:
		rd, vmpl = r.ReportData, r.Vmpl
	case *labi.SnpExtendedReportReq:
		rd, vmpl = r.Data.ReportData, r.Data.Vmpl
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := fakeReport(rd)
	// As the hardware does, the report carries the VMPL it was asked at:
	// an agent asking at another than 0 fails attest's VMPL check.
	binary.LittleEndian.PutUint32(r[0x30:], vmpl)
	if f.edit != nil {
		f.edit(r[:abi.ReportSize])
	}
	f.dev.ReportDataRsp[hex.EncodeToString(rd[:])] = &test.GetReportResponse{Resp: labi.SnpReportRespABI{Data: r}}
	return f.dev.Ioctl(cmd, arg)
}

// fakeTSM is go-configfs-tsm's fake report subsystem answering like the
// sev_guest provider: outblob is a report signed by the fake AMD signer for
// the written inblob, auxblob the signer's certificate table.
func fakeTSM(t testing.TB, signer *test.AmdSigner, provider string) configfsi.Client {
	t.Helper()
	certs, err := signer.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	sub := faketsm.Report611(0)
	base := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider + "\n"), nil
		case "auxblob":
			return certs, nil
		case "outblob":
			in, ok := e.InAttrs["inblob"]
			if !ok || len(in.Value) != 64 {
				return base(e, attr)
			}
			var rd [64]byte
			copy(rd[:], in.Value)
			full := fakeReport(rd)
			raw := full[:abi.ReportSize]
			r, s, err := signer.Sign(abi.SignedComponent(raw))
			if err != nil {
				return nil, err
			}
			if err := abi.SetSignature(r, s, raw); err != nil {
				return nil, err
			}
			return raw, nil
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// vmplRecorder records the VMPL of each report request.
type vmplRecorder struct {
	*fakeSNP
	vmpls []uint32
}

func (v *vmplRecorder) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	if req, ok := arg.(*labi.SnpUserGuestRequest); ok {
		switch r := req.ReqData.(type) {
		case *labi.SnpReportReqABI:
			v.vmpls = append(v.vmpls, r.Vmpl)
		case *labi.SnpExtendedReportReq:
			v.vmpls = append(v.vmpls, r.Data.Vmpl)
		}
	}
	return v.fakeSNP.Ioctl(cmd, arg)
}

// The agent's reports are requested at VMPL 0, the VMPL attest requires
// (README: Katana's own are VMPL 1): the fake device answered VMPL 0
// whatever was asked, so a wrong request passed every test.
func TestDefaultQuoterRequestsVMPL0(t *testing.T) {
	fa, ok := DefaultQuoter().(*FirstAvailable)
	if !ok {
		t.Fatalf("DefaultQuoter is %T", DefaultQuoter())
	}
	for _, p := range fa.Providers {
		switch q := p.(type) {
		case *ConfigfsTSM:
			// nil leaves the kernel's default, 0 without an SVSM.
			if q.Privilege != nil && *q.Privilege != 0 {
				t.Errorf("configfs-tsm privlevel %d, want 0 or the default", *q.Privilege)
			}
		case *SevGuestIoctl:
			rec := &vmplRecorder{fakeSNP: newFakeSNP(t, testSigner(t))}
			q.Open = func() (Ioctler, error) { return rec, nil }
			if _, _, err := q.Quote([64]byte{1}); err != nil {
				t.Fatal(err)
			}
			if len(rec.vmpls) == 0 {
				t.Fatal("no report request reached the device")
			}
			for _, v := range rec.vmpls {
				if v != 0 {
					t.Errorf("SNP_GET_(EXT_)REPORT asked for VMPL %d, want 0", v)
				}
			}
		default:
			t.Errorf("unexpected provider %T", p)
		}
	}
}

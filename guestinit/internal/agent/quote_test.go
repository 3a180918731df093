package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/faketsm"
	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// flaky is a provider that is absent until up is set; it counts probes.
type flaky struct {
	name   string
	up     atomic.Bool
	probes atomic.Int32
}

func (f *flaky) Name() string { return f.name }
func (f *flaky) Probe() error {
	f.probes.Add(1)
	if f.up.Load() {
		return nil
	}
	return fmt.Errorf("%w: %s absent", ErrNoDevice, f.name)
}
func (f *flaky) Quote(rd [64]byte) ([]byte, []byte, error) { return rd[:], nil, nil }

// After a failed probe round FirstAvailable answers from the last error
// until RetryAfter (default 5s) has passed: a flood of requests on a
// non-SNP guest probes once.
func TestFirstAvailableRateLimitsProbes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
	}{{"default", 0}, {"one hour", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := &flaky{name: "a"}, &flaky{name: "b"}
			f := &FirstAvailable{Providers: []Prober{a, b}, RetryAfter: tc.retryAfter}
			for range 3 {
				if _, _, err := f.Quote([64]byte{}); !errors.Is(err, ErrNoDevice) {
					t.Fatalf("err = %v, want ErrNoDevice", err)
				}
			}
			b.up.Store(true) // appears, but the failed round is still recent
			if _, _, err := f.Quote([64]byte{}); !errors.Is(err, ErrNoDevice) {
				t.Errorf("err = %v, want the cached ErrNoDevice", err)
			}
			if pa, pb := a.probes.Load(), b.probes.Load(); pa != 1 || pb != 1 {
				t.Errorf("probes a=%d b=%d, want 1 each (one round)", pa, pb)
			}
			if n := f.Name(); n != "none" {
				t.Errorf("Name = %q, want none", n)
			}
		})
	}
}

// broken is a provider whose device exists but fails (not ErrNoDevice).
type broken struct{ flaky }

func (b *broken) Probe() error {
	b.probes.Add(1)
	return fmt.Errorf("opening /dev/sev-guest: %w", syscall.EACCES)
}

// A device that exists but fails is not reported as a guest without
// SEV-SNP: only when every provider is absent is the error ErrNoDevice
// (503 no_snp_device); otherwise it names each reason (500 device_error).
func TestFirstAvailableAbsentOrBroken(t *testing.T) {
	a := &flaky{name: "configfs-tsm"}
	f := &FirstAvailable{Providers: []Prober{a, &broken{flaky{name: "sev-guest-ioctl"}}}}
	_, _, err := f.Quote([64]byte{})
	if err == nil || errors.Is(err, ErrNoDevice) {
		t.Fatalf("err = %v, want an error that is not ErrNoDevice", err)
	}
	for _, want := range []string{"configfs-tsm: configfs-tsm absent", "sev-guest-ioctl: opening /dev/sev-guest: permission denied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to name %q", err, want)
		}
	}
	srv := serve(t, New(Options{Quoter: &FirstAvailable{Providers: []Prober{a, &broken{flaky{name: "sev-guest-ioctl"}}}}}))
	if c, code, _ := attest(srv, nonceHex(7, 32)); c != 500 || code != agentapi.CodeDeviceError {
		t.Errorf("attestation: %d %q, want 500 %s", c, code, agentapi.CodeDeviceError)
	}
}

// With a short RetryAfter each call after it probes again; the first
// provider found is kept and never probed again.
func TestFirstAvailableReprobesAndSticks(t *testing.T) {
	a, b := &flaky{name: "a"}, &flaky{name: "b"}
	f := &FirstAvailable{Providers: []Prober{a, b}, RetryAfter: time.Nanosecond}
	_, _, err := f.Quote([64]byte{})
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
	// No device anywhere: the likely cause is said first.
	if want := ErrNoDevice.Error() + " (this guest was launched without SEV-SNP, as with hostbuild run --plain, or the sev-guest driver did not probe"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to begin %q", err, want)
	}
	b.up.Store(true)
	time.Sleep(time.Millisecond) // > RetryAfter
	if _, _, err := f.Quote([64]byte{}); err != nil {
		t.Fatalf("err = %v after b appeared", err)
	}
	a.up.Store(true)
	for range 3 {
		if _, _, err := f.Quote([64]byte{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Name(); n != "b" {
		t.Errorf("Name = %q, want b", n)
	}
	if pa, pb := a.probes.Load(), b.probes.Load(); pa != 2 || pb != 2 {
		t.Errorf("probes a=%d b=%d, want 2 each (two rounds, then b kept)", pa, pb)
	}
}

// Quoter.Quote's certificate table is nil when the host supplied none:
// configfs-tsm's empty auxblob is no table.
func TestConfigfsTSMEmptyAuxblobIsNoCertTable(t *testing.T) {
	cl := fakeTSM(t, testSigner(t), "sev_guest").(*faketsm.Client)
	sub := cl.Subsystems["report"].(*faketsm.ReportSubsystem)
	base := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "auxblob" {
			return []byte{}, nil
		}
		return base(e, attr)
	}
	rd := [64]byte{1, 2, 3}
	report, certs, err := (&ConfigfsTSM{Client: cl}).Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(report) != agentapi.ReportSize || !bytes.Equal(report[0x50:0x90], rd[:]) {
		t.Errorf("report of %d bytes, REPORT_DATA %x", len(report), report[0x50:0x90])
	}
	if certs != nil {
		t.Errorf("cert table %#v, want nil", certs)
	}
}

// heldQuoter blocks each Quote until released and counts concurrent calls.
type heldQuoter struct {
	entered chan struct{}
	release chan struct{}
	inside  atomic.Int32
	max     atomic.Int32
}

func (*heldQuoter) Name() string { return "held" }
func (h *heldQuoter) Quote(rd [64]byte) ([]byte, []byte, error) {
	if n := h.inside.Add(1); n > h.max.Load() {
		h.max.Store(n)
	}
	defer h.inside.Add(-1)
	h.entered <- struct{}{}
	<-h.release
	r := make([]byte, agentapi.ReportSize)
	copy(r[0x50:], rd[:])
	return r, nil, nil
}

// One hardware request runs, QueueDepth wait; one more is 429 busy at
// once, and every slot (a refused request's too) is free again afterwards.
func TestAttestationQueueBound(t *testing.T) {
	const depth = 2
	q := &heldQuoter{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s := New(Options{Quoter: q, Config: testConfig, QueueDepth: depth})
	base := serve(t, s)
	var once sync.Once
	unblock := func() { once.Do(func() { close(q.release) }) }
	t.Cleanup(unblock) // before serve's: a failed test must not hang in Serve
	get := func() (int, string) {
		c, code, _ := attest(base, nonceHex(7, 32))
		return c, code
	}
	codes := make(chan int, depth+1)
	for range depth + 1 {
		go func() { c, _ := get(); codes <- c }()
	}
	<-q.entered // one in the hardware ...
	deadline := time.Now().Add(10 * time.Second)
	for s.gate.pending.Load() != depth+1 { // ... and depth queued
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want %d", s.gate.pending.Load(), depth+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 3 {
		if c, code, retry := attest(base, nonceHex(7, 32)); c != http.StatusTooManyRequests || code != agentapi.CodeBusy || retry != "1" {
			t.Errorf("request beyond the queue: %d %q Retry-After %q, want 429 %s Retry-After 1", c, code, retry, agentapi.CodeBusy)
		}
	}
	unblock()
	for range depth + 1 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("queued request: %d, want 200", c)
		}
	}
	if m := q.max.Load(); m != 1 {
		t.Errorf("%d concurrent hardware requests, want 1", m)
	}
	// All slots free: depth+1 at once are served again.
	for range depth + 1 {
		go func() { c, _ := get(); codes <- c }()
	}
	for range depth + 1 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("after the queue drained: %d, want 200", c)
		}
	}
	if n := s.gate.pending.Load(); n != 0 {
		t.Errorf("pending = %d after every request ended, want 0", n)
	}
}

// attest asks base for an attestation and returns the status, the error
// code (if any) and the Retry-After header.
func attest(base, nonce string) (int, string, string) {
	resp, err := http.Get(base + "/v1/attestation?nonce=" + nonce)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	var e agentapi.ErrorResponse
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code, resp.Header.Get("Retry-After")
}

// Retry-After: 1 comes with the answers worth retrying (429, 503) only.
func TestRetryAfterOnlyOn429And503(t *testing.T) {
	noDev := serve(t, New(Options{Quoter: &FirstAvailable{Providers: []Prober{failing{"configfs-tsm"}}}}))
	if c, code, retry := attest(noDev, nonceHex(1, 32)); c != http.StatusServiceUnavailable || code != agentapi.CodeNoSNPDevice || retry != "1" {
		t.Errorf("no device: %d %q Retry-After %q, want 503 %s Retry-After 1", c, code, retry, agentapi.CodeNoSNPDevice)
	}
	if c, code, retry := attest(noDev, "zz"); c != http.StatusBadRequest || code != agentapi.CodeBadNonce || retry != "" {
		t.Errorf("bad nonce: %d %q Retry-After %q, want 400 %s without Retry-After", c, code, retry, agentapi.CodeBadNonce)
	}
	q := &heldQuoter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(q.release)
	ok := serve(t, New(Options{Quoter: q}))
	if c, code, retry := attest(ok, nonceHex(1, 32)); c != http.StatusOK || retry != "" {
		t.Errorf("good request: %d %q Retry-After %q, want 200 without Retry-After", c, code, retry)
	}
}

// A request still queued when the agent stops is answered 503
// shutting_down (retry) rather than left waiting for the hardware.
func TestQueuedRequestAnsweredWhenStopping(t *testing.T) {
	q := &heldQuoter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	var once sync.Once
	unblock := func() { once.Do(func() { close(q.release) }) }
	defer unblock()
	s := New(Options{Quoter: q})
	l, err := Listen("tcp:127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	type answer struct {
		status      int
		code, retry string
	}
	first, queued := make(chan answer, 1), make(chan answer, 1)
	go func() { c, code, r := attest(base, nonceHex(1, 32)); first <- answer{c, code, r} }()
	<-q.entered
	go func() { c, code, r := attest(base, nonceHex(2, 32)); queued <- answer{c, code, r} }()
	deadline := time.Now().Add(10 * time.Second)
	for s.gate.pending.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want 2", s.gate.pending.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if a := <-queued; a.status != http.StatusServiceUnavailable || a.code != agentapi.CodeShuttingDown || a.retry != "1" {
		t.Errorf("queued request: %+v, want 503 %s with Retry-After 1", a, agentapi.CodeShuttingDown)
	}
	unblock()
	<-first // answered or cut off: the server is stopping
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if n := q.inside.Load(); n != 0 {
		t.Errorf("%d hardware requests still running", n)
	}
}

// kernelCertLimit is Linux's SEV_FW_BLOB_MAX_SIZE (drivers/virt/coco/
// sev-guest): the largest certificate buffer SNP_GET_EXT_REPORT takes.
const kernelCertLimit = 0x4000

// tableIoctl is a sev-guest device whose host has a certificate table of
// tableLen bytes: the extended request asks for a buffer that large
// (firmware's invalid-length answer), and a kernel refuses a buffer over
// its limit with EINVAL, as Linux's sev-guest does.
type tableIoctl struct {
	tableLen uint32
	calls    []string
}

func (f *tableIoctl) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	req := arg.(*labi.SnpUserGuestRequest)
	rsp := req.RespData.(*labi.SnpReportRespABI)
	switch cmd {
	case labi.IocSnpGetExtendedReport:
		ext := req.ReqData.(*labi.SnpExtendedReportReq)
		// The kernel sees CertsLength (go-sev-guest's ABI() passes it
		// and the buffer's address), and writes that many bytes there.
		n := ext.CertsLength
		if int(n) > len(ext.Certs) {
			panic(fmt.Sprintf("CertsLength %d over a %d-byte buffer: the kernel would write past it", n, len(ext.Certs)))
		}
		f.calls = append(f.calls, fmt.Sprintf("ext(%d)", n))
		if n > kernelCertLimit {
			return 0, syscall.EINVAL
		}
		if n < f.tableLen {
			ext.CertsLength = f.tableLen
			req.FwErr = fwErrInvalidLength
			return 0, syscall.EIO
		}
		for i := range ext.Certs {
			ext.Certs[i] = 0xce
		}
		ext.CertsLength = f.tableLen
	case labi.IocSnpGetReport:
		f.calls = append(f.calls, "report")
	default:
		return 0, syscall.ENOTTY
	}
	r := fakeReport([64]byte{1})
	copy(rsp.Data[:], r[:])
	return 0, nil
}

// A certificate table the kernel can take comes with the report; a larger
// one (the host's to choose) is left out and the report still given, as a
// kernel without extended reports would.
func TestSevGuestCertTableSizes(t *testing.T) {
	for _, tc := range []struct {
		tableLen  uint32
		wantCalls string
		wantCerts int
	}{
		{0, "ext(0)", 0},
		{8 << 10, "ext(0) ext(8192)", 8 << 10},
		{kernelCertLimit, "ext(0) ext(16384)", kernelCertLimit},
		{kernelCertLimit + 4096, "ext(0) report", 0},
		{1 << 30, "ext(0) report", 0},
	} {
		f := &tableIoctl{tableLen: tc.tableLen}
		q := &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}
		rep, certs, err := q.Quote([64]byte{1})
		if err != nil || len(rep) != agentapi.ReportSize {
			t.Fatalf("table of %d bytes: Quote: %v (report of %d bytes)", tc.tableLen, err, len(rep))
		}
		if got := strings.Join(f.calls, " "); got != tc.wantCalls || len(certs) != tc.wantCerts {
			t.Errorf("table of %d bytes: calls %q, %d bytes of certificates; want %q, %d", tc.tableLen, got, len(certs), tc.wantCalls, tc.wantCerts)
		}
	}
}

// A table learned too large is not asked for during reaskTooLarge (one
// firmware request per quote), then asked again: a host that shrank it
// serves it without a reboot, one that did not is skipped for another
// reaskTooLarge from then.
func TestSevGuestTooLargeAskedAgain(t *testing.T) {
	f := &tableIoctl{tableLen: kernelCertLimit + 4096}
	now := time.Unix(1_000_000, 0)
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }, Now: func() time.Time { return now }}
	quote := func(wantCerts int) {
		t.Helper()
		rep, certs, err := q.Quote([64]byte{1})
		if err != nil || len(rep) != agentapi.ReportSize || len(certs) != wantCerts {
			t.Fatalf("Quote: %v (report of %d bytes, %d bytes of certificates, want %d)", err, len(rep), len(certs), wantCerts)
		}
	}
	quote(0)
	now = now.Add(reaskTooLarge - time.Second)
	quote(0)
	now = now.Add(time.Second) // reaskTooLarge after it was learned
	quote(0)
	now = now.Add(reaskTooLarge / 2)
	quote(0) // learned again at the last ask: not asked
	f.tableLen = 8 << 10
	now = now.Add(reaskTooLarge / 2)
	quote(8 << 10)
	quote(8 << 10)
	want := "ext(0) report report ext(0) report report ext(0) ext(8192) ext(8192)"
	if got := strings.Join(f.calls, " "); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// A queued request whose client hangs up leaves the queue without reaching
// the hardware, and frees its slot at once; a client that stays, including
// one that pipelines its next request, is answered.
func TestQueuedRequestDroppedOnHangUp(t *testing.T) {
	q := &heldQuoter{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s := New(Options{Quoter: q, Config: testConfig, QueueDepth: 4})
	base := serve(t, s)
	var once sync.Once
	unblock := func() { once.Do(func() { close(q.release) }) }
	t.Cleanup(unblock)
	addr := strings.TrimPrefix(base, "http://")
	first := make(chan int, 1)
	go func() { c, _, _ := attest(base, nonceHex(1, 32)); first <- c }()
	<-q.entered
	waitPending := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.gate.pending.Load() != n {
			if time.Now().After(deadline) {
				t.Fatalf("pending = %d, want %d", s.gate.pending.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range 3 { // three clients queue, then hang up
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v1/attestation?nonce="+nonceHex(2, 32)+" HTTP/1.1\r\nHost: a\r\n\r\n")
		waitPending(2)
		c.Close()
		waitPending(1) // its slot is free at once
	}
	// One that stays, with a second request pipelined behind the first.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /v1/attestation?nonce=" + nonceHex(3, 32) + " HTTP/1.1\r\nHost: a\r\n\r\n"
	io.WriteString(c, req+req)
	waitPending(2)
	unblock()
	if got := <-first; got != http.StatusOK {
		t.Errorf("first request: %d", got)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("pipelined answer %d: %d", i, resp.StatusCode)
		}
	}
	if n := len(q.entered); n != 2 {
		t.Errorf("%d hardware requests after the first, want 2 (the staying client's)", n)
	}
}

// The certificate table's length, once learned, is asked for at once: on
// a host that serves a table, each later quote is one firmware request,
// not two (the kernel answers a zero-length request by making a report
// and discarding it). A table too large for the kernel is remembered too.
func TestSevGuestCertLengthLearned(t *testing.T) {
	f := &tableIoctl{tableLen: 8 << 10}
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}
	for i := range 2 {
		if _, certs, err := q.Quote([64]byte{1}); err != nil || len(certs) != 8<<10 {
			t.Fatalf("quote %d: %v, %d bytes of certificates", i, err, len(certs))
		}
	}
	if got, want := strings.Join(f.calls, " "), "ext(0) ext(8192) ext(8192)"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	// The host's table grows past the kernel's limit: the report comes
	// without it, and later quotes go to SNP_GET_REPORT at once (asking
	// for the table again would cost a firmware report the kernel
	// discards, every time).
	f.calls, f.tableLen = nil, kernelCertLimit+4096
	for range 2 {
		if _, _, err := q.Quote([64]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := strings.Join(f.calls, " "), "ext(8192) report report"; got != want {
		t.Errorf("after the table grew: calls %q, want %q", got, want)
	}
}

// lockoutIoctl is Linux's sev-guest after a request fails on the host's
// side: that request returns EIO with the host's error in exitinfo2, and
// the driver disables its message key, answering every later request with
// ENOTTY (drivers/virt/coco/sev-guest: snp_disable_vmpck).
type lockoutIoctl struct{ disabled bool }

func (f *lockoutIoctl) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	if f.disabled {
		return 0, syscall.ENOTTY
	}
	f.disabled = true
	arg.(*labi.SnpUserGuestRequest).FwErr = 2 << 32 // a VMM error other than invalid length
	return 0, syscall.EIO
}

// A driver that disabled its key is named as such, with the failure that
// led to it, and not as "firmware error 0x0".
func TestSevGuestVMPCKDisabled(t *testing.T) {
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return &lockoutIoctl{}, nil }}
	for i, want := range []string{"host (VMM) error 0x2 (busy), input/output error", "extended report: inappropriate ioctl"} {
		_, _, err := q.Quote([64]byte{1})
		if err == nil || !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "disabled its message key (VMPCK)") ||
			!strings.Contains(err.Error(), "until the guest reboots") || !strings.Contains(err.Error(), want) {
			t.Errorf("quote %d: %v; want the VMPCK lockout named, with %q", i, err, want)
		}
	}
}

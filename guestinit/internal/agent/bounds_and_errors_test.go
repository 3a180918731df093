package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/agentapi"
)

// The zero Options take the documented defaults (Options' field comments,
// README): the limits a host-facing server runs with when the init sets
// none.
func TestDefaultLimits(t *testing.T) {
	s := New(Options{Quoter: failing{"x"}})
	o := s.opts
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MaxConns", int64(o.MaxConns), 64},
		{"QueueDepth", int64(o.QueueDepth), 16},
		{"gate depth", s.gate.depth, 16},
		{"MaxHeaderBytes", int64(o.MaxHeaderBytes), 8 << 10},
		{"MaxBodyBytes", o.MaxBodyBytes, 4 << 10},
		{"ReadHeaderTimeout", int64(o.ReadHeaderTimeout), int64(5 * time.Second)},
		{"ReadTimeout", int64(o.ReadTimeout), int64(10 * time.Second)},
		{"WriteTimeout", int64(o.WriteTimeout), int64(30 * time.Second)},
		{"IdleTimeout", int64(o.IdleTimeout), int64(30 * time.Second)},
		{"MaxConnRequests", int64(o.MaxConnRequests), 100},
		{"MaxConnAge", int64(o.MaxConnAge), int64(2 * time.Minute)},
	} {
		if c.got != c.want {
			t.Errorf("default %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// The count of lines held back is reported once, by the next line let
// through, then starts again from zero: a later window's lines do not
// repeat an old count.
func TestLineLimiterDroppedCountResets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := lineLimiter{now: func() time.Time { return now }}
	for range 5 { // 3 let through, 2 held back
		l.allow()
	}
	now = now.Add(failLineWindow)
	if ok, dropped, _ := l.allow(); !ok || dropped != 2 {
		t.Fatalf("first line of the next window: ok %v, dropped %d; want true, 2", ok, dropped)
	}
	if ok, dropped, _ := l.allow(); !ok || dropped != 0 {
		t.Errorf("second line of that window: ok %v, dropped %d; want true, 0 (already reported)", ok, dropped)
	}
	l.allow()
	l.allow() // held back: 1
	now = now.Add(failLineWindow)
	if ok, dropped, _ := l.allow(); !ok || dropped != 1 {
		t.Errorf("first line of the third window: ok %v, dropped %d; want true, 1", ok, dropped)
	}
}

// errListener fails every Accept with err until closed.
type errListener struct {
	net.Listener
	err    error
	mu     sync.Mutex
	closed bool
}

func (l *errListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, net.ErrClosed
	}
	return nil, l.err
}

func (l *errListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// A listener that keeps failing (EMFILE for good) is retried with a growing
// backoff, from 5 ms, not in a busy loop that floods the console and
// takes a CPU from Katana: in 300 ms, 5+10+20+40+80 ms of waits allow six
// attempts at most.
func TestAcceptErrorBackoff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, lines := retryCountingServer()
	l := &errListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "vsock", Err: os.NewSyscallError("accept4", syscall.EMFILE)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
	// Backoff from 5 ms, doubling, gives about 6 in 300 ms; a loaded
	// machine gives fewer. Without the backoff it was hundreds of
	// thousands.
	if n := lines.Load(); n < 1 || n > 20 {
		t.Errorf("%d accept retries in 300 ms, want 1 to 20 (backoff from 5 ms, doubling)", n)
	}
}

// echoQuoter returns a report of size bytes binding the REPORT_DATA it is
// given, and counts its calls.
type echoQuoter struct {
	size  int
	calls atomic.Int32
}

func (*echoQuoter) Name() string { return "echo" }
func (q *echoQuoter) Quote(rd [64]byte) ([]byte, []byte, error) {
	q.calls.Add(1)
	r := make([]byte, q.size)
	if q.size >= 0x90 {
		copy(r[0x50:0x90], rd[:])
	}
	return r, nil, nil
}

// Only GET asks for a report: HEAD (which would reach the hardware for
// an answer it throws away), PUT, DELETE are 405 with Allow: GET, and the
// hardware is not asked.
func TestAttestationOnlyGET(t *testing.T) {
	q := &echoQuoter{size: agentapi.ReportSize}
	s := New(Options{Quoter: q, Config: testConfig})
	for _, m := range []string{"HEAD", "PUT", "DELETE", "PATCH"} {
		resp := s.handle(&request{ctx: context.Background(), method: m, path: agentapi.PathAttestation, rawQuery: "nonce=" + strings.Repeat("ab", 32)})
		if resp.status != 405 || resp.allow != "GET" {
			t.Errorf("%s %s: status %d, Allow %q; want 405, GET", m, agentapi.PathAttestation, resp.status, resp.allow)
		}
	}
	if n := q.calls.Load(); n != 0 {
		t.Errorf("the hardware was asked %d times", n)
	}
	if resp := s.handle(&request{ctx: context.Background(), method: "GET", path: agentapi.PathAttestation, rawQuery: "nonce=" + strings.Repeat("ab", 32)}); resp.status != 200 {
		t.Errorf("GET: status %d, want 200 (%s)", resp.status, resp.body)
	}
}

// A report longer than an SEV-SNP report (even one binding our
// REPORT_DATA) is a device error, not passed on with trailing bytes.
func TestAttestationReportTooLong(t *testing.T) {
	s := New(Options{Quoter: &echoQuoter{size: agentapi.ReportSize + 1}, Config: testConfig})
	resp := s.handle(&request{ctx: context.Background(), method: "GET", path: agentapi.PathAttestation, rawQuery: "nonce=" + strings.Repeat("ab", 32)})
	if resp.status != 500 || !strings.Contains(string(resp.body), agentapi.CodeDeviceError) {
		t.Errorf("a %d-byte report: status %d %s; want 500 %s", agentapi.ReportSize+1, resp.status, resp.body, agentapi.CodeDeviceError)
	}
}

// Without a Status function /v1/status still says what it promises: an
// empty stage list (JSON [], not null) and the current time.
func TestStatusMinimal(t *testing.T) {
	s := New(Options{Quoter: failing{"x"}, InitVersion: "v-test"})
	before := time.Now().Add(-time.Second)
	resp := s.handle(&request{ctx: context.Background(), method: "GET", path: agentapi.PathStatus})
	if resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	if !strings.Contains(string(resp.body), `"stages":[]`) {
		t.Errorf("body %s: want \"stages\":[]", resp.body)
	}
	var st agentapi.Status
	if err := json.Unmarshal(resp.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Now.Before(before) || st.Now.After(time.Now().Add(time.Second)) {
		t.Errorf("now = %v, want the current time", st.Now)
	}
}

// A certificate table of exactly the kernel's limit (16 KiB) is taken:
// once learned, the next quote asks with a buffer that large, in one
// request, and gets the table.
func TestSevGuestCertTableAtLimitLearned(t *testing.T) {
	f := &tableIoctl{tableLen: kernelCertLimit}
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}
	if _, _, err := q.Quote([64]byte{1}); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	_, certs, err := q.Quote([64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "ext(16384)" || len(certs) != kernelCertLimit {
		t.Errorf("second quote with a %d-byte table: calls %q, %d bytes of certificates; want \"ext(16384)\", %d", kernelCertLimit, got, len(certs), kernelCertLimit)
	}
}

// probeCounter is a provider that is never there, counting its probes.
type probeCounter struct{ probes atomic.Int32 }

func (*probeCounter) Name() string { return "counted" }
func (p *probeCounter) Probe() error {
	p.probes.Add(1)
	return ErrNoDevice
}
func (p *probeCounter) Quote([64]byte) ([]byte, []byte, error) { return nil, nil, p.Probe() }

// With RetryAfter unset, a failed probe round is not repeated for 5 s: a
// flood of requests on a guest without SEV-SNP costs one probe, not one
// per request.
func TestFirstAvailableDefaultRetryAfter(t *testing.T) {
	p := &probeCounter{}
	f := &FirstAvailable{Providers: []Prober{p}}
	for range 3 {
		if _, _, err := f.Quote([64]byte{}); !errors.Is(err, ErrNoDevice) {
			t.Fatalf("Quote: %v, want ErrNoDevice", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.probes.Load(); n != 1 {
		t.Errorf("%d probes within 60 ms, want 1 (default RetryAfter 5s)", n)
	}
}

// A failed stage is named as failed in /v1/status, and a stop that was
// asked for once Katana had exited is reported as exited, not stopping.
func TestStatusOfFailedStageAndExitedStop(t *testing.T) {
	boot := time.Unix(1000, 0)
	got := StatusOf(status.Snapshot{
		Stages:        []status.Stage{{Name: "modules", OK: true, At: time.Second}, {Name: "network", OK: false, At: 2 * time.Second}},
		State:         status.Exited,
		StopRequested: "agent: POST /v1/shutdown",
	}, boot, "v")
	if len(got.Stages) != 2 || got.Stages[0].Name != "modules" || got.Stages[1].Name != "network (failed)" {
		t.Errorf("stages %+v, want modules, network (failed)", got.Stages)
	}
	if !got.Stages[1].At.Equal(boot.Add(2 * time.Second)) {
		t.Errorf("stage time %v, want %v", got.Stages[1].At, boot.Add(2*time.Second))
	}
	if got.Katana.State != string(status.Exited) {
		t.Errorf("katana state %q after a stop request once exited, want %q", got.Katana.State, status.Exited)
	}
}

// An excess connection's 429 is written by a rejecter that gives up after
// the linger: a client that reads the answer and then keeps the
// connection open, sending nothing, does not hold the rejecter, and with
// all of them held every later excess client would get no answer.
func TestRejecterLingerBounded(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(inner, 1, 1, 100*time.Millisecond, func(string, ...any) {})
	var mu sync.Mutex
	var held []net.Conn // the one slot stays taken
	t.Cleanup(func() {
		ll.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	c1, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	time.Sleep(50 * time.Millisecond)
	c2, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close() // open, silent, until the test ends
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "HTTP/1.1 429" {
		t.Fatalf("excess connection: %q %v, want a 429", buf, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(ll.rejecters) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rejecter is still held by a silent client 2 s after its 100 ms linger")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zeroLenIoctl answers every extended request "certificate buffer too
// small" without saying how large it should be (CertsLength 0), and serves
// SNP_GET_REPORT.
type zeroLenIoctl struct{ calls []string }

func (f *zeroLenIoctl) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	req := arg.(*labi.SnpUserGuestRequest)
	rsp := req.RespData.(*labi.SnpReportRespABI)
	switch cmd {
	case labi.IocSnpGetExtendedReport:
		f.calls = append(f.calls, "ext")
		req.FwErr = fwErrInvalidLength
		return 0, syscall.EIO
	case labi.IocSnpGetReport:
		f.calls = append(f.calls, "report")
		r := fakeReport([64]byte{1})
		copy(rsp.Data[:], r[:])
		return 0, nil
	}
	return 0, syscall.ENOTTY
}

// "Buffer too small" with no length is not asked again with the same
// empty buffer: the quote goes to SNP_GET_REPORT at once.
func TestSevGuestInvalidLengthWithoutLength(t *testing.T) {
	f := &zeroLenIoctl{}
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}
	if _, _, err := q.Quote([64]byte{1}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "ext report" {
		t.Errorf("calls %q, want \"ext report\"", got)
	}
}

// statusIoctl is a sev-guest device whose every request succeeds at the
// ioctl level but whose firmware response carries a non-zero status.
type statusIoctl struct{}

func (statusIoctl) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	req := arg.(*labi.SnpUserGuestRequest)
	rsp := req.RespData.(*labi.SnpReportRespABI)
	r := fakeReport([64]byte{1})
	copy(rsp.Data[:], r[:])
	rsp.Status = 0x16 // SEV_RET_INVALID_PARAM
	return 0, nil
}

// A report response whose status is not success is an error, not a report.
func TestSevGuestResponseStatus(t *testing.T) {
	q := &SevGuestIoctl{Open: func() (Ioctler, error) { return statusIoctl{}, nil }}
	if rep, _, err := q.Quote([64]byte{1}); err == nil || !strings.Contains(err.Error(), "report status 0x16") {
		t.Errorf("Quote with response status 0x16: %d-byte report, err %v; want a report status error", len(rep), err)
	}
}

// Every open error meaning "no such device" (ENOENT, ENODEV, ENXIO) is
// ErrNoDevice (503 no_snp_device); others (EACCES) are not.
func TestNoDeviceErrClasses(t *testing.T) {
	for _, e := range []error{os.ErrNotExist, syscall.ENOENT, syscall.ENODEV, syscall.ENXIO} {
		if err := noDeviceErr(SevGuestPath, e); !errors.Is(err, ErrNoDevice) {
			t.Errorf("open error %v: %v, want ErrNoDevice", e, err)
		}
	}
	if err := noDeviceErr(SevGuestPath, syscall.EACCES); errors.Is(err, ErrNoDevice) {
		t.Errorf("open error EACCES: %v, want not ErrNoDevice", err)
	}
}

// A client that closes inside its request header gets a 400 naming that,
// and every error answer says Connection: close (two decisions no other
// test checks: the EOF branch, and the close flag of error answers).
func TestHeaderEOFAnswersAndErrorsClose(t *testing.T) {
	base := serve(t, New(Options{Quoter: failing{"x"}}))
	for _, tc := range []struct {
		name, send string
		halfClose  bool
		status     string
		code       string
	}{
		{"closed inside the header", "GET /v1/status HTTP/1.1\r\nHost: a\r\n", true, "400 Bad Request", agentapi.CodeBadRequest},
		{"malformed request line", "garbage\r\n\r\n", false, "400 Bad Request", agentapi.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.send)
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Status != tc.status || !strings.Contains(string(body), `"`+tc.code+`"`) {
				t.Errorf("answer %s %s, want %s with %s", resp.Status, body, tc.status, tc.code)
			}
			// net/http takes the Connection: close header into Close.
			if !resp.Close {
				t.Errorf("error answer without Connection: close (headers %v)", resp.Header)
			}
		})
	}
}

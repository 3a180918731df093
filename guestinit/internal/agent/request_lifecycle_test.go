package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// HTTP/1.0 keeps a connection open only when the client asks for it
// (Connection: keep-alive); without that header the answer says
// Connection: close and the connection ends. A server that kept it open
// would hold a slot for a client that never sends another request.
func TestHTTP10KeepAliveOnlyWhenAsked(t *testing.T) {
	addr := strings.TrimPrefix(serve(t, New(Options{Quoter: failing{"x"}})), "http://")
	for _, tc := range []struct {
		name, req, wantConn string
		wantEOF             bool
	}{
		{"HTTP/1.0 without Connection", "GET /v1/status HTTP/1.0\r\n\r\n", "close", true},
		{"HTTP/1.0 with keep-alive", "GET /v1/status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "", false},
		{"HTTP/1.1 without Connection", statusReq, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialKeepAlive(t, addr)
			st, conn, err := c.do(tc.req)
			if st != "200 OK" || conn != tc.wantConn {
				t.Fatalf("got %q Connection %q (%v), want 200 OK Connection %q", st, conn, err, tc.wantConn)
			}
			if !tc.wantEOF {
				// Still open: a second request is served on it.
				if st, _, err := c.do(tc.req); st != "200 OK" {
					t.Errorf("second request on the kept connection: %q %v, want 200 OK", st, err)
				}
				return
			}
			if n, err := c.br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: read %v, %v; want io.EOF (connection closed)", n, err)
			}
		})
	}
}

// A keep-alive connection whose next request does not come within
// IdleTimeout is closed silently, as any HTTP server may: no 408 (that is
// for a request that started and did not finish, or a fresh connection
// that sent nothing). A 408 there would be an unsolicited answer, which a
// client reusing the connection reads as the answer to its next request.
func TestIdleKeepAliveClosedWithoutAnswer(t *testing.T) {
	addr := strings.TrimPrefix(serve(t, New(Options{Quoter: failing{"x"}, IdleTimeout: 200 * time.Millisecond})), "http://")
	c := dialKeepAlive(t, addr)
	if st, conn, err := c.do(statusReq); st != "200 OK" || conn != "" {
		t.Fatalf("first request: %q Connection %q %v", st, conn, err)
	}
	// The idle timeout passes; the server must close without writing.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.br)
	if err != nil || len(b) != 0 {
		t.Errorf("after IdleTimeout: read %q, %v; want nothing, then io.EOF", b, err)
	}
}

// A connection with a pipelined request already buffered is busy, not
// idle: a newcomer at the connection limit must not evict it (the
// pipelined request's answer would say Connection: close and the client
// would lose whatever it pipelined after). The test hook runs after an idle
// connection's wait; with the limit at 1, a newcomer started from it
// evicts the connection whenever the server took it for idle.
func TestPipelinedRequestNotIdle(t *testing.T) {
	s := New(Options{Quoter: failing{"x"}, MaxConns: 1, IdleTimeout: time.Minute})
	addr := strings.TrimPrefix(serve(t, s), "http://")
	h := dialKeepAlive(t, addr)
	var once sync.Once
	evictedEarly := make(chan bool, 1)
	setIdlePeekHook(func(tc *trackedConn) {
		once.Do(func() {
			// A newcomer arrives while this connection is taken for idle.
			go func() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, statusReqClose)
				io.Copy(io.Discard, c)
			}()
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				tc.l.mu.Lock()
				ev := tc.evicted
				tc.l.mu.Unlock()
				if ev {
					evictedEarly <- true
					return
				}
			}
		})
	})
	// Registered after serve's: runs first.
	t.Cleanup(func() { setIdlePeekHook(nil) })
	// Two requests in one write: the second is buffered while the first
	// is answered.
	h.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(h, statusReq+statusReq); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		resp, err := http.ReadResponse(h.br, nil)
		if err != nil {
			t.Fatalf("pipelined answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Errorf("pipelined answer %d: %q close=%v, want 200 OK on a kept connection", i, resp.Status, resp.Close)
		}
	}
	setIdlePeekHook(nil)
	select {
	case <-evictedEarly:
		t.Error("a connection with a buffered pipelined request was evicted as idle")
	default:
	}
}

// A request whose context is already done never reaches the hardware,
// even when the gate is free: the select that takes the slot may pick
// the slot over ctx.Done() when both are ready (Go picks at random), and
// the check after it must catch that. Repeated, so that a gate without the
// check runs fn in all but a 2^-64 share of runs.
func TestGateSkipsCancelledRequest(t *testing.T) {
	g := newGate(4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := 0
	for range 64 {
		if err := g.do(ctx, func() { ran++ }); !errors.Is(err, context.Canceled) {
			t.Fatalf("do with a cancelled context: %v, want context.Canceled", err)
		}
	}
	if ran != 0 {
		t.Errorf("fn ran %d times of 64 for a cancelled request, want 0", ran)
	}
}

// Only when every provider is absent is the error ErrNoDevice: a broken
// provider listed first and an absent one after must not read as "no
// SEV-SNP device" (TestFirstAvailableAbsentOrBroken has them the other way
// round, where only the last provider's reason decided).
func TestFirstAvailableBrokenThenAbsent(t *testing.T) {
	f := &FirstAvailable{Providers: []Prober{&broken{flaky{name: "sev-guest-ioctl"}}, &flaky{name: "configfs-tsm"}}}
	_, _, err := f.Quote([64]byte{})
	if err == nil || errors.Is(err, ErrNoDevice) {
		t.Errorf("err = %v, want an error that is not ErrNoDevice (a device exists but fails)", err)
	}
}

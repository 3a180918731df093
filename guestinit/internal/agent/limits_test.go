package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// codeStatus is the one status of each stable error code, as the table in
// shared/agentapi gives it: readResponse and FuzzHandler hold every error
// answer to it.
var codeStatus = map[string]int{
	agentapi.CodeBadRequest:              400,
	agentapi.CodeBadNonce:                400,
	agentapi.CodeBrowserRequest:          403,
	agentapi.CodeNotFound:                404,
	agentapi.CodeMethodNotAllowed:        405,
	agentapi.CodeRequestTimeout:          408,
	agentapi.CodeBodyTooLarge:            413,
	agentapi.CodeBusy:                    429,
	agentapi.CodeTooManyConnections:      429,
	agentapi.CodeHeaderTooLarge:          431,
	agentapi.CodeClientClosed:            499,
	agentapi.CodeDeviceError:             500,
	agentapi.CodeNotImplemented:          501,
	agentapi.CodeShutdownUnavailable:     501,
	agentapi.CodeNoSNPDevice:             503,
	agentapi.CodeShuttingDown:            503,
	agentapi.CodeNotReady:                503,
	agentapi.CodeHTTPVersionNotSupported: 505,
}

// checkCodeStatus reports an error answer whose code is unknown or belongs
// to another status.
func checkCodeStatus(status int, code string) error {
	if want, ok := codeStatus[code]; !ok || want != status {
		return fmt.Errorf("status %d with code %q: the code table gives %q status %d", status, code, code, want)
	}
	return nil
}

// keepAliveConn is a client connection that sends requests one at a time
// and reads their answers.
type keepAliveConn struct {
	net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAliveConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAliveConn{Conn: c, br: bufio.NewReader(c)}
}

// do sends req and returns the answer's status line and Connection header,
// or the read error.
func (c *keepAliveConn) do(req string) (status, connection string, err error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return "", "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return "", "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close { // net/http takes "Connection: close" out of the header
		return resp.Status, "close", nil
	}
	return resp.Status, resp.Header.Get("Connection"), nil
}

const statusReq = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
const statusReqClose = "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// waitAdmitted retries a one-request connection while it is refused 429
// (a slot comes back a moment after the client sees the answer that frees
// it) and returns its final status.
func waitAdmitted(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, e := rawExchange(t, addr, statusReqClose)
		if !strings.HasPrefix(st, "429") || time.Now().After(deadline) {
			return st + " " + e.Error.Code
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The review's scenario: clients that keep their connections alive with a
// cheap request now and then no longer hold every slot. At the limit, a
// newcomer evicts the connection idle the longest, which sees a clean
// close (EOF, no reset); the others keep being served.
func TestIdleConnectionEvictedAtLimit(t *testing.T) {
	// Long idle and age limits: only eviction can free a slot here.
	s := New(Options{Quoter: failing{"x"}, MaxConns: 2, IdleTimeout: time.Minute})
	addr := strings.TrimPrefix(serve(t, s), "http://")
	h1, h2 := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	for i, h := range []*keepAliveConn{h1, h2} {
		if st, _, err := h.do(statusReq); st != "200 OK" {
			t.Fatalf("holder %d: %q %v", i+1, st, err)
		}
	}
	if got := waitAdmitted(t, addr); got != "200 OK " {
		t.Fatalf("a third client, both slots idle: %s, want 200 OK", got)
	}
	// One of them was closed, cleanly (EOF, no reset); the other one is
	// still served. Which one: TestEvictsLongestIdle.
	var alive *keepAliveConn
	evicted := 0
	for i, h := range []*keepAliveConn{h1, h2} {
		h.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		switch _, err := h.br.ReadByte(); {
		case err == io.EOF:
			evicted++
		case isTimeout(err):
			alive = h
		default:
			t.Errorf("holder %d: %v, want io.EOF (evicted) or nothing (kept)", i+1, err)
		}
	}
	if evicted != 1 || alive == nil {
		t.Fatalf("%d holders evicted, want 1", evicted)
	}
	if st, _, err := alive.do(statusReq); st != "200 OK" {
		t.Errorf("the holder not evicted: %q %v, want still served", st, err)
	}

	// The review's loop: two clients that each send a request every half
	// idle period (and reconnect when evicted), a third that comes now and
	// then: it is always let in.
	holders := []*keepAliveConn{alive, dialKeepAlive(t, addr)}
	refused := 0
	for round := 0; round < 6; round++ {
		for i, h := range holders {
			if st, _, err := h.do(statusReq); st != "200 OK" {
				// Evicted by the previous newcomer: reconnect, as an HTTP
				// client does.
				if err == nil {
					t.Fatalf("round %d holder %d: %s", round, i, st)
				}
				holders[i] = dialKeepAlive(t, addr)
				if st := waitAdmittedOn(t, holders[i]); st != "200 OK" {
					t.Fatalf("round %d holder %d reconnecting: %s", round, i, st)
				}
			}
		}
		if st, _ := rawExchange(t, addr, statusReqClose); strings.HasPrefix(st, "429") {
			refused++
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The newcomer can lose a race with a holder's reconnect, never more
	// than now and then.
	if refused > 2 {
		t.Errorf("the third client was refused %d times of 6 while the others only kept their connections alive", refused)
	}
}

// At the limit, the listener evicts the connection that has waited longest
// for its next request, and none that is not waiting (setActive).
func TestEvictsLongestIdle(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := newLimitListener(inner, 3, 1, time.Second, t.Logf)
	accept := func() (*trackedConn, net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*trackedConn), client
	}
	a, _ := accept()
	b, _ := accept()
	c, cClient := accept()
	c.setIdle() // idle first, then active again: not evictable
	b.setIdle()
	a.setIdle() // idle for less time than b
	if !c.setActive() {
		t.Fatal("c evicted while no connection was over the limit")
	}
	_, _ = accept()
	if !a.setActive() {
		t.Error("a, idle for less time than b, was evicted")
	}
	// b's reader is woken (a read deadline now); it closes b itself, or
	// answers a request that came in at that moment.
	done := make(chan error, 1)
	go func() { _, err := b.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		if !isTimeout(err) {
			t.Errorf("b (idle longest): its read ended with %v, want a timeout (woken)", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("b (idle longest): its read was not woken")
	}
	if b.setActive() {
		t.Error("b, evicted, may still be served")
	}
	cClient.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := cClient.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("c (active): client read %v, want nothing", err)
	}
	// a, c and the newcomer hold the slots; b no longer does.
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	if n != 3 {
		t.Errorf("%d connections hold slots, want 3", n)
	}
}

// waitAdmittedOn sends a status request on a fresh keep-alive connection,
// redialling while it is refused 429.
func waitAdmittedOn(t *testing.T, h *keepAliveConn) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, err := h.do(statusReq)
		if err != nil {
			return err.Error()
		}
		if !strings.HasPrefix(st, "429") || time.Now().After(deadline) {
			return st
		}
		h.Close()
		*h = *dialKeepAlive(t, h.RemoteAddr().String())
	}
}

// A connection is never evicted before its first request, in the middle
// of a request, or while its request is handled (running or queued for
// the hardware): with every slot so taken, a newcomer gets 429
// too_many_connections, and each of them is then served.
func TestBusyConnectionsNotEvicted(t *testing.T) {
	q := &heldQuoter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	var once sync.Once
	unblock := func() { once.Do(func() { close(q.release) }) }
	t.Cleanup(unblock)
	s := New(Options{Quoter: q, MaxConns: 4, IdleTimeout: time.Minute, ReadHeaderTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second})
	addr := strings.TrimPrefix(serve(t, s), "http://")
	attestReq := func(b byte) string {
		return "GET /v1/attestation?nonce=" + nonceHex(b, 32) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	}
	// 1: no request yet. 2: inside its second request's header.
	fresh := dialKeepAlive(t, addr)
	partial := dialKeepAlive(t, addr)
	if st, _, err := partial.do(statusReq); st != "200 OK" {
		t.Fatalf("partial: %q %v", st, err)
	}
	io.WriteString(partial, "GET /v1/status HTTP/1.1\r\nHo")
	// 3: its second request's attestation runs; 4: its second request's
	// attestation is queued behind.
	running, queued := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	answers := make(chan string, 2)
	for i, h := range []*keepAliveConn{running, queued} {
		if st, _, err := h.do(statusReq); st != "200 OK" {
			t.Fatalf("holder %d: %q %v", i, st, err)
		}
		go func() {
			st, _, err := h.do(attestReq(byte(i)))
			if err != nil {
				st = err.Error()
			}
			answers <- st
		}()
		if i == 0 {
			<-q.entered
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.gate.pending.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want 2", s.gate.pending.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The partial request's bytes reach the server before the newcomer:
	// wait until its reader has left the idle wait.
	for deadline := time.Now().Add(10 * time.Second); s.listener.Load().idle() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still idle, want none", s.listener.Load().idle())
		}
	}
	for range 3 {
		if st, e := rawExchange(t, addr, statusReqClose); !strings.HasPrefix(st, "429") || e.Error.Code != agentapi.CodeTooManyConnections {
			t.Errorf("newcomer with no connection idle: %s %q, want 429 %s", st, e.Error.Code, agentapi.CodeTooManyConnections)
		}
	}
	unblock()
	for range 2 {
		if st := <-answers; st != "200 OK" {
			t.Errorf("attestation on a connection at the limit: %s, want 200 OK", st)
		}
	}
	partial.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(partial, "st: x\r\n\r\n")
	if resp, err := http.ReadResponse(partial.br, nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("the partial request: %v %v, want 200", resp, err)
	}
	if st, _, err := fresh.do(statusReq); st != "200 OK" {
		t.Errorf("the fresh connection: %q %v, want 200 OK", st, err)
	}
}

// No connection lives for ever: the answer to its MaxConnRequests-th
// request (100 by default), or the first one written MaxConnAge after its
// accept, says Connection: close, and the connection is closed.
func TestConnectionRequestAndAgeCaps(t *testing.T) {
	t.Run("requests, default", func(t *testing.T) {
		addr := strings.TrimPrefix(serve(t, New(Options{Quoter: failing{"x"}})), "http://")
		c := dialKeepAlive(t, addr)
		for i := 1; i <= 100; i++ {
			st, conn, err := c.do(statusReq)
			if st != "200 OK" {
				t.Fatalf("request %d: %q %v", i, st, err)
			}
			if want := map[bool]string{true: "close", false: ""}[i == 100]; conn != want {
				t.Fatalf("request %d: Connection %q, want %q", i, conn, want)
			}
		}
		if n, err := c.br.ReadByte(); err != io.EOF {
			t.Errorf("after 100 requests: read %v, %v; want io.EOF", n, err)
		}
	})
	t.Run("age", func(t *testing.T) {
		// Long enough for the first answer to come well within it on a
		// busy machine; the server accepted the connection before that
		// answer, so a second request sent a full age after it comes
		// past the age.
		const age = 3 * time.Second
		addr := strings.TrimPrefix(serve(t, New(Options{Quoter: failing{"x"}, MaxConnAge: age})), "http://")
		c := dialKeepAlive(t, addr)
		if st, conn, err := c.do(statusReq); st != "200 OK" || conn != "" {
			t.Fatalf("first request: %q Connection %q %v", st, conn, err)
		}
		time.Sleep(age + 100*time.Millisecond)
		if st, conn, err := c.do(statusReq); st != "200 OK" || conn != "close" {
			t.Fatalf("request past MaxConnAge: %q Connection %q %v, want 200 OK and Connection: close", st, conn, err)
		}
		if n, err := c.br.ReadByte(); err != io.EOF {
			t.Errorf("after MaxConnAge: read %v, %v; want io.EOF", n, err)
		}
	})
}

// A queued attestation cancelled because its client half-closed is
// answered 499 client_closed (a client that half-closes still reads):
// neither busy, which is 429, nor shutting_down, which says the guest
// stops.
func TestQueuedRequestCancelledByHalfClose(t *testing.T) {
	q := &heldQuoter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	var once sync.Once
	unblock := func() { once.Do(func() { close(q.release) }) }
	t.Cleanup(unblock)
	s := New(Options{Quoter: q})
	base := serve(t, s)
	first := make(chan int, 1)
	go func() { c, _, _ := attest(base, nonceHex(1, 32)); first <- c }()
	<-q.entered
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/attestation?nonce="+nonceHex(2, 32)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for s.gate.pending.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want 2", s.gate.pending.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	st, e := readResponse(t, c)
	if st != "499 Client Closed Request" || e.Error.Code != agentapi.CodeClientClosed {
		t.Errorf("half-closed while queued: %s %q, want 499 %s", st, e.Error.Code, agentapi.CodeClientClosed)
	}
	unblock()
	if got := <-first; got != 200 {
		t.Errorf("first request: %d", got)
	}
	if n := len(q.entered); n != 0 {
		t.Errorf("the cancelled request reached the hardware (%d more calls)", n)
	}
}

// A TCP agent on an address other than loopback says at start, on the
// console, that anyone who reaches it can stop Katana.
func TestStartWarnsOfReachableShutdown(t *testing.T) {
	for _, tc := range []struct {
		agent string
		warn  bool
	}{
		{"tcp:0.0.0.0:1024", true},
		{"tcp:10.0.2.15:1024", true}, // the guest's eth0 under QEMU user networking
		{"tcp:[::]:1024", true},
		{"tcp:127.0.0.1:1024", false},
		{"tcp:[::1]:1024", false},
		{"vsock:1024", false},
	} {
		t.Run(tc.agent, func(t *testing.T) {
			cfg, err := bootcfg.Parse("katana.agent=" + tc.agent)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var lines []string
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = Start(ctx, cfg, status.New(func() time.Duration { return 0 }), StartOptions{
				Quoter: failing{"x"},
				Logf: func(format string, args ...any) {
					mu.Lock()
					defer mu.Unlock()
					lines = append(lines, fmt.Sprintf(format, args...))
				},
				Listen: func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
			})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			all := strings.Join(lines, "\n")
			mu.Unlock()
			want := "agent: " + tc.agent + " is not a loopback address: anyone who can reach it can POST /v1/shutdown and stop Katana (the agent has no authentication)"
			if got := strings.Contains(all, want); got != tc.warn {
				t.Errorf("warning logged: %v, want %v; log:\n%s", got, tc.warn, all)
			}
			if !tc.warn && strings.Contains(all, "loopback") {
				t.Errorf("unexpected warning:\n%s", all)
			}
		})
	}
}

// A request that arrives just as its idle connection is evicted is
// answered, with Connection: close, not dropped: the client would retry
// only an idempotent request (POST /v1/shutdown is not). The hook holds the
// connection between its wait and its check until the newcomer has
// evicted it. Found by review: the listener closed the victim itself.
func TestEvictedAsRequestArrives(t *testing.T) {
	s := New(Options{Quoter: failing{"x"}, MaxConns: 1, IdleTimeout: time.Minute})
	addr := strings.TrimPrefix(serve(t, s), "http://")
	h := dialKeepAlive(t, addr)
	if st, _, err := h.do(statusReq); st != "200 OK" {
		t.Fatalf("first request: %q %v", st, err)
	}
	peeked := make(chan *trackedConn, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	setIdlePeekHook(func(tc *trackedConn) {
		peeked <- tc
		<-release
	})
	// Registered after serve's: runs first, so that a failed test does
	// not leave the connection (and Serve's wait for it) blocked.
	t.Cleanup(func() { setIdlePeekHook(nil); unblock() })
	// The second request arrives; its connection is between its wait and
	// its check when the newcomer comes.
	answer := make(chan [2]string, 1)
	go func() {
		st, conn, err := h.do(statusReq)
		if err != nil {
			st = err.Error()
		}
		answer <- [2]string{st, conn}
	}()
	var tc *trackedConn
	select {
	case tc = <-peeked:
	case <-time.After(10 * time.Second):
		t.Fatal("the second request was not seen")
	}
	newcomer := make(chan string, 1)
	go func() {
		st, _ := rawExchange(t, addr, statusReqClose)
		newcomer <- st
	}()
	// Wait until the listener has evicted h's connection.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		tc.l.mu.Lock()
		ev := tc.evicted
		tc.l.mu.Unlock()
		if ev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the newcomer did not evict the idle connection")
		}
	}
	setIdlePeekHook(nil)
	unblock()
	select {
	case got := <-answer:
		if got != [2]string{"200 OK", "close"} {
			t.Errorf("the request that came as its connection was evicted: %q, want 200 OK with Connection: close", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("the request that came as its connection was evicted got no answer")
	}
	if st := <-newcomer; !strings.HasPrefix(st, "200") {
		t.Errorf("the newcomer: %q, want 200", st)
	}
}

// A request still being read when the agent stops is answered 503
// shutting_down, not 408 request_timeout ("the client was too slow"):
// Serve interrupts every read with a deadline. Found by review.
func TestHalfReadRequestWhenStopping(t *testing.T) {
	for _, partial := range []string{"GET /v1/status HTTP/1.1\r\nHo", "POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{"} {
		s := New(Options{Quoter: failing{"x"}, IdleTimeout: time.Minute})
		base, stop := serveStoppable(t, s)
		c := dialKeepAlive(t, strings.TrimPrefix(base, "http://"))
		// A first request, so that the second one's start is seen: the
		// connection is idle until its first bytes are read.
		if st, _, err := c.do(statusReq); st != "200 OK" {
			t.Fatalf("first request: %q %v", st, err)
		}
		for deadline := time.Now().Add(10 * time.Second); s.listener.Load().idle() != 1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the connection did not wait for its next request")
			}
		}
		if _, err := io.WriteString(c, partial); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); s.listener.Load().idle() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the server did not start reading the request")
			}
		}
		stop()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("%q: no answer: %v", partial, err)
		}
		var e agentapi.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 503 || e.Error.Code != agentapi.CodeShuttingDown {
			t.Errorf("%q: %d %q, want 503 %s", partial, resp.StatusCode, e.Error.Code, agentapi.CodeShuttingDown)
		}
	}
}

// A connection that has written its last answer (Connection: close) gives
// its slot back before it drains what the client may still send: the next
// client is served, not refused 429 for up to the drain's 500 ms. Found by
// review.
func TestClosingConnectionFreesItsSlot(t *testing.T) {
	s := New(Options{Quoter: failing{"x"}, MaxConns: 1, IdleTimeout: time.Minute})
	addr := strings.TrimPrefix(serve(t, s), "http://")
	a := dialKeepAlive(t, addr)
	if st, conn, err := a.do(statusReqClose); st != "200 OK" || conn != "close" {
		t.Fatalf("first client: %q %q %v", st, conn, err)
	}
	// a keeps its socket open; the server drains it for up to 500 ms.
	// Its slot must come back before that drain ends: wait for the slot
	// (the client sees the answer a moment before the server gives it
	// back, and a fixed 50 ms could pass first on a loaded machine), then
	// check that the drain still runs.
	l := s.listener.Load()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		held := len(l.conns)
		l.mu.Unlock()
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first connection still holds its slot 10 s after its last answer")
		}
	}
	if len(l.drainers) == 0 {
		t.Fatal("the first connection gave its slot back only when its drain was over")
	}
	if st, _ := rawExchange(t, addr, statusReqClose); !strings.HasPrefix(st, "200") {
		t.Errorf("the next client while the first drains: %s, want 200", st)
	}
}

// setIdlePeekHook sets (nil: clears) the test hook run after an idle
// connection's wait.
func setIdlePeekHook(f func(*trackedConn)) {
	if f == nil {
		testHookAfterIdlePeek.Store(nil)
		return
	}
	testHookAfterIdlePeek.Store(&f)
}

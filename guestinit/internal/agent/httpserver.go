package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// This file is a deliberately small HTTP/1.1 server: the agent needs
// request-line + headers + an optional Content-Length body + a JSON answer,
// with keep-alive. net/http would do it too, but it drags crypto/tls and
// friends into the measured init (about +3.3 MiB static); this is the
// bounded subset, with every error answered in JSON.

// request is one parsed HTTP request.
type request struct {
	ctx      context.Context
	method   string
	path     string // as sent, still percent-encoded
	rawQuery string
	proto    string // "HTTP/1.1" or "HTTP/1.0"
	header   textproto.MIMEHeader
	body     []byte
	remote   string
	// last: the connection was evicted (limitListener) as this request
	// arrived; it is answered, then the connection closes.
	last bool
}

// response is what a handler returns; body is complete JSON.
type response struct {
	status int
	body   []byte
	allow  string // Allow header for 405
	retry  bool   // Retry-After: 1 (429, 503)
	close  bool   // close the connection after this response
}

// httpError is a protocol-level failure: answered with status/code, then
// the connection is closed.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var statusText = map[int]string{
	200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	408: "Request Timeout", 413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 499: "Client Closed Request",
	500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

// writeResponse serialises r. HEAD gets the headers only.
func writeResponse(w io.Writer, r response, head bool) error {
	var b bytes.Buffer
	text := statusText[r.status]
	if text == "" {
		text = "Status"
	}
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n", r.status, text, len(r.body))
	if r.allow != "" {
		b.WriteString("Allow: " + r.allow + "\r\n")
	}
	if r.retry {
		b.WriteString("Retry-After: 1\r\n")
	}
	if r.close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	if !head {
		b.Write(r.body)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// httpConf are the limits serveConn enforces.
type httpConf struct {
	maxHeader         int
	maxBody           int64
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxConnRequests   int           // requests on one connection; the last answer says Connection: close
	maxConnAge        time.Duration // the first answer written this long after the accept says Connection: close
	handle            func(*request) response
	logf              func(string, ...any)
}

var errIdleClose = errors.New("idle connection closed")

// testHookAfterIdlePeek, when set (tests only), runs after an idle
// connection's wait for its next request ended, before it learns whether
// it was evicted meanwhile. Atomic: a test sets and clears it while its
// server's connections run.
var testHookAfterIdlePeek atomic.Pointer[func(*trackedConn)]

// errClientGone is the cause of a request context cancelled because its
// client hung up or half-closed the connection.
var errClientGone = errors.New("the client closed its connection")

// serveConn serves requests on c until the client closes, asks to close,
// times out, sends something malformed, is evicted while idle (see
// limitListener), has had conf.maxConnRequests requests or conf.maxConnAge,
// or ctx is done.
func serveConn(ctx context.Context, c net.Conn, conf httpConf) {
	defer c.Close()
	accepted := time.Now()
	// A header line must fit the buffer (ReadSlice): as large as the whole
	// header may be, so that MaxHeaderBytes is the one limit.
	br := bufio.NewReaderSize(c, max(4096, conf.maxHeader))
	for n := 1; ; n++ {
		first := n == 1
		if ctx.Err() != nil {
			return
		}
		req, err := readRequest(ctx, c, br, conf, first, accepted)
		if err != nil {
			var he *httpError
			switch {
			case errors.As(err, &he):
				// The answer's deadline is any answer's: a shorter one
				// lost the message on a starved guest (the write ran
				// after its deadline), and a client that does not read
				// holds a slot no longer than for a 200.
				c.SetWriteDeadline(time.Now().Add(conf.writeTimeout))
				writeResponse(c, response{status: he.status, body: errorBody(he.code, he.msg), close: true}, false)
				halfCloseAndDrain(c, br)
			}
			return
		}
		hctx, cancel := context.WithCancelCause(ctx)
		req.ctx = hctx
		stopWatch := watchHangup(c, br, cancel, conf.logf)
		resp := conf.handle(req)
		stopWatch()
		cancel(nil)
		// No connection lives for ever: past its request count or its
		// age, the answer closes it (the client reconnects, and waits its
		// turn for a slot like everyone else).
		keep := !resp.close && !req.last && wantsKeepAlive(req) &&
			(conf.maxConnRequests <= 0 || n < conf.maxConnRequests) &&
			(conf.maxConnAge <= 0 || time.Since(accepted) < conf.maxConnAge)
		resp.close = !keep
		c.SetWriteDeadline(time.Now().Add(conf.writeTimeout))
		if err := writeResponse(c, resp, req.method == "HEAD"); err != nil || !keep {
			if err == nil {
				// Closing with unread input (a pipelined request) would
				// reset the connection, and the answer with it: stop
				// sending and drain a little, as after an error answer.
				halfCloseAndDrain(c, br)
			}
			return
		}
	}
}

// halfCloseAndDrain lets the client read the last answer: stop sending,
// then drain a little of what it still sends (a close with unread input
// resets the connection, which can destroy the answer in flight).
func halfCloseAndDrain(c net.Conn, br *bufio.Reader) {
	// Its last answer is written: the slot is free for the next client
	// (the drain, 500 ms at most, runs beside the limit, as a rejecter's,
	// and like those only as many at once as the listener allows).
	if tc, ok := c.(*trackedConn); ok {
		defer tc.drainOutsideLimit()()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(br, 64<<10))
	}
}

// watchHangup cancels a request's context when its client hangs up while
// the request is handled, so that a queued attestation whose client is
// gone never reaches the hardware (net/http's background read does the
// same). It peeks at the connection without consuming anything: a
// pipelined request stays buffered for the next read. A half-close counts
// as a hang-up, as it does for net/http; the context's cause is then
// errClientGone. stop interrupts the peek and waits for it; the handler
// must not read from br meanwhile.
func watchHangup(c net.Conn, br *bufio.Reader, cancel context.CancelCauseFunc, logf func(string, ...any)) (stop func()) {
	if br.Buffered() > 0 {
		return func() {} // the next request is already here: so is its client
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer logPanic(logf, "watching a connection")
		if _, err := br.Peek(1); err != nil && !isTimeout(err) {
			cancel(errClientGone)
		}
	}()
	return func() {
		c.SetReadDeadline(time.Unix(1, 0)) // wakes the peek; a timeout is not a hang-up
		<-done
		c.SetReadDeadline(time.Time{})
	}
}

func wantsKeepAlive(r *request) bool {
	conn := strings.ToLower(r.header.Get("Connection"))
	if r.proto == "HTTP/1.0" {
		return strings.Contains(conn, "keep-alive")
	}
	return !strings.Contains(conn, "close")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readRequest reads one request. A timeout before the first byte of a
// keep-alive request is a silent close (errIdleClose); a timeout inside a
// request, or before any byte on a fresh connection, is 408.
//
// The header and whole-request timeouts run from accepted for the first
// request on a connection, so that a client cannot hold a connection slot
// for the idle wait plus the timeouts by sending its first byte late; on a
// keep-alive connection they run from the request's first byte, after at
// most IdleTimeout of waiting for it.
func readRequest(ctx context.Context, c net.Conn, br *bufio.Reader, conf httpConf, first bool, accepted time.Time) (*request, error) {
	// ReadTimeout bounds the whole request, header included.
	headerTimeout := min(conf.readHeaderTimeout, conf.readTimeout)
	start := accepted
	if first {
		c.SetReadDeadline(start.Add(headerTimeout))
	} else {
		c.SetReadDeadline(time.Now().Add(conf.idleTimeout))
	}
	// Between requests (keep-alive, nothing pipelined) the connection is
	// idle: a newcomer at the connection limit may evict it meanwhile.
	tc, idle := c.(*trackedConn)
	idle = idle && !first && br.Buffered() == 0
	if idle {
		tc.setIdle()
	}
	_, err := br.Peek(1)
	if hook := testHookAfterIdlePeek.Load(); idle && hook != nil {
		(*hook)(tc)
	}
	// Evicted while idle: closed, unless a request came in at that very
	// moment, which is answered (the slot is already the newcomer's: one
	// connection over the limit for one request) rather than dropped,
	// which a client retries only for idempotent requests.
	evicted := idle && !tc.setActive()
	if evicted && err != nil {
		return nil, errIdleClose
	}
	if err != nil {
		if isTimeout(err) && first && ctx.Err() == nil {
			return nil, &httpError{408, agentapi.CodeRequestTimeout, "request not received in time"}
		}
		return nil, errIdleClose
	}
	if !first {
		start = time.Now()
		c.SetReadDeadline(start.Add(headerTimeout))
	}
	budget := conf.maxHeader
	readLine := func() (string, error) {
		line, err := br.ReadSlice('\n')
		budget -= len(line)
		if budget < 0 || errors.Is(err, bufio.ErrBufferFull) {
			return "", &httpError{431, agentapi.CodeHeaderTooLarge, fmt.Sprintf("request header larger than %d bytes", conf.maxHeader)}
		}
		if err != nil {
			if isTimeout(err) {
				if ctx.Err() != nil { // the agent stops: Serve interrupts every read
					return "", &httpError{503, agentapi.CodeShuttingDown, "the guest is stopping"}
				}
				return "", &httpError{408, agentapi.CodeRequestTimeout, "request header not received in time"}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", &httpError{400, agentapi.CodeBadRequest, "connection closed inside the request header"}
			}
			return "", err
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"), nil
	}
	line, err := readLine()
	if err != nil {
		return nil, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || strings.Contains(proto, " ") {
		return nil, &httpError{400, agentapi.CodeBadRequest, "malformed request line"}
	}
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return nil, &httpError{505, agentapi.CodeHTTPVersionNotSupported, fmt.Sprintf("protocol %q not supported: HTTP/1.1 only", proto)}
	}
	if target[0] != '/' {
		return nil, &httpError{400, agentapi.CodeBadRequest, "request target must be a path"}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, &httpError{400, agentapi.CodeBadRequest, "malformed request target"}
	}
	h := textproto.MIMEHeader{}
	for {
		l, err := readLine()
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !isToken(name) {
			return nil, &httpError{400, agentapi.CodeBadRequest, "malformed header line"}
		}
		if !isFieldValue(value) {
			return nil, &httpError{400, agentapi.CodeBadRequest, fmt.Sprintf("control character in the value of header %q", name)}
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), strings.Trim(value, " \t"))
	}
	// RFC 9112, 3.2: a server must answer 400 to an HTTP/1.1 request with
	// no Host header or more than one. The agent serves one host and reads
	// nothing from it, but a request the protocol calls malformed is
	// refused like any other.
	if proto == "HTTP/1.1" && len(h["Host"]) != 1 {
		return nil, &httpError{400, agentapi.CodeBadRequest, fmt.Sprintf("an HTTP/1.1 request needs exactly one Host header, got %d", len(h["Host"]))}
	}
	// A web browser's request: the agent has no web client, and a page
	// the host's operator opens could otherwise drive it wherever its port
	// is reachable from the browser (hostbuild run --forward puts a TCP
	// agent on the host's loopback): a cross-site form POST /v1/shutdown
	// needs no preflight. Browsers send Origin on every POST, same-origin
	// ones too (a page using DNS rebinding), and Sec-Fetch-Site on every
	// request to a loopback address; other clients send neither (Node's
	// fetch sends Sec-Fetch-Mode, which is therefore not looked at). A
	// rebinding page's GET, without either, can read status and reports,
	// which are anyone's to ask for.
	for _, k := range []string{"Origin", "Sec-Fetch-Site"} {
		if _, ok := h[k]; ok {
			return nil, &httpError{403, agentapi.CodeBrowserRequest, fmt.Sprintf("a web browser's request (%s header): the agent serves no web page", k)}
		}
	}
	// Any Transfer-Encoding line at all, even an empty one before
	// "chunked": a body we took for empty would be read as the next request.
	if _, ok := h["Transfer-Encoding"]; ok {
		return nil, &httpError{501, agentapi.CodeNotImplemented, "transfer-encoding is not supported; send Content-Length"}
	}
	var n int64
	if cls := h.Values("Content-Length"); len(cls) > 0 {
		for _, v := range cls {
			if v != cls[0] {
				return nil, &httpError{400, agentapi.CodeBadRequest, "conflicting Content-Length headers"}
			}
		}
		if cls[0] == "" || strings.TrimLeft(cls[0], "0123456789") != "" || len(cls[0]) > 18 {
			return nil, &httpError{400, agentapi.CodeBadRequest, "malformed Content-Length"}
		}
		n, _ = strconv.ParseInt(cls[0], 10, 64)
	}
	if n > conf.maxBody {
		return nil, &httpError{413, agentapi.CodeBodyTooLarge, fmt.Sprintf("request body of %d bytes exceeds %d", n, conf.maxBody)}
	}
	var body []byte
	if n > 0 {
		if strings.EqualFold(h.Get("Expect"), "100-continue") {
			c.SetWriteDeadline(time.Now().Add(conf.writeTimeout))
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		c.SetReadDeadline(start.Add(conf.readTimeout))
		body = make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			if isTimeout(err) {
				if ctx.Err() != nil {
					return nil, &httpError{503, agentapi.CodeShuttingDown, "the guest is stopping"}
				}
				return nil, &httpError{408, agentapi.CodeRequestTimeout, "request body not received in time"}
			}
			return nil, &httpError{400, agentapi.CodeBadRequest, "connection closed inside the request body"}
		}
	}
	c.SetReadDeadline(time.Time{})
	// The path as sent: routing on the decoded one would take /v1%2Fstatus
	// for /v1/status.
	path, _, _ := strings.Cut(target, "?")
	return &request{ctx: ctx, method: method, path: path, rawQuery: u.RawQuery, proto: proto, header: h, body: body, remote: peerName(c), last: evicted}, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isFieldValue reports whether v has no control character other than HTAB
// (RFC 9110 5.5). A bare CR or a NUL is read differently by different
// parsers, which is enough to smuggle a header past one of them.
func isFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// connSet tracks open connections for shutdown.
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
}

func (s *connSet) done(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.wg.Done()
}

// interruptReads wakes connections blocked reading (idle keep-alive) so
// they notice the shutdown; handlers in flight still write their answer.
func (s *connSet) interruptReads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Package agent is the guest attestation agent: a small HTTP/1.1 + JSON server
// on any net.Listener (vsock in production, TCP for plain-QEMU tests) that
// returns SEV-SNP attestation reports binding the verifier's nonce and the
// applied configuration (see shared/agentapi), the init's status, and accepts
// a graceful-shutdown request.
//
// Everything is bounded: header size, body size, read/write/idle timeouts,
// concurrent connections, each connection's requests and age, and hardware
// requests, which run one at a time behind a short queue (429 busy when
// full). At the connection limit a new connection evicts the one that has
// waited longest for its next request (keep-alive, between requests); only
// when none is waiting does it get 429 too_many_connections.
//
// Every refusal is a JSON error with a stable code (agentapi.Code*), except
// where the agent closes a connection without an answer: an idle
// keep-alive connection evicted for a newcomer or past IdleTimeout (as any
// HTTP server may), an excess connection when no connection is idle and
// every rejecter is busy answering others, and a connection whose handler
// panicked (the panic and its stack go to the log).
package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Quoter produces reports; nil means DefaultQuoter() (/dev/sev-guest,
	// then configfs-tsm).
	Quoter Quoter
	// Config is the applied configuration bound into every report.
	Config agentapi.AppliedConfig
	// Status returns the init's current status; nil gives a minimal one.
	Status func() agentapi.Status
	// Shutdown starts the graceful stop; called at most once, it should
	// return quickly. Nil answers 501 shutdown_unavailable.
	Shutdown func() error
	// InitVersion is reported in /v1/status when Status leaves it empty.
	InitVersion string
	// Ready says whether reports may be given: nil when they may, else why
	// not (503 not_ready). A report binds the config the init applies; until
	// the init has checked the initrd, or once its boot has failed, that
	// config is not what runs. Nil means always ready.
	Ready func() error

	MaxConns          int           // concurrent connections (default 64)
	QueueDepth        int           // hardware requests waiting behind the running one (default 16)
	MaxHeaderBytes    int           // request line + header limit (default 8 KiB)
	MaxBodyBytes      int64         // request body limit (default 4 KiB)
	ReadHeaderTimeout time.Duration // request line + header, from the accept or a keep-alive request's first byte (default 5s)
	ReadTimeout       time.Duration // whole request, from the same start (default 10s)
	WriteTimeout      time.Duration // default 30s
	IdleTimeout       time.Duration // keep-alive: wait for the next request's first byte (default 30s)
	// A connection is closed (Connection: close on the answer) after
	// MaxConnRequests requests (default 100), or with the first answer
	// written MaxConnAge after its accept (default 2 minutes), so that no
	// client holds a connection slot for ever.
	MaxConnRequests int
	MaxConnAge      time.Duration
	// Logf receives one line per notable event (nil: discard).
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxConns, 64)
	def(&o.QueueDepth, 16)
	def(&o.MaxHeaderBytes, 8<<10)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 10
	}
	defDur(&o.ReadHeaderTimeout, 5*time.Second)
	defDur(&o.ReadTimeout, 10*time.Second)
	defDur(&o.WriteTimeout, 30*time.Second)
	defDur(&o.IdleTimeout, 30*time.Second)
	def(&o.MaxConnRequests, 100)
	defDur(&o.MaxConnAge, 2*time.Minute)
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Quoter == nil {
		o.Quoter = DefaultQuoter()
	}
}

// DefaultQuoter tries /dev/sev-guest first, then configfs-tsm. Every
// kernel with configfs-tsm's sev_guest provider (6.7+) registers both from
// one driver probe, and the ioctl copes with what configfs-tsm cannot: a
// host certificate table over 16 KiB (configfs-tsm fails each report with
// EIO; the ioctl gets the report without the table), and it hands the
// firmware's error to the agent.
func DefaultQuoter() Quoter {
	return &FirstAvailable{Providers: []Prober{&SevGuestIoctl{}, &ConfigfsTSM{}}}
}

// Server is the agent. Create it with New; it is safe for concurrent use.
type Server struct {
	opts         Options
	digest       [agentapi.ConfigDigestSize]byte
	digestHex    string
	gate         *gate
	shutdownOnce sync.Once
	shutdownErr  error
	// failLines bounds the console lines of failed hardware requests:
	// the host can make every request fail, and the console is Katana's
	// too.
	failLines lineLimiter
	// listener is Serve's connection limit (tests look at it).
	listener atomic.Pointer[limitListener]
}

// lineLimiter lets through at most failLinesPerWindow lines per
// failLineWindow and counts the others for the next line it lets through.
type lineLimiter struct {
	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int
	now     func() time.Time // nil: time.Now
}

const (
	failLinesPerWindow = 3
	failLineWindow     = time.Minute
)

// allow reports whether a line may be written now and, when it may, how
// many were held back before it and whether it is the window's last.
func (l *lineLimiter) allow() (ok bool, dropped int, last bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if l.start.IsZero() || now.Sub(l.start) >= failLineWindow {
		l.start, l.n = now, 0
	}
	if l.n >= failLinesPerWindow {
		l.dropped++
		return false, 0, false
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped, l.n == failLinesPerWindow
}

// New returns a Server for opts.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{opts: opts, gate: newGate(opts.QueueDepth)}
	s.digest = agentapi.ConfigDigest(opts.Config)
	s.digestHex = hex.EncodeToString(s.digest[:])
	return s
}

// ConfigDigest is the hex digest of the applied config.
func (s *Server) ConfigDigest() string { return s.digestHex }

// Serve serves on l until ctx is done (then it stops accepting, gives open
// requests two seconds and closes every connection) or l is closed; other
// accept errors are retried with a backoff. It returns nil after a
// ctx-driven stop.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ll := newLimitListener(l, s.opts.MaxConns, 64, 2*time.Second, s.opts.Logf)
	s.listener.Store(ll)
	conf := httpConf{
		maxHeader:         s.opts.MaxHeaderBytes,
		maxBody:           s.opts.MaxBodyBytes,
		readHeaderTimeout: s.opts.ReadHeaderTimeout,
		readTimeout:       s.opts.ReadTimeout,
		writeTimeout:      s.opts.WriteTimeout,
		idleTimeout:       s.opts.IdleTimeout,
		maxConnRequests:   s.opts.MaxConnRequests,
		maxConnAge:        s.opts.MaxConnAge,
		handle:            s.handle,
		logf:              s.opts.Logf,
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns connSet
	stopped := make(chan struct{})
	go func() {
		defer logPanic(s.opts.Logf, "closing the listener")
		select {
		case <-ctx.Done():
			l.Close()
		case <-stopped:
		}
	}()
	var err error
	var backoff time.Duration
	for {
		c, aerr := ll.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("agent: serving on %s: %w", l.Addr(), aerr)
				break
			}
			// Anything else (EMFILE, ENFILE, ENOMEM, ECONNABORTED, a
			// timeout) may pass: giving up would end attestation for the
			// VM's life. The backoff also bounds the log lines.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logf("agent: accept: %v; retrying in %v", aerr, backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		conns.add(c)
		go func() {
			defer conns.done(c)
			// A panic in a handler ends this connection only: serveConn's
			// deferred Close has run (the connection slot is free) and the
			// gate releases its slots in defers too.
			defer logPanic(s.opts.Logf, "serving "+peerName(c)+" (connection closed, the agent serves on)")
			serveConn(cctx, c, conf)
		}()
	}
	close(stopped)
	// Give requests in flight a moment, then close what is left.
	done := make(chan struct{})
	go func() { conns.wg.Wait(); close(done) }()
	cancel()
	conns.interruptReads()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		conns.closeAll()
		<-done
	}
	return err
}

// peerName names c's peer for the log. A deferred call's arguments are
// evaluated before its recover is in place, so this must not panic: a nil
// address (a net.Conn may return one; accepted vsock and TCP connections
// do not) or one whose String panics (a nil *vsock.Addr) is "an unknown
// peer", not the end of PID 1.
func peerName(c net.Conn) (name string) {
	const unknown = "an unknown peer"
	defer func() {
		if recover() != nil {
			name = unknown
		}
	}()
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return unknown
}

// logPanic, deferred in every goroutine the agent starts, turns
// a panic into a log line with the stack. The agent runs inside PID 1: an
// unrecovered panic in any goroutine would end the process, and with it the
// VM (kernel panic), on a request from the untrusted host.
func logPanic(logf func(string, ...any), what string) {
	if r := recover(); r != nil {
		logf("agent: recovered from a panic %s: %v\n%s", what, r, debug.Stack())
	}
}

// notReady is the 503 answer when Options.Ready refuses, ok when it does not.
func (s *Server) notReady() (resp response, ok bool) {
	if s.opts.Ready == nil {
		return response{}, true
	}
	if err := s.opts.Ready(); err != nil {
		return errorResponse(503, agentapi.CodeNotReady, err.Error()), false
	}
	return response{}, true
}

func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(agentapi.ErrorResponse{Error: agentapi.Error{Code: code, Message: msg}})
	return append(b, '\n')
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(500, agentapi.CodeDeviceError, "encoding response: "+err.Error())
	}
	return response{status: status, body: append(b, '\n')}
}

func errorResponse(status int, code, msg string) response {
	return response{status: status, body: errorBody(code, msg), retry: status == 429 || status == 503}
}

func methodNotAllowed(r *request, method string) response {
	resp := errorResponse(405, agentapi.CodeMethodNotAllowed, fmt.Sprintf("%s wants %s, got %s", r.path, method, r.method))
	resp.allow = method
	return resp
}

// handle routes on the exact path as sent: no cleaning, decoding or
// redirects; anything else (a percent-encoded character included) is 404
// not_found.
func (s *Server) handle(r *request) response {
	switch r.path {
	case agentapi.PathAttestation:
		return s.handleAttestation(r)
	case agentapi.PathStatus:
		return s.handleStatus(r)
	case agentapi.PathShutdown:
		return s.handleShutdown(r)
	}
	return errorResponse(404, agentapi.CodeNotFound, fmt.Sprintf("no such endpoint %q", r.path))
}

// parseNonce accepts exactly one query parameter, nonce, as 64 to 128 hex
// digits (32 to 64 bytes).
func parseNonce(rawQuery string) ([]byte, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	for k := range q {
		if k != agentapi.NonceQueryParam {
			return nil, fmt.Errorf("unknown query parameter %q", k)
		}
	}
	vs := q[agentapi.NonceQueryParam]
	if len(vs) != 1 {
		return nil, fmt.Errorf("want exactly one nonce parameter, got %d", len(vs))
	}
	v := vs[0]
	if len(v) > 2*agentapi.MaxNonceSize || len(v) < 2*agentapi.MinNonceSize {
		return nil, fmt.Errorf("nonce must be %d to %d hex digits, got %d", 2*agentapi.MinNonceSize, 2*agentapi.MaxNonceSize, len(v))
	}
	n, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("nonce is not hex: %w", err)
	}
	if err := agentapi.CheckNonce(n); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Server) handleAttestation(r *request) response {
	if r.method != "GET" {
		return methodNotAllowed(r, "GET")
	}
	nonce, err := parseNonce(r.rawQuery)
	if err != nil {
		return errorResponse(400, agentapi.CodeBadNonce, err.Error())
	}
	rd, pre, err := agentapi.ReportData(nonce, s.digest)
	if err != nil {
		return errorResponse(400, agentapi.CodeBadNonce, err.Error())
	}
	if resp, ok := s.notReady(); !ok {
		return resp
	}
	var q namedQuote
	var qerr error
	err = s.gate.do(r.ctx, func() {
		q.report, q.cert, qerr = s.opts.Quoter.Quote(rd)
		q.provider = s.opts.Quoter.Name()
	})
	switch {
	case errors.Is(err, errBusy):
		return errorResponse(429, agentapi.CodeBusy, "attestation queue full; retry later")
	case err != nil && errors.Is(context.Cause(r.ctx), errClientGone):
		// Read only by a client that half-closed (nc -N).
		return errorResponse(499, agentapi.CodeClientClosed, "request cancelled while queued: the client closed its side of the connection")
	case err != nil: // the server is stopping
		return errorResponse(503, agentapi.CodeShuttingDown, "request cancelled while queued: the agent is stopping")
	case errors.Is(qerr, ErrNoDevice):
		return errorResponse(503, agentapi.CodeNoSNPDevice, qerr.Error())
	case qerr != nil:
		if ok, dropped, last := s.failLines.allow(); ok {
			more := ""
			if dropped > 0 {
				more = fmt.Sprintf(" (%d more failed requests not logged before this one)", dropped)
			} else if last {
				more = fmt.Sprintf(" (further failures within %v are not logged)", failLineWindow)
			}
			s.opts.Logf("agent: attestation failed: %v%s", qerr, more)
		}
		return errorResponse(500, agentapi.CodeDeviceError, qerr.Error())
	}
	if len(q.report) != agentapi.ReportSize {
		return errorResponse(500, agentapi.CodeDeviceError, fmt.Sprintf("device returned a %d-byte report, want %d", len(q.report), agentapi.ReportSize))
	}
	// 0x50..0x90 is REPORT_DATA: a device that did not bind our bytes is broken.
	if string(q.report[0x50:0x90]) != string(rd[:]) {
		return errorResponse(500, agentapi.CodeDeviceError, "device returned a report for different REPORT_DATA")
	}
	// Asked again: the boot may have failed while the device worked.
	if resp, ok := s.notReady(); !ok {
		return resp
	}
	return jsonResponse(200, agentapi.AttestationResponse{
		APIVersion:         agentapi.APIVersion,
		Provider:           q.provider,
		Nonce:              hex.EncodeToString(nonce),
		Report:             q.report,
		CertTable:          q.cert,
		ReportDataPreimage: pre,
		ReportData:         hex.EncodeToString(rd[:]),
		Config:             s.opts.Config,
		ConfigDigest:       s.digestHex,
	})
}

func (s *Server) handleStatus(r *request) response {
	if r.method != "GET" && r.method != "HEAD" {
		return methodNotAllowed(r, "GET, HEAD")
	}
	if r.rawQuery != "" {
		return errorResponse(400, agentapi.CodeBadRequest, "status takes no query parameters")
	}
	var st agentapi.Status
	if s.opts.Status != nil {
		st = s.opts.Status()
	}
	st.APIVersion = agentapi.APIVersion
	if st.InitVersion == "" {
		st.InitVersion = s.opts.InitVersion
	}
	st.ConfigDigest = s.digestHex
	if st.Now.IsZero() {
		st.Now = time.Now().UTC()
	}
	if st.Stages == nil {
		st.Stages = []agentapi.Stage{}
	}
	return jsonResponse(200, st)
}

func (s *Server) handleShutdown(r *request) response {
	if r.method != "POST" {
		return methodNotAllowed(r, "POST")
	}
	if s.opts.Shutdown == nil {
		return errorResponse(501, agentapi.CodeShutdownUnavailable, "this init did not enable shutdown over the agent")
	}
	s.shutdownOnce.Do(func() {
		// Once counts a panicking Shutdown as done: later requests must
		// not hear 202 for a stop that never started.
		s.shutdownErr = errors.New("the shutdown request failed (see the console log)")
		// The stop first, the log line after: a console that does not
		// drain (its reader on the host stalled) must not hold it up.
		s.shutdownErr = s.opts.Shutdown()
		s.opts.Logf("agent: shutdown requested by %s", r.remote)
	})
	if s.shutdownErr != nil {
		return errorResponse(503, agentapi.CodeShuttingDown, s.shutdownErr.Error())
	}
	return jsonResponse(202, agentapi.ShutdownResponse{APIVersion: agentapi.APIVersion, State: "stopping"})
}

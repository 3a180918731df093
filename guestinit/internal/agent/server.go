// Package agent is the guest attestation agent: a small HTTP/1.1 + JSON server
// on any net.Listener (vsock in production, TCP for plain-QEMU tests) that
// returns SEV-SNP attestation reports binding the verifier's nonce and the
// applied configuration (see shared/agentapi), the init's status, and accepts
// a graceful-shutdown request.
//
// Everything is bounded: header size, body size, read/write/idle timeouts,
// concurrent connections (excess ones get 429), and hardware requests, which
// run one at a time behind a short queue (429 busy when full).
package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Quoter produces reports; nil means DefaultQuoter() (configfs-tsm, then
	// /dev/sev-guest).
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

	MaxConns          int           // concurrent connections (default 64)
	QueueDepth        int           // hardware requests waiting behind the running one (default 16)
	MaxHeaderBytes    int           // request header limit (default 8 KiB)
	MaxBodyBytes      int64         // request body limit (default 4 KiB)
	ReadHeaderTimeout time.Duration // default 5s
	ReadTimeout       time.Duration // whole request (default 10s)
	WriteTimeout      time.Duration // default 30s
	IdleTimeout       time.Duration // keep-alive (default 30s)
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
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Quoter == nil {
		o.Quoter = DefaultQuoter()
	}
}

// DefaultQuoter tries configfs-tsm first, then /dev/sev-guest.
func DefaultQuoter() Quoter {
	return &FirstAvailable{Providers: []Prober{&ConfigfsTSM{}, &SevGuestIoctl{}}}
}

// Server is the agent. Create it with New; it is safe for concurrent use.
type Server struct {
	opts         Options
	digest       [agentapi.ConfigDigestSize]byte
	digestHex    string
	gate         *gate
	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns a Server for opts.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{opts: opts, gate: newGate(opts.QueueDepth)}
	s.digest = agentapi.ConfigDigest(opts.Config)
	s.digestHex = hex.EncodeToString(s.digest[:])
	return s
}

// route dispatches on the exact path: no cleaning or redirects (a 301/307
// from a mux would not be a JSON error), anything else is 404 not_found.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case agentapi.PathAttestation:
		s.handleAttestation(w, r)
	case agentapi.PathStatus:
		s.handleStatus(w, r)
	case agentapi.PathShutdown:
		s.handleShutdown(w, r)
	default:
		writeError(w, http.StatusNotFound, agentapi.CodeNotFound, fmt.Sprintf("no such endpoint %q", r.URL.Path))
	}
}

// ConfigDigest is the hex digest of the applied config.
func (s *Server) ConfigDigest() string { return s.digestHex }

// Handler is the HTTP handler (without the connection limits of Serve).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		s.route(w, r)
	})
}

// Serve serves on l until ctx is done (then it stops accepting, gives open
// requests two seconds and closes l) or l fails. It returns nil after a
// ctx-driven stop.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ll := newLimitListener(l, s.opts.MaxConns, 64, 2*time.Second)
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		// net/http allows 4 KiB on top of MaxHeaderBytes.
		MaxHeaderBytes: max(s.opts.MaxHeaderBytes-4096, 1024),
		ErrorLog:       nil,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	hs.ErrorLog = newStdLogger(s.opts.Logf)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ll) }()
	select {
	case err := <-done:
		return fmt.Errorf("agent: serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
		<-done
		return nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(agentapi.ErrorResponse{Error: agentapi.Error{Code: agentapi.CodeDeviceError, Message: "encoding response: " + err.Error()}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, agentapi.ErrorResponse{Error: agentapi.Error{Code: code, Message: msg}})
}

func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, agentapi.CodeMethodNotAllowed, fmt.Sprintf("%s wants %s, got %s", r.URL.Path, method, r.Method))
	return false
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

func (s *Server) handleAttestation(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	nonce, err := parseNonce(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, agentapi.CodeBadNonce, err.Error())
		return
	}
	rd, pre, err := agentapi.ReportData(nonce, s.digest)
	if err != nil {
		writeError(w, http.StatusBadRequest, agentapi.CodeBadNonce, err.Error())
		return
	}
	var q namedQuote
	var qerr error
	err = s.gate.do(r.Context(), func() {
		q.report, q.cert, qerr = s.opts.Quoter.Quote(rd)
		q.provider = s.opts.Quoter.Name()
	})
	switch {
	case errors.Is(err, errBusy):
		writeError(w, http.StatusTooManyRequests, agentapi.CodeBusy, "attestation queue full; retry later")
		return
	case err != nil: // the client went away while queued
		writeError(w, http.StatusServiceUnavailable, agentapi.CodeBusy, "request cancelled while queued: "+err.Error())
		return
	case errors.Is(qerr, ErrNoDevice):
		writeError(w, http.StatusServiceUnavailable, agentapi.CodeNoSNPDevice, qerr.Error())
		return
	case qerr != nil:
		s.opts.Logf("attestation failed: %v", qerr)
		writeError(w, http.StatusInternalServerError, agentapi.CodeDeviceError, qerr.Error())
		return
	}
	if len(q.report) != agentapi.ReportSize {
		writeError(w, http.StatusInternalServerError, agentapi.CodeDeviceError, fmt.Sprintf("device returned a %d-byte report, want %d", len(q.report), agentapi.ReportSize))
		return
	}
	// 0x50..0x90 is REPORT_DATA: a device that did not bind our bytes is broken.
	if string(q.report[0x50:0x90]) != string(rd[:]) {
		writeError(w, http.StatusInternalServerError, agentapi.CodeDeviceError, "device returned a report for different REPORT_DATA")
		return
	}
	writeJSON(w, http.StatusOK, agentapi.AttestationResponse{
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

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, agentapi.CodeBadRequest, "status takes no query parameters")
		return
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
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, agentapi.CodeBodyTooLarge, err.Error())
			return
		}
		writeError(w, http.StatusBadRequest, agentapi.CodeBadRequest, "reading body: "+err.Error())
		return
	}
	if s.opts.Shutdown == nil {
		writeError(w, http.StatusNotImplemented, agentapi.CodeShutdownUnavailable, "this init did not enable shutdown over the agent")
		return
	}
	s.shutdownOnce.Do(func() {
		s.opts.Logf("shutdown requested by %s", r.RemoteAddr)
		s.shutdownErr = s.opts.Shutdown()
	})
	if s.shutdownErr != nil {
		writeError(w, http.StatusServiceUnavailable, agentapi.CodeShuttingDown, s.shutdownErr.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, agentapi.ShutdownResponse{APIVersion: agentapi.APIVersion, State: "stopping"})
}

// stdLogWriter adapts Logf for http.Server.ErrorLog.
type stdLogWriter struct{ logf func(string, ...any) }

func (w stdLogWriter) Write(p []byte) (int, error) {
	w.logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

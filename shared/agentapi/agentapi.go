// Package agentapi is the contract between the guest attestation agent
// (guestinit) and the host verifier (hostbuild attest/verify): the JSON wire
// types of the agent's HTTP API, its stable error codes, the digest of the
// configuration the init applied, and the versioned REPORT_DATA derivation.
//
// REPORT_DATA binding (security-critical): the agent never asks the hardware to
// sign host-chosen bytes verbatim. It signs
//
//	REPORT_DATA = SHA-512(ReportDataTag || nonce || ConfigDigest(applied config))
//
// where ReportDataTag is a fixed-length, versioned domain tag, the nonce is the
// verifier's 32 to 64 random bytes and the config digest is a SHA-256. Both
// sides use ReportData from this package; TestReportDataVector pins it.
package agentapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// APIVersion is the version of the wire types below, returned in every
// successful response as "api_version".
const APIVersion = 1

// Default listen address and HTTP paths.
const (
	DefaultPort      = 1024
	PathAttestation  = "/v1/attestation"
	PathStatus       = "/v1/status"
	PathShutdown     = "/v1/shutdown"
	NonceQueryParam  = "nonce"
	MinNonceSize     = 32
	MaxNonceSize     = 64
	ReportSize       = 0x4A0 // raw SEV-SNP ATTESTATION_REPORT
	ReportDataSize   = 64
	ConfigDigestSize = sha256.Size
)

// ReportDataTag is the domain tag at the start of every REPORT_DATA preimage.
// Its length is fixed; a new derivation gets a new tag ("/v2"), never a
// reinterpretation of this one.
const ReportDataTag = "katana-snp/report-data/v1\x00"

// configDigestTag starts the canonical encoding hashed by ConfigDigest.
const configDigestTag = "katana-snp/applied-config/v1\x00"

// Errors returned by the derivation helpers.
var (
	ErrNonceSize   = fmt.Errorf("nonce must be %d to %d bytes", MinNonceSize, MaxNonceSize)
	ErrBadPreimage = errors.New("malformed REPORT_DATA preimage")
)

// AppliedConfig is what the init actually applied: the raw kernel command line
// bytes (exactly /proc/cmdline, never trimmed), Katana's parsed argv and the
// katana.* settings in effect (defaults included), by key. Its digest is bound
// into every report.
//
// Cmdline is []byte (base64 in JSON) so that any byte survives the trip. Argv
// and Settings are JSON strings: a value that is not valid UTF-8 would be
// altered by encoding/json and verification would then fail closed.
type AppliedConfig struct {
	Cmdline  []byte            `json:"cmdline"`
	Argv     []string          `json:"argv"`
	Settings map[string]string `json:"settings"`
}

// ConfigOf is the AppliedConfig of a parsed command line: what the agent
// binds into its reports, and what the verifier expects of the measured
// cmdline.
func ConfigOf(a bootcfg.Applied) AppliedConfig {
	return AppliedConfig{Cmdline: []byte(a.Cmdline), Argv: a.Args, Settings: a.Settings()}
}

// ConfigDigest is SHA-256 over a canonical, unambiguous encoding of c: the tag,
// then the cmdline, the argv count and each argument, the settings count and
// each key and value in bytewise key order; every string is prefixed by its
// length as a big-endian uint32 and every count is a big-endian uint32.
func ConfigDigest(c AppliedConfig) [ConfigDigestSize]byte {
	h := sha256.New()
	var n [4]byte
	putLen := func(l int) {
		binary.BigEndian.PutUint32(n[:], uint32(l))
		h.Write(n[:])
	}
	putBytes := func(b []byte) {
		putLen(len(b))
		h.Write(b)
	}
	h.Write([]byte(configDigestTag))
	putBytes(c.Cmdline)
	putLen(len(c.Argv))
	for _, a := range c.Argv {
		putBytes([]byte(a))
	}
	keys := make([]string, 0, len(c.Settings))
	for k := range c.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	putLen(len(keys))
	for _, k := range keys {
		putBytes([]byte(k))
		putBytes([]byte(c.Settings[k]))
	}
	var out [ConfigDigestSize]byte
	h.Sum(out[:0])
	return out
}

// CheckNonce reports ErrNonceSize unless nonce has an allowed length.
func CheckNonce(nonce []byte) error {
	if len(nonce) < MinNonceSize || len(nonce) > MaxNonceSize {
		return fmt.Errorf("%w, got %d", ErrNonceSize, len(nonce))
	}
	return nil
}

// ReportDataPreimage returns ReportDataTag || nonce || configDigest.
func ReportDataPreimage(nonce []byte, configDigest [ConfigDigestSize]byte) ([]byte, error) {
	if err := CheckNonce(nonce); err != nil {
		return nil, err
	}
	p := make([]byte, 0, len(ReportDataTag)+len(nonce)+ConfigDigestSize)
	p = append(p, ReportDataTag...)
	p = append(p, nonce...)
	p = append(p, configDigest[:]...)
	return p, nil
}

// ReportData derives the 64 bytes the agent asks the hardware to sign.
func ReportData(nonce []byte, configDigest [ConfigDigestSize]byte) ([ReportDataSize]byte, []byte, error) {
	p, err := ReportDataPreimage(nonce, configDigest)
	if err != nil {
		return [ReportDataSize]byte{}, nil, err
	}
	return sha512.Sum512(p), p, nil
}

// SplitPreimage checks a preimage's tag and nonce length and returns its nonce
// and config digest. It does not hash anything.
func SplitPreimage(p []byte) (nonce []byte, configDigest [ConfigDigestSize]byte, err error) {
	if !bytes.HasPrefix(p, []byte(ReportDataTag)) {
		return nil, configDigest, fmt.Errorf("%w: domain tag is not %q", ErrBadPreimage, ReportDataTag)
	}
	rest := p[len(ReportDataTag):]
	nlen := len(rest) - ConfigDigestSize
	if nlen < MinNonceSize || nlen > MaxNonceSize {
		return nil, configDigest, fmt.Errorf("%w: %d bytes after the tag, want %d to %d", ErrBadPreimage,
			len(rest), MinNonceSize+ConfigDigestSize, MaxNonceSize+ConfigDigestSize)
	}
	copy(configDigest[:], rest[nlen:])
	return slices.Clone(rest[:nlen]), configDigest, nil
}

// AttestationResponse is the body of a successful GET /v1/attestation.
type AttestationResponse struct {
	APIVersion int `json:"api_version"`
	// Provider names the quote path used: ProviderConfigfsTSM or ProviderSevGuest.
	Provider string `json:"provider"`
	// Nonce is the verifier's nonce, lowercase hex, echoed.
	Nonce string `json:"nonce"`
	// Report is the raw 1184-byte ATTESTATION_REPORT.
	Report []byte `json:"report"`
	// CertTable is the GUID certificate table the host provided to the guest
	// (SNP extended report / configfs auxblob), absent when there is none.
	CertTable []byte `json:"cert_table,omitempty"`
	// ReportDataPreimage is ReportDataTag || nonce || config digest.
	ReportDataPreimage []byte `json:"report_data_preimage"`
	// ReportData is SHA-512(ReportDataPreimage), lowercase hex.
	ReportData string `json:"report_data"`
	// Config is the applied configuration; ConfigDigest its digest (hex).
	Config       AppliedConfig `json:"config"`
	ConfigDigest string        `json:"config_digest"`
}

// Quote providers, as named in AttestationResponse.Provider.
const (
	ProviderConfigfsTSM = "configfs-tsm"
	ProviderSevGuest    = "sev-guest-ioctl"
)

// Katana's states, as sent in PayloadStatus.State.
const (
	PayloadNotStarted = "not_started" // the init has not started Katana (yet)
	PayloadRunning    = "running"
	PayloadRestarting = "restarting" // exited; waiting for the backoff before the next start
	PayloadStopping   = "stopping"   // a graceful stop was asked for and is under way
	PayloadExited     = "exited"     // exited for good: the init is powering off or rebooting
)

// Status is the body of GET /v1/status.
type Status struct {
	APIVersion   int           `json:"api_version"`
	InitVersion  string        `json:"init_version"`
	Stages       []Stage       `json:"stages"`
	Katana       PayloadStatus `json:"katana"`
	ConfigDigest string        `json:"config_digest"`
	Now          time.Time     `json:"now"`
}

// Stage is one boot stage the init reached, in order.
type Stage struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// PayloadStatus describes the supervised Katana process.
type PayloadStatus struct {
	// State is one of the Payload* values (free text for unknown future
	// states).
	State    string      `json:"state"`
	PID      int         `json:"pid,omitempty"`
	Restarts int         `json:"restarts"`
	LastExit *ExitStatus `json:"last_exit,omitempty"`
}

// ExitStatus is how a Katana process ended.
type ExitStatus struct {
	Code   int       `json:"code"`             // the exit status; 128+N when killed by signal N (as a shell reports it)
	Signal string    `json:"signal,omitempty"` // the signal's name when killed by one, e.g. "SIGTERM"
	At     time.Time `json:"at"`
}

// ShutdownResponse is the body of a successful POST /v1/shutdown (202).
type ShutdownResponse struct {
	APIVersion int    `json:"api_version"`
	State      string `json:"state"` // "stopping"
}

// ErrorResponse is the body of every error the agent writes itself.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is a stable machine-readable code plus a human reason.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Stable error codes: each status below has its own codes,
// and a code is never given with another status. Clients branch
// on these, never on Message.
//
// The agent answers every refusal with one of them, except where it closes
// the connection without an answer: a keep-alive connection idle past its
// timeout or evicted, between requests, for a new connection at the limit
// (as any HTTP server may close an idle connection); an excess connection
// when no connection is idle and every one of the agent's bounded set of
// rejecters is busy answering others; and a request whose handler
// panicked (logged on the guest's console with its stack).
const (
	CodeBadRequest              = "bad_request"                // 400: malformed request line, header, query or body
	CodeBadNonce                = "bad_nonce"                  // 400: missing, non-hex, or wrong length
	CodeBrowserRequest          = "browser_request"            // 403: a web browser's request (Origin or Sec-Fetch-Site header)
	CodeNotFound                = "not_found"                  // 404
	CodeMethodNotAllowed        = "method_not_allowed"         // 405
	CodeRequestTimeout          = "request_timeout"            // 408: client too slow sending its request
	CodeBodyTooLarge            = "body_too_large"             // 413
	CodeBusy                    = "busy"                       // 429: hardware queue full, retry later
	CodeTooManyConnections      = "too_many_connections"       // 429: connection limit reached and no connection idle; retry later
	CodeHeaderTooLarge          = "header_too_large"           // 431: request line + header over the limit (8 KiB by default)
	CodeClientClosed            = "client_closed"              // 499: a queued attestation cancelled because the client half-closed or closed its connection
	CodeDeviceError             = "device_error"               // 500: the SNP device failed the request
	CodeNotImplemented          = "not_implemented"            // 501: a request feature the agent does not implement (any Transfer-Encoding)
	CodeShutdownUnavailable     = "shutdown_unavailable"       // 501: the init did not enable shutdown
	CodeNoSNPDevice             = "no_snp_device"              // 503: neither configfs-tsm nor /dev/sev-guest
	CodeShuttingDown            = "shutting_down"              // 503: the guest is stopping: a shutdown is in progress, or a request still being read or queued when the agent stops
	CodeNotReady                = "not_ready"                  // 503: the init has not yet checked the initrd, or its boot failed
	CodeHTTPVersionNotSupported = "http_version_not_supported" // 505: a protocol other than HTTP/1.1 and HTTP/1.0
)

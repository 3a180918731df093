// Package attest fetches SEV-SNP evidence from the guest agent (vsock or TCP)
// and verifies it: the AMD certificate chain and report signature with
// go-sev-guest, the REPORT_DATA binding of the verifier's nonce and the
// applied configuration (shared/agentapi), the launch measurement against
// the manifest's matrix, the guest policy, VMPL, TCB and report version
// (and, when asked, the chip and the host's PLATFORM_INFO), and that the
// fields the host alone sets at launch (HOST_DATA, the ID block's) are
// unset.
// Every failure carries a Class with its own process exit code.
package attest

import (
	"errors"
	"fmt"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// Class is a failure class; each has a distinct exit code.
type Class int

// Failure classes. The numeric values are the exit codes of `hostbuild
// attest` and `hostbuild verify` (0 success, 1 other failure, 2 usage).
const (
	ClassTransport   Class = 3 // could not get evidence: dial, HTTP, agent error, malformed response
	ClassChain       Class = 4 // AMD certificate chain, report signature, malformed report, missing VCEK
	ClassReportData  Class = 5 // REPORT_DATA binding or nonce (mismatch, replay)
	ClassMeasurement Class = 6 // launch measurement not in the manifest
	ClassPolicy      Class = 7 // guest policy, VMPL, TCB, report version, chip, platform, HOST_DATA and ID block fields
)

func (c Class) String() string {
	switch c {
	case ClassTransport:
		return "transport"
	case ClassChain:
		return "chain"
	case ClassReportData:
		return "report_data"
	case ClassMeasurement:
		return "measurement"
	case ClassPolicy:
		return "policy"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ExitCode is the process exit code for c.
func (c Class) ExitCode() int { return int(c) }

// Error is a classified verification or transport failure.
type Error struct {
	Class Class
	Err   error
}

// Error is the failure's text with every unprintable rune escaped
// (printable.Escape): it can carry what the host chose, for example
// go-sev-guest puts a certificate's subject in its messages as it is, and
// it is printed on a terminal.
func (e *Error) Error() string { return e.Class.String() + ": " + printable.Escape(e.Err.Error()) }
func (e *Error) Unwrap() error { return e.Err }

func fail(c Class, format string, args ...any) error {
	return &Error{Class: c, Err: fmt.Errorf(format, args...)}
}

// ClassOf returns the class of err, or 0 when it is not classified.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return 0
}

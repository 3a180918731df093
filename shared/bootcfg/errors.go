package bootcfg

import (
	"errors"
	"fmt"
)

// Sentinel errors; every error from this package wraps exactly one of them
// (branch with errors.Is) and is an *Error naming the offending text.
var (
	ErrNUL             = errors.New("NUL byte in command line")
	ErrUnbalancedQuote = errors.New("unbalanced double quote")
	ErrUnknownKey      = errors.New("unknown katana.* key")
	ErrRepeatedKey     = errors.New("repeated katana.* key")
	ErrNoValue         = errors.New("katana.* key without =VALUE")
	ErrAfterDashes     = errors.New("katana.* key after \"--\" (the kernel passes it to the init's argv; move it before \"--\")")
	ErrBadValue        = errors.New("bad value")
	ErrArgs            = errors.New("bad katana.args")
	ErrUnformattable   = errors.New("cannot be expressed on a kernel command line")
	ErrHazard          = errors.New("kernel parameter that replaces or steers the init or opens the guest to the host")
	ErrEarlyOption     = errors.New("word the kernel's early command line parsers read as a kernel option")
)

// Error is a parse or format error: what is wrong (Err, a sentinel), the
// offending text and, when known, its byte offset in the command line (or
// in the katana.args value for ErrArgs, or in Text for an argument Format
// refuses for one of its bytes; -1 when unknown).
type Error struct {
	Err    error
	Text   string
	Offset int
	Detail string // optional explanation, e.g. the expected grammar
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("cmdline: %v: %q", e.Err, e.Text)
	if e.Offset >= 0 {
		msg += fmt.Sprintf(" at byte %d", e.Offset)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

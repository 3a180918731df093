package bootcfg

import (
	"bytes"
	"strings"
)

// Param is one parameter of the command line as the kernel splits it.
type Param struct {
	Raw      string // the parameter as written, quotes included
	Key      string // the kernel's param
	Value    string // the kernel's val, quotes removed
	HasValue bool   // the parameter has an "=" (the kernel's val != NULL)
	Offset   int    // byte offset of Raw in the command line
}

// isKernelSpace is the kernel's isspace() (lib/ctype.c): the ASCII
// whitespace and 0xA0, which the kernel's Latin-1 table marks as space.
func isKernelSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
		return true
	}
	return false
}

// SplitKernel splits a command line into parameters exactly like the
// kernel's parse_args() loop over next_arg(). It stops at a "--" parameter
// and returns what follows, up to a second "--", as init arguments (nil
// when there is no "--"): the kernel's second parse_args(), which gives
// the init its arguments, stops there too, and ignores the rest. An
// unbalanced double quote or a NUL byte anywhere is an error (the kernel
// would take the rest of the line as one parameter).
//
// initArgs is not the init's whole argv, and not always part of it
// (init/main.c start_kernel): the kernel first hands PID 1 every
// parameter before "--" that it does not know itself, those without "="
// or "." to argv (before initArgs) and those with "=" and no "." in the
// name to the environment; and when a parameter it knows has a bad value
// before "--", parse_args() returns an error instead of the rest of the
// line and the kernel skips the init-argument pass: PID 1 gets none of
// initArgs.
func SplitKernel(cmdline string) (params, initArgs []Param, err error) {
	params, initArgs, _, err = splitKernel(cmdline)
	return params, initArgs, err
}

// splitKernel is SplitKernel that also returns the parameters after a
// second "--", which the kernel ignores.
func splitKernel(cmdline string) (params, initArgs, ignored []Param, err error) {
	if i := strings.IndexByte(cmdline, 0); i >= 0 {
		return nil, nil, nil, &Error{Err: ErrNUL, Text: cmdline, Offset: i}
	}
	pos := skipSpaces(cmdline, 0)
	dashes := 0
	for pos < len(cmdline) {
		p, next, err := nextArg(cmdline, pos)
		if err != nil {
			return nil, nil, nil, err
		}
		pos = next
		if dashes < 2 && !p.HasValue && p.Key == "--" {
			dashes++
			if dashes == 1 {
				initArgs = []Param{}
			}
			continue
		}
		switch dashes {
		case 0:
			params = append(params, p)
		case 1:
			initArgs = append(initArgs, p)
		default:
			ignored = append(ignored, p)
		}
	}
	return params, initArgs, ignored, nil
}

func skipSpaces(s string, i int) int {
	for i < len(s) && isKernelSpace(s[i]) {
		i++
	}
	return i
}

// nextArg mirrors lib/cmdline.c next_arg() on s[start:], including its
// quirks: an "=" at the very first byte of the parameter is not the
// separator, and the trailing-quote removal writes NULs that end the
// strings early.
func nextArg(s string, start int) (Param, int, error) {
	args := start
	inQuote, quoted := false, false
	if s[args] == '"' {
		args++
		inQuote, quoted = true, true
	}
	i, equals := 0, 0
	for ; args+i < len(s); i++ {
		c := s[args+i]
		if isKernelSpace(c) && !inQuote {
			break
		}
		if equals == 0 && c == '=' {
			equals = i
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	end := args + i
	if inQuote {
		return Param{}, 0, &Error{Err: ErrUnbalancedQuote, Text: s[start:end], Offset: start}
	}
	// buf is the kernel's args[0:i]; a 0 byte marks where the C strings end.
	buf := []byte(s[args:end])
	p := Param{Raw: s[start:end], Offset: start}
	valStart := -1
	if equals != 0 {
		buf[equals] = 0
		valStart = equals + 1
		if valStart < len(buf) && buf[valStart] == '"' {
			valStart++
			if buf[i-1] == '"' {
				buf[i-1] = 0
			}
		}
	}
	if quoted && i > 0 && buf[i-1] == '"' {
		buf[i-1] = 0
	}
	p.Key = cstring(buf)
	if valStart >= 0 {
		p.HasValue = true
		if valStart < len(buf) {
			p.Value = cstring(buf[valStart:])
		}
	}
	next := end
	if next < len(s) {
		next++ // the kernel overwrites the separator and steps over it
	}
	return p, skipSpaces(s, next), nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// FromProc turns the contents of /proc/cmdline into the command line the
// boot loader passed: the kernel appends one newline, which is removed.
func FromProc(b []byte) string {
	return strings.TrimSuffix(string(b), "\n")
}

// Package printable makes text that others chose safe to print on a
// terminal: raw, a terminal runs its control sequences, which can erase a
// line ("attestation FAILED", a file name in a listing) and print another
// in its place, and a right-to-left override can reorder what is shown.
package printable

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Is reports whether s is valid UTF-8 and every rune of it is printable
// (Unicode letters, marks, numbers, punctuation, symbols and the ASCII
// space): no C0 or C1 control, DEL, format character such as the
// right-to-left override, or byte that is not UTF-8.
func Is(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// Quote returns s as it is when Is(s), and otherwise Go-quoted: for a
// field that is all someone else's (an agent's provider name, a status
// line).
func Quote(s string) string {
	if Is(s) {
		return s
	}
	return strconv.Quote(s)
}

// QuoteAll returns names with each Quote'd: someone else's names in a
// list.
func QuoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = Quote(n)
	}
	return out
}

// Escape returns s with each rune that Quote would quote it for written
// as its Go escape (\x1b, \u009b, \xff) and the rest left as it is: for
// text that mixes ours with someone else's (an error message naming a
// certificate's subject, a listing of file names), where quoting the
// whole would hide which part is which.
func Escape(s string) string { return escape(s, unicode.IsPrint) }

// escape writes each rune of s that keep refuses as its Go escape.
func escape(s string, keep func(rune) bool) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !keep(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keep(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// NewWriter returns a writer that passes what it is given to w with each
// unprintable rune but newline and tab escaped, as Escape does: for a
// stream of lines that carry someone else's text (a guest's console).
// Each Write is taken as whole runes.
func NewWriter(w io.Writer) io.Writer { return writer{w} }

type writer struct{ w io.Writer }

func (e writer) Write(p []byte) (int, error) {
	s := escape(string(p), func(r rune) bool { return r == '\n' || r == '\t' || unicode.IsPrint(r) })
	if _, err := io.WriteString(e.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// JSON rewrites, in encoded JSON, every control rune encoding/json leaves
// as it is (C1: U+0080-U+009F, which terminals read as CSI and friends)
// and every format rune (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width ones)
// as a \uXXXX escape (a surrogate pair above U+FFFF): the value decodes
// the same, and a terminal shows the escape. Outside strings JSON holds
// only ASCII, so every such rune is in a string.
func JSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r < utf8.RuneSelf || !(unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	return out
}

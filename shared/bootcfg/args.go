package bootcfg

import (
	"fmt"
	"strings"
)

// isArgSpace reports the bytes that separate katana.args words: ASCII
// whitespace (0xA0 is not one, so UTF-8 text stays intact).
func isArgSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// SplitArgs splits a katana.args value into words: whitespace separates
// words, single quotes group bytes literally (no escapes inside), a
// backslash outside single quotes takes the next byte literally. There is
// never any expansion. An unbalanced single quote or a trailing backslash
// is an error wrapping ErrArgs. An empty or all-space value gives nil.
func SplitArgs(s string) ([]string, error) {
	var (
		out    []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, &Error{Err: ErrArgs, Text: s[i:], Offset: i, Detail: "unbalanced single quote"}
			}
			word.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '\\':
			if i+1 == len(s) {
				return nil, &Error{Err: ErrArgs, Text: s[i:], Offset: i, Detail: "trailing backslash"}
			}
			word.WriteByte(s[i+1])
			inWord = true
			i++
		case isArgSpace(c):
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, word.String())
	}
	return out, nil
}

// QuoteArgs is the inverse of SplitArgs: SplitArgs(QuoteArgs(a)) == a.
// Words made only of bytes that need no quoting are written bare; others
// are put in single quotes, with a single quote written as \'. The result
// is deterministic. A NUL byte cannot be on a command line: error.
func QuoteArgs(args []string) (string, error) {
	var b strings.Builder
	for i, a := range args {
		if j := strings.IndexByte(a, 0); j >= 0 {
			return "", &Error{Err: ErrUnformattable, Text: a, Offset: j, Detail: fmt.Sprintf("NUL byte in argument %d", i+1)}
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		quoteWord(&b, a)
	}
	return b.String(), nil
}

func needsArgQuote(a string) bool {
	if a == "" {
		return true
	}
	for i := 0; i < len(a); i++ {
		if isArgSpace(a[i]) || a[i] == '\'' || a[i] == '\\' {
			return true
		}
	}
	return false
}

func quoteWord(b *strings.Builder, a string) {
	if !needsArgQuote(a) {
		b.WriteString(a)
		return
	}
	// 'abc'\''def': close, escaped quote, reopen; drop empty '' pieces
	// except for the empty word itself.
	parts := strings.Split(a, "'")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(`\'`)
		}
		if p != "" || len(parts) == 1 {
			b.WriteByte('\'')
			b.WriteString(p)
			b.WriteByte('\'')
		}
	}
}

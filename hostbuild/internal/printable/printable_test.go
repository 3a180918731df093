package printable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Quote leaves ordinary text alone and quotes anything with a control
// character (C0, DEL or C1) or another unprintable rune.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"sev-guest-ioctl":       "sev-guest-ioctl",
		"503 Service Available": "503 Service Available",
		"é ü 漢":                 "é ü 漢",
		"a\x1b[2Kb":             `"a\x1b[2Kb"`,
		"a\rb":                  `"a\rb"`,
		"a\x7fb":                `"a\x7fb"`,
		"a\u009bb":              `"a\u009bb"`,
		"a\u202eb":              `"a\u202eb"`, // right-to-left override
		"a\xffb":                `"a\xffb"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// Escape escapes each unprintable rune in place and leaves the rest.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"common name SEV-VCEK not expected": "common name SEV-VCEK not expected",
		"é ü 漢 \\x1b":                       "é ü 漢 \\x1b",
		"CN SEV-VCEK\x1b[1A\x1b[2K\rattestation OK": `CN SEV-VCEK\x1b[1A\x1b[2K\rattestation OK`,
		"a\x7fb\tc\nd":    `a\x7fb\tc\nd`,
		"a\u009bb\u202ec": `a\u009bb\u202ec`,
		"a\xffb\xc3":      `a\xffb\xc3`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %s, want %s", in, got, want)
		}
		if got := Escape(in); !Is(got) {
			t.Errorf("Escape(%q) = %q is not printable", in, got)
		}
	}
}

// Whatever the bytes, Quote and Escape give printable text.
func FuzzEscape(f *testing.F) {
	f.Add("a\x1b[2Kb\u009b\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if q := Quote(s); !Is(q) {
			t.Errorf("Quote(%q) = %q", s, q)
		}
		if e := Escape(s); !Is(e) {
			t.Errorf("Escape(%q) = %q", s, e)
		}
	})
}

// NewWriter keeps lines and tabs and escapes the rest as Escape does.
func TestWriter(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	n, err := fmt.Fprintf(w, "console| %s\n\tlast\x1b]0;PWNED\x07\x1b[2J \u009b\xff\n", "katana")
	if want := `console| katana` + "\n\t" + `last\x1b]0;PWNED\a\x1b[2J \u009b\xff` + "\n"; err != nil || b.String() != want {
		t.Errorf("wrote %q (%v), want %q", b.String(), err, want)
	}
	if n != len("console| katana\n\tlast\x1b]0;PWNED\x07\x1b[2J \u009b\xff\n") {
		t.Errorf("Write returned %d, want the length given", n)
	}
}

// JSON escapes the C1 controls and format runes encoding/json leaves raw,
// and the document decodes to the same value.
func TestJSON(t *testing.T) {
	v := map[string]string{"name": "x\u009b2J\u202egnp.exe\u200b\U000E0001 é ok"}
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(enc)
	if want := `{"name":"x\u009b2J\u202egnp.exe\u200b\udb40\udc01 é ok"}`; string(got) != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["name"] != v["name"] {
		t.Errorf("decodes to %q, %v; want %q", back["name"], err, v["name"])
	}
}

// QuoteAll is Quote on each name, in order, and leaves its input alone.
func TestQuoteAll(t *testing.T) {
	in := []string{"virtio", "ev\x1b[2K", "", "\u202e", "a b"}
	want := []string{"virtio", `"ev\x1b[2K"`, "", `"\u202e"`, "a b"}
	orig := slices.Clone(in)
	if got := QuoteAll(in); !slices.Equal(got, want) {
		t.Errorf("QuoteAll(%q) = %q, want %q", in, got, want)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("QuoteAll changed its input: %q", in)
	}
	if got := QuoteAll(nil); len(got) != 0 {
		t.Errorf("QuoteAll(nil) = %q", got)
	}
}

// A literal U+FFFD is a printable character and is kept whole; only a byte
// that is not UTF-8 is written as \xNN (fails for: printable.go:61
// `r == utf8.RuneError && n == 1` -> `r == utf8.RuneError`, which turns
// the three bytes of U+FFFD into "\xef" and drops the other two).
func TestEscapeKeepsReplacementChar(t *testing.T) {
	if got, want := Escape("a\ufffd\x1b\xff"), "a\ufffd"+`\x1b\xff`; got != want {
		t.Errorf("Escape = %q, want %q", got, want)
	}
}

type failingWriter struct{}

var errConsole = errors.New("console gone")

func (failingWriter) Write([]byte) (int, error) { return 0, errConsole }

// NewWriter's Write passes the underlying writer's error on (fails for:
// printable.go:85 `return 0, err` -> `return len(p), nil`): a copy of a
// guest's console into a closed pipe must stop, not spin.
func TestWriterPassesError(t *testing.T) {
	n, err := NewWriter(failingWriter{}).Write([]byte("x\x1b"))
	if !errors.Is(err, errConsole) || n != 0 {
		t.Errorf("Write = %d, %v; want 0, %v", n, err, errConsole)
	}
}

// JSON leaves ASCII alone, also the newlines and indentation outside
// strings that inspect --json and diff --json print (fails for: printable.go:100
// without `r < utf8.RuneSelf || `, which escapes them into invalid JSON).
func TestJSONIndented(t *testing.T) {
	enc, err := json.MarshalIndent(map[string]string{"name": "a\u009bb"}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(enc)
	if want := "{\n\t\"name\": \"a\\u009bb\"\n}"; string(got) != want {
		t.Errorf("JSON = %q, want %q", got, want)
	}
	if !json.Valid(got) {
		t.Errorf("JSON gave invalid JSON: %s", got)
	}
}

// U+0080, the first C1 control (two bytes in UTF-8), is escaped like the
// rest (fails for: printable.go:100 `r < utf8.RuneSelf` -> `r <= utf8.RuneSelf`).
func TestJSONFirstC1(t *testing.T) {
	enc, err := json.Marshal("a\u0080b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := JSON(enc), []byte(`"a\u0080b"`); !bytes.Equal(got, want) {
		t.Errorf("JSON = %q, want %q", got, want)
	}
}

package printable

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// A literal U+FFFD is a printable character and is kept whole; only a byte
// that is not UTF-8 is written as \xNN (mutant: printable.go:61
// `r == utf8.RuneError && n == 1` -> `r == utf8.RuneError`, which turns
// the three bytes of U+FFFD into "\xef" and drops the other two).
func TestGapEscapeKeepsReplacementChar(t *testing.T) {
	if got, want := Escape("a\ufffd\x1b\xff"), "a\ufffd"+`\x1b\xff`; got != want {
		t.Errorf("Escape = %q, want %q", got, want)
	}
}

type failingWriter struct{}

var errConsole = errors.New("console gone")

func (failingWriter) Write([]byte) (int, error) { return 0, errConsole }

// NewWriter's Write passes the underlying writer's error on (mutant:
// printable.go:85 `return 0, err` -> `return len(p), nil`): a copy of a
// guest's console into a closed pipe must stop, not spin.
func TestGapWriterPassesError(t *testing.T) {
	n, err := NewWriter(failingWriter{}).Write([]byte("x\x1b"))
	if !errors.Is(err, errConsole) || n != 0 {
		t.Errorf("Write = %d, %v; want 0, %v", n, err, errConsole)
	}
}

// JSON leaves ASCII alone, also the newlines and indentation outside
// strings that inspect --json and diff --json print (mutant: printable.go:100
// without `r < utf8.RuneSelf || `, which escapes them into invalid JSON).
func TestGapJSONIndented(t *testing.T) {
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
// rest (mutant: printable.go:100 `r < utf8.RuneSelf` -> `r <= utf8.RuneSelf`).
func TestGapJSONFirstC1(t *testing.T) {
	enc, err := json.Marshal("a\u0080b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := JSON(enc), []byte(`"a\u0080b"`); !bytes.Equal(got, want) {
		t.Errorf("JSON = %q, want %q", got, want)
	}
}

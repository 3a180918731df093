package bootcfg

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The guest reads its settings as Parse(FromProc(/proc/cmdline)): the
// kernel's copy of the line with one newline after it. Whatever that file
// holds, the line parses as the boot loader's line would, and a refusal
// is an *Error whose offset lies in the line and whose text is the
// line's own bytes.
func FuzzParseProcCmdline(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0 panic=-1 " + `katana.args="--http.addr 0.0.0.0 --dev" katana.net=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3 katana.agent=vsock:1024 initrd=initrd`,
		`katana.env="RUST_LOG=info 'A=a b'" katana.on_exit=restart katana.stop_timeout=1m -- x`,
		`katana.args="unbalanced`, "katana.net=dhcp", "katana.agent=tcp:0.0.0.0:99999", "katana.bogus=1",
		`katana.args="--name nokaslr"`, "a\x00b", "",
	} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		line := FromProc(raw)
		if s := string(raw); strings.HasSuffix(s, "\n") && line != s[:len(s)-1] || !strings.HasSuffix(s, "\n") && line != s {
			t.Fatalf("FromProc(%q) = %q", raw, line)
		}
		c, err := Parse(line)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q): %v is not an *Error", line, err)
			}
			if e.Offset > len(line) || !strings.Contains(line, e.Text) {
				t.Fatalf("Parse(%q): %v: %q at byte %d is not the line's text", line, err, e.Text, e.Offset)
			}
			return
		}
		again, err := Parse(FromProc(append([]byte(line), '\n')))
		if err != nil {
			t.Fatalf("the same line read again: %v", err)
		}
		if diff := cmp.Diff(c, again, append(cmpConfig, cmpopts.EquateEmpty())...); diff != "" {
			t.Fatalf("%q parsed twice differs:\n%s", line, diff)
		}
	})
}

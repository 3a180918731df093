package bootcfg

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// kv is the kernel's view of one parameter, for compact tables.
type kv struct {
	Key, Value string
	HasValue   bool
}

func views(ps []Param) []kv {
	var out []kv
	for _, p := range ps {
		out = append(out, kv{p.Key, p.Value, p.HasValue})
	}
	return out
}

// The kernel-rule table: the [tested] cases of research/go-libraries.md 1.2
// plus the corners of lib/cmdline.c next_arg().
func TestSplitKernel(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		params   []kv
		initArgs []kv // nil: no "--"
		err      error
	}{
		{name: "empty", in: ""},
		{name: "spaces only", in: " \t\n "},
		{name: "plain", in: "console=ttyS0 panic=-1 quiet",
			params: []kv{{"console", "ttyS0", true}, {"panic", "-1", true}, {"quiet", "", false}}},
		{name: "quoted value", in: `katana.args="--http.addr 0.0.0.0 --dev"`,
			params: []kv{{"katana.args", "--http.addr 0.0.0.0 --dev", true}}},
		{name: "backslashes are not escapes", in: `k="a \"b\" c"`,
			params: []kv{{"k", `a \"b\" c`, true}}},
		{name: "apostrophe does not quote", in: `katana.args=it's b=2`,
			params: []kv{{"katana.args", "it's", true}, {"b", "2", true}}},
		{name: "unterminated value quote", in: `katana.args="unterminated b=2`, err: ErrUnbalancedQuote},
		{name: "whole param quoted", in: `"k=a b" c=1`,
			params: []kv{{"k", "a b", true}, {"c", "1", true}}},
		{name: "guillemets are not quotes", in: `k=«x y» z=1`,
			params: []kv{{"k", "«x", true}, {"y»", "", false}, {"z", "1", true}}},
		{name: "lone quote value", in: `k="`, err: ErrUnbalancedQuote},
		{name: "dashes end kernel params", in: `k=a=b=c -- initarg1`,
			params: []kv{{"k", "a=b=c", true}}, initArgs: []kv{{"initarg1", "", false}}},
		{name: "dashes at end", in: `a --`, params: []kv{{"a", "", false}}, initArgs: []kv{}},
		{name: "second dashes end the init args", in: `-- a -- x`, initArgs: []kv{{"a", "", false}}},
		{name: "second dashes at once", in: `k=1 -- -- x`, params: []kv{{"k", "1", true}}, initArgs: []kv{}},
		{name: "dashes with value are a param", in: `--=1 x`, params: []kv{{"--", "1", true}, {"x", "", false}}},
		{name: "quoted dashes end too", in: `"--" x`, initArgs: []kv{{"x", "", false}}},
		{name: "init args are split by kernel rules", in: `-- "a b" c="d e"`,
			initArgs: []kv{{"a b", "", false}, {"c", "d e", true}}},
		{name: "empty value", in: `k= j`, params: []kv{{"k", "", true}, {"j", "", false}}},
		{name: "empty quoted value", in: `k=""`, params: []kv{{"k", "", true}}},
		{name: "empty quotes param", in: `"" x`, params: []kv{{"", "", false}, {"x", "", false}}},
		{name: "quote inside value groups", in: `k=a"b c"d e`,
			params: []kv{{"k", `a"b c"d`, true}, {"e", "", false}}},
		{name: "value quote only strips when last", in: `k="a b"c`,
			params: []kv{{"k", `a b"c`, true}}},
		{name: "leading equals is not the separator", in: `=a=b`, params: []kv{{"=a", "b", true}}},
		{name: "quoted whole param without value", in: `"a b"`, params: []kv{{"a b", "", false}}},
		{name: "quote closed by a value quote", in: `"k="v w""`, params: []kv{{"k", "v", true}, {`w""`, "", false}}},
		{name: "all kernel whitespace", in: "a\tb\nc\vd\fe\rf", params: []kv{
			{"a", "", false}, {"b", "", false}, {"c", "", false}, {"d", "", false}, {"e", "", false}, {"f", "", false}}},
		{name: "0xA0 separates (NBSP splits)", in: "k=a\u00a0b", params: []kv{{"k", "a\xc2", true}, {"b", "", false}}},
		{name: "0xA0 inside quotes", in: "k=\"a\u00a0b\"", params: []kv{{"k", "a\u00a0b", true}}},
		{name: "NUL", in: "a\x00b", err: ErrNUL},
		{name: "NUL first", in: "\x00 a", err: ErrNUL},
		{name: "unbalanced in init args", in: `-- "x`, err: ErrUnbalancedQuote},
		{name: "unbalanced mid param", in: `a=b"c d`, err: ErrUnbalancedQuote},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, ia, err := SplitKernel(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("SplitKernel(%q) error = %v, want %v", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitKernel(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.params, views(ps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			if (tc.initArgs == nil) != (ia == nil) {
				t.Errorf("init args presence: want %v, got %v", tc.initArgs != nil, ia != nil)
			}
			if diff := cmp.Diff(tc.initArgs, views(ia), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("init args (-want +got):\n%s", diff)
			}
			// Raw text and offsets point back into the input.
			for _, p := range append(ps, ia...) {
				if tc.in[p.Offset:p.Offset+len(p.Raw)] != p.Raw {
					t.Errorf("param %q: offset %d does not locate it", p.Raw, p.Offset)
				}
			}
		})
	}
}

func TestFromProc(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyS0\n":   "console=ttyS0",
		"console=ttyS0 \n":  "console=ttyS0 ",
		"a\n\n":             "a\n",
		"":                  "",
		"no newline at all": "no newline at all",
	} {
		if got := FromProc([]byte(in)); got != want {
			t.Errorf("FromProc(%q) = %q, want %q", in, got, want)
		}
	}
}

// refSpace is lib/ctype.c's _ctype table reduced to its _S (white space)
// bit, row for row as the kernel writes it, for refParse's isspace(): its
// own copy, not the implementation's isKernelSpace.
var refSpace = [256]byte{
	0, 0, 0, 0, 0, 0, 0, 0, /* 0-7 */
	0, 1, 1, 1, 1, 1, 0, 0, /* 8-15: _C|_S for \t \n \v \f \r */
	0, 0, 0, 0, 0, 0, 0, 0, /* 16-23 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 24-31 */
	1, 0, 0, 0, 0, 0, 0, 0, /* 32-39: _S|_SP for ' ' */
	0, 0, 0, 0, 0, 0, 0, 0, /* 40-47 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 48-55 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 56-63 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 64-71 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 72-79 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 80-87 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 88-95 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 96-103 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 104-111 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 112-119 */
	0, 0, 0, 0, 0, 0, 0, 0, /* 120-127 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 128-143 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 144-159 */
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 160-175: _S|_SP for 0xA0 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 176-191 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 192-207 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 208-223 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 224-239 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 240-255 */
}

// TestKernelSpace: the implementation's isKernelSpace agrees with the
// kernel's table for every byte.
func TestKernelSpace(t *testing.T) {
	for b := 0; b < 256; b++ {
		if isKernelSpace(byte(b)) != (refSpace[b] == 1) {
			t.Errorf("isKernelSpace(0x%02X) = %v, lib/ctype.c says %v", b, isKernelSpace(byte(b)), refSpace[b] == 1)
		}
	}
}

// refParse is a literal transliteration of the kernel's parse_args() and
// next_arg() working in place on a NUL-terminated buffer, used as the
// oracle for SplitKernel (which works on slices and offsets).
func refParse(cmdline string) (params, initArgs []kv, unbalanced bool) {
	buf := append([]byte(cmdline), 0)
	cstr := func(i int) string {
		j := i
		for buf[j] != 0 {
			j++
		}
		return string(buf[i:j])
	}
	isspace := func(b byte) bool { return refSpace[b] == 1 }
	skip := func(i int) int {
		for isspace(buf[i]) {
			i++
		}
		return i
	}
	args := skip(0)
	after, ignoring := false, false
	for buf[args] != 0 {
		// next_arg
		inQuote, quoted := false, false
		if buf[args] == '"' {
			args++
			inQuote, quoted = true, true
		}
		i, equals := 0, 0
		for ; buf[args+i] != 0; i++ {
			if isspace(buf[args+i]) && !inQuote {
				break
			}
			if equals == 0 && buf[args+i] == '=' {
				equals = i
			}
			if buf[args+i] == '"' {
				inQuote = !inQuote
			}
		}
		if inQuote {
			unbalanced = true
		}
		param := args
		val := -1
		if equals != 0 {
			buf[args+equals] = 0
			val = args + equals + 1
			if buf[val] == '"' {
				val++
				if buf[args+i-1] == '"' {
					buf[args+i-1] = 0
				}
			}
		}
		if quoted && i > 0 && buf[args+i-1] == '"' {
			buf[args+i-1] = 0
		}
		if buf[args+i] != 0 {
			buf[args+i] = 0
			args += i + 1
		} else {
			args += i
		}
		args = skip(args)
		p := kv{Key: cstr(param)}
		if val >= 0 {
			p.HasValue, p.Value = true, cstr(val)
		}
		if !p.HasValue && p.Key == "--" {
			if after {
				// The kernel's second parse_args ("Setting init
				// args") stops here; the quotes of the rest are
				// still checked, as SplitKernel does.
				ignoring = true
				continue
			}
			after = true
			initArgs = []kv{}
			continue
		}
		if ignoring {
			continue
		}
		if after {
			initArgs = append(initArgs, p)
		} else {
			params = append(params, p)
		}
	}
	return params, initArgs, unbalanced
}

func FuzzSplitKernel(f *testing.F) {
	for _, s := range []string{`katana.args="--http.addr 0.0.0.0 --dev"`, `k="a \"b\" c"`, `"k=a b" c=1`,
		`k=a=b=c -- initarg1`, `=a=b`, `"k="v w""`, `k="`, `""`, "k=a\u00a0b", `"--" x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, ia, err := SplitKernel(s)
		wantP, wantIA, unbalanced := refParse(stringsCut0(s))
		switch {
		case errors.Is(err, ErrNUL):
			return
		case errors.Is(err, ErrUnbalancedQuote):
			if !unbalanced {
				t.Fatalf("SplitKernel(%q): unbalanced quote, the kernel transliteration saw none", s)
			}
			return
		case err != nil:
			t.Fatalf("SplitKernel(%q): unexpected error %v", s, err)
		}
		if unbalanced {
			t.Fatalf("SplitKernel(%q) accepted an unbalanced quote", s)
		}
		if diff := cmp.Diff(wantP, views(ps), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("SplitKernel(%q) params differ from the kernel (-kernel +got):\n%s", s, diff)
		}
		if diff := cmp.Diff(wantIA, views(ia), cmpopts.EquateEmpty()); diff != "" || (wantIA == nil) != (ia == nil) {
			t.Fatalf("SplitKernel(%q) init args differ from the kernel (-kernel +got):\n%s", s, diff)
		}
	})
}

func stringsCut0(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i]
		}
	}
	return s
}

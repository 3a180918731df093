package bootcfg

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// linuxEarly is the test's own list of the options Linux 6.1 or 6.12
// x86_64 reads with a parser that ignores quotes and "--" (see
// earlyOptions for where each is read): the words
// cmdline_find_option_bool matches whole, the cmdline_find_option names
// (a word starting with name "="), the EFI stub's strstr names (after
// whitespace) and crashkernel (anywhere). 6.12 added nousershstk, fred and
// microcode.amd_sha_check (6.12's mem_encrypt=on and mem_encrypt=off are
// words mem_encrypt covers).
var linuxEarly = struct {
	bools, values, efiStub, anywhere []string
}{
	bools: []string{"nokaslr", "no5lvl", "nopti", "dis_ucode_ldr", "nospectre_v2", "nospec_store_bypass_disable",
		"noxsave", "noxsaveopt", "noxsaves", "nousershstk"},
	values: []string{"acpi_rsdp", "acpi", "earlyprintk", "console", "mem_encrypt", "pti", "split_lock_detect", "tsx",
		"spectre_v2_user", "spectre_v2", "spec_store_bypass_disable", "clearcpuid", "fred", "microcode.amd_sha_check"},
	efiStub:  []string{"mem", "memmap", "efi_fake_mem", "hugepages"},
	anywhere: []string{"crashkernel"},
}

func TestEarlyOptionsList(t *testing.T) {
	var want, got []string
	for _, n := range linuxEarly.bools {
		want = append(want, "word "+n)
	}
	for _, n := range linuxEarly.values {
		want = append(want, "word "+n+"=")
	}
	for _, n := range linuxEarly.efiStub {
		want = append(want, "efi "+n+"=")
	}
	for _, n := range linuxEarly.anywhere {
		want = append(want, "any "+n+"=")
	}
	for _, o := range earlyOptions {
		got = append(got, map[earlyScan]string{scanX86Word: "word ", scanEFIStub: "efi ", scanAnywhere: "any "}[o.scan]+o.name)
		if o.source == "" {
			t.Errorf("option %q: no source", o.name)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("early options (-want +got):\n%s", diff)
	}
}

// earlyWord is a word an early parser takes as the option.
func earlyWords() (words []string) {
	for _, n := range linuxEarly.bools {
		words = append(words, n)
	}
	for _, l := range [][]string{linuxEarly.values, linuxEarly.efiStub, linuxEarly.anywhere} {
		for _, n := range l {
			words = append(words, n+"=off")
		}
	}
	return words
}

// TestEveryEarlyOption: each option is refused where the early parser
// reads it but next_arg() does not (inside katana.args, after "--"), and
// allowed as a kernel parameter of its own.
func TestEveryEarlyOption(t *testing.T) {
	for _, w := range earlyWords() {
		t.Run(w, func(t *testing.T) {
			for _, line := range []string{
				`console=ttyS0 katana.args="--name ` + w + ` --dev"`,
				`console=ttyS0 -- ` + w,
				`x="a ` + w + ` b"`,
			} {
				_, err := Parse(line)
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrEarlyOption) || e.Text != w || e.Offset != strings.Index(line, w) {
					t.Errorf("Parse(%q) = %v, want ErrEarlyOption naming %q at byte %d", line, err, w, strings.Index(line, w))
				}
			}
			c, err := Parse("console=ttyS0 " + w + " katana.args=--dev")
			if err != nil || !slices.Equal(c.KernelParams, []string{"console=ttyS0", w}) {
				t.Errorf("Parse with kernel parameter %q = %q, %v", w, c.KernelParams, err)
			}
			for _, c := range []Config{
				withDefaults(func(c *Config) { c.Args = []string{"--name", w, "--dev"} }),
				withDefaults(func(c *Config) { c.InitArgs = []string{w} }),
				withDefaults(func(c *Config) { c.Env = []string{"A=1", w, "B=1"} }),
			} {
				if _, envErr := EnvName(w); c.Env != nil && envErr != nil {
					continue // not a NAME=VALUE word: katana.env would refuse it anyway
				}
				line, err := Format(c, []string{"console=ttyS0"})
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrEarlyOption) || e.Text != w {
					t.Errorf("Format(%+v) = %q, %v; want ErrEarlyOption naming %q", c, line, err, w)
				}
			}
			line, err := Format(withDefaults(func(c *Config) { c.Args = []string{"--dev"} }), []string{"console=ttyS0", w})
			if err != nil {
				t.Fatalf("Format with kernel parameter %q: %v", w, err)
			}
			if back, err := Parse(line); err != nil || !slices.Equal(back.KernelParams, []string{"console=ttyS0", w}) {
				t.Errorf("Parse(%q) = %q, %v", line, back.KernelParams, err)
			}
		})
	}
}

func TestParseEarlyOption(t *testing.T) {
	for _, tc := range []struct {
		in   string
		word string // "" for accepted
	}{
		{`console=ttyS0 katana.args="--name nokaslr --dev"`, "nokaslr"},
		{`katana.args="--tag spectre_v2=off x"`, "spectre_v2=off"},
		{`quiet -- nospectre_v2`, "nospectre_v2"},
		{`quiet -- a -- clearcpuid=smap`, "clearcpuid=smap"},
		{`foo="a nopti b"`, "nopti"},
		{`katana.env="A=1 mem=1G B=2"`, "mem=1G"},
		{"foo=a\x01nokaslr", "nokaslr"},         // 0x01 <= ' ' splits for the x86 parser, not for next_arg
		{"foo=\"a\xa0memmap=1\"", "memmap=1\""}, // the EFI stub's isspace has 0xA0
		{`x=ycrashkernel=64M`, "crashkernel=64M"},
		// Not read as an option: the early parser's word has more.
		{`katana.args="nokaslr x"`, ""},
		{`katana.args="x nokaslr"`, ""},
		{`katana.args=nokaslr`, ""},
		{`"nokaslr x"`, ""},
		{`katana.args="a\ nokaslr\ b"`, ""},
		{`"nokaslr"`, ""},
		{`nokaslrx xnokaslr spectre_v2 tsx -- spectre_v2 anokaslr`, ""},
		{"foo=\"a\xa0nokaslr\"", ""},
		{`xmem=1 efi_fake_mem_x=1`, ""},
		// Kernel parameters of their own.
		{`nokaslr spectre_v2=off mem=1G crashkernel=64M console=ttyS0 "-" -- x`, ""},
		{`spectre_v2="off x"`, `spectre_v2="off`},
	} {
		c, err := Parse(tc.in)
		if tc.word == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.in, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrEarlyOption) || e.Text != tc.word {
			t.Errorf("Parse(%q) = %+v, %v; want ErrEarlyOption naming %q", tc.in, c, err, tc.word)
			continue
		}
		if !strings.Contains(err.Error(), "ignores double quotes") {
			t.Errorf("Parse(%q) error %q does not say that the parser ignores quotes", tc.in, err)
		}
		// Both fixes: a kernel parameter, or joined to Katana's flag.
		if !strings.Contains(err.Error(), "give it as a kernel parameter; if it is one of Katana's arguments, join it to its flag (--flag="+tc.word+")") {
			t.Errorf("Parse(%q) error %q does not give both fixes", tc.in, err)
		}
	}
}

func TestFormatEarlyOption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kernel []string
		c      Config
		word   string
		from   string
	}{
		{"katana.args word", nil, withDefaults(func(c *Config) { c.Args = []string{"--name", "nokaslr", "--dev"} }), "nokaslr", "in katana.args:"},
		{"quoted katana.args word", nil, withDefaults(func(c *Config) { c.Args = []string{"a nopti b"} }), "nopti", "in katana.args:"},
		{"init argument", nil, withDefaults(func(c *Config) { c.InitArgs = []string{"x", "nospectre_v2"} }), "nospectre_v2", "in init argument 2:"},
		{"inside a kernel parameter", []string{"console=ttyS0", `foo="a spectre_v2=off b"`}, Default(), "spectre_v2=off", `in kernel parameter "foo=\"a spectre_v2=off b\""`},
		{"katana.env word", nil, withDefaults(func(c *Config) { c.Env = []string{"A=1", "hugepages=4", "B=2"} }), "hugepages=4", "in katana.env:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, err := Format(tc.c, tc.kernel)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrEarlyOption) || e.Text != tc.word || e.Offset != -1 {
				t.Fatalf("Format = %q, %v; want ErrEarlyOption naming %q", line, err, tc.word)
			}
			if !strings.Contains(e.Detail, tc.from) || !strings.Contains(e.Detail, "ignores double quotes") {
				t.Errorf("error %q: want it to say %q and that the parser ignores double quotes", err, tc.from)
			}
		})
	}
	// Deliberate kernel parameters stay allowed and visible.
	kps := []string{"console=ttyS0", "nokaslr", "spectre_v2=off", "mem=2G", "crashkernel=64M"}
	line, err := Format(withDefaults(func(c *Config) { c.Args = []string{"--dev"} }), kps)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Parse(line); err != nil || !slices.Equal(back.KernelParams, kps) {
		t.Errorf("Parse(%q) = %q, %v; want kernel parameters %q", line, back.KernelParams, err, kps)
	}
}

// refX86Find transliterates arch/x86/lib/cmdline.c: the bool parser
// (__cmdline_find_option_bool) when option has no "=", the value parser
// (__cmdline_find_option, option given without its "=") otherwise, on a
// NUL-terminated copy of cmdline. It returns the 0-based start of every
// word the parser would accept (the kernel returns the first for a bool
// and uses the last for a value).
func refX86Find(cmdline, option string, value bool) []int {
	buf := append([]byte(cmdline), 0)
	opt := append([]byte(option), 0)
	myisspace := func(c byte) bool { return c <= ' ' }
	const (
		wordstart = iota
		wordcmp
		wordskip
		bufcpy
	)
	var starts []int
	state, op, wstart := wordstart, 0, 0
	for pos := 0; pos < len(buf); pos++ {
		c := buf[pos]
		if value && c == 0 {
			break
		}
		switch state {
		case wordstart:
			if c == 0 {
				return starts
			} else if myisspace(c) {
				continue
			}
			state, op, wstart = wordcmp, 0, pos
			fallthrough
		case wordcmp:
			if value {
				if c == '=' && opt[op] == 0 {
					starts = append(starts, wstart)
					state = bufcpy
					continue
				} else if c == opt[op] {
					op++
					continue
				}
				op++
			} else {
				if opt[op] == 0 {
					if c == 0 || myisspace(c) {
						starts = append(starts, wstart)
						state = wordstart
						if c == 0 {
							return starts
						}
						continue
					}
				} else if c == 0 {
					return starts
				} else if c == opt[op] {
					op++
					continue
				}
			}
			state = wordskip
			fallthrough
		case wordskip:
			if c == 0 {
				return starts
			} else if myisspace(c) {
				state = wordstart
			}
		case bufcpy:
			if myisspace(c) {
				state = wordstart
			}
		}
	}
	return starts
}

// refStrstrAll returns every offset of needle in s, and whether each is
// at the start or after a lib/ctype.c isspace() byte.
func refStrstrAll(s, needle string) (offs []int, atWord []bool) {
	for i := 0; i+len(needle) <= len(s); i++ {
		if s[i:i+len(needle)] == needle {
			offs = append(offs, i)
			atWord = append(atWord, i == 0 || refSpace[s[i-1]] == 1)
		}
	}
	return offs, atWord
}

// FuzzEarlyOption: on every command line Parse accepts, each place where
// the kernel's early parsers (the transliterations above) find one of
// their options is the start of a kernel parameter before "--" (the whole
// word, for the x86 word parser); and where Parse refuses with
// ErrEarlyOption, they do find the option at the byte it names.
func FuzzEarlyOption(f *testing.F) {
	for _, s := range []string{`katana.args="--name nokaslr"`, `nokaslr -- nokaslr`, `a="b spectre_v2=off"`,
		"x=\"a\xa0mem=1\"", `xcrashkernel=1`, `nopti`, `pti=on`, "a\x01nopti", `katana.args="x nokaslr"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		type find struct {
			off   int
			name  string
			whole bool // the x86 word parser: the kernel parameter must be the whole word
		}
		var found []find
		for _, n := range linuxEarly.bools {
			for _, o := range refX86Find(s, n, false) {
				found = append(found, find{o, n, true})
			}
		}
		for _, n := range linuxEarly.values {
			for _, o := range refX86Find(s, n, true) {
				found = append(found, find{o, n + "=", true})
			}
		}
		for _, n := range linuxEarly.efiStub {
			offs, at := refStrstrAll(s, n+"=")
			for i, o := range offs {
				if at[i] {
					found = append(found, find{o, n + "=", false})
				}
			}
		}
		for _, n := range linuxEarly.anywhere {
			offs, _ := refStrstrAll(s, n+"=")
			for _, o := range offs {
				found = append(found, find{o, n + "=", false})
			}
		}
		_, err := Parse(s)
		var e *Error
		if errors.As(err, &e) && errors.Is(err, ErrEarlyOption) {
			for _, f := range found {
				if f.off == e.Offset {
					return
				}
			}
			t.Fatalf("Parse(%q) refused %q at byte %d, where no early parser finds an option", s, e.Text, e.Offset)
		}
		if err != nil {
			return
		}
		params, _, _ := SplitKernel(s)
		for _, f := range found {
			end := f.off
			for end < len(s) && s[end] > ' ' {
				end++
			}
			ok := false
			for _, p := range params {
				if p.Offset == f.off && (!f.whole || p.Raw == s[f.off:end]) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("Parse(%q) accepted it, but an early parser reads %s at byte %d, which is no kernel parameter", s, f.name, f.off)
			}
		}
	})
}

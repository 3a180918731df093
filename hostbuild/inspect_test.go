package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/verify/testdata"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// TestInputCommandsArgs: inspect, diff and report say what is wrong with
// their input (a folder, a missing file) and what to give instead, and take
// their flags after the arguments too, as ovmf and verify do.
func TestInputCommandsArgs(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	if _, e, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "a.img"); code != 0 {
		t.Fatalf("pack: %s", e)
	}
	img := filepath.Join(dir, "a.img")
	report := filepath.Join(dir, "report.bin")
	if err := os.WriteFile(report, testdata.AttestationBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	folder := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"inspect", folder}, exitFail, folder + " is a folder, not an initrd"},
		{[]string{"diff", img, folder}, 2, folder + " is a folder, not an initrd"},
		{[]string{"report", folder}, exitFail, folder + " is a folder; give the report file in it"},
		{[]string{"report", "/nonexist"}, exitFail, "cannot read the report /nonexist: no such file or directory; give a file holding a raw report"},
		{[]string{"inspect", img, "--json"}, exitOK, `"compression": "zstd+none"`},
		{[]string{"diff", img, img, "--json"}, exitOK, "[]"},
		{[]string{"report", report, "--json"}, exitOK, `"measurement": "b07af962`},
		{[]string{"inspect", img, img}, exitUsage, "want exactly one INITRD, got 2"},
		{[]string{"diff", img}, exitUsage, "want two initrds, A and B, got 1"},
		{[]string{"inspect", img, "--nope"}, exitUsage, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, stderr := runCmd(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out+stderr, tt.code, tt.want)
			}
		})
	}
}

// TestInspectHelpExitStatus: every command's -h lists its exit codes
// (README); inspect's match what it returns.
func TestInspectHelpExitStatus(t *testing.T) {
	code, help, _ := runCmd(t, "", "inspect", "-h")
	if code != exitOK || !strings.Contains(help, "Exit status: 0 listed; 1 unreadable or malformed initrd") || !strings.Contains(help, "2 usage.") {
		t.Errorf("inspect -h: exit %d, no exit status section:\n%s", code, help)
	}
}

// Flags may follow the arguments, and "--" ends them: what comes after it
// is an argument even if it starts with "-" (diff -- -a.img -b.img).
func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantPos  []string
		wantJSON bool
	}{
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true},
		{[]string{"--json", "a", "b"}, []string{"a", "b"}, true},
		{[]string{"--", "-a.img", "-b.img"}, []string{"-a.img", "-b.img"}, false},
		{[]string{"a", "--", "-b.img", "--json"}, []string{"a", "-b.img", "--json"}, false},
		{[]string{"--json", "--", "--json"}, []string{"--json"}, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.wantPos) || *j != tc.wantJSON {
			t.Errorf("%q: positionals %q, --json %v, err %v; want %q, %v", tc.args, pos, *j, err, tc.wantPos, tc.wantJSON)
		}
	}
}

// TestInspectListing: inspect's listing ends with the archive line and a
// payload line for what the init runs: the frames, the inline file, or
// unknown and why (an entry with a ".." component).
func TestInspectListing(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	for _, enc := range []string{"frames", "inline"} {
		if _, e, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "--payload-encoding", enc, "-o", enc+".img"); code != 0 {
			t.Fatalf("pack --payload-encoding %s: %s", enc, e)
		}
	}
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	if err := w.WriteHeader(&newc.Header{Name: "bin/../x", Mode: newc.TypeReg | 0o644, NLink: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dotdot := filepath.Join(dir, "dotdot.img")
	if err := os.WriteFile(dotdot, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// An appended sidecar the content list does not cover.
	packed, err := os.ReadFile(filepath.Join(dir, "inline.img"))
	if err != nil {
		t.Fatal(err)
	}
	for len(packed)%4 != 0 {
		packed = append(packed, 0)
	}
	b.Reset()
	w = newc.NewWriter(&b)
	if err := w.WriteHeader(&newc.Header{Name: "usr/bin/paymaster-service", Mode: newc.TypeReg | 0o755, NLink: 1, Size: 1}); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	hidden := filepath.Join(dir, "hidden.img")
	if err := os.WriteFile(hidden, append(packed, b.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	const covered = `# content list: covers every file; operator's files \(--file, --exec, --ca-bundle\): none\n`
	for _, tc := range []struct {
		img     string
		vouched string // the line before the archive line, if any
		archive string // the archive line, after "# IMG: "
		payload string // the payload line
	}{
		{filepath.Join(dir, "frames.img"), covered, `zstd\+none, \d+ bytes, \d+ entries in 2 archive\(s\), sha256 [0-9a-f]{64}`,
			`# payload /bin/katana: \d+ bytes, sha256 [0-9a-f]{64}, stored as bin/katana\.zst \(\d+ zstd frames, \d+ bytes\) for the init to check and decode`},
		{filepath.Join(dir, "inline.img"), covered, `zstd, \d+ bytes, \d+ entries in 1 archive\(s\), sha256 [0-9a-f]{64}`,
			`# payload /bin/katana: \d+ bytes, sha256 [0-9a-f]{64}, stored inline`},
		{hidden, `# NOT VOUCHED FOR: /usr/bin/paymaster-service is not a file hostbuild pack makes there \(.*\): Katana could run or read it\n`,
			`zstd\+none, \d+ bytes, \d+ entries in 2 archive\(s\), sha256 [0-9a-f]{64}`, `# payload /bin/katana: \d+ bytes, sha256 [0-9a-f]{64}, stored inline`},
		{dotdot, "", `none, \d+ bytes, 1 entries in 1 archive\(s\), sha256 [0-9a-f]{64}`,
			`# payload /bin/katana: unknown: entry "bin/\.\./x" has a "\.\." component: which file it replaces depends on what the kernel finds on the way`},
	} {
		t.Run(filepath.Base(tc.img), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", "inspect", tc.img)
			want := regexp.MustCompile(`\n` + tc.vouched + `# ` + regexp.QuoteMeta(tc.img) + `: ` + tc.archive + "\n" + tc.payload + "\n$")
			if code != exitOK || stderr != "" || !want.MatchString(stdout) {
				t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the end to match %s", code, stderr, stdout, want)
			}
			// --json says the same.
			_, stdout, _ = runCmd(t, "", "inspect", "--json", tc.img)
			var j struct {
				Vouched *struct {
					OK    bool   `json:"ok"`
					Error string `json:"error"`
				} `json:"vouched"`
			}
			if err := json.Unmarshal([]byte(stdout), &j); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.vouched == "" && j.Vouched != nil, tc.vouched == covered && (j.Vouched == nil || !j.Vouched.OK),
				tc.vouched != "" && tc.vouched != covered && (j.Vouched == nil || j.Vouched.OK || j.Vouched.Error == ""):
				t.Errorf("--json vouched %+v, want what the listing says: %q", j.Vouched, tc.vouched)
			}
		})
	}
}

// Names in an initrd are its author's text: inspect and diff print them
// with control sequences (a screen clear, a window title, C1, a
// right-to-left override) and newlines escaped, so that a name can neither
// rewrite the operator's terminal nor forge a "# payload" line.
func TestInspectAndDiffEscapeNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ents ...newc.Header) string {
		var b bytes.Buffer
		w := newc.NewWriter(&b)
		for _, h := range ents {
			data := []byte{}
			if h.Mode&newc.TypeMask == newc.TypeLink {
				data = []byte("\x1b]0;PWNED\atarget")
			}
			h.NLink, h.Size = 1, uint32(len(data))
			if err := w.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			w.Write(data)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.img", newc.Header{Name: "bin", Mode: newc.TypeDir | 0o755})
	evil := write("evil.img", newc.Header{Name: "bin", Mode: newc.TypeDir | 0o755},
		newc.Header{Name: "bin/\x1b[2J\x1b[31mx\x1b[0m\r\u009b\u202egnp.exe\n# payload /bin/katana: forged", Mode: newc.TypeReg | 0o755},
		newc.Header{Name: "lnk", Mode: newc.TypeLink | 0o777})
	for _, args := range [][]string{{"inspect", evil}, {"diff", plain, evil}} {
		_, stdout, stderr := runCmd(t, "", args...)
		out := stdout + stderr
		if i := strings.IndexFunc(out, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r == 0x9b || r == 0x202e }); i >= 0 {
			t.Errorf("%s: raw control character at byte %d: %q", args[0], i, out)
		}
		if !strings.Contains(out, `bin/\x1b[2J\x1b[31mx\x1b[0m\r\u009b\u202egnp.exe\n# payload /bin/katana: forged`) || !strings.Contains(out, `\x1b]0;PWNED\atarget`) {
			t.Errorf("%s: the names are not shown escaped:\n%s", args[0], out)
		}
		if strings.Contains(out, "\n# payload /bin/katana: forged") {
			t.Errorf("%s: a name forged a line:\n%s", args[0], out)
		}
	}
	// --json too: encoding/json escapes only C0 controls, not a C1
	// control (U+009B, CSI) or a bidi override, and the document still
	// decodes.
	for _, args := range [][]string{{"inspect", "--json", evil}, {"diff", "--json", plain, evil}} {
		_, stdout, _ := runCmd(t, "", args...)
		if strings.ContainsAny(stdout, "\u009b\u202e") {
			t.Errorf("%s --json: a raw C1 control or bidi override on stdout:\n%q", args[0], stdout)
		}
		if !json.Valid([]byte(stdout)) {
			t.Errorf("%s --json: not JSON:\n%s", args[0], stdout)
		}
	}
}

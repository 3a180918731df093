package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

// reproduce: a manifest that build wrote reproduces from the same files
// (payload, init, an operator's file); one whose records were changed
// after measuring (another kernel's hash, another payload, a measurement,
// a row of the matrix gone) does not, and the difference is shown; the
// files must be those the manifest names.
func TestReproduce(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if err := os.WriteFile(filepath.Join(dir, "chain.toml"), []byte("[chain]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "--file", "chain.toml:/etc/katana/chain.toml", "--vcpus", "1,2", "--vcpu-type", "EPYC-v4,EPYC-Genoa", "-o", "out")
	if code != exitOK {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	mpath := filepath.Join(dir, "out", "manifest.json")
	files := []string{"--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out/initrd.img", "--payload", "katana", "--init", "guestinit"}
	reproduce := func(m string, args ...string) (string, string, int) {
		return hostbuild(t, dir, nil, append([]string{"reproduce", "--manifest", m}, args...)...)
	}
	out, errOut, code := reproduce(mpath, files...)
	if code != exitOK || !strings.Contains(out, "reproduces from these files: 4 measurements") || !strings.Contains(out, "the operator's file") {
		t.Fatalf("reproduce of build's manifest: exit %d\n%s%s", code, out, errOut)
	}

	orig, err := manifest.Load(mpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(m *manifest.Manifest)
		want string
	}{
		{"kernel hash", func(m *manifest.Manifest) { m.Components.Kernel.SHA256 = strings.Repeat("ab", 32) }, strings.Repeat("ab", 32)},
		{"payload hash", func(m *manifest.Manifest) { m.Components.Payload.SHA256 = strings.Repeat("cd", 32) }, strings.Repeat("cd", 32)},
		{"operator's file", func(m *manifest.Manifest) { (*m.Components.Files)[0].SHA256 = strings.Repeat("ef", 32) }, strings.Repeat("ef", 32)},
		{"a measurement", func(m *manifest.Manifest) { m.Measurements[1].Measurement = strings.Repeat("0", 96) }, strings.Repeat("0", 96)},
		// Not every count × type: refused before any measuring.
		{"a row gone", func(m *manifest.Manifest) { m.Measurements = m.Measurements[:3] }, "its 3 measurements are not the 4 of every vCPU count (2) × type (2)"},
		// A cmdline 'hostbuild manifest' refuses (the host's debugger on
		// the serial line): refused whatever the files give.
		{"a cmdline manifest refuses", func(m *manifest.Manifest) { m.Cmdline += " kgdboc=ttyS0" }, "'hostbuild manifest' would refuse its cmdline"},
		// The writer's text reaches the terminal escaped.
		{"a tool version with escapes", func(m *manifest.Manifest) {
			m.Tool.Version = "v1\x1b[2K\rmanifest.json reproduces\x1b[8m"
			m.Measurements[1].Measurement = strings.Repeat("0", 96)
		}, strings.Repeat("0", 96)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := manifest.Load(mpath)
			tc.edit(m)
			edited := filepath.Join(t.TempDir(), "manifest.json")
			if err := manifest.WriteFile(edited, m); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := reproduce(edited, files...)
			diffed := !strings.Contains(tc.name, "row gone") && !strings.Contains(tc.name, "cmdline")
			if code != exitRunRefused || diffed && !strings.Contains(out, "does NOT reproduce") || !strings.Contains(out+errOut, tc.want) || !strings.Contains(errOut, "does not reproduce") {
				t.Errorf("exit %d, want %d naming %q\n%s%s", code, exitRunRefused, tc.want, out, errOut)
			}
			if strings.Contains(out+errOut, "\x1b") {
				t.Errorf("the manifest's escape sequences reached the terminal raw:\n%q", out+errOut)
			}
		})
	}

	// The same bytes under other names reproduce, with a note; the guest
	// policy is the manifest's, with a note (and a warning for debug).
	renamed := filepath.Join(dir, "firmware.fd")
	b, _ := os.ReadFile(ovmf)
	if err := os.WriteFile(renamed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = reproduce(mpath, append([]string{"--ovmf", renamed}, files[2:]...)...)
	if code != exitOK || !strings.Contains(errOut, `note: --ovmf firmware.fd has the bytes the manifest records as "OVMF.fd"`) ||
		!strings.Contains(errOut, "note: guest policy 0x30000 is the manifest's") || strings.Contains(errOut, "warning") {
		t.Errorf("renamed OVMF: exit %d\n%s%s", code, out, errOut)
	}
	m4, _ := manifest.Load(mpath)
	m4.GuestPolicy = "0xb0000"
	debug := filepath.Join(t.TempDir(), "manifest.json")
	if err := manifest.WriteFile(debug, m4); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := reproduce(debug, files...); code != exitOK || !strings.Contains(errOut, "warning: guest policy 0xb0000 allows debugging") {
		t.Errorf("debug policy: exit %d\n%s", code, errOut)
	}

	// The manifest records a payload and an init: both are needed.
	_, errOut, code = reproduce(mpath, "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out/initrd.img", "--init", "guestinit")
	if code != exitUsage || !strings.Contains(errOut, "records a payload (katana, SHA-256 "+orig.Components.Payload.SHA256+"): give it with --payload FILE") {
		t.Errorf("without --payload: exit %d\n%s", code, errOut)
	}
	// A manifest without a payload record (manifest without --payload):
	// --payload is a usage error, not a difference.
	m2, _ := manifest.Load(mpath)
	m2.Components.Payload = nil
	noPayload := filepath.Join(t.TempDir(), "manifest.json")
	if err := manifest.WriteFile(noPayload, m2); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = reproduce(noPayload, files...)
	if code != exitUsage || !strings.Contains(errOut, "records no payload: drop --payload") {
		t.Errorf("--payload for a manifest without one: exit %d\n%s", code, errOut)
	}
	// Its SOURCE_DATE_EPOCH is the initrd's (pack's entries' mtime), so
	// another is a difference, not copied over.
	m3, _ := manifest.Load(mpath)
	m3.SourceDateEpoch++
	otherEpoch := filepath.Join(t.TempDir(), "manifest.json")
	if err := manifest.WriteFile(otherEpoch, m3); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := reproduce(otherEpoch, files...); code != exitRunRefused || !strings.Contains(out, `"source_date_epoch"`) {
		t.Errorf("another SOURCE_DATE_EPOCH: exit %d\n%s%s", code, out, errOut)
	}
	// Another payload than the initrd holds is refused as manifest does.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = reproduce(mpath, append(files[:6:6], "--payload", "other", "--init", "guestinit")...)
	if code == exitOK {
		t.Errorf("another payload: exit 0\n%s", errOut)
	}
	// A missing file names its flag.
	_, errOut, code = reproduce(mpath, append([]string{"--ovmf", ovmf, "--kernel", "nope"}, files[4:]...)...)
	if code != exitFail || !strings.Contains(errOut, "--kernel nope") {
		t.Errorf("missing kernel: exit %d\n%s", code, errOut)
	}
}

// lineDiff marks removed and added lines, with context, and "..." between
// changes further apart than twice the context.
func TestLineDiff(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n"
	b := "1\n2\nthree\n4\n5\n6\n7\n8\n9\nten\n"
	want := "  2\n- 3\n+ three\n  4\n  ...\n  9\n+ ten\n"
	if got := lineDiff(a, b, 1); got != want {
		t.Errorf("lineDiff:\n%s\nwant\n%s", got, want)
	}
	if got := lineDiff(a, a, 3); got != "" {
		t.Errorf("lineDiff of equal texts = %q", got)
	}
	// Two changes whose contexts meet: every line between them, no "...".
	c := "1\nTWO\n3\n4\n5\nSIX\n7\n8\n9\n"
	if got, want := lineDiff(a, c, 2), "  1\n- 2\n+ TWO\n  3\n  4\n  5\n- 6\n+ SIX\n  7\n  8\n"; got != want {
		t.Errorf("lineDiff, close changes:\n%s\nwant\n%s", got, want)
	}
	// Past the table's bound (here a middle of 5000 lines each side), the
	// middle is shown removed then added: still every difference, in
	// bounded memory.
	var big1, big2 strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&big1, "a%d\n", i)
		fmt.Fprintf(&big2, "b%d\n", i)
	}
	got := lineDiff("head\n"+big1.String()+"tail\n", "head\n"+big2.String()+"tail\n", 1)
	if !strings.HasPrefix(got, "  head\n- a0\n") || !strings.Contains(got, "- a4999\n+ b0\n") || !strings.HasSuffix(got, "+ b4999\n  tail\n") {
		t.Errorf("lineDiff past the bound: %.200q ... %.200q", got, got[len(got)-200:])
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// measure --json prints the cmdline it measured, and the README's way to
// check someone else's build is --append "$(cat cmdline)": text its author
// chose, which measure hashes whatever its bytes (as sev-snp-measure
// does; only --manifest-out asks for a cmdline the guest can boot).
// encoding/json leaves C1 controls (U+009B, CSI: a terminal can move the
// cursor back over the measurement printed above) and format runes
// (U+202E, RIGHT-TO-LEFT OVERRIDE) raw; they must be escaped, as attest,
// verify, inspect and diff --json escape them, and the document must still
// decode to the same cmdline.
func TestMeasureJSONEscapesFormatRunes(t *testing.T) {
	in := makeManifestInputs(t)
	const cmdline = "console=ttyS0 panic=-1 katana.args=\"--dev\u202eKO\u009b2J\""
	stdout, stderr, code := runHB(t, "measure", "--json", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", cmdline)
	if code != exitOK {
		t.Fatalf("measure --json: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Cmdline string `json:"cmdline"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Cmdline != cmdline {
		t.Errorf("measure --json: %v, cmdline %q; want %q", err, doc.Cmdline, cmdline)
	}
	if i := strings.IndexAny(stdout, "\u009b\u202e"); i >= 0 {
		t.Errorf("measure --json: a raw C1 control or bidi override on stdout: %q", stdout[max(0, i-40):min(len(stdout), i+40)])
	}
}

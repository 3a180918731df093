package main

import (
	"strings"
	"testing"
)

// attest --cid with an explicit --port dials that port, not the one the
// manifest's cmdline gives the agent (here the default vsock:1024): the
// operator's --port wins.
func TestAttestExplicitPortOverManifestPort(t *testing.T) {
	mpath := writeTestManifest(t, t.TempDir())
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--cid", "3", "--port", "2000", "--timeout", "100ms", "--manifest", mpath)
	if code == exitOK || code == exitUsage || !strings.Contains(stderr, "vsock:3:2000") || strings.Contains(stderr, "vsock:3:1024") {
		t.Errorf("exit %d, stderr %q; want a transport failure naming vsock:3:2000", code, stderr)
	}
}

package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// An OK from attest or verify shows the whole measured kernel command
// line, not only the Katana argv and env taken from it: kernel
// parameters that weaken the guest (nokaslr, mitigations=off) and the
// init's settings (katana.agent, katana.net) are in the measurement too,
// and a verifier reading the output must see them. Someone else's text,
// it is escaped as argv and env are (a right-to-left override here).
func TestAttestShowsMeasuredCmdline(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	cmdline := "console=ttyS0 nokaslr mitigations=off katana.agent=tcp:0.0.0.0:8080 katana.net=10.0.2.15/24,gw=10.0.2.2 katana.env=X=\u202eab katana.args=--dev"
	c, err := bootcfg.Parse(cmdline)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agentapi.ConfigOf(c.Applied())
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["cmdline"] = cmdline
	b, _ = json.Marshal(m)
	if err := os.WriteFile(mpath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, &fakeAgent{s: s, config: &cfg})
	ev := dir + "/ev"
	wantText := "  cmdline:        " + `"console=ttyS0 nokaslr mitigations=off katana.agent=tcp:0.0.0.0:8080 katana.net=10.0.2.15/24,gw=10.0.2.2 katana.env=X=\u202eab katana.args=--dev"` + "\n"
	for _, args := range [][]string{
		{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev},
		{"attest", "--json", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots},
		{"verify", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots},
		{"verify", "--json", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots},
	} {
		code, stdout, stderr := runCmd(t, "", args...)
		if args[1] != "--json" {
			if code != 0 || !strings.HasPrefix(stdout, "attestation OK\n") || !strings.Contains(stdout, wantText) {
				t.Errorf("%s: exit %d; want OK with the line %q\nstdout:\n%sstderr:\n%s", args[0], code, wantText, stdout, stderr)
			}
			continue
		}
		var res struct {
			OK      bool   `json:"ok"`
			Cmdline string `json:"cmdline"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || !res.OK || res.Cmdline != cmdline {
			t.Errorf("%s --json: exit %d, %v, cmdline %q; want OK with cmdline %q\n%s%s", args[0], code, err, res.Cmdline, cmdline, stdout, stderr)
		}
		if strings.Contains(stdout, "\u202e") {
			t.Errorf("%s --json: a raw right-to-left override on stdout", args[0])
		}
	}
}

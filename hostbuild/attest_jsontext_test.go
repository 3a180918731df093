package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// attest --json and verify --json print the manifest's argv and
// katana.env (text the manifest's author chose) with C1 controls and
// format runes escaped, as inspect --json and diff --json do: encoding/json
// leaves U+009B (CSI) and U+202E (RIGHT-TO-LEFT OVERRIDE) raw, and the
// document must still decode to the same values.
func TestAttestJSONEscapesFormatRunes(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	const evil = "--dev\u202eKO\u009b2J"
	cmdline := "x katana.env=RUST_LOG=\u202edebug katana.args=" + evil
	c, err := bootcfg.Parse(cmdline)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agentapi.ConfigOf(c.Applied())
	b, _ := os.ReadFile(mpath)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["cmdline"] = cmdline
	b, _ = json.Marshal(m)
	os.WriteFile(mpath, b, 0o644)
	addr := serveAgent(t, &fakeAgent{s: s, config: &cfg})
	ev := dir + "/ev"
	for _, args := range [][]string{
		{"attest", "--json", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev},
		{"verify", "--json", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots},
	} {
		code, stdout, stderr := runCmd(t, "", args...)
		var res struct {
			OK   bool     `json:"ok"`
			Argv []string `json:"argv"`
			Env  string   `json:"env"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || !res.OK || len(res.Argv) != 1 || res.Argv[0] != evil || !strings.Contains(res.Env, "\u202edebug") {
			t.Fatalf("%s --json: exit %d, %v, %+v; want OK with the manifest's argv and env\n%s%s", args[0], code, err, res, stdout, stderr)
		}
		if strings.ContainsAny(stdout, "\u009b\u202e") {
			i := strings.IndexAny(stdout, "\u009b\u202e")
			t.Errorf("%s --json: a raw C1 control or bidi override on stdout: %q", args[0], stdout[max(0, i-40):min(len(stdout), i+40)])
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// stallingKDS answers no KDS request: each waits until its context ends.
type stallingKDS struct{}

func (stallingKDS) Get(string) ([]byte, error) { select {} }

func (stallingKDS) GetContext(ctx context.Context, _ string) ([]byte, error) {
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// An attest or verify stopped by a signal (Ctrl-C while the agent is
// asked, or while AMD's KDS is) says it was interrupted and exits 1, as
// pack and build do: it gives no verdict, neither a transport failure (3)
// nor a rejected chain (4), and writes no evidence recording one.
func TestAttestInterruptedGivesNoVerdict(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	old := kdsTransport
	defer func() { kdsTransport = old }()
	kdsTransport = stallingKDS{}
	silent := rawAgent(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		time.Sleep(10 * time.Second)
	})
	// No certificate table: the VCEK must come from KDS.
	noTable := serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.CertTable = nil }})
	// Evidence without a certificate, for verify --kds.
	ev := filepath.Join(dir, "ev")
	if code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", noTable, "--manifest", mpath, "--roots", roots, "--evidence-out", ev); code != 4 {
		t.Fatalf("attest without a VCEK: exit %d, want 4\n%s%s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"attest, asking the agent", []string{"attest", "--addr", silent}},
		{"attest, asking KDS", []string{"attest", "--addr", noTable, "--kds", "--kds-cache", t.TempDir()}},
		{"verify, asking KDS", []string{"verify", ev, "--kds", "--kds-cache", t.TempDir()}},
	} {
		for _, jsonOut := range []bool{false, true} {
			out := filepath.Join(t.TempDir(), "out")
			args := append(slices.Clone(tc.args), "--min-tcb", "none", "--manifest", mpath, "--roots", roots)
			if tc.args[0] == "attest" {
				args = append(args, "--evidence-out", out)
			}
			if jsonOut {
				args = append(args, "--json")
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(300*time.Millisecond, func() { cancel(Interrupted{syscall.SIGINT}) })
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			cancel(nil)
			all := stdout.String() + stderr.String()
			if code != exitFail || !strings.Contains(stderr.String(), "interrupted (SIGINT)") || strings.Contains(all, "FAILED") || strings.Contains(all, "rejected") || strings.Contains(all, "transport:") {
				t.Errorf("%s (--json %v): exit %d, want %d saying interrupted (SIGINT), with no verdict\nstdout: %s\nstderr: %s", tc.name, jsonOut, code, exitFail, stdout.String(), stderr.String())
			}
			if jsonOut {
				var res attestJSON
				if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.OK || res.ExitCode != exitFail || res.Class != "" {
					t.Errorf("%s --json: %v, ok %v, exit_code %d, failure_class %q; want exit_code 1 and no failure_class", tc.name, err, res.OK, res.ExitCode, res.Class)
				}
			}
			if _, err := os.Lstat(out); err == nil {
				t.Errorf("%s (--json %v): an interrupted attest wrote evidence to %s", tc.name, jsonOut, out)
			}
		}
	}
}

package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifierChallengeThroughTheOperator: a verifier who cannot reach
// the agent (vsock is the host's) gives the operator a nonce of its own;
// the operator's attest --nonce asks the guest for a report binding it
// and writes the evidence; the verifier's verify --nonce checks that the
// folder's report binds that nonce, so the result is fresh as of when the
// verifier chose it (no "freshness not checked" warning), and refuses
// (exit 5) a folder whose report binds any other nonce: an older report,
// or one fetched before the challenge.
func TestVerifierChallengeThroughTheOperator(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	addr := serveAgent(t, &fakeAgent{s: s})
	mine := strings.Repeat("5a", 48)

	fresh := filepath.Join(dir, "fresh")
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--nonce", mine, "--evidence-out", fresh)
	if code != 0 || !strings.Contains(stdout, "  nonce:          "+mine+"\n") {
		t.Fatalf("attest --nonce %s: exit %d, want 0 and the report binding that nonce\n%s%s", mine, code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(fresh, "nonce.hex")); strings.TrimSpace(string(b)) != mine {
		t.Errorf("evidence nonce.hex %q, want %s", b, mine)
	}
	code, stdout, stderr = runCmd(t, "", "verify", fresh, "--min-tcb", "none", "--manifest", mpath, "--roots", roots, "--nonce", mine)
	if code != 0 || strings.Contains(stdout, "freshness not checked") {
		t.Errorf("verify --nonce with the verifier's own nonce: exit %d, want 0 without a freshness warning\n%s%s", code, stdout, stderr)
	}
	// Upper case is the same nonce.
	if code, stdout, stderr = runCmd(t, "", "verify", fresh, "--min-tcb", "none", "--manifest", mpath, "--roots", roots, "--nonce", strings.ToUpper(mine)); code != 0 {
		t.Errorf("verify --nonce in upper case: exit %d\n%s%s", code, stdout, stderr)
	}

	// Evidence fetched with attest's own nonce (before the challenge, or
	// any time): the folder is consistent, but not an answer to it.
	old := filepath.Join(dir, "old")
	if code, stdout, stderr = runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", old); code != 0 {
		t.Fatalf("attest: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "", "verify", old, "--min-tcb", "none", "--manifest", mpath, "--roots", roots, "--nonce", mine)
	if code != 5 || strings.HasPrefix(stdout, "attestation OK") || !strings.Contains(stderr, "nonce") {
		t.Errorf("verify --nonce on a folder answering another nonce: exit %d, want 5 (REPORT_DATA or nonce)\n%s%s", code, stdout, stderr)
	}
	// The folder's nonce.hex rewritten to the verifier's: the report
	// still binds the other.
	os.WriteFile(filepath.Join(old, "nonce.hex"), []byte(mine+"\n"), 0o644)
	if code, stdout, stderr = runCmd(t, "", "verify", old, "--min-tcb", "none", "--manifest", mpath, "--roots", roots, "--nonce", mine); code != 5 {
		t.Errorf("verify --nonce, nonce.hex rewritten: exit %d, want 5\n%s%s", code, stdout, stderr)
	}

	// Usage: not hex, out of 32 to 64 bytes, --nonce with --nonce-size.
	for _, args := range [][]string{
		{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--nonce", "xyz"},
		{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--nonce", hex.EncodeToString(bytes.Repeat([]byte{1}, 31))},
		{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--nonce", mine, "--nonce-size", "48"},
		{"verify", fresh, "--min-tcb", "none", "--manifest", mpath, "--nonce", hex.EncodeToString(bytes.Repeat([]byte{1}, 65))},
	} {
		if code, _, stderr := runCmd(t, "", args...); code != exitUsage || !strings.Contains(stderr, "--nonce") {
			t.Errorf("%q: exit %d, want %d naming --nonce\n%s", args, code, exitUsage, stderr)
		}
	}
}

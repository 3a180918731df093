package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAttestMeasurementHintOnlyWithoutExplain: a measurement mismatch
// suggests "run with --explain and the local files"; attest --explain
// (and verify --explain) printed that advice beside the explanation it
// had just run, telling the operator to do what they did.
func TestAttestMeasurementHintOnlyWithoutExplain(t *testing.T) {
	dir, mpath, s, roots, explain := explainFixture(t)
	const hint = "run with --explain"
	addr := serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { r[0x90] ^= 1 }})
	ev := filepath.Join(dir, "ev")
	base := []string{"--min-tcb", "none", "--manifest", mpath, "--roots", roots}
	for _, tc := range []struct {
		name string
		args []string
		hint bool
	}{
		{"attest", append([]string{"attest", "--addr", addr, "--evidence-out", ev}, base...), true},
		{"attest --explain", append(append([]string{"attest", "--addr", addr}, base...), explain...), false},
		{"verify", append([]string{"verify", ev}, base...), true},
		{"verify --explain", append(append([]string{"verify", ev}, base...), explain...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", tc.args...)
			if code != 6 {
				t.Fatalf("exit %d, want 6\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if got := strings.Contains(stdout+stderr, hint); got != tc.hint {
				t.Errorf("advice %q given: %v, want %v\nstdout: %s\nstderr: %s", hint, got, tc.hint, stdout, stderr)
			}
			if tc.hint == false && !strings.Contains(stdout, "\n  explain:        ") {
				t.Errorf("no explain line:\n%s", stdout)
			}
		})
	}
}

package attest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/kds"
)

// --min-tcb bounds REPORTED_TCB on its own, not only through LAUNCH_TCB:
// a report signed by a VCEK certified for an old TCB (REPORTED_TCB is that
// TCB, as the host may set it below the current one), with the launch and
// current TCBs on the minimum, is refused. Whoever holds the VCEK of a
// vulnerable TCB can sign any LAUNCH_TCB, so the floor on the signing
// key's TCB is the one that counts. TestVerifyMinTCBCoversLaunchTCB moves
// LAUNCH_TCB only, and passes with validate.Options.MinimumTCB zeroed.
func TestVerifyMinTCBCoversReportedTCB(t *testing.T) {
	patched := kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 115}
	old := kds.TCBParts{BlSpl: 3, SnpSpl: 7, UcodeSpl: 115}
	s := signerTCB(t, old) // the VCEK is the old TCB's
	nonce := bytes.Repeat([]byte{7}, 64)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) { setTCBs(r, patched, old, patched) })
	// The same evidence verifies with the old TCB as the minimum: the
	// refusal below is the floor's, not another check's.
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), MinTCB: old}); err != nil {
		t.Fatalf("Verify with --min-tcb at the reported TCB: %v", err)
	}
	_, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), MinTCB: patched})
	if ClassOf(err) != ClassPolicy {
		t.Fatalf("Verify with REPORTED_TCB below --min-tcb (LAUNCH_TCB and CURRENT_TCB on it): class %v, err %v; want %v", ClassOf(err), err, ClassPolicy)
	}
	if !strings.Contains(err.Error(), "REPORTED_TCB") {
		t.Errorf("error %q does not name REPORTED_TCB", err)
	}
}

// The debug bit is left out of the comparison with the manifest's policy
// only with --allow-debug: without it, a report's policy must equal the
// manifest's in that bit too (here the manifest allows debugging and the
// report does not). Passes with the mask applied unconditionally otherwise.
func TestVerifyDebugBitComparedWithoutAllowDebug(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	m := testManifest()
	m.GuestPolicy = "0xb0000"                    // debug allowed
	ev := evidence(t, s, nonce, testConfig, nil) // policy 0x30000
	_, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s)})
	if ClassOf(err) != ClassPolicy || !strings.Contains(err.Error(), "DEBUG 0, manifest 1") {
		t.Fatalf("Verify: class %v, err %v; want %v naming DEBUG", ClassOf(err), err, ClassPolicy)
	}
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s), AllowDebug: true}); err != nil {
		t.Fatalf("Verify with AllowDebug: %v", err)
	}
}

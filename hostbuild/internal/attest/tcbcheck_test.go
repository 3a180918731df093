package attest

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/google/go-sev-guest/kds"
)

// rawTCB packs parts into a TCB_VERSION without ComposeTCBParts' 0..127
// range check (the report's bytes are whatever the signer put there).
func rawTCB(p kds.TCBParts) uint64 {
	return uint64(p.UcodeSpl)<<56 | uint64(p.SnpSpl)<<48 | uint64(p.Spl7)<<40 | uint64(p.Spl6)<<32 |
		uint64(p.Spl5)<<24 | uint64(p.Spl4)<<16 | uint64(p.TeeSpl)<<8 | uint64(p.BlSpl)
}

// go-sev-guest's validate.tcbNeError composes both TCBs with
// kds.ComposeTCBParts and ignores its error, which makes any TCB with a
// non-microcode part >= 128 compare as 0. A report whose REPORTED_TCB has
// such a part therefore "matches" a V[CL]EK certified for TCB 0, and then
// passes --min-tcb (TCBPartsLE reads the raw bytes). The signing key's TCB
// is never compared with the minimum by anyone else; checkTCBs compares the
// raw values.
func TestReportedTCBIsTheSigningKeysTCB(t *testing.T) {
	min := kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 115}
	s := signerTCB(t, kds.TCBParts{}) // VCEK certified for TCB 0: below the minimum
	claimed := kds.TCBParts{BlSpl: 0x83, SnpSpl: 8, UcodeSpl: 115}
	nonce := bytes.Repeat([]byte{7}, 64)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) {
		for _, off := range []int{0x38, 0x180, 0x1E0, 0x1F0} { // current, reported, committed, launch
			binary.LittleEndian.PutUint64(r[off:], rawTCB(claimed))
		}
	})
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), MinTCB: min})
	if err == nil {
		t.Errorf("accepted (ok=%v, reported_tcb %s) a report signed by a VCEK certified for TCB 0 with --min-tcb bl=3,tee=0,snp=8,ucode=115: REPORTED_TCB %#x is not the VCEK's TCB", res.OK, res.ReportedTCB, rawTCB(claimed))
	}
}

// Same root cause: "committed == current" (no provisional
// firmware) holds for any pair of TCBs that both have a part >= 128, or
// for a current TCB with such a part and a committed TCB of 0.
func TestProvisionalFirmwareWithOutOfRangePart(t *testing.T) {
	s := signerTCB(t, kds.TCBParts{})
	nonce := bytes.Repeat([]byte{7}, 64)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) {
		binary.LittleEndian.PutUint64(r[0x38:], rawTCB(kds.TCBParts{BlSpl: 0x80})) // CURRENT_TCB
		binary.LittleEndian.PutUint64(r[0x1E0:], 0)                                // COMMITTED_TCB
	})
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)}); err == nil {
		t.Error("accepted a report whose COMMITTED_TCB (0) differs from its CURRENT_TCB (bl=0x80): provisional firmware not refused")
	}
}

package attest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
)

// A guest policy whose ABI major version differs from the manifest's is
// refused, and the message names the ABI minimum of both, not "other
// bits".
func TestVerifyPolicyDiffNamesABIMajor(t *testing.T) {
	err := verifyEdited(t, func(r []byte) { binary.LittleEndian.PutUint64(r[0x08:], 0x30100) })
	if ClassOf(err) != ClassPolicy || !strings.Contains(err.Error(), "ABI minimum 1.0, manifest 0.0") {
		t.Errorf("Verify = %v, want a policy failure naming ABI minimum 1.0, manifest 0.0", err)
	}
}

// A version 3 report whose signed CPUID has a known family but a model
// go-sev-guest does not know (family 0x19, model 0) is refused as an
// unknown processor, naming both; it is not "no CPUID family and model".
func TestVerifyUnknownModelOfAKnownFamily(t *testing.T) {
	err := verifyEdited(t, func(r []byte) { r[0x188], r[0x189] = 0x19, 0x00 })
	if ClassOf(err) != ClassChain || !strings.Contains(err.Error(), "family 0x19, model 0x0, which go-sev-guest v0.15 does not know") {
		t.Errorf("Verify = %v, want a chain failure naming family 0x19, model 0x0 as unknown", err)
	}
}

// Two table entries whose GUIDs differ only in their last byte are two
// entries, not one GUID repeated.
func TestCertTableGUIDsDifferingInTheLastByte(t *testing.T) {
	const n = abi.CertTableEntrySize
	tab := make([]byte, 3*n+2)
	for i, last := range []byte{1, 2} {
		e := tab[i*n:]
		e[0], e[15] = 0xaa, last
		binary.LittleEndian.PutUint32(e[16:], uint32(3*n+i))
		binary.LittleEndian.PutUint32(e[20:], 1)
	}
	if err := checkCertTable(tab); err != nil {
		t.Errorf("GUIDs aa..01 and aa..02: %v", err)
	}
	tab[n+15] = 1
	if err := checkCertTable(tab); err == nil || !strings.Contains(err.Error(), "repeats the GUID") {
		t.Errorf("the same GUID twice: %v, want it refused", err)
	}
}

// A revocation list issued up to crlSkew (5 minutes) ahead of the
// verifier's clock is in force; one issued further ahead is not.
func TestCRLInForceClockSkewBound(t *testing.T) {
	s := signer(t, nil)
	ca, key := otherCRLSigner(t, s)
	now := time.Now().Truncate(time.Second)
	for _, tc := range []struct {
		ahead time.Duration
		ok    bool
	}{{crlSkew, true}, {crlSkew + time.Second, false}, {2 * crlSkew, false}} {
		b := datedCRL(t, now.Add(tc.ahead), now.Add(48*time.Hour), ca, key)
		err := crlInForce("https://kds/crl", b, now)
		if (err == nil) != tc.ok {
			t.Errorf("a list issued %v ahead: %v, want in force %v", tc.ahead, err, tc.ok)
		}
	}
}

// The KDS cache's entries are written readable by their owner only (a
// VCEK names the chip).
func TestCachingGetterEntryMode(t *testing.T) {
	g := &CachingGetter{Dir: t.TempDir(), Next: constGetter("from KDS")}
	const vcek = "https://kds.example/vcek/v1/Milan/abcd"
	if _, err := g.Get(vcek); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(vcek))
	fi, err := os.Stat(filepath.Join(g.Dir, hex.EncodeToString(sum[:])))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("cache entry mode %04o, want 0600", m)
	}
}

package attest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/shared/agentapi"
)

// A part of --min-tcb over 255 is refused, not truncated to its low byte
// (bl=300 would be a floor of 44).
func TestParseMinTCBPartOverflow(t *testing.T) {
	for s, why := range map[string]string{
		"bl=300,tee=0,snp=8,ucode=115": "bl=300 is over 255",
		"bl=3,tee=0,snp=256,ucode=115": "snp=256 is over 255",
		// A bad hex value says what is wanted, not strconv's words.
		"0xzz":                "want 0x and at most 16 hex digits",
		"0x11223344556677889": "want 0x and at most 16 hex digits",
	} {
		if p, err := ParseMinTCB(s); err == nil || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "strconv") {
			t.Errorf("ParseMinTCB(%q) = %+v, %v; want an error saying %q", s, p, err, why)
		}
	}
}

// An error Verify does not classify (no manifest) still exits non-zero.
func TestVerifyUnclassifiedErrorExitCode(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	res, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, nil), VerifyOptions{Nonce: nonce, Roots: fakeRoots(s)})
	if err == nil || res.OK || res.ExitCode != 1 || res.Class != "" {
		t.Errorf("Verify without a manifest: err %v, OK=%v exit=%d class=%q; want exit 1, no class", err, res.OK, res.ExitCode, res.Class)
	}
}

// The result records the raw report (hex) when it has a report's size,
// and nothing for a report of another size.
func TestVerifyResultRecordsReport(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)}
	ev := evidence(t, s, nonce, testConfig, nil)
	res, err := Verify(context.Background(), ev, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Report != hex.EncodeToString(ev.Report) {
		t.Errorf("Result.Report = %.32q..., want the report's hex", res.Report)
	}
	ev.Report = ev.Report[:100]
	if res, _ := Verify(context.Background(), ev, o); res.Report != "" {
		t.Errorf("Result.Report of a truncated report = %q, want none", res.Report)
	}
}

// With --allow-debug the debug bit is left out of the policy comparison on
// both sides, and an OK warns that the host could read and write the
// guest's memory.
func TestVerifyAllowDebug(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	for _, tc := range []struct {
		name, manifestPolicy string
		reportDebug          bool
	}{
		{"debug report, manifest without debug", "0x30000", true},
		{"report without debug, manifest with debug", "0xb0000", false},
	} {
		o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowDebug: true}
		o.Manifest.GuestPolicy = tc.manifestPolicy
		ev := evidence(t, s, nonce, testConfig, func(r []byte) {
			if tc.reportDebug {
				r[0x08+2] |= 1 << 3 // bit 19
			}
		})
		res, err := Verify(context.Background(), ev, o)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		warned := strings.Contains(strings.Join(res.Warnings, "\n"), "policy allows debugging")
		if warned != tc.reportDebug {
			t.Errorf("%s: warnings %q; want a debugging warning: %v", tc.name, res.Warnings, tc.reportDebug)
		}
	}
}

// GUEST_SVN is an ID block's: any non-zero value, 1 too, is refused.
func TestVerifyRefusesGuestSVN(t *testing.T) {
	err := verifyEdited(t, func(r []byte) { binary.LittleEndian.PutUint32(r[0x04:], 1) })
	if ClassOf(err) != ClassPolicy || !strings.Contains(err.Error(), "GUEST_SVN 1") {
		t.Errorf("Verify with GUEST_SVN 1: %v, want a policy failure naming it", err)
	}
}

// A Turin report is refused for its TCB layout even when the trusted
// roots are given for Turin (the chain would verify).
func TestVerifyRefusesTurinWithTurinRoots(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x188], r[0x189] = 0x1a, 0x02 })
	roots := map[string][]*trust.AMDRootCerts{"Turin": {{
		ProductLine:  "Turin",
		ProductCerts: &trust.ProductCerts{Ark: s.Ark, Ask: s.Ask, Asvk: s.Asvk},
	}}}
	for _, r := range []map[string][]*trust.AMDRootCerts{roots, nil} {
		_, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: r})
		if ClassOf(err) != ClassChain || err == nil || !strings.Contains(err.Error(), TurinReason) {
			t.Errorf("Verify of a Turin report (roots for %v): %v, want a chain failure giving %q", len(r), err, TurinReason)
		}
	}
}

// A small matrix is listed in a measurement failure; a large one is not.
func TestExpectedList(t *testing.T) {
	ms := make([]manifest.Measurement, 9)
	if got := expectedList(ms[:8]); got == "" {
		t.Error("expectedList of 8 entries is empty")
	}
	if got := expectedList(ms); got != "" {
		t.Errorf("expectedList of 9 entries = %q, want none", got)
	}
}

// recordingGetter fails every request and counts them.
type recordingGetter struct{ urls []string }

func (g *recordingGetter) Get(url string) ([]byte, error) {
	g.urls = append(g.urls, url)
	return nil, errors.New("no network in this test")
}

// Without AllowKDS nothing is fetched, not even the ASK and ARK a VCEK
// given alone lacks (the trusted roots stand in for them).
func TestVerifyWithoutKDSFetchesNothing(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	ev := evidence(t, s, nonce, testConfig, nil)
	ev.CertTable = nil
	g := &recordingGetter{}
	_, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), Certs: Certs{VCEK: s.Vcek}, Getter: g})
	if err != nil || len(g.urls) != 0 {
		t.Errorf("Verify without AllowKDS: %v, fetched %q; want success and no fetch", err, g.urls)
	}
}

// An ARK from the host that is not the trusted one is said, as an ASK is.
func TestVerifyWarnsOfHostARK(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	h := *s
	h.Ark = selfSignedCA(t, "HOST-ARK")
	ev := evidence(t, s, nonce, testConfig, nil)
	var err error
	if ev.CertTable, err = h.CertTableBytes(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)})
	if err != nil {
		t.Fatal(err)
	}
	if ws := strings.Join(res.Warnings, "\n"); !strings.Contains(ws, "the ASK or ARK the host gave") {
		t.Errorf("warnings %q do not say that the host's ARK was not the trusted one", ws)
	}
}

// checkCertTable's bounds, at the byte: a header cut short, an entry one
// byte past the table, entries that share one byte.
func TestCheckCertTableBoundaries(t *testing.T) {
	const n = abi.CertTableEntrySize
	entry := func(tab []byte, i int, guid byte, off, length uint32) {
		e := tab[i*n:]
		e[0] = guid
		binary.LittleEndian.PutUint32(e[16:], off)
		binary.LittleEndian.PutUint32(e[20:], length)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("a table shorter than one entry panics: %v", r)
			}
		}()
		if err := checkCertTable(make([]byte, n-1)); err == nil {
			t.Error("a table shorter than one entry is accepted")
		}
	}()
	past := make([]byte, 2*n+10)
	entry(past, 0, 1, 2*n, 11)
	if err := checkCertTable(past); err == nil {
		t.Error("an entry ending one byte past the table is accepted")
	}
	entry(past, 0, 1, 2*n, 10)
	if err := checkCertTable(past); err != nil {
		t.Errorf("an entry ending at the table's end: %v", err)
	}
	overlap := make([]byte, 3*n+14)
	entry(overlap, 0, 1, 3*n, 10)
	entry(overlap, 1, 2, 3*n+9, 5)
	if err := checkCertTable(overlap); err == nil {
		t.Error("entries sharing one byte are accepted")
	}
	entry(overlap, 1, 2, 3*n+10, 4)
	if err := checkCertTable(overlap); err != nil {
		t.Errorf("adjacent entries: %v", err)
	}
}

// A revocation list is out of date from its nextUpdate on, that instant
// included.
func TestCRLInForceAtNextUpdate(t *testing.T) {
	s := signer(t, nil)
	ca, key := otherCRLSigner(t, s)
	now := time.Now().Truncate(time.Second)
	b := datedCRL(t, now.Add(-time.Hour), now, ca, key)
	if err := crlInForce("https://kds/crl", b, now); err == nil {
		t.Error("a list at its nextUpdate is in force")
	}
	if err := crlInForce("https://kds/crl", b, now.Add(-time.Second)); err != nil {
		t.Errorf("a list a second before its nextUpdate: %v", err)
	}
}

// An answer over MaxResponseSize is refused as too large.
func TestFetchRefusesOversizedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte{' '}, MaxResponseSize+10))
	}))
	defer srv.Close()
	addr, err := agentapi.ParseDialAddr("tcp:" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), FetchOptions{Addr: addr, Nonce: bytes.Repeat([]byte{1}, 32)})
	if ClassOf(err) != ClassTransport || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("Fetch of an oversized answer: %v, want \"exceeds\"", err)
	}
}

// A response with data after it, or of another api_version, is refused.
func TestDecodeResponseRefusals(t *testing.T) {
	s := signer(t, nil)
	ev := evidence(t, s, bytes.Repeat([]byte{7}, 64), testConfig, nil)
	good, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeResponse(good); err != nil {
		t.Fatalf("the good response: %v", err)
	}
	if _, err := DecodeResponse(append(bytes.Clone(good), " {}"...)); err == nil {
		t.Error("a response with trailing data is accepted")
	}
	ev.APIVersion = agentapi.APIVersion + 1
	other, _ := json.Marshal(ev)
	if _, err := DecodeResponse(other); err == nil || !strings.Contains(err.Error(), "api_version") {
		t.Errorf("a response of api_version %d: %v", ev.APIVersion, err)
	}
}

// manifest.sha256 must start with a whole SHA-256.
func TestRecordedManifestDigestRefusesShortDigest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileManifestDigest), []byte("abcd  manifest.json\n"), 0o644)
	if d, err := RecordedManifestDigest(dir); err == nil {
		t.Errorf("RecordedManifestDigest of a 4-digit digest = %q, want an error", d)
	}
}

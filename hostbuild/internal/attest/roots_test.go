package attest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

// A --roots bundle's PEM block type is the file's text: LoadRoots's error
// names it escaped, never with a raw ESC, CR or newline of its own.
func TestLoadRootsErrorEscaped(t *testing.T) {
	const forged = "\x1b[2K\rroots OK \u202e"
	p := filepath.Join(t.TempDir(), "r.pem")
	if err := os.WriteFile(p, []byte("-----BEGIN X"+forged+"-----\nAAAA\n-----END X"+forged+"-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRoots(p, "Milan")
	if err == nil {
		t.Fatal("LoadRoots accepted a bundle without a certificate")
	}
	if strings.ContainsAny(err.Error(), "\x1b\r\u202e") || !strings.Contains(err.Error(), `\x1b[2K\rroots OK \u202e`) {
		t.Errorf("LoadRoots: %q; want the PEM type escaped", err)
	}
}

// --check-crl on a VCEK-signed report checks the ASK's list whatever the
// other product lines' roots hold: a root for VLEKs alone (no ASK) under
// another line does not turn the check off.
func TestVerifyCRLVCEKWithAnASKlessRootElsewhere(t *testing.T) {
	s := signer(t, nil)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	roots := fakeRoots(s)
	roots["Genoa"] = []*trust.AMDRootCerts{{ProductLine: "Genoa", ProductCerts: &trust.ProductCerts{Ark: s.Ark, Asvk: s.Asvk}}}
	nonce := bytes.Repeat([]byte{6}, 32)
	ev := evidence(t, s, nonce, testConfig, nil)
	g := &crlGetter{crl: currentCRL(t, s.Ark, s.Keys.Ark, s.Ask), next: kdsFake}
	_, err = Verify(context.Background(), ev, VerifyOptions{
		Manifest: testManifest(), Nonce: nonce, Roots: roots, AllowKDS: true, CheckCRL: true,
		Getter: &CachingGetter{Dir: t.TempDir(), Next: g},
	})
	if err == nil || g.asks != 1 {
		t.Errorf("VCEK report, ASK revoked, an ASK-less root for another line: %v (the ASK's list asked for %d times); want the ASK refused as revoked", err, g.asks)
	}
}

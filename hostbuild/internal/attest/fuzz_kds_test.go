package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	test "github.com/google/go-sev-guest/testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// fuzzKDS answers the VCEK URL with vcek and the cert_chain URL with
// chain (nil: the fake KDS's own answer).
type fuzzKDS struct {
	fake        *test.FakeKDS
	vcek, chain []byte
}

func (g fuzzKDS) Get(url string) ([]byte, error) {
	if _, _, err := kds.ParseProductCertChainURL(url); err == nil && g.chain != nil {
		return bytes.Clone(g.chain), nil
	}
	if _, err := kds.ParseVCEKCertURL(url); err == nil && g.vcek != nil {
		return bytes.Clone(g.vcek), nil
	}
	return g.fake.Get(url)
}

// Whatever AMD's KDS (or whoever answers for it) serves for the VCEK and
// the certificate chain, through the on-disk cache, a genuine report with
// no certificate table verifies only with the VCEK its chip's key signs;
// any other answer is a classified, printable error. And what the cache
// then serves again gives the same verdict.
func FuzzKDSAnswers(f *testing.F) {
	s := signer(f, nil)
	fake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		f.Fatal(err)
	}
	chain, err := fake.Get(kds.ProductCertChainURL(abi.VcekReportSigner, "Milan"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Vcek.Raw, []byte(nil))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Vcek.Raw}), []byte(nil))
	f.Add(s.Vcek.Raw, chain)
	f.Add(s.Ask.Raw, chain[:len(chain)/2])
	f.Add([]byte{}, []byte("not a chain"))
	nonce := bytes.Repeat([]byte{9}, 32)
	ev := evidence(f, s, nonce, testConfig, nil)
	ev.CertTable = nil
	// The genuine answer verifies: the fuzzer starts past the chain check.
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true,
		Getter: &CachingGetter{Dir: f.TempDir(), Next: fuzzKDS{fake: fake, vcek: s.Vcek.Raw}}}); err != nil {
		f.Fatalf("the chip's own VCEK from KDS: %v", err)
	}
	f.Fuzz(func(t *testing.T, vcek, chain []byte) {
		g := &CachingGetter{Dir: t.TempDir(), Next: fuzzKDS{fake: fake, vcek: vcek, chain: chain}}
		o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true, Getter: g}
		res, err := Verify(context.Background(), ev, o)
		if err != nil {
			if ClassOf(err) == 0 || !printable.Is(err.Error()) {
				t.Fatalf("KDS answer %q: unclassified or unprintable error %q", vcek, err)
			}
		} else {
			if !res.OK {
				t.Fatal("no error, but not OK")
			}
			c, perr := x509.ParseCertificate(vcek)
			if p, _ := pem.Decode(vcek); p != nil {
				c, perr = x509.ParseCertificate(p.Bytes)
			}
			if perr != nil || !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Vcek.PublicKey) {
				t.Fatalf("verified with a KDS answer %q that is not the chip's VCEK (%v)", vcek, perr)
			}
		}
		// The same again, from the cache the first run filled.
		o.Getter = &CachingGetter{Dir: g.Dir, Next: fuzzKDS{fake: fake, vcek: []byte("unused"), chain: []byte("unused")}}
		if _, err2 := Verify(context.Background(), ev, o); (err == nil) != (err2 == nil) {
			t.Fatalf("first %v, then from the cache %v", err, err2)
		}
	})
}

package attest

// Found by review: the product line of a version 2 report fetched with
// --kds, and --check-crl with roots for VLEKs alone.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/pem"
	"strings"
	"testing"

	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

// A version 2 report carries no CPUID: with --kds, go-sev-guest sets
// att.Product to its default (Milan-B1); the product line shown must be
// the verified VCEK's.
func TestVerifyProductLineOfV2ReportWithKDS(t *testing.T) {
	s := signerWith(t, nil, func(b *test.AmdSignerBuilder) { b.ProductName = "Genoa-B1" })
	roots := map[string][]*trust.AMDRootCerts{"Genoa": {{ProductLine: "Genoa",
		ProductCerts: &trust.ProductCerts{Ark: s.Ark, Ask: s.Ask, Asvk: s.Asvk}}}}
	nonce := bytes.Repeat([]byte{7}, 64)
	for _, kds := range []bool{false, true} {
		ev := evidence(t, s, nonce, testConfig, func(r []byte) {
			binary.LittleEndian.PutUint32(r, 2)
			clear(r[0x188:0x18B])
		})
		o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: roots}
		if kds {
			o.AllowKDS, o.Getter = true, constGetter("unused")
		}
		res, err := Verify(context.Background(), ev, o)
		if err != nil {
			t.Fatalf("kds=%v: %v", kds, err)
		}
		if res.ProductLine != "Genoa" {
			t.Errorf("kds=%v: product line %q, want Genoa (the VCEK that verified)", kds, res.ProductLine)
		}
	}
}

// --roots with a VLEK cert_chain (ASVK, ARK), as LoadRoots documents, and
// --check-crl on a VLEK-signed report: verified or refused, never a panic.
func TestVerifyCRLVLEKRootsWithoutASK(t *testing.T) {
	s := signer(t, nil)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Asvk.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Ark.Raw})...)
	roots, err := parseRoots(bundle, "Milan")
	if err != nil {
		t.Fatal(err)
	}
	clean := currentCRL(t, s.Ark, s.Keys.Ark)
	nonce := bytes.Repeat([]byte{5}, 32)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 }) // VLEK
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Verify panicked: %v", r)
		}
	}()
	g := &crlGetter{crl: clean, vlekCRL: clean, next: kdsFake}
	if _, err := Verify(context.Background(), ev, VerifyOptions{
		Manifest: testManifest(), Nonce: nonce, Roots: roots, AllowKDS: true, CheckCRL: true,
		Getter: &CachingGetter{Dir: t.TempDir(), Next: g},
	}); err != nil {
		t.Fatal(err)
	}
	if g.vlekAsks != 1 {
		t.Errorf("the VLEK list was asked for %d times, want 1", g.vlekAsks)
	}
}

// Verify as a library with hand-built roots go-sev-guest would dereference
// unchecked (no ProductCerts, no ARK, neither ASK nor ASVK, a nil root):
// refused by name for VCEK and VLEK reports, with and without --check-crl,
// never a panic.
func TestVerifyIncompleteRootsRefused(t *testing.T) {
	s := signer(t, nil)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	clean := currentCRL(t, s.Ark, s.Keys.Ark)
	for name, tc := range map[string]struct {
		root *trust.AMDRootCerts
		want string
	}{
		"nil root":        {nil, `Milan root 0 is nil`},
		"no ProductCerts": {&trust.AMDRootCerts{ProductLine: "Milan"}, `Milan root 0 has no ARK`},
		"no ARK":          {&trust.AMDRootCerts{ProductLine: "Milan", ProductCerts: &trust.ProductCerts{Ask: s.Ask, Asvk: s.Asvk}}, `Milan root 0 has no ARK`},
		"no ASK, no ASVK": {&trust.AMDRootCerts{ProductLine: "Milan", ProductCerts: &trust.ProductCerts{Ark: s.Ark}}, `Milan root 0 has neither an ASK nor an ASVK`},
	} {
		for _, vlek := range []bool{false, true} {
			for _, crl := range []bool{false, true} {
				nonce := bytes.Repeat([]byte{9}, 32)
				ev := evidence(t, s, nonce, testConfig, func(r []byte) {
					if vlek {
						r[0x48] = 1 << 2
					}
				})
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s, vlek=%v, crl=%v: Verify panicked: %v", name, vlek, crl, r)
						}
					}()
					o := VerifyOptions{Manifest: testManifest(), Nonce: nonce,
						Roots: map[string][]*trust.AMDRootCerts{"Milan": {tc.root}}}
					if crl {
						o.AllowKDS, o.CheckCRL = true, true
						o.Getter = &CachingGetter{Dir: t.TempDir(), Next: &crlGetter{crl: clean, vlekCRL: clean, next: kdsFake}}
					}
					_, err := Verify(context.Background(), ev, o)
					if err == nil || !strings.Contains(err.Error(), "trusted roots: "+tc.want) {
						t.Errorf("%s, vlek=%v, crl=%v: %v; want refused with %q", name, vlek, crl, err, tc.want)
					}
				}()
			}
		}
	}
}

package attest

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
	"github.com/google/uuid"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// certTableOf is a GUID certificate table holding certs, in order.
func certTableOf(certs [][2]any) []byte {
	hdr := (len(certs) + 1) * abi.CertTableEntrySize
	t := make([]byte, hdr)
	for i, c := range certs {
		g := uuid.MustParse(c[0].(string))
		b := c[1].([]byte)
		e := t[i*abi.CertTableEntrySize:]
		copy(e, g[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(len(t)))
		binary.LittleEndian.PutUint32(e[20:], uint32(len(b)))
		t = append(t, b...)
	}
	return t
}

// For a version 2 report (no CPUID in it), productLine took the product
// line from the VCEK in the chain even when the report was signed by a
// VLEK: that VCEK is then whatever the host put in its certificate table,
// never verified. It became --json's product_line of an OK, and it drove
// the Turin refusal, so a host could make a good Milan VLEK report fail as
// "AMD Turin", or pass labelled Genoa; and the evidence kept it as
// vcek.pem among "the certificates used".
func TestV2VLEKProductLineFromTheVLEK(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	vcekOf := func(name string) []byte {
		o := signerWith(t, nil, func(b *test.AmdSignerBuilder) {
			b.VcekCustom.Extensions = test.CustomExtensions(kds.TCBParts{}, make([]byte, abi.ChipIDSize), "", name)
		})
		return o.Vcek.Raw
	}
	ev := func(vcek []byte) *agentapi.AttestationResponse {
		{
			e := evidence(t, s, nonce, testConfig, func(r []byte) {
				binary.LittleEndian.PutUint32(r, 2)
				clear(r[0x188:0x18B])
				r[0x48] = 1 << 2 // VLEK
			})
			e.CertTable = certTableOf([][2]any{{abi.VlekGUID, s.Vlek.Raw}, {abi.AskGUID, s.Asvk.Raw}, {abi.ArkGUID, s.Ark.Raw}, {abi.VcekGUID, vcek}})
			return e
		}
	}
	// Roots for both lines, as the embedded roots have (the fake chain
	// under both names).
	roots := fakeRoots(s)
	roots["Genoa"] = []*trust.AMDRootCerts{{ProductLine: "Genoa", ProductCerts: roots["Milan"][0].ProductCerts}}

	// Baseline: no VCEK in the table passes.
	base := evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, 2); clear(r[0x188:0x18B]); r[0x48] = 1 << 2 })
	base.CertTable = certTableOf([][2]any{{abi.VlekGUID, s.Vlek.Raw}, {abi.AskGUID, s.Asvk.Raw}, {abi.ArkGUID, s.Ark.Raw}})
	if _, err := Verify(context.Background(), base, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)}); err != nil {
		t.Fatalf("baseline v2 VLEK report: %v", err)
	}

	res, err := Verify(context.Background(), ev(vcekOf("Genoa-B1")), VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: roots})
	if err != nil {
		t.Fatalf("v2 VLEK report with a Genoa VCEK beside it: %v", err)
	}
	if res.ProductLine != "Milan" {
		t.Errorf("OK result names product line %q, taken from an unverified VCEK the host added; the VLEK that signed is Milan's", res.ProductLine)
	}
	if cc := res.Attestation.GetCertificateChain(); len(cc.GetVcekCert()) != 0 || len(cc.GetVlekCert()) == 0 {
		t.Errorf("the chain kept as evidence has a VCEK of %d bytes and a VLEK of %d: want only the VLEK that signed", len(cc.GetVcekCert()), len(cc.GetVlekCert()))
	}
	_, err = Verify(context.Background(), ev(vcekOf("Turin-B0")), VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)})
	if err != nil && strings.Contains(err.Error(), "Turin") {
		t.Errorf("a Milan VLEK-signed report is refused as Turin because of an unverified VCEK in the host's table: %v", err)
	}
}

package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"
	"github.com/google/uuid"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

const milanFMS = 0x00a00f11

var testMeasurement = bytes.Repeat([]byte{0x5c}, 48)

var testConfig = configOf("console=ttyS0 panic=-1 katana.args=--dev")

// otherWarnings drops the warnings every verification with the fake
// signer gives (its --roots, no --min-tcb).
func otherWarnings(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !strings.HasPrefix(w, "no minimum TCB was checked") && !strings.HasPrefix(w, "the AMD chain was checked against --roots") {
			out = append(out, w)
		}
	}
	return out
}

// configOf is the config an init of this version applies for cmdline.
func configOf(cmdline string) agentapi.AppliedConfig {
	c, err := bootcfg.Parse(cmdline)
	if err != nil {
		panic(err)
	}
	return agentapi.ConfigOf(c.Applied())
}

func testManifest() *manifest.Manifest {
	f := manifest.File{Name: "x", Size: 1, SHA256: hex.EncodeToString(make([]byte, 32))}
	return &manifest.Manifest{
		Schema: manifest.Schema, Tool: manifest.Tool{Name: "hostbuild", Version: "test"},
		Components: manifest.Components{OVMF: f, Kernel: f, Initrd: f},
		Cmdline:    string(testConfig.Cmdline), VMMType: "QEMU", GuestFeatures: "0x1", GuestPolicy: "0x30000",
		Measurements: []manifest.Measurement{
			{VCPUs: 1, VCPUType: "EPYC-v4", Measurement: hex.EncodeToString(bytes.Repeat([]byte{0x11}, 48))},
			{VCPUs: 2, VCPUType: "EPYC-v4", Measurement: hex.EncodeToString(testMeasurement)},
		},
	}
}

func signer(t testing.TB, vcek *ecdsa.PrivateKey) *test.AmdSigner {
	t.Helper()
	return signerWith(t, vcek, nil)
}

// signerWith is signer with edit applied to the chain's builder (nil: none).
func signerWith(t testing.TB, vcek *ecdsa.PrivateKey, edit func(b *test.AmdSignerBuilder)) *test.AmdSigner {
	t.Helper()
	keys := test.DefaultAmdKeys()
	if vcek != nil {
		keys.Vcek = vcek
	}
	now := time.Now().Add(-time.Hour)
	b := &test.AmdSignerBuilder{
		Keys: keys, ProductName: "Milan", CSPID: "go-sev-guest",
		ArkCreationTime: now, AskCreationTime: now, AsvkCreationTime: now, VcekCreationTime: now, VlekCreationTime: now,
	}
	if edit != nil {
		edit(b)
	}
	s, err := b.TestOnlyCertChain()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fakeRoots(s *test.AmdSigner) map[string][]*trust.AMDRootCerts {
	return map[string][]*trust.AMDRootCerts{"Milan": {{
		ProductLine:  "Milan",
		ProductCerts: &trust.ProductCerts{Ark: s.Ark, Ask: s.Ask, Asvk: s.Asvk},
	}}}
}

// verifyEdited verifies, against the test manifest, a report the fake
// signer signed after edit changed its bytes, and returns Verify's error.
func verifyEdited(t testing.TB, edit func(r []byte)) error {
	t.Helper()
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	_, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, edit), VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)})
	return err
}

// evidence is what an honest agent with fake hardware returns for nonce;
// edit changes the report before it is signed.
func evidence(t testing.TB, s *test.AmdSigner, nonce []byte, cfg agentapi.AppliedConfig, edit func(r []byte)) *agentapi.AttestationResponse {
	t.Helper()
	d := agentapi.ConfigDigest(cfg)
	rd, pre, err := agentapi.ReportData(nonce, d)
	if err != nil {
		t.Fatal(err)
	}
	full := test.CreateRawReport(&test.TestReportOptions{ReportData: rd[:], Version: 3, FMS: milanFMS})
	raw := full[:abi.ReportSize]
	binary.LittleEndian.PutUint64(raw[0x08:], 0x30000)
	copy(raw[0x90:0xC0], testMeasurement)
	if edit != nil {
		edit(raw)
	}
	r, ss, err := s.Sign(abi.SignedComponent(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(r, ss, raw); err != nil {
		t.Fatal(err)
	}
	certs, err := s.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	return &agentapi.AttestationResponse{
		APIVersion: 1, Provider: agentapi.ProviderSevGuest, Nonce: hex.EncodeToString(nonce),
		Report: bytes.Clone(raw), CertTable: certs, ReportDataPreimage: pre, ReportData: hex.EncodeToString(rd[:]),
		Config: cfg, ConfigDigest: hex.EncodeToString(d[:]),
	}
}

// certTable is a GUID table with one entry (and its terminator) and no data.
func certTable(guid string, off, n uint32) []byte {
	t := make([]byte, 2*abi.CertTableEntrySize)
	g := uuid.MustParse(guid)
	copy(t, g[:])
	binary.LittleEndian.PutUint32(t[16:], off)
	binary.LittleEndian.PutUint32(t[20:], n)
	return t
}

func TestVerifyMutations(t *testing.T) {
	s := signer(t, nil)
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := signer(t, otherKey) // same ARK/ASK, different VCEK key
	nonce := bytes.Repeat([]byte{7}, 64)
	oldNonce := bytes.Repeat([]byte{8}, 64)
	base := func() VerifyOptions {
		return VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)}
	}
	good := func() *agentapi.AttestationResponse { return evidence(t, s, nonce, testConfig, nil) }
	for _, tc := range []struct {
		name string
		ev   func() *agentapi.AttestationResponse
		opts func(o *VerifyOptions)
		want Class // 0: passes
		// mentions is what the error must say (the diagnosis), if set.
		mentions string
	}{
		{name: "good", ev: good},
		{name: "good with nonce 32", ev: func() *agentapi.AttestationResponse { return evidence(t, s, nonce[:32], testConfig, nil) },
			opts: func(o *VerifyOptions) { o.Nonce = nonce[:32] }},
		// Turin's CPUID (family 0x1a, model 0x02) in the signed report:
		// go-sev-guest v0.15 cannot read its TCB layout.
		{name: "Turin report", want: ClassChain, mentions: "AMD Turin", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x188], r[0x189] = 0x1a, 0x02 })
		}},
		{name: "Genoa report", want: ClassChain, mentions: "Genoa", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x188], r[0x189] = 0x19, 0x11 })
		}},
		{name: "measurement", want: ClassMeasurement, mentions: "expected measurements (1 × EPYC-v4: " + strings.Repeat("11", 48) + "; 2 × EPYC-v4: ", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x90] ^= 1 })
		}},
		{name: "REPORT_DATA: config altered after signing", want: ClassReportData, mentions: "config altered after signing", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Config.Argv = []string{"--dev", "--evil"}
			return e
		}},
		{name: "REPORT_DATA: report binds other bytes", want: ClassReportData, mentions: "is not SHA-512(tag || nonce || config digest)", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x50] ^= 1 })
		}},
		{name: "nonce reuse", want: ClassReportData, mentions: "nonce reuse", ev: func() *agentapi.AttestationResponse { return evidence(t, s, oldNonce, testConfig, nil) }},
		{name: "nonce reuse, response claims the verifier's nonce", want: ClassReportData, mentions: "nonce reuse", ev: func() *agentapi.AttestationResponse {
			e := evidence(t, s, oldNonce, testConfig, nil)
			e.Nonce = hex.EncodeToString(nonce)
			return e
		}},
		{name: "helper fields: response nonce differs from a good report's", want: ClassReportData, mentions: "response nonce", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Nonce = hex.EncodeToString(oldNonce)
			return e
		}},
		{name: "helper fields: nonce and config_digest in upper case", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Nonce, e.ConfigDigest = strings.ToUpper(e.Nonce), strings.ToUpper(e.ConfigDigest)
			return e
		}},
		{name: "helper fields: config_digest left out", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ConfigDigest = ""
			return e
		}},
		{name: "helper fields: config_digest differs from the config's", want: ClassReportData, mentions: "response config_digest", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ConfigDigest = hex.EncodeToString(make([]byte, 32))
			return e
		}},
		{name: "helper fields: report_data differs from the report's", want: ClassReportData, mentions: "response report_data", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ReportData = hex.EncodeToString(make([]byte, 64))
			return e
		}},
		{name: "helper fields: report_data left out", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ReportData = ""
			return e
		}},
		{name: "helper fields: report_data in upper case", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ReportData = strings.ToUpper(e.ReportData)
			return e
		}},
		{name: "helper fields: preimage differs from the recomputed one", want: ClassReportData, mentions: "report_data_preimage", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.ReportDataPreimage = append(bytes.Clone(e.ReportDataPreimage), 0)
			return e
		}},
		{name: "verifier nonce too short", want: ClassReportData, mentions: "verifier nonce", ev: good, opts: func(o *VerifyOptions) { o.Nonce = nonce[:31] }},
		{name: "policy debug bit", want: ClassPolicy, ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] |= 1 << 3 }) // bit 19
		}},
		{name: "policy debug bit, manifest policy allows debug", want: ClassPolicy, ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] |= 1 << 3 })
		}, opts: func(o *VerifyOptions) { o.Manifest.GuestPolicy = "0xb0000" }},
		{name: "policy debug bit allowed", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] |= 1 << 3 })
		}, opts: func(o *VerifyOptions) { o.AllowDebug = true }},
		{name: "policy SMT differs from manifest", want: ClassPolicy, mentions: "(SMT 0, manifest 1)", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] &^= 1 }) // bit 16
		}},
		{name: "policy ABI minimum differs from manifest", want: ClassPolicy, mentions: "(ABI minimum 0.0, manifest 1.2)", ev: good,
			opts: func(o *VerifyOptions) { o.Manifest.GuestPolicy = "0x30102" }},
		{name: "VMPL", want: ClassPolicy, ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x30] = 1 })
		}},
		// Fields only an ID block or HOST_DATA sets: the manifest's launch
		// sets neither, so each is refused, named with its value.
		{name: "HOST_DATA set", want: ClassPolicy, mentions: "HOST_DATA 01" + strings.Repeat("00", 30) + "02,", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0xC0], r[0xDF] = 1, 2 })
		}},
		{name: "FAMILY_ID set", want: ClassPolicy, mentions: "FAMILY_ID " + strings.Repeat("00", 15) + "80,", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x1F] = 0x80 })
		}},
		{name: "IMAGE_ID set", want: ClassPolicy, mentions: "IMAGE_ID 03", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x20] = 3 })
		}},
		{name: "ID_KEY_DIGEST set", want: ClassPolicy, mentions: "ID_KEY_DIGEST " + strings.Repeat("00", 47) + "01,", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x10F] = 1 })
		}},
		{name: "AUTHOR_KEY_DIGEST set", want: ClassPolicy, mentions: "AUTHOR_KEY_DIGEST 04", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x110] = 4 })
		}},
		{name: "GUEST_SVN set", want: ClassPolicy, mentions: "GUEST_SVN 65536,", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x06] = 1 })
		}},
		{name: "AUTHOR_KEY_EN set", want: ClassPolicy, mentions: "has AUTHOR_KEY_EN 1, set by the host", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] |= 1 })
		}},
		{name: "ID block fields set together, all named", want: ClassPolicy, mentions: "has FAMILY_ID 01" + strings.Repeat("00", 15) + ", IMAGE_ID 02" + strings.Repeat("00", 15) + ", ID_KEY_DIGEST 05" + strings.Repeat("00", 47) + ", GUEST_SVN 7, set by", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x10], r[0x20], r[0xE0], r[0x04] = 1, 2, 5, 7 })
		}},
		{name: "provisional firmware (committed TCB below current)", want: ClassPolicy, ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x38] = 1 }) // current_tcb.bl = 1, committed 0
		}},
		{name: "min report version", want: ClassPolicy, ev: good, opts: func(o *VerifyOptions) { o.MinReportVersion = 4 }},
		{name: "min report version equal to the report's", ev: good, opts: func(o *VerifyOptions) { o.MinReportVersion = 3 }},
		{name: "min TCB", want: ClassPolicy, ev: good, opts: func(o *VerifyOptions) { o.MinTCB = kds.TCBParts{SnpSpl: 8} }},
		// Mitigation vectors (report version 5): both must have the bits.
		{name: "min mitigation vector met by both", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { mitVectors(r, 0b111, 0b101) })
		}, opts: func(o *VerifyOptions) { o.MinMitVector = 0b101 }},
		{name: "min mitigation vector, launch vector short", want: ClassPolicy, mentions: "launch mitigation vector (0x1) is missing required bits", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { mitVectors(r, 0b001, 0b101) })
		}, opts: func(o *VerifyOptions) { o.MinMitVector = 0b101 }},
		{name: "min mitigation vector, current vector short", want: ClassPolicy, mentions: "current mitigation vector (0x4) is missing required bits", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { mitVectors(r, 0b101, 0b100) })
		}, opts: func(o *VerifyOptions) { o.MinMitVector = 0b101 }},
		{name: "min mitigation vector of a version 3 report", want: ClassPolicy, mentions: "only version 5 and later carry mitigation vectors", ev: good,
			opts: func(o *VerifyOptions) { o.MinMitVector = 1 }},
		// A migration agent is the host's, bound outside the measurement:
		// refused even when the manifest's policy allows one.
		{name: "policy MIGRATE_MA, manifest allows it", want: ClassPolicy, mentions: "allows a migration agent (MIGRATE_MA, bit 18)", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] |= 1 << 2 }) // bit 18
		}, opts: func(o *VerifyOptions) { o.Manifest.GuestPolicy = "0x70000" }},
		{name: "policy MIGRATE_MA allowed", mentions: "allows a migration agent (accepted with --allow-migration-agent; REPORT_ID_MA", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x08+2] |= 1 << 2 })
		}, opts: func(o *VerifyOptions) { o.Manifest.GuestPolicy = "0x70000"; o.AllowMigrationAgent = true }},
		{name: "one signature byte", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Report[0x2A0] ^= 1
			return e
		}},
		{name: "signature padding byte", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Report[0x2A0+60] ^= 1
			return e
		}},
		{name: "swapped VCEK", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable, _ = other.CertTableBytes()
			return e
		}},
		{name: "swapped VCEK via --certs", want: ClassChain, ev: good, opts: func(o *VerifyOptions) { o.Certs.VCEK = other.Vcek }},
		{name: "untrusted root (embedded AMD roots)", want: ClassChain, ev: good, opts: func(o *VerifyOptions) { o.Roots = nil }},
		{name: "no VCEK anywhere", want: ClassChain, mentions: "no VCEK certificate", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = nil
			return e
		}},
		{name: "VLEK-signed report, VLEK from the guest's table", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 }) // SIGNING_KEY 1: VLEK
		}},
		{name: "VLEK-signed report, VLEK alone from --certs", ev: func() *agentapi.AttestationResponse {
			e := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 })
			e.CertTable = nil
			return e
		}, opts: func(o *VerifyOptions) { o.Certs.VLEK = s.Vlek }},
		{name: "VLEK-signed report without a VLEK", want: ClassChain, mentions: "signed by a VLEK", ev: func() *agentapi.AttestationResponse {
			e := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 })
			e.CertTable = nil
			return e
		}, opts: func(o *VerifyOptions) { o.Certs.VCEK = s.Vcek }},
		{name: "unsigned report (SIGNING_KEY none, zero signature)", want: ClassChain, mentions: "not signed", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Report[0x48] = 7 << 2
			clear(e.Report[0x2A0:])
			return e
		}, opts: func(o *VerifyOptions) { o.AllowKDS, o.Getter = true, constGetter("unused") }},
		{name: "VCEK from --certs", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = nil
			return e
		}, opts: func(o *VerifyOptions) { o.Certs.VCEK = s.Vcek }},
		{name: "report with a byte after the signature", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Report, e.CertTable = append(e.Report, 0), nil
			return e
		}, opts: func(o *VerifyOptions) { o.Certs.VCEK = s.Vcek }},
		{name: "v3 report: bits the decoder drops (stepping byte 0x18A, top nibble)", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, 3) })
			e.Report[0x18A] ^= 0x80
			return e
		}},
		{name: "v3 report without CPUID family and model", want: ClassChain, mentions: "has no CPUID family and model (zero)", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { clear(r[0x188:0x18B]) })
		}},
		{name: "v3 report from a processor go-sev-guest does not know", want: ClassChain, mentions: "family 0x19, model 0xa0, which go-sev-guest v0.15 does not know", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { r[0x188], r[0x189] = 0x19, 0xa0 })
		}},
		{name: "good v3 report", ev: func() *agentapi.AttestationResponse {
			return evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, 3) })
		}},
		{name: "certificate table: entry offset+length wraps uint32", want: ClassChain, mentions: "outside the certificate data", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = certTable(abi.VcekGUID, 0xFFFFFFF0, 0x20)
			return e
		}},
		{name: "certificate table: only the terminator, VCEK from --certs", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = make([]byte, abi.CertTableEntrySize)
			return e
		}, opts: func(o *VerifyOptions) { o.Certs.VCEK = s.Vcek }},
		{name: "certificate table: entry inside the header", want: ClassChain, mentions: "outside the certificate data", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = certTable(abi.VcekGUID, 0, 24)
			return e
		}},
		{name: "certificate table: no terminator", want: ClassChain, mentions: "no all-zero entry", ev: func() *agentapi.AttestationResponse {
			e := good()
			e.CertTable = e.CertTable[:abi.CertTableEntrySize]
			return e
		}},
		{name: "truncated report", want: ClassChain, ev: func() *agentapi.AttestationResponse {
			e := good()
			e.Report = e.Report[:100]
			return e
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			if tc.opts != nil {
				tc.opts(&o)
			}
			res, err := Verify(context.Background(), tc.ev(), o)
			if got := ClassOf(err); got != tc.want || (tc.want == 0 && err != nil) {
				t.Fatalf("Verify: class %v, err %v; want class %v", got, err, tc.want)
			}
			if tc.want != 0 && tc.mentions != "" && !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("Verify error %q does not say %q", err, tc.mentions)
			}
			// A pass that mentions something: one of its warnings says it.
			if ws := strings.Join(res.Warnings, "\n"); tc.want == 0 && tc.mentions != "" && !strings.Contains(ws, tc.mentions) {
				t.Errorf("Verify warnings %q do not say %q", ws, tc.mentions)
			}
			if tc.want == 0 {
				if !res.OK || res.MatchedVCPUs != 2 || res.MatchedType != "EPYC-v4" || res.ProductLine != "Milan" {
					res.Attestation = nil
					t.Errorf("result %+v", res)
				}
				return
			}
			if res.OK || res.ExitCode != int(tc.want) || res.Class != tc.want.String() {
				t.Errorf("result OK=%v exit=%d class=%q", res.OK, res.ExitCode, res.Class)
			}
		})
	}
}

// TestVerifyCmdlineWithOVMFInitrd: with an initrd OVMF adds
// "initrd=initrd" to the measured cmdline (Debian's OVMF appends it, other
// edk2 loaders prepend it), so the init reports it on every good SEV-SNP
// boot: those two exact forms pass, anything else is a measurement failure.
func TestVerifyCmdlineWithOVMFInitrd(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	m := string(testConfig.Cmdline)
	for _, tc := range []struct {
		reported string
		warn     bool // refused
	}{
		{m, false},
		{m + " initrd=initrd", false},
		{"initrd=initrd " + m, false},
		{"initrd=initrd " + m + " initrd=initrd", true},
		{m + "  initrd=initrd", true},
		{m + " initrd=initrd2", true},
		{m + " initrd=other", true},
		{m + "initrd=initrd", true},
		{"console=ttyS0 panic=-1 katana.args=--evil", true},
		{"console=ttyS0 panic=-1 katana.args=--evil initrd=initrd", true},
	} {
		cfg := testConfig
		cfg.Cmdline = []byte(tc.reported)
		res, err := Verify(context.Background(), evidence(t, s, nonce, cfg, nil),
			VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s)})
		if tc.warn {
			if ClassOf(err) != ClassMeasurement || !strings.Contains(err.Error(), fmt.Sprintf("the init reports the cmdline %q, but the manifest measured %q", tc.reported, m)) || res.OK {
				t.Errorf("reported %q, manifest %q: %v (OK %v); want a measurement failure naming both", tc.reported, m, err, res.OK)
			}
		} else if err != nil || len(otherWarnings(res.Warnings)) > 0 {
			t.Errorf("reported %q: %v, warnings %q", tc.reported, err, res.Warnings)
		}
	}
}

// With --kds the VCEK comes from the (fake) KDS and is cached on disk.
func TestVerifyKDSAndCache(t *testing.T) {
	s := signer(t, nil)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingGetter{next: kdsFake}
	cache := t.TempDir()
	nonce := bytes.Repeat([]byte{9}, 32)
	var afterFirst int
	for i := 0; i < 2; i++ {
		if i == 1 {
			afterFirst = counting.n
		}
		ev := evidence(t, s, nonce, testConfig, nil)
		ev.CertTable = nil
		_, err := Verify(context.Background(), ev, VerifyOptions{
			Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true,
			Getter: &CachingGetter{Dir: cache, Next: counting},
		})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if afterFirst == 0 {
		t.Error("the KDS was never asked")
	}
	ents, _ := os.ReadDir(cache)
	if len(ents) == 0 {
		t.Error("nothing cached")
	}
	// The second round must have been served from the cache.
	if afterFirst != counting.n {
		t.Errorf("KDS asked %d times in the first round, %d in both: the cache did not serve the second", afterFirst, counting.n)
	}
	// A damaged entry fails the verification, which names it.
	for _, e := range ents {
		p := filepath.Join(cache, e.Name())
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ev := evidence(t, s, nonce, testConfig, nil)
	ev.CertTable = nil
	_, err = Verify(context.Background(), ev, VerifyOptions{
		Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true,
		Getter: &CachingGetter{Dir: cache, Next: counting},
	})
	if err == nil || !strings.Contains(err.Error(), "from the KDS cache: "+cache+string(filepath.Separator)) || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("verifying with damaged cache entries: %v; want an error naming them", err)
	}
	// go-sev-guest prints the damaged DER whole; shown as its length.
	if err != nil && (!regexp.MustCompile(`DER bytes \(\d+ bytes\)`).MatchString(err.Error()) || strings.Contains(err.Error(), "[48 130")) {
		t.Errorf("the error prints the certificate's bytes: %v", err)
	}
}

// The cache serves what it holds, refetches an empty entry and never keeps
// a revocation list.
func TestCachingGetter(t *testing.T) {
	next := &countingGetter{next: constGetter("from KDS")}
	g := &CachingGetter{Dir: t.TempDir(), Next: next}
	const vcek = "https://kds.example/vcek/v1/Milan/abcd"
	sum := sha256.Sum256([]byte(vcek))
	if err := os.WriteFile(filepath.Join(g.Dir, hex.EncodeToString(sum[:])), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if b, err := g.Get(vcek); err != nil || string(b) != "from KDS" {
			t.Fatalf("Get(%s) round %d = %q, %v", vcek, i, b, err)
		}
	}
	if next.n != 1 {
		t.Errorf("KDS asked %d times for a URL with an empty cache entry, then a filled one; want 1", next.n)
	}
	const crl = "https://kds.example/vcek/v1/Milan/crl"
	for i := 0; i < 2; i++ {
		if _, err := g.Get(crl); err != nil {
			t.Fatal(err)
		}
	}
	if next.n != 3 {
		t.Errorf("KDS asked %d times in all; the CRL must be fetched every time", next.n)
	}
	crlSum := sha256.Sum256([]byte(crl))
	if _, err := os.Stat(filepath.Join(g.Dir, hex.EncodeToString(crlSum[:]))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the CRL was cached: %v", err)
	}
}

type constGetter string

func (c constGetter) Get(string) ([]byte, error) { return []byte(c), nil }

type countingGetter struct {
	next interface{ Get(string) ([]byte, error) }
	n    int
}

func (c *countingGetter) Get(url string) ([]byte, error) { c.n++; return c.next.Get(url) }

// The real Milan report, VCEK and chain in go-sev-guest's verify/testdata
// verify against the embedded AMD roots; any flipped byte fails.
func TestRealMilanReport(t *testing.T) {
	vcek, err := x509.ParseCertificate(testdata.VcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	report := bytes.Clone(testdata.AttestationBytes)
	o := VerifyOptions{Certs: Certs{VCEK: vcek}, Now: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)}
	res := &Result{}
	att, err := VerifyChain(context.Background(), report, nil, o, res)
	if err != nil {
		t.Fatalf("real Milan report does not verify against the embedded roots: %v", err)
	}
	if got := productLine(att); got != "Milan" {
		t.Errorf("product line %q, want Milan", got)
	}
	t.Logf("real report: version %d, signer %s, measurement %s", res.ReportVersion, res.Signer, res.Measurement)
	if testing.Short() {
		t.Skip("flipping every byte takes a while; run without -short")
	}
	passed := 0
	for i := range report {
		for _, bit := range []byte{0x01, 0x80} {
			r := bytes.Clone(report)
			r[i] ^= bit
			if _, err := VerifyChain(context.Background(), r, nil, o, nil); err == nil {
				t.Errorf("report with byte %#x ^ %#x still verifies", i, bit)
			} else if ClassOf(err) != ClassChain {
				t.Errorf("byte %#x: class %v", i, ClassOf(err))
			}
			passed++
		}
	}
	// Every byte of the VCEK too.
	for i := range testdata.VcekBytes {
		b := bytes.Clone(testdata.VcekBytes)
		b[i] ^= 0x01
		c, err := x509.ParseCertificate(b)
		if err != nil {
			continue // unparsable is rejected earlier, by LoadCerts
		}
		o2 := o
		o2.Certs.VCEK = c
		if _, err := VerifyChain(context.Background(), report, nil, o2, nil); err == nil {
			t.Errorf("VCEK with byte %#x flipped still verifies", i)
		}
	}
	t.Logf("%d flipped report variants rejected", passed)
}

// writeManifest writes m to dir/manifest.json and returns its path and the
// digest that evidence records of it.
func writeManifest(t *testing.T, dir string, m *manifest.Manifest) (string, [sha256.Size]byte) {
	t.Helper()
	mpath := filepath.Join(dir, "manifest.json")
	if err := manifest.WriteFile(mpath, m); err != nil {
		t.Fatal(err)
	}
	_, digest, err := manifest.LoadDigest(mpath)
	if err != nil {
		t.Fatal(err)
	}
	return mpath, digest
}

// verifiedEvidence is what attest hands WriteEvidence after verifying an
// honest agent's answer against a manifest written in dir.
func verifiedEvidence(t *testing.T) (in EvidenceIn, s *test.AmdSigner, dir string) {
	t.Helper()
	s = signer(t, nil)
	nonce := bytes.Repeat([]byte{3}, 48)
	ev := evidence(t, s, nonce, testConfig, nil)
	m := testManifest()
	dir = t.TempDir()
	mpath, digest := writeManifest(t, dir, m)
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s)})
	if err != nil {
		t.Fatal(err)
	}
	return EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}, s, dir
}

func TestEvidenceRoundTrip(t *testing.T) {
	in, s, dir := verifiedEvidence(t)
	m := testManifest()
	ev, nonce, mpath, digest, res := in.Response, in.Nonce, in.ManifestPath, in.ManifestSHA256, in.Result
	// The evidence names the manifest verified against, not what the path
	// holds by the time it is written.
	if err := os.WriteFile(mpath, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ev")
	if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, FileManifestDigest)); string(b) != fmt.Sprintf("%x  manifest.json\n", digest) {
		t.Errorf("%s = %q, want the digest of the manifest verified against, %x", FileManifestDigest, b, digest)
	}
	if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath}); err == nil {
		t.Error("overwrote an existing evidence folder")
	}
	var names []string
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// The fake host's table holds a VLEK too; the VCEK signed, so the
	// unchecked VLEK is not among the certificates used.
	want := []string{"ark.pem", "ask.pem", "certs.bin", "config.json", "manifest.sha256", "nonce.hex", "preimage.bin", "report.bin", "response.json", "result.json", "vcek.pem"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("evidence files (-want +got):\n%s", diff)
	}
	got, gotNonce, certs, err := ReadEvidence(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, got); diff != "" {
		t.Errorf("response round trip (-want +got):\n%s", diff)
	}
	if !bytes.Equal(gotNonce, nonce) || certs.VCEK == nil || !certs.VCEK.Equal(s.Vcek) {
		t.Errorf("nonce %x, VCEK %v", gotNonce, certs.VCEK != nil)
	}
	// Offline re-verification from the folder alone.
	got.CertTable = nil
	if _, err := Verify(context.Background(), got, VerifyOptions{Manifest: m, Nonce: gotNonce, Certs: certs, Roots: fakeRoots(s)}); err != nil {
		t.Errorf("offline verify: %v", err)
	}
	// An edited report.bin is noticed.
	raw, _ := os.ReadFile(filepath.Join(out, FileReport))
	raw[0x90] ^= 1
	os.WriteFile(filepath.Join(out, FileReport), raw, 0o644)
	if _, _, _, err := ReadEvidence(out); err == nil {
		t.Error("edited report.bin accepted")
	}
}

// Evidence without a certificate table and with only a VCEK (from --certs)
// has no certs.bin and no empty PEM files, and reads back; a failed write
// leaves nothing beside the folder it was to create.
func TestEvidenceVCEKOnly(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{4}, 32)
	ev := evidence(t, s, nonce, testConfig, nil)
	ev.CertTable = nil
	m := testManifest()
	dir := t.TempDir()
	mpath, digest := writeManifest(t, dir, m)
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Certs: Certs{VCEK: s.Vcek}, Roots: fakeRoots(s)})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ev")
	if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(out)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if i, _ := e.Info(); i.Size() == 0 {
			t.Errorf("evidence file %s is empty", e.Name())
		}
	}
	for _, n := range []string{FileCertTable, "vlek.pem"} {
		if slices.Contains(names, n) {
			t.Errorf("evidence files %q include %s, which there is nothing to put in", names, n)
		}
	}
	got, gotNonce, certs, err := ReadEvidence(out)
	if err != nil {
		t.Fatalf("ReadEvidence: %v", err)
	}
	if !bytes.Equal(got.Report, ev.Report) || !bytes.Equal(gotNonce, nonce) || certs.VCEK == nil || !certs.VCEK.Equal(s.Vcek) || certs.VLEK != nil {
		t.Errorf("ReadEvidence: report equal %v, nonce %x, VCEK %v, VLEK %v", bytes.Equal(got.Report, ev.Report), gotNonce, certs.VCEK != nil, certs.VLEK != nil)
	}

	// Evidence without the digest of the manifest verified against is
	// refused, and leaves neither the folder nor a temporary one.
	empty := t.TempDir()
	err = WriteEvidence(filepath.Join(empty, "ev"), EvidenceIn{Response: ev, Nonce: nonce, ManifestPath: mpath})
	if err == nil || !strings.Contains(err.Error(), "no digest of the manifest verified against") {
		t.Fatalf("WriteEvidence without a manifest digest: %v, want a refusal", err)
	}
	if left, _ := os.ReadDir(empty); len(left) != 0 {
		t.Errorf("a failed WriteEvidence left %v behind", left)
	}
}

// LoadCerts reads snpguest's layout: a VCEK or a VLEK is required, the ASK
// and ARK are optional, PEM or DER; an unparsable file is an error naming it.
func TestLoadCerts(t *testing.T) {
	s := signer(t, nil)
	pemOf := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		vcek    bool
		vlek    bool
		wantErr string
	}{
		{name: "vcek only", files: map[string][]byte{"vcek.pem": pemOf(s.Vcek)}, vcek: true},
		{name: "vcek as DER", files: map[string][]byte{"vcek.pem": s.Vcek.Raw}, vcek: true},
		{name: "vlek only", files: map[string][]byte{"vlek.pem": pemOf(s.Vlek)}, vlek: true},
		{name: "both with the chain", files: map[string][]byte{"vcek.pem": pemOf(s.Vcek), "vlek.pem": pemOf(s.Vlek), "ask.pem": pemOf(s.Ask), "ark.pem": pemOf(s.Ark)}, vcek: true, vlek: true},
		{name: "chain without an endorsement key", files: map[string][]byte{"ask.pem": pemOf(s.Ask), "ark.pem": pemOf(s.Ark)}, wantErr: "neither vcek.pem nor vlek.pem"},
		{name: "empty folder", files: nil, wantErr: "neither vcek.pem nor vlek.pem"},
		{name: "unparsable ask", files: map[string][]byte{"vcek.pem": pemOf(s.Vcek), "ask.pem": []byte("junk")}, wantErr: "ask.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := LoadCerts(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadCerts = %v, want an error mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadCerts: %v", err)
			}
			if (c.VCEK != nil) != tc.vcek || (c.VLEK != nil) != tc.vlek || (c.VCEK != nil && !c.VCEK.Equal(s.Vcek)) || (c.VLEK != nil && !c.VLEK.Equal(s.Vlek)) {
				t.Errorf("LoadCerts: VCEK %v, VLEK %v; want %v, %v", c.VCEK != nil, c.VLEK != nil, tc.vcek, tc.vlek)
			}
		})
	}
}

// A --certs folder that does not exist, or a file given for it, is named
// as such, not as a folder without vcek.pem.
func TestLoadCertsNotAFolder(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "certs")
	if _, err := LoadCerts(missing); err == nil || !strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "neither") {
		t.Errorf("missing folder: %v", err)
	}
	file := filepath.Join(dir, "vcek.pem")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCerts(file); err == nil || !strings.Contains(err.Error(), file+" is not a folder") {
		t.Errorf("a file: %v", err)
	}
}

// LoadRoots makes an ASK+ARK bundle the only trusted roots for its product
// line: the fake signer's chain verifies with it, the same report does not
// with another bundle, and a missing or malformed bundle is an error.
func TestLoadRoots(t *testing.T) {
	s := signer(t, nil)
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nonce := bytes.Repeat([]byte{5}, 32)
	ev := evidence(t, s, nonce, testConfig, nil)
	roots, err := LoadRoots(write("chain.pem", s.Ask, s.Ark), "Milan")
	if err != nil {
		t.Fatalf("LoadRoots: %v", err)
	}
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: roots}); err != nil {
		t.Errorf("Verify with the loaded roots: %v", err)
	}
	amd := filepath.Join(dir, "amd-milan.pem") // AMD's real Milan ASK and ARK
	if err := os.WriteFile(amd, trust.AskArkMilanVcekBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	amdRoots, err := LoadRoots(amd, "Milan")
	if err != nil {
		t.Fatalf("LoadRoots(AMD's Milan chain): %v", err)
	}
	if _, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: amdRoots}); ClassOf(err) != ClassChain {
		t.Errorf("Verify of the fake signer's report with AMD's roots: %v, want a chain failure", err)
	}
	if _, err := LoadRoots(filepath.Join(dir, "missing.pem"), "Milan"); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("LoadRoots(missing) = %v, want an error naming the file", err)
	}
	if _, err := LoadRoots(write("ask-only.pem", s.Ask), "Milan"); err == nil || !strings.Contains(err.Error(), "ask-only.pem") {
		t.Errorf("LoadRoots(ASK only) = %v, want an error naming the file", err)
	}
	// Refused up front, naming what is wrong, where go-sev-guest would
	// have failed every chain later with "could not be verified by any
	// trusted roots": the pair in the wrong order, an ASK another ARK
	// signed, a second certificate that is no ARK.
	otherArk := selfSignedCA(t, "OTHER-ARK")
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		want  string
	}{
		{"swapped.pem", []*x509.Certificate{s.Ark, s.Ask}, "is not self-signed"},
		{"foreign-ark.pem", []*x509.Certificate{s.Ask, otherArk}, "is not signed by the ARK (OTHER-ARK)"},
		{"vcek-as-ark.pem", []*x509.Certificate{s.Ask, s.Vcek}, "is not self-signed"},
	} {
		if _, err := LoadRoots(write(tc.name, tc.certs...), "Milan"); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("LoadRoots(%s) = %v, want an error naming the file and saying %q", tc.name, err, tc.want)
		}
	}
}

// One certificate per file: a second PEM block or bytes after the first
// are refused, not dropped unread; PEM and DER alike.
func TestParseCertOne(t *testing.T) {
	s := signer(t, nil)
	one := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Vcek.Raw})
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" accepted
	}{
		{"PEM", one, ""},
		{"PEM, trailing newlines", append(bytes.Clone(one), "\n\n"...), ""},
		{"DER", s.Vcek.Raw, ""},
		{"two PEM blocks", append(bytes.Clone(one), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Ask.Raw})...), "a second PEM block or other bytes after it"},
		{"PEM then text", append(bytes.Clone(one), "junk"...), "a second PEM block or other bytes after it"},
		{"a key, not a certificate", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: s.Vcek.Raw}), `PEM block "PRIVATE KEY", want CERTIFICATE`},
		{"DER then a byte", append(bytes.Clone(s.Vcek.Raw), 0), "trailing data"},
	} {
		c, err := parseCert(tc.b)
		if tc.want == "" {
			if err != nil || !c.Equal(s.Vcek) {
				t.Errorf("%s: %v, want the VCEK", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseCert: a certificate file from an evidence folder or --certs
// (a third party's bytes) gives one certificate whose DER is the file's
// (PEM-decoded), or an error; never a panic.
func FuzzParseCert(f *testing.F) {
	s := signer(f, nil)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Vcek.Raw}))
	f.Add(s.Ask.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCert(b)
		if err != nil {
			return
		}
		der := b
		if p, _ := pem.Decode(b); p != nil {
			der = p.Bytes
			// parseCert's doc: a file with more than the certificate (a
			// second PEM block) is refused, not read in part. A block
			// pem.Decode skips (malformed) is one too: what it holds
			// would be kept and never looked at.
			if n := bytes.Count(b, []byte("-----BEGIN")); n != 1 {
				t.Fatalf("accepted a PEM file with %d BEGIN lines: %q", n, b)
			}
		}
		if !bytes.Equal(c.Raw, der) {
			t.Fatalf("parsed certificate's DER (%d bytes) is not the input's (%d bytes)", len(c.Raw), len(der))
		}
	})
}

// FuzzParseRoots: a --roots bundle is accepted only as an ASK (or ASVK)
// the ARK signed, then a self-signed ARK; never a panic.
func FuzzParseRoots(f *testing.F) {
	s := signer(f, nil)
	var good []byte
	for _, c := range []*x509.Certificate{s.Ask, s.Ark} {
		good = append(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f.Add(good)
	f.Add(trust.AskArkMilanVcekBytes)
	f.Add(append(bytes.Clone(good), good...))
	f.Fuzz(func(t *testing.T, b []byte) {
		roots, err := parseRoots(b, "Milan")
		if err != nil {
			return
		}
		pc := roots["Milan"][0].ProductCerts
		ica := pc.Ask
		if ica == nil {
			ica = pc.Asvk
		}
		if ica == nil || pc.Ark == nil || pc.Ark.CheckSignatureFrom(pc.Ark) != nil || ica.CheckSignatureFrom(pc.Ark) != nil {
			t.Fatalf("accepted a bundle that is not an ASK signed by a self-signed ARK")
		}
	})
}

func TestParseMinTCB(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    kds.TCBParts
		wantErr bool
	}{
		{in: "", wantErr: true}, // required: none says "no floor"
		{in: "none", want: kds.TCBParts{}},
		{in: "bl=3,tee=0,snp=8,ucode=115", want: kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 115}},
		{in: "bl=3,tee=0,snp=22,ucode=213,snp=0", wantErr: true}, // the second snp= would lower the floor
		{in: "None", wantErr: true},
		{in: "0x7308000000000003", want: kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 0x73}},
		{in: "bl=300", wantErr: true},
		// A part left out would be a floor of 0 for it, unseen.
		{in: "bl=3,tee=0,snp=8", wantErr: true},
		{in: "snp=22,ucode=213", wantErr: true},
		{in: "fmc=1", wantErr: true},
		{in: "0xzz", wantErr: true},
	} {
		got, err := ParseMinTCB(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseMinTCB(%q) error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" && !tc.wantErr {
			t.Errorf("ParseMinTCB(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// Every byte of a signed report counts in the layouts of report versions 3
// and 5 (the CPUID fields): flipping the low or the high bit of any byte
// fails the chain check. Version 2 is the real Milan report's, flipped in
// TestRealMilanReport.
func TestFlipEveryByteEachVersion(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), Certs: Certs{VCEK: s.Vcek}}
	for _, ver := range []uint32{3, 5} {
		ev := evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, ver) })
		if _, err := VerifyChain(context.Background(), ev.Report, nil, o, nil); err != nil {
			t.Fatalf("version %d: the unaltered report fails: %v", ver, err)
		}
		for i := range ev.Report {
			for _, bit := range []byte{0x01, 0x80} {
				r := bytes.Clone(ev.Report)
				r[i] ^= bit
				if _, err := VerifyChain(context.Background(), r, nil, o, nil); err == nil {
					t.Errorf("version %d: byte %#x ^ %#x still verifies", ver, i, bit)
				}
			}
		}
	}
}

// The certificate table comes from the host. Whatever its bytes, decoding it
// returns an error or a chain, and a table checkCertTable accepts never makes
// go-sev-guest's own parser panic (its uint32 bounds check wraps).
func FuzzCertTable(f *testing.F) {
	f.Add([]byte{})
	f.Add(certTable(abi.VcekGUID, 0xFFFFFFF0, 0x20))
	f.Add(certTable(abi.VcekGUID, 48, 0))
	f.Add(append(certTable(abi.ArkGUID, 48, 4), 1, 2, 3, 4))
	f.Add(make([]byte, abi.CertTableEntrySize))
	report := testdata.AttestationBytes[:abi.ReportSize]
	f.Fuzz(func(t *testing.T, table []byte) {
		if checkCertTable(table) != nil {
			if _, err := decodeWithCertTable(report, table); err == nil {
				t.Fatal("decodeWithCertTable accepts a table checkCertTable refuses")
			}
			return
		}
		// go-sev-guest copies each entry: what an accepted table costs is
		// bounded by its own size (entries neither overlap nor repeat).
		var sum uint64
		for i := 0; (i+1)*abi.CertTableEntrySize <= len(table); i++ {
			e := table[i*abi.CertTableEntrySize:]
			if bytes.Equal(e[:abi.CertTableEntrySize], make([]byte, abi.CertTableEntrySize)) {
				break
			}
			sum += uint64(binary.LittleEndian.Uint32(e[20:]))
		}
		if sum > uint64(len(table)) {
			t.Fatalf("accepted table of %d bytes whose entries name %d bytes", len(table), sum)
		}
		if _, err := abi.ReportCertsToProto(append(bytes.Clone(report), table...)); err != nil && len(table) > 0 {
			t.Logf("accepted by checkCertTable, refused by go-sev-guest: %v", err)
		}
	})
}

// signerTCB is a fake chain whose VCEK certifies tcb (a fake chip with a
// zero HWID, as the fake reports have).
func signerTCB(t testing.TB, tcb kds.TCBParts) *test.AmdSigner {
	t.Helper()
	return signerWith(t, nil, func(b *test.AmdSignerBuilder) {
		b.VcekCustom.Extensions = test.CustomExtensions(tcb, make([]byte, abi.ChipIDSize), "", "Milan-B1")
	})
}

// setTCBs sets a report's CURRENT, COMMITTED, REPORTED and LAUNCH TCB.
func setTCBs(r []byte, current, reported, launch kds.TCBParts) {
	v := func(p kds.TCBParts) uint64 { c, _ := kds.ComposeTCBParts(p); return uint64(c) }
	binary.LittleEndian.PutUint64(r[0x38:], v(current))
	binary.LittleEndian.PutUint64(r[0x1E0:], v(current)) // committed
	binary.LittleEndian.PutUint64(r[0x180:], v(reported))
	binary.LittleEndian.PutUint64(r[0x1F0:], v(launch))
}

// --min-tcb holds for the TCB the guest was launched under too: a guest
// launched on firmware below the minimum (then updated in place, which
// SEV-SNP allows on a running guest) was exposed to that firmware's flaws
// when its memory was measured and encrypted, whatever it reports now.
func TestVerifyMinTCBCoversLaunchTCB(t *testing.T) {
	patched := kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 115}
	old := kds.TCBParts{BlSpl: 3, SnpSpl: 7, UcodeSpl: 115}
	s := signerTCB(t, patched)
	nonce := bytes.Repeat([]byte{7}, 64)
	for _, tc := range []struct {
		name   string
		launch kds.TCBParts
		min    kds.TCBParts
		want   Class
	}{
		{name: "launched on the minimum", launch: patched, min: patched},
		{name: "no minimum, launched on older firmware", launch: old},
		{name: "launched below the minimum", launch: old, min: patched, want: ClassPolicy},
		{name: "launched below the minimum in the microcode only", launch: kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 114}, min: patched, want: ClassPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := evidence(t, s, nonce, testConfig, func(r []byte) { setTCBs(r, patched, patched, tc.launch) })
			res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), MinTCB: tc.min})
			if got := ClassOf(err); got != tc.want || (tc.want == 0 && err != nil) {
				t.Fatalf("Verify: class %v, err %v; want class %v", got, err, tc.want)
			}
			// An OK without a minimum says that no TCB was checked.
			warned := slices.ContainsFunc(res.Warnings, func(w string) bool {
				return strings.HasPrefix(w, "no minimum TCB was checked (--min-tcb none, or every part 0)") && strings.Contains(w, "Milan (this report's: 0x")
			})
			if tc.want == 0 && warned != (tc.min == kds.TCBParts{}) {
				t.Errorf("warnings %q: a no-minimum warning %v, want %v", res.Warnings, warned, tc.min == kds.TCBParts{})
			}
			if !slices.Contains(res.Warnings, "the AMD chain was checked against --roots, not the AMD roots embedded in go-sev-guest: the report is only as genuine as that file") && tc.want == 0 {
				t.Errorf("warnings %q lack the --roots one", res.Warnings)
			}
			if tc.want != 0 && !strings.Contains(err.Error(), "LAUNCH_TCB") {
				t.Errorf("error %q does not name LAUNCH_TCB", err)
			}
		})
	}
}

// Every file of an evidence folder that restates part of response.json
// must agree with it: verify checks response.json, and an auditor who reads
// config.json (Katana's argv) or preimage.bin from a folder that verified
// must be reading what was verified. An edited one is refused, naming it;
// a missing one is not (nothing is claimed).
func TestEvidenceDerivedFilesMustAgree(t *testing.T) {
	in, _, _ := verifiedEvidence(t)
	ev, nonce, mpath, digest, res := in.Response, in.Nonce, in.ManifestPath, in.ManifestSHA256, in.Result
	evil := testConfig
	evil.Argv = []string{"--dev", "--evil"}
	evilJSON, _ := json.MarshalIndent(evil, "", "  ")
	for _, tc := range []struct {
		file string
		edit func(b []byte) []byte // nil: remove the file
	}{
		{FileConfig, func([]byte) []byte { return append(evilJSON, '\n') }},
		{FileConfig, func(b []byte) []byte { return append(b, ' ') }},
		{FilePreimage, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{FileCertTable, func(b []byte) []byte { return b[:len(b)-1] }},
		{FileReport, func(b []byte) []byte { b[0x90] ^= 1; return b }},
		{FileConfig, nil},
		{FilePreimage, nil},
		{FileCertTable, nil},
		{FileReport, nil},
	} {
		name := tc.file + " edited"
		if tc.edit == nil {
			name = tc.file + " removed"
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ev")
			if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(out, tc.file)
			if tc.edit == nil {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if _, _, _, err := ReadEvidence(out); err != nil {
					t.Errorf("ReadEvidence without %s: %v", tc.file, err)
				}
				return
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := ReadEvidence(out); err == nil || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("ReadEvidence with %s edited: %v, want an error naming it", tc.file, err)
			}
		})
	}
	// A certs.bin where the response has no table is refused too.
	noTable := *ev
	noTable.CertTable = nil
	out := filepath.Join(t.TempDir(), "ev")
	if err := WriteEvidence(out, EvidenceIn{Response: &noTable, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, FileCertTable), ev.CertTable, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ReadEvidence(out); err == nil || !strings.Contains(err.Error(), FileCertTable) {
		t.Errorf("ReadEvidence with a certs.bin beside a response without a table: %v, want an error naming it", err)
	}
}

// Classified errors' text has its unprintable runes escaped in place.
func TestErrorTextEscaped(t *testing.T) {
	err := fail(ClassChain, "VCEK certificate subject common name %v not expected", "SEV-VCEK\x1b[2K\u009b")
	if got, want := err.Error(), `chain: VCEK certificate subject common name SEV-VCEK\x1b[2K\u009b not expected`; got != want {
		t.Errorf("classified error text %q, want %q", got, want)
	}
}

// crlGetter serves crl for the product's CRL URL (an error when nil),
// vlekCRL for the VLEK chain's (KDS's /vlek/ endpoint), and asks next for
// everything else, counting the requests for each list.
type crlGetter struct {
	crl, vlekCRL   []byte
	next           trust.HTTPSGetter
	asks, vlekAsks int
}

func (g *crlGetter) Get(url string) ([]byte, error) {
	if strings.HasSuffix(url, "/crl") {
		b := &g.crl
		if strings.Contains(url, "/vlek/") {
			b, g.vlekAsks = &g.vlekCRL, g.vlekAsks+1
		} else {
			g.asks++
		}
		if *b == nil {
			return nil, errors.New("KDS unreachable")
		}
		return *b, nil
	}
	return g.next.Get(url)
}

// datedCRL is a revocation list issued at this, current until next,
// signed by signer with key, listing revoked.
func datedCRL(t testing.TB, this, next time.Time, signer *x509.Certificate, key any, revoked ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: this, NextUpdate: next,
		SignatureAlgorithm: x509.SHA384WithRSAPSS}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	b, err := x509.CreateRevocationList(rand.Reader, tmpl, signer, key.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantChainFailure fails the test unless err is nil (mentions "") or a
// chain failure saying mentions.
func wantChainFailure(t *testing.T, err error, mentions string) {
	t.Helper()
	switch {
	case mentions == "" && err != nil:
		t.Fatalf("Verify: %v", err)
	case mentions != "" && (ClassOf(err) != ClassChain || !strings.Contains(err.Error(), mentions)):
		t.Fatalf("Verify: %v; want a chain failure saying %q", err, mentions)
	}
}

// otherCRLSigner is a CA with the ARK's subject and the right to sign
// revocation lists that is not the ARK.
func otherCRLSigner(t testing.TB, s *test.AmdSigner) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: s.Ark.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// currentCRL is datedCRL issued an hour ago, current for a day.
func currentCRL(t testing.TB, signer *x509.Certificate, key any, revoked ...*x509.Certificate) []byte {
	t.Helper()
	return datedCRL(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), signer, key, revoked...)
}

// --check-crl: AMD's revocation list, signed by the ARK, is fetched on
// every verification; a revoked ASK is refused, as are a list the ARK did
// not sign, a list not in force now and no list at all. Without CheckCRL
// it is not asked for.
func TestVerifyCRL(t *testing.T) {
	s := signer(t, nil)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	// withoutNextUpdate re-signs the ARK's list b with its nextUpdate
	// left out (crypto/x509 writes one always; RFC 5280 makes it optional).
	withoutNextUpdate := func(b []byte) []byte {
		t.Helper()
		var outer struct {
			TBS    asn1.RawValue
			SigAlg asn1.RawValue
			Sig    asn1.BitString
		}
		var tbs asn1.RawValue
		if _, err := asn1.Unmarshal(b, &outer); err != nil {
			t.Fatal(err)
		}
		if _, err := asn1.Unmarshal(outer.TBS.FullBytes, &tbs); err != nil {
			t.Fatal(err)
		}
		var fields []byte // version, signature, issuer, thisUpdate; nextUpdate (the 5th) dropped
		for i, rest := 0, tbs.Bytes; len(rest) > 0; i++ {
			var f asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &f); err != nil {
				t.Fatal(err)
			}
			if i != 4 {
				fields = append(fields, f.FullBytes...)
			}
		}
		newTBS, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: fields})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha512.Sum384(newTBS)
		sig, err := rsa.SignPSS(rand.Reader, s.Keys.Ark, crypto.SHA384, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		outer.TBS = asn1.RawValue{FullBytes: newTBS}
		outer.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
		out, err := asn1.Marshal(outer)
		if err != nil {
			t.Fatal(err)
		}
		if crl, err := x509.ParseRevocationList(out); err != nil || !crl.NextUpdate.IsZero() || crl.CheckSignatureFrom(s.Ark) != nil {
			t.Fatalf("re-signed list without nextUpdate: %v", err)
		}
		return out
	}
	otherCA, otherKey := otherCRLSigner(t, s)
	nonce := bytes.Repeat([]byte{5}, 32)
	for _, tc := range []struct {
		name     string
		crl      []byte
		check    bool
		mentions string // "" passes
	}{
		{"not asked without CheckCRL", nil, false, ""},
		{"clean list", currentCRL(t, s.Ark, s.Keys.Ark), true, ""},
		{"ASK revoked", currentCRL(t, s.Ark, s.Keys.Ark, s.Ask), true, "ASK was revoked"},
		{"list signed by another CA, not the ARK", currentCRL(t, otherCA, otherKey), true, "CRL is not signed by ARK"},
		{"no list", nil, true, "KDS unreachable; could not fetch product CRL"},
		// The dates: go-sev-guest checks none of them.
		{"list past its nextUpdate", datedCRL(t, time.Now().Add(-60*24*time.Hour), time.Now().Add(-time.Minute), s.Ark, s.Keys.Ark), true, "is out of date: it was current until"},
		{"list issued in the future", datedCRL(t, time.Now().Add(time.Hour), time.Now().Add(48*time.Hour), s.Ark, s.Keys.Ark), true, "after the time of this check"},
		{"list issued within the clock skew", datedCRL(t, time.Now().Add(time.Minute), time.Now().Add(48*time.Hour), s.Ark, s.Keys.Ark), true, ""},
		{"list with no nextUpdate", withoutNextUpdate(currentCRL(t, s.Ark, s.Keys.Ark)), true, "has no nextUpdate"},
		{"stale list revoking the ASK", datedCRL(t, time.Now().Add(-60*24*time.Hour), time.Now().Add(-time.Minute), s.Ark, s.Keys.Ark, s.Ask), true, "is out of date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &crlGetter{crl: tc.crl, next: kdsFake}
			_, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, nil), VerifyOptions{
				Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true, CheckCRL: tc.check,
				Getter: &CachingGetter{Dir: t.TempDir(), Next: g},
			})
			wantChainFailure(t, err, tc.mentions)
			if want := map[bool]int{false: 0, true: 1}[tc.check]; g.asks != want || g.vlekAsks != 0 {
				t.Errorf("the CRL was asked for %d times, want %d; the VLEK chain's %d times, want 0", g.asks, want, g.vlekAsks)
			}
		})
	}
	if _, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, nil), VerifyOptions{
		Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), CheckCRL: true}); ClassOf(err) != ClassChain || !strings.Contains(err.Error(), "needs fetching from AMD's KDS") {
		t.Errorf("CheckCRL without AllowKDS: %v", err)
	}
}

// --check-crl on a VLEK-signed report: the intermediate is the ASVK, whose
// revocation list is KDS's VLEK one (go-sev-guest fetches only the ASK's).
// It is fetched too, must be signed by the ARK and in force, and a revoked
// ASVK is refused. A VCEK-signed report never asks for it (TestVerifyCRL).
func TestVerifyCRLVLEK(t *testing.T) {
	// The fake chain gives the ASK and the ASVK one serial: tell them apart.
	s := signerWith(t, nil, func(b *test.AmdSignerBuilder) { b.AsvkCustom.SerialNumber = big.NewInt(0x5e7) })
	if s.Asvk.SerialNumber.Cmp(s.Ask.SerialNumber) == 0 {
		t.Fatal("fake ASK and ASVK share a serial")
	}
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, otherKey := otherCRLSigner(t, s)
	clean := currentCRL(t, s.Ark, s.Keys.Ark)
	nonce := bytes.Repeat([]byte{5}, 32)
	for _, tc := range []struct {
		name         string
		crl, vlekCRL []byte
		mentions     string // "" passes
		wantVLEKAsks int
	}{
		{"clean lists", clean, clean, "", 1},
		{"ASVK revoked", clean, currentCRL(t, s.Ark, s.Keys.Ark, s.Asvk), "the ASVK that signed the VLEK (serial 1511) was revoked", 1},
		{"ASVK's serial in the ASK's list only", currentCRL(t, s.Ark, s.Keys.Ark, s.Asvk), clean, "", 1},
		{"VLEK list signed by another CA", clean, currentCRL(t, otherCA, otherKey), "/vlek/v1/Milan/crl is not signed by the ARK", 1},
		{"VLEK list past its nextUpdate", clean, datedCRL(t, time.Now().Add(-60*24*time.Hour), time.Now().Add(-time.Minute), s.Ark, s.Keys.Ark), "is out of date", 1},
		{"no VLEK list", clean, nil, "fetching the ASVK's revocation list", 1},
		{"VLEK list not a list", clean, []byte("not DER"), "revocation list from https://kdsintf.amd.com/vlek/v1/Milan/crl", 1},
		{"ASK revoked: refused before the VLEK list", currentCRL(t, s.Ark, s.Keys.Ark, s.Ask), clean, "ASK was revoked", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &crlGetter{crl: tc.crl, vlekCRL: tc.vlekCRL, next: kdsFake}
			ev := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 }) // SIGNING_KEY 1: VLEK
			_, err := Verify(context.Background(), ev, VerifyOptions{
				Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true, CheckCRL: true,
				Getter: &CachingGetter{Dir: t.TempDir(), Next: g},
			})
			wantChainFailure(t, err, tc.mentions)
			if g.asks != 1 || g.vlekAsks != tc.wantVLEKAsks {
				t.Errorf("lists asked for: the ASK's %d times, the VLEK chain's %d; want 1 and %d", g.asks, g.vlekAsks, tc.wantVLEKAsks)
			}
		})
	}
	// A version 2 report names no product line, and with the VLEK alone at
	// hand nothing else does: the ASVK is found by what signed the VLEK.
	ev := evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, 2); clear(r[0x188:0x1a0]); r[0x48] = 1 << 2 })
	ev.CertTable = nil
	if _, err := Verify(context.Background(), ev, VerifyOptions{
		Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true, CheckCRL: true,
		Certs: Certs{VLEK: s.Vlek}, Getter: &CachingGetter{Dir: t.TempDir(), Next: &crlGetter{crl: clean, vlekCRL: clean, next: kdsFake}},
	}); err != nil {
		t.Errorf("version 2 VLEK report, no product line: %v", err)
	}
}

// The embedded roots carry each product line's ASVK beside its ASK, under
// one ARK (trust.DefaultRootCerts has no ASVK, so every VLEK-signed report
// failed without --roots).
func TestEmbeddedRoots(t *testing.T) {
	// go-sev-guest keeps a fetched revocation list in the AMDRootCerts:
	// each verification gets its own.
	if a, b := embeddedRoots(), embeddedRoots(); a["Milan"][0] == b["Milan"][0] {
		t.Error("two calls share an AMDRootCerts")
	}
	if len(embeddedRoots()) != len(trust.DefaultRootCerts) {
		t.Errorf("embedded roots for %d product lines, go-sev-guest's defaults for %d", len(embeddedRoots()), len(trust.DefaultRootCerts))
	}
	for _, line := range []string{"Milan", "Genoa"} {
		rs := embeddedRoots()[line]
		if len(rs) != 1 || rs[0].ProductLine != line {
			t.Fatalf("%s: roots %v", line, rs)
		}
		pc := rs[0].ProductCerts
		def := trust.DefaultRootCerts[line].ProductCerts
		if !pc.Ark.Equal(def.Ark) || !pc.Ask.Equal(def.Ask) {
			t.Errorf("%s: ARK or ASK differ from go-sev-guest's defaults", line)
		}
		if pc.Asvk == nil || pc.Asvk.Subject.CommonName != "SEV-VLEK-"+line || pc.Asvk.CheckSignatureFrom(pc.Ark) != nil {
			t.Errorf("%s: no ASVK signed by the ARK: %v", line, pc.Asvk)
		}
	}
	// A fake VLEK-signed report against the embedded roots now fails on
	// its signature (not AMD's), not on a missing intermediate.
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{5}, 32)
	ev := evidence(t, s, nonce, testConfig, func(r []byte) { r[0x48] = 1 << 2 })
	_, err := Verify(context.Background(), ev, VerifyOptions{Manifest: testManifest(), Nonce: nonce})
	if ClassOf(err) != ClassChain || strings.Contains(err.Error(), "missing intermediate") {
		t.Errorf("fake VLEK report against the embedded roots: %v; want a chain failure other than a missing ASVK", err)
	}
}

// The ASK and ARK the host puts in the guest's table play no part in the
// chain check (the trusted roots do): the evidence records the trusted
// pair that signed the VCEK, not the host's, and the result says that the
// host's differed.
func TestEvidenceRecordsTrustedRoots(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	hostCert := selfSignedCA(t, "HOST-ARK")
	h := *s
	h.Ark, h.Ask = hostCert, hostCert
	ev := evidence(t, s, nonce, testConfig, nil)
	var err error
	if ev.CertTable, err = h.CertTableBytes(); err != nil {
		t.Fatal(err)
	}
	m := testManifest()
	dir := t.TempDir()
	mpath, digest := writeManifest(t, dir, m)
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if ws := strings.Join(res.Warnings, "\n"); !strings.Contains(ws, "the ASK or ARK the host gave (the guest's certificate table or --certs) is not the trusted one") {
		t.Errorf("warnings %q do not say that the host's ASK/ARK were not the trusted ones", ws)
	}
	out := filepath.Join(dir, "ev")
	if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]*x509.Certificate{"ark.pem": s.Ark, "ask.pem": s.Ask} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCert(b)
		if err != nil || !c.Equal(want) {
			t.Errorf("evidence %s: %v, subject %q; want the trusted %q", name, err, c.Subject.CommonName, want.Subject.CommonName)
		}
	}
}

// mitVectors makes r a version 5 report with these LAUNCH_MIT_VECTOR and
// CURRENT_MIT_VECTOR.
func mitVectors(r []byte, launch, current uint64) {
	binary.LittleEndian.PutUint32(r, 5)
	binary.LittleEndian.PutUint64(r[0x1F8:], launch)
	binary.LittleEndian.PutUint64(r[0x200:], current)
}

// selfSignedCA is a self-signed P-384 CA certificate named cn, valid for
// the hour around now: a root that is not AMD's.
func selfSignedCA(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

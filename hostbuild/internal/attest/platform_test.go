package attest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	test "github.com/google/go-sev-guest/testing"
)

// --platform: each word refuses a report whose PLATFORM_INFO lacks it
// (policy failure, exit 7, naming the word and the bits seen), and passes
// one that has it; without --platform nothing is required. Bits
// go-sev-guest does not know are refused only when something is required.
func TestVerifyPlatform(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{3}, 32)
	for _, tc := range []struct {
		name     string
		platform string
		info     uint64
		mentions string // "" passes
	}{
		{"nothing required, SMT on", "", 1 << 0, ""},
		{"nothing required, unknown bit", "", 1 << 6, ""},
		{"no-smt, SMT on", "no-smt", 1 << 0, "does not meet --platform no-smt (SMT disabled on the host)"},
		{"no-smt, SMT off", "no-smt", 1 << 1, ""},
		{"ecc, none", "ecc", 0, "ecc (ECC memory)"},
		{"ecc", "ecc", 1 << 2, ""},
		{"rapl-disabled, RAPL on", "rapl-disabled", 1 << 2, "rapl-disabled"},
		{"rapl-disabled", "rapl-disabled", 1 << 3, ""},
		{"ciphertext-hiding, off", "ciphertext-hiding", 0, "ciphertext-hiding"},
		{"ciphertext-hiding", "ciphertext-hiding", 1 << 4, ""},
		{"alias-check, not done", "alias-check", 0, "alias-check"},
		{"alias-check", "alias-check", 1 << 5, ""},
		{"no-tio, TIO on", "no-tio", 1 << 7, "no-tio"},
		{"no-tio, TIO off", "no-tio", 0, ""},
		{"several, two missing", "no-smt,ecc,rapl-disabled", 1<<0 | 1<<3, "0x9 (SMT enabled, RAPL disabled), which does not meet --platform no-smt (SMT disabled on the host), ecc (ECC memory)"},
		{"several, all there", "no-smt,ecc,rapl-disabled,ciphertext-hiding,alias-check,no-tio", 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5, ""},
		{"required, reserved bit 6", "ecc", 1<<2 | 1<<6, "does not know"},
		{"required, unknown bit 9", "ecc", 1<<2 | 1<<9, "does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, func(r []byte) {
				binary.LittleEndian.PutUint64(r[0x40:], tc.info)
			}), VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), Platform: p})
			switch {
			case tc.mentions == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.mentions != "" && (ClassOf(err) != ClassPolicy || !strings.Contains(err.Error(), tc.mentions)):
				t.Fatalf("Verify: %v; want a policy failure saying %q", err, tc.mentions)
			}
			if want := DescribePlatformInfo(tc.info); res.PlatformInfo != want {
				t.Errorf("result's platform_info %q, want %q", res.PlatformInfo, want)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	if p, err := ParsePlatform(""); p != nil || err != nil {
		t.Errorf(`ParsePlatform("") = %v, %v; want nil, nil`, p, err)
	}
	p, err := ParsePlatform("no-tio,alias-check,no-smt")
	if err != nil || *p != (Platform{NoTIO: true, AliasCheck: true, NoSMT: true}) {
		t.Errorf("ParsePlatform = %+v, %v", p, err)
	}
	for _, bad := range []string{"smt", "no-smt,", ",ecc", "ECC", "no-smt ecc"} {
		if _, err := ParsePlatform(bad); err == nil || !strings.Contains(err.Error(), "want a comma-separated list of no-smt, ecc, rapl-disabled, ciphertext-hiding, alias-check, no-tio") {
			t.Errorf("ParsePlatform(%q): %v", bad, err)
		}
	}
}

func TestDescribePlatformInfo(t *testing.T) {
	for info, want := range map[uint64]string{
		0:                   "0x0 (no feature bits)",
		0xbf:                "0xbf (SMT enabled, TSME enabled, ECC, RAPL disabled, ciphertext hiding, alias check complete, SEV-TIO enabled)",
		1<<1 | 1<<6 | 1<<40: "0x10000000042 (TSME enabled, unknown bits 0x10000000040)",
	} {
		if got := DescribePlatformInfo(info); got != want {
			t.Errorf("DescribePlatformInfo(%#x) = %q, want %q", info, got, want)
		}
	}
}

// --chip-id pins the machines: a report from a pinned chip passes, one
// from another chip or with CHIP_ID masked (zero) is a policy failure.
func TestVerifyChipID(t *testing.T) {
	chip := bytes.Repeat([]byte{0xc1}, abi.ChipIDSize)
	other := bytes.Repeat([]byte{0x0e}, abi.ChipIDSize)
	// A VCEK for chip (go-sev-guest matches the report's CHIP_ID with
	// the VCEK's hwID extension).
	s := signerWith(t, nil, func(b *test.AmdSignerBuilder) {
		b.VcekCustom.Extensions = test.CustomExtensions(kds.TCBParts{}, chip, "", "Milan-B1")
	})
	masked := signer(t, nil) // the fakes' default: CHIP_ID and hwID zero
	nonce := bytes.Repeat([]byte{4}, 32)
	withChip := func(r []byte) { copy(r[0x1A0:0x1E0], chip) }
	for _, tc := range []struct {
		name     string
		s        *test.AmdSigner
		edit     func([]byte)
		pinned   [][]byte
		mentions string
	}{
		{"not pinned", s, withChip, nil, ""},
		{"pinned", s, withChip, [][]byte{chip}, ""},
		{"one of several pinned", s, withChip, [][]byte{other, chip}, ""},
		{"another chip pinned", s, withChip, [][]byte{other}, "the report comes from chip " + hex.EncodeToString(chip) + ", which is not one of the 1 --chip-id given"},
		{"CHIP_ID masked", masked, nil, [][]byte{chip}, "CHIP_ID is zero: the host masks it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(context.Background(), evidence(t, tc.s, nonce, testConfig, tc.edit), VerifyOptions{
				Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(tc.s), ChipIDs: tc.pinned})
			switch {
			case tc.mentions == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.mentions != "" && (ClassOf(err) != ClassPolicy || !strings.Contains(err.Error(), tc.mentions)):
				t.Fatalf("Verify: %v; want a policy failure saying %q", err, tc.mentions)
			}
			if tc.edit != nil && res.ChipID != hex.EncodeToString(chip) {
				t.Errorf("result's chip_id %s", res.ChipID)
			}
		})
	}
}

func TestParseChipID(t *testing.T) {
	chip := strings.Repeat("c1", abi.ChipIDSize)
	if b, err := ParseChipID(chip); err != nil || hex.EncodeToString(b) != chip {
		t.Errorf("ParseChipID: %x, %v", b, err)
	}
	for bad, want := range map[string]string{
		chip[:126]:                            "want the 64-byte CHIP_ID as 128 hex digits",
		chip + "00":                           "want the 64-byte CHIP_ID as 128 hex digits",
		"zz" + chip[2:]:                       "want the 64-byte CHIP_ID as 128 hex digits",
		strings.Repeat("0", 2*abi.ChipIDSize): "all zero: that is what a host that masks CHIP_ID",
	} {
		if _, err := ParseChipID(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseChipID(%q): %v; want %q", bad, err, want)
		}
	}
}

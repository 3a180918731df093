package attest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/go-sev-guest/abi"
)

// Platform is what --platform requires of the report's PLATFORM_INFO, the
// host's configuration as the AMD firmware reports it (go-sev-guest's
// abi.SnpPlatformInfo). The guest policy says what the guest allows (SMT,
// for one); PLATFORM_INFO says what the host actually runs.
type Platform struct {
	NoSMT            bool // SMT off: no sibling hyperthread shares the guest's core
	ECC              bool // ECC memory in use
	RAPLDisabled     bool // RAPL (power reporting, a side channel) off
	CiphertextHiding bool // ciphertext hiding in DRAM on
	AliasCheck       bool // memory alias check done since reset (BadRAM)
	NoTIO            bool // SEV-TIO (trusted device I/O) off
}

// platformItems are --platform's words, in the order help lists them:
// the Platform field each sets, and whether PLATFORM_INFO meets it.
var platformItems = []struct {
	name, what string
	field      func(*Platform) *bool
	met        func(abi.SnpPlatformInfo) bool
}{
	{"no-smt", "SMT disabled on the host", func(p *Platform) *bool { return &p.NoSMT },
		func(i abi.SnpPlatformInfo) bool { return !i.SMTEnabled }},
	{"ecc", "ECC memory", func(p *Platform) *bool { return &p.ECC },
		func(i abi.SnpPlatformInfo) bool { return i.ECCEnabled }},
	{"rapl-disabled", "RAPL disabled", func(p *Platform) *bool { return &p.RAPLDisabled },
		func(i abi.SnpPlatformInfo) bool { return i.RAPLDisabled }},
	{"ciphertext-hiding", "ciphertext hiding enabled for DRAM", func(p *Platform) *bool { return &p.CiphertextHiding },
		func(i abi.SnpPlatformInfo) bool { return i.CiphertextHidingDRAMEnabled }},
	{"alias-check", "the memory alias check completed since the last reset (BadRAM mitigation)", func(p *Platform) *bool { return &p.AliasCheck },
		func(i abi.SnpPlatformInfo) bool { return i.AliasCheckComplete }},
	{"no-tio", "SEV-TIO disabled", func(p *Platform) *bool { return &p.NoTIO },
		func(i abi.SnpPlatformInfo) bool { return !i.TIOEnabled }},
}

// PlatformWords lists --platform's words, for help.
func PlatformWords() string {
	w := make([]string, len(platformItems))
	for i, it := range platformItems {
		w[i] = it.name
	}
	return strings.Join(w, ", ")
}

// ParsePlatform parses --platform: comma-separated words of PlatformWords.
// Empty means nothing is required (nil).
func ParsePlatform(s string) (*Platform, error) {
	if s == "" {
		return nil, nil
	}
	p := &Platform{}
	for _, w := range strings.Split(s, ",") {
		found := false
		for _, it := range platformItems {
			if w == it.name {
				*it.field(p) = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("--platform: unknown requirement %q; want a comma-separated list of %s", w, PlatformWords())
		}
	}
	return p, nil
}

// check refuses a PLATFORM_INFO that lacks a requirement of p (nil: none)
// or that has bits go-sev-guest does not know (whose meaning nobody here
// can vouch for).
func (p *Platform) check(info uint64) error {
	if p == nil {
		return nil
	}
	got, err := abi.ParseSnpPlatformInfo(info)
	if err != nil {
		return fail(ClassPolicy, "PLATFORM_INFO 0x%x: %w; --platform cannot be checked against bits go-sev-guest v0.15 does not know", info, err)
	}
	var missing []string
	for _, it := range platformItems {
		if *it.field(p) && !it.met(got) {
			missing = append(missing, fmt.Sprintf("%s (%s)", it.name, it.what))
		}
	}
	if len(missing) > 0 {
		return fail(ClassPolicy, "the host's PLATFORM_INFO is %s, which does not meet --platform %s", DescribePlatformInfo(info), strings.Join(missing, ", "))
	}
	return nil
}

// DescribePlatformInfo shows PLATFORM_INFO as hex and the bits set.
func DescribePlatformInfo(info uint64) string {
	names := []struct {
		bit  uint
		name string
	}{{0, "SMT enabled"}, {1, "TSME enabled"}, {2, "ECC"}, {3, "RAPL disabled"}, {4, "ciphertext hiding"}, {5, "alias check complete"}, {7, "SEV-TIO enabled"}}
	var set []string
	rest := info
	for _, n := range names {
		if info>>n.bit&1 == 1 {
			set = append(set, n.name)
			rest &^= 1 << n.bit
		}
	}
	if rest != 0 {
		set = append(set, fmt.Sprintf("unknown bits 0x%x", rest))
	}
	if len(set) == 0 {
		set = []string{"no feature bits"}
	}
	return fmt.Sprintf("0x%x (%s)", info, strings.Join(set, ", "))
}

// ParseChipID parses a --chip-id: the 64-byte CHIP_ID in hex (as the
// --json output's chip_id shows it).
func ParseChipID(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != abi.ChipIDSize {
		return nil, fmt.Errorf("--chip-id %q: want the %d-byte CHIP_ID as %d hex digits (the chip_id of attest --json)", s, abi.ChipIDSize, 2*abi.ChipIDSize)
	}
	if bytes.Equal(b, make([]byte, abi.ChipIDSize)) {
		return nil, fmt.Errorf("--chip-id is all zero: that is what a host that masks CHIP_ID (MASK_CHIP_ID) reports, not a chip")
	}
	return b, nil
}

// checkChip refuses a report from a chip not in pinned (none: any chip).
func checkChip(chip []byte, pinned [][]byte) error {
	if len(pinned) == 0 {
		return nil
	}
	if bytes.Equal(chip, make([]byte, len(chip))) {
		return fail(ClassPolicy, "the report's CHIP_ID is zero: the host masks it (MASK_CHIP_ID), so the report does not say which chip signed it and --chip-id cannot hold")
	}
	for _, p := range pinned {
		if bytes.Equal(chip, p) {
			return nil
		}
	}
	return fail(ClassPolicy, "the report comes from chip %s, which is not one of the %d --chip-id given", hex.EncodeToString(chip), len(pinned))
}

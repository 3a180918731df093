package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// DecodeRawReport accepts a raw report as binary (at least 1184 bytes; a
// certificate table may follow) or as hex text (whitespace ignored) and
// returns the 1184 report bytes.
func DecodeRawReport(b []byte) ([]byte, error) {
	if len(b) >= abi.ReportSize && !isHexText(b) {
		// Hex text with a stray character (a comment, a trailing "zz")
		// would be read as a binary report and refused for its version:
		// a report's first bytes (its version, little-endian) are never
		// hex digits.
		if head := b[:64]; isHexText(head) {
			i := bytes.IndexFunc(b, func(r rune) bool { return r > 0x7f || !isHexText([]byte{byte(r)}) })
			return nil, fmt.Errorf("report looks like hex text, but byte %d (%q) is not a hex digit: give only the hex digits (spaces and newlines may separate them)", i, b[i:i+1])
		}
		return b[:abi.ReportSize], nil
	}
	s := strings.Join(strings.Fields(string(b)), "")
	s = strings.TrimPrefix(s, "0x")
	if !isHexText([]byte(s)) || strings.Contains(s, "x") {
		if len(b) < abi.ReportSize {
			return nil, fmt.Errorf("report is %d bytes and not hex text: a binary report is %d bytes (truncated?)", len(b), abi.ReportSize)
		}
		_, err := hex.DecodeString(s)
		return nil, fmt.Errorf("report is not hex text: %w", err)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("report is empty: want %d bytes, or %d hex digits", abi.ReportSize, 2*abi.ReportSize)
	}
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("report is hex text of %d digits, an odd count: a report is %d hex digits (truncated, or a stray digit?)", len(s), 2*abi.ReportSize)
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("report hex text: %w", err)
	}
	if len(raw) < abi.ReportSize {
		return nil, fmt.Errorf("report is hex text of %d bytes (%d digits), want %d bytes (%d digits; truncated?)", len(raw), len(s), abi.ReportSize, 2*abi.ReportSize)
	}
	return raw[:abi.ReportSize], nil
}

func isHexText(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == 'x', c == ' ', c == '\n', c == '\r', c == '\t':
		default:
			return false
		}
	}
	return true
}

// ReportInfo is a decoded report for humans and JSON.
type ReportInfo struct {
	Version         uint32         `json:"version"`
	GuestSVN        uint32         `json:"guest_svn"`
	Policy          string         `json:"policy"`
	PolicyFlags     map[string]any `json:"policy_flags"`
	FamilyID        string         `json:"family_id"`
	ImageID         string         `json:"image_id"`
	VMPL            uint32         `json:"vmpl"`
	SignatureAlgo   uint32         `json:"signature_algo"`
	CurrentTCB      string         `json:"current_tcb"`
	PlatformInfo    string         `json:"platform_info"`
	SignerInfo      string         `json:"signer_info"`
	SigningKey      string         `json:"signing_key"`
	ReportData      string         `json:"report_data"`
	Measurement     string         `json:"measurement"`
	HostData        string         `json:"host_data"`
	IDKeyDigest     string         `json:"id_key_digest"`
	AuthorKeyDigest string         `json:"author_key_digest"`
	ReportID        string         `json:"report_id"`
	ReportIDMA      string         `json:"report_id_ma"`
	ReportedTCB     string         `json:"reported_tcb"`
	CPUIDFamily     uint32         `json:"cpuid_fam_id,omitempty"`
	CPUIDModel      uint32         `json:"cpuid_mod_id,omitempty"`
	CPUIDStepping   uint32         `json:"cpuid_step,omitempty"`
	ChipID          string         `json:"chip_id"`
	CommittedTCB    string         `json:"committed_tcb"`
	CurrentBuild    uint32         `json:"current_build"`
	CurrentMinor    uint32         `json:"current_minor"`
	CurrentMajor    uint32         `json:"current_major"`
	CommittedBuild  uint32         `json:"committed_build"`
	CommittedMinor  uint32         `json:"committed_minor"`
	CommittedMajor  uint32         `json:"committed_major"`
	LaunchTCB       string         `json:"launch_tcb"`
	// The mitigation vectors, of report version 5 and later.
	LaunchMitVector  string `json:"launch_mit_vector,omitempty"`
	CurrentMitVector string `json:"current_mit_vector,omitempty"`
	Signature        string `json:"signature"`
}

// DescribeReport parses raw with go-sev-guest's ABI parser (which rejects
// non-zero reserved fields and unknown versions).
func DescribeReport(raw []byte) (*ReportInfo, error) {
	if len(raw) < abi.ReportSize {
		return nil, fmt.Errorf("decoding report: %d bytes, want %d", len(raw), abi.ReportSize)
	}
	if v := binary.LittleEndian.Uint32(raw); v < 2 || v > 5 {
		if v > 0xff {
			return nil, fmt.Errorf("decoding report: not an SEV-SNP attestation report (it would start with its version, 2 to 5, as a 32-bit little-endian number; this starts with %q)", raw[:4])
		}
		return nil, fmt.Errorf("decoding report: version %d, this tool knows 2 to 5", v)
	}
	r, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding report: %w", err)
	}
	pol, err := abi.ParseSnpPolicy(r.GetPolicy())
	if err != nil {
		return nil, fmt.Errorf("decoding report policy: %w", err)
	}
	si, err := abi.ParseSignerInfo(r.GetSignerInfo())
	if err != nil {
		return nil, fmt.Errorf("decoding report signer info: %w", err)
	}
	h := hex.EncodeToString
	tcb := func(v uint64) string { return fmt.Sprintf("0x%016x", v) }
	fam, mod, step := cpuidFMS(raw)
	var launchMit, currentMit string
	if r.GetVersion() >= 5 {
		launchMit, currentMit = fmt.Sprintf("0x%x", r.GetLaunchMitVector()), fmt.Sprintf("0x%x", r.GetCurrentMitVector())
	}
	return &ReportInfo{
		CPUIDFamily:   fam,
		CPUIDModel:    mod,
		CPUIDStepping: step,
		Version:       r.GetVersion(),
		GuestSVN:      r.GetGuestSvn(),
		Policy:        fmt.Sprintf("0x%x", r.GetPolicy()),
		PolicyFlags: map[string]any{
			"abi_major": pol.ABIMajor, "abi_minor": pol.ABIMinor, "smt": pol.SMT, "migrate_ma": pol.MigrateMA,
			"debug": pol.Debug, "single_socket": pol.SingleSocket, "cxl_allowed": pol.CXLAllowed,
			"mem_aes_256_xts": pol.MemAES256XTS, "rapl_dis": pol.RAPLDis, "ciphertext_hiding": pol.CipherTextHidingDRAM,
			"page_swap_disable": pol.PageSwapDisable,
		},
		FamilyID:         h(r.GetFamilyId()),
		ImageID:          h(r.GetImageId()),
		VMPL:             r.GetVmpl(),
		SignatureAlgo:    r.GetSignatureAlgo(),
		CurrentTCB:       tcb(r.GetCurrentTcb()),
		PlatformInfo:     fmt.Sprintf("0x%x", r.GetPlatformInfo()),
		SignerInfo:       fmt.Sprintf("0x%x", r.GetSignerInfo()),
		SigningKey:       si.SigningKey.String(),
		ReportData:       h(r.GetReportData()),
		Measurement:      h(r.GetMeasurement()),
		HostData:         h(r.GetHostData()),
		IDKeyDigest:      h(r.GetIdKeyDigest()),
		AuthorKeyDigest:  h(r.GetAuthorKeyDigest()),
		ReportID:         h(r.GetReportId()),
		ReportIDMA:       h(r.GetReportIdMa()),
		ReportedTCB:      tcb(r.GetReportedTcb()),
		ChipID:           h(r.GetChipId()),
		CommittedTCB:     tcb(r.GetCommittedTcb()),
		CurrentBuild:     r.GetCurrentBuild(),
		CurrentMinor:     r.GetCurrentMinor(),
		CurrentMajor:     r.GetCurrentMajor(),
		CommittedBuild:   r.GetCommittedBuild(),
		CommittedMinor:   r.GetCommittedMinor(),
		CommittedMajor:   r.GetCommittedMajor(),
		LaunchTCB:        tcb(r.GetLaunchTcb()),
		LaunchMitVector:  launchMit,
		CurrentMitVector: currentMit,
		Signature:        h(r.GetSignature()),
	}, nil
}

// tcbText is a TCB_VERSION as report prints it: the hex, and its parts as
// --min-tcb takes them (AMD's security bulletins give these), in the
// Milan/Genoa layout; Turin's (CPUID family 0x1a) is another, not decoded.
func tcbText(hexTCB string, family uint32) string {
	v, err := strconv.ParseUint(strings.TrimPrefix(hexTCB, "0x"), 16, 64)
	if err != nil || !strings.HasPrefix(hexTCB, "0x") {
		return hexTCB
	}
	return hexTCB + TCBParts(v, family)
}

// TCBParts is " (bl=N,tee=N,snp=N,ucode=N)", a TCB_VERSION's parts as
// --min-tcb takes them in the Milan/Genoa layout, or a note that Turin's
// (CPUID family 0x1a) is not decoded.
func TCBParts(v uint64, family uint32) string {
	if family == 0x1a {
		return " (Turin layout, not decoded)"
	}
	p := kds.DecomposeTCBVersion(kds.TCBVersion(v))
	return fmt.Sprintf(" (bl=%d,tee=%d,snp=%d,ucode=%d)", p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl)
}

// WriteReportText prints info as aligned "name: value" lines.
func WriteReportText(w io.Writer, info *ReportInfo) error {
	var b bytes.Buffer
	line := func(k string, v any) { fmt.Fprintf(&b, "%-21s %v\n", k+":", v) }
	line("version", info.Version)
	line("guest_svn", info.GuestSVN)
	line("policy", info.Policy)
	for _, k := range []string{"abi_major", "abi_minor", "smt", "migrate_ma", "debug", "single_socket", "cxl_allowed", "mem_aes_256_xts", "rapl_dis", "ciphertext_hiding", "page_swap_disable"} {
		line("  "+k, info.PolicyFlags[k])
	}
	line("vmpl", info.VMPL)
	line("signing_key", info.SigningKey)
	line("measurement", info.Measurement)
	line("report_data", info.ReportData)
	line("host_data", info.HostData)
	line("family_id", info.FamilyID)
	line("image_id", info.ImageID)
	line("id_key_digest", info.IDKeyDigest)
	line("author_key_digest", info.AuthorKeyDigest)
	line("report_id", info.ReportID)
	line("report_id_ma", info.ReportIDMA)
	line("current_tcb", tcbText(info.CurrentTCB, info.CPUIDFamily))
	line("reported_tcb", tcbText(info.ReportedTCB, info.CPUIDFamily))
	line("committed_tcb", tcbText(info.CommittedTCB, info.CPUIDFamily))
	line("launch_tcb", tcbText(info.LaunchTCB, info.CPUIDFamily))
	line("platform_info", info.PlatformInfo)
	if info.Version >= 5 {
		line("launch_mit_vector", info.LaunchMitVector)
		line("current_mit_vector", info.CurrentMitVector)
	}
	if info.Version >= 3 {
		line("cpuid fam/mod/step", fmt.Sprintf("0x%x/0x%x/0x%x", info.CPUIDFamily, info.CPUIDModel, info.CPUIDStepping))
	}
	line("firmware current", fmt.Sprintf("%d.%d build %d", info.CurrentMajor, info.CurrentMinor, info.CurrentBuild))
	line("firmware committed", fmt.Sprintf("%d.%d build %d", info.CommittedMajor, info.CommittedMinor, info.CommittedBuild))
	line("chip_id", info.ChipID)
	// The signature is r and s, 72 bytes each little-endian (48 used); the
	// rest of the area is reserved.
	if len(info.Signature) >= 2*144 {
		line("signature r", info.Signature[:144])
		line("signature s", info.Signature[144:288])
	}
	_, err := w.Write(b.Bytes())
	return err
}

// cpuidFMS reads the v3+ family/model/stepping bytes.
func cpuidFMS(raw []byte) (uint32, uint32, uint32) {
	if binary.LittleEndian.Uint32(raw[0:4]) < 3 {
		return 0, 0, 0
	}
	return uint32(raw[0x188]), uint32(raw[0x189]), uint32(raw[0x18A])
}

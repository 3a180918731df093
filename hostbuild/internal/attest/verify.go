package attest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Certs are certificates supplied by the operator (snpguest's layout: a
// folder with ark.pem, ask.pem and vcek.pem or vlek.pem). The V[CL]EK here
// replaces the one from the guest's table. The ARK and ASK are never trust
// anchors: roots come from VerifyOptions.Roots or the embedded AMD roots.
type Certs struct {
	VCEK, VLEK, ASK, ARK *x509.Certificate
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	Manifest *manifest.Manifest
	// Nonce is the nonce the verifier sent (fresh for attest, recorded for
	// verify).
	Nonce []byte
	Certs Certs
	// AllowKDS lets go-sev-guest fetch a missing VCEK (and the ASK/ARK
	// chain) from AMD's KDS through Getter (nil: the default HTTPS getter
	// wrapped in a CachingGetter in its default folder).
	AllowKDS bool
	Getter   trust.HTTPSGetter
	// CheckCRL fetches AMD's revocation list for the product line through
	// Getter (never cached), checks that the ARK signed it and that it is
	// in force at Now (nextUpdate not passed), and refuses a revoked ASK
	// (AMD supersedes VCEKs by TCB, it does not revoke them); for a
	// VLEK-signed report the same for the VLEK chain's list and its ASVK.
	// Needs AllowKDS.
	CheckCRL bool
	// Roots replaces the embedded AMD roots (for test platforms and the
	// fake signer). Nil means the roots embedded in go-sev-guest, with
	// the ASVK of its VLEK bundles (embeddedRoots).
	Roots map[string][]*trust.AMDRootCerts
	// AllowDebug accepts a report whose policy allows debugging.
	AllowDebug bool
	// Explaining says that the caller runs Explain on a measurement
	// mismatch (--explain): the error then does not advise it.
	Explaining bool
	// AllowMigrationAgent accepts a report whose policy allows a
	// migration agent (MIGRATE_MA).
	AllowMigrationAgent bool
	// VMPL is the required VMPL (default 0).
	VMPL int
	// MinTCB is the minimum REPORTED_TCB and LAUNCH_TCB, component-wise
	// (zero: no minimum). The current TCB is at least the reported one
	// (go-sev-guest checks CURRENT_TCB >= the V[CL]EK's TCB = REPORTED_TCB),
	// so this bounds every TCB the guest ran under since its launch.
	MinTCB kds.TCBParts
	// MinMitVector is the set of mitigation bits (SNP firmware ABI) both
	// LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR must have (zero: none);
	// only report version 5 and later carry them.
	MinMitVector uint64
	// ChipIDs pins the chips the report may come from (CHIP_ID, 64 bytes
	// each; ParseChipID). None: any chip, as long as its VCEK verifies.
	ChipIDs [][]byte
	// Platform is what PLATFORM_INFO must show (ParsePlatform); nil: not
	// checked.
	Platform *Platform
	// MinReportVersion is the minimum report version (default 2).
	MinReportVersion uint32
	// Now is the time for certificate validity (zero: time.Now()).
	Now time.Time
}

// Result describes verified (or rejected) evidence; it is the --json output.
type Result struct {
	OK       bool   `json:"ok"`
	Class    string `json:"failure_class,omitempty"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`

	Provider     string `json:"provider,omitempty"`
	Nonce        string `json:"nonce"`
	ReportData   string `json:"report_data,omitempty"`
	ConfigDigest string `json:"config_digest,omitempty"`
	Measurement  string `json:"measurement,omitempty"`
	MatchedVCPUs int    `json:"matched_vcpus,omitempty"`
	MatchedType  string `json:"matched_vcpu_type,omitempty"`
	// MatchedSig is the matched row's vCPU signature; Alike the vCPU
	// types that give the same measurement, which the report cannot tell
	// apart (absent with AnyVCPUType: the VMM type measures none).
	MatchedSig    string   `json:"matched_vcpu_sig,omitempty"`
	Alike         []string `json:"vcpu_types_alike,omitempty"`
	AnyVCPUType   bool     `json:"any_vcpu_type,omitempty"`
	ReportVersion uint32   `json:"report_version,omitempty"`
	Policy        string   `json:"policy,omitempty"`
	VMPL          *uint32  `json:"vmpl,omitempty"` // absent when no report was decoded
	ReportedTCB   string   `json:"reported_tcb,omitempty"`
	ProductLine   string   `json:"product_line,omitempty"`
	Signer        string   `json:"signer,omitempty"`
	ChipID        string   `json:"chip_id,omitempty"`
	PlatformInfo  string   `json:"platform_info,omitempty"`
	Argv          []string `json:"argv,omitempty"`
	Env           string   `json:"env,omitempty"` // katana.env as the init applied it (QuoteArgs form)
	// Cmdline is the whole measured kernel command line (the manifest's),
	// which argv and env come from: kernel parameters (nokaslr,
	// mitigations=off) and the init's katana.* settings are the guest's too.
	Cmdline  string   `json:"cmdline,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Report is the raw report as received, hex, when it has a report's
	// size (kept also when it is refused: --json is a record of what the
	// guest sent).
	Report string `json:"report,omitempty"`

	// Attestation is the report plus the certificates used (filled in by
	// the chain check), for the evidence folder.
	Attestation *spb.Attestation `json:"-"`
}

// Verify checks ev against o in this order, stopping at the first failure:
// report decoding and AMD chain/signature (ClassChain), nonce and
// REPORT_DATA binding (ClassReportData), measurement and the reported
// cmdline (ClassMeasurement), policy, VMPL, report version, TCB, chip,
// platform and the unset launch fields (ClassPolicy), then the bound config
// against the one the measured cmdline gives (ClassReportData). The returned Result is
// filled as far as the checks got, also on failure.
func Verify(ctx context.Context, ev *agentapi.AttestationResponse, o VerifyOptions) (*Result, error) {
	res := &Result{Nonce: hex.EncodeToString(o.Nonce), Provider: printable.Quote(ev.Provider)}
	if len(ev.Report) == abi.ReportSize {
		res.Report = hex.EncodeToString(ev.Report)
	}
	err := verify1(ctx, ev, o, res)
	if err != nil {
		res.Error = err.Error()
		if c := ClassOf(err); c != 0 {
			res.Class = c.String()
			res.ExitCode = c.ExitCode()
		} else {
			res.ExitCode = 1
		}
		return res, err
	}
	res.OK = true
	return res, nil
}

func verify1(ctx context.Context, ev *agentapi.AttestationResponse, o VerifyOptions, res *Result) error {
	if o.Manifest == nil {
		return errors.New("verify: no manifest")
	}
	// 1. Decode the report and check the AMD chain and signature.
	att, err := VerifyChain(ctx, ev.Report, ev.CertTable, o, res)
	if err != nil {
		return err
	}
	res.ProductLine = productLine(att)

	// 2. Nonce and REPORT_DATA binding.
	if err := checkBinding(ev, o.Nonce, res); err != nil {
		return err
	}

	// 3. Measurement.
	m, ok := o.Manifest.Allows(res.Measurement)
	if !ok {
		hint := " (run with --explain and the local files to find the drifted input)"
		if o.Explaining {
			hint = ""
		}
		return fail(ClassMeasurement, "launch measurement %s is not in the manifest's %d expected measurements%s%s", res.Measurement, len(o.Manifest.Measurements), expectedList(o.Manifest.Measurements), hint)
	}
	res.MatchedVCPUs, res.MatchedType, res.MatchedSig = m.VCPUs, m.VCPUType, m.VCPUSig
	if sig, err := measure.VCPUSigOf(m.VCPUType); err == nil && res.MatchedSig == "" {
		res.MatchedSig = fmt.Sprintf("0x%x", sig) // a manifest without vcpu_sig
	}
	if vmm, err := measure.ParseVMMType(o.Manifest.VMMType); err == nil {
		res.Alike = measure.Alike(vmm, m.VCPUType)
		res.AnyVCPUType = res.Alike == nil
	}
	// The measurement covers the cmdline QEMU handed OVMF; the init
	// reports (and binds) the one the kernel gave it, which Katana's argv
	// and the init's settings come from. Anything between the two but
	// OVMF's initrd=initrd means the guest ran on a command line other
	// than the manifest's.
	if c := string(ev.Config.Cmdline); !sameCmdline(c, o.Manifest.Cmdline) {
		return fail(ClassMeasurement, "the init reports the cmdline %q, but the manifest measured %q: the guest ran on a command line other than the measured one (something between the firmware and the init changed it), so Katana's argv and the init's settings are not the manifest's", c, o.Manifest.Cmdline)
	}
	// 4. Policy, VMPL, version, TCB.
	if err := checkPolicy(att, o, res); err != nil {
		return err
	}
	// The config the report binds must be the one the measured cmdline
	// gives (this tool's parser is the init's): the cmdline alone is
	// checked above, and any root process in the guest can ask the
	// hardware for a report, so a report that binds another argv or other
	// settings was not asked for by the measured init's agent (or the init
	// is of another version than this tool).
	c, err := bootcfg.Parse(string(ev.Config.Cmdline))
	if err != nil {
		return fail(ClassReportData, "this tool's cmdline parser refuses the measured cmdline (%v), which the guest's init accepted: verify with the hostbuild of the manifest's init", err)
	}
	want := agentapi.ConfigOf(c.Applied())
	if d := configDiff(ev.Config, want); d != "" {
		return fail(ClassReportData, "the report binds a config the measured cmdline does not give (%s): it was not asked for by the measured init's agent (another process in the guest?), or the init is of another version than this tool", d)
	}
	// Only now are the argv and env those of the manifest's guest, signed
	// by its init under the expected policy (with debugging allowed, the
	// host could have written them).
	res.Argv = want.Argv
	res.Env = want.Settings[bootcfg.KeyEnv]
	res.Cmdline = o.Manifest.Cmdline
	if p, err := abi.ParseSnpPolicy(att.GetReport().GetPolicy()); err == nil && p.Debug {
		res.Warnings = append(res.Warnings, "the guest's policy allows debugging (accepted with --allow-debug): the host could read and change its memory, so nothing in this report, argv and env included, is more than the host's word")
	}
	if p, err := abi.ParseSnpPolicy(att.GetReport().GetPolicy()); err == nil && p.MigrateMA {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the guest's policy allows a migration agent (accepted with --allow-migration-agent; REPORT_ID_MA %x): whoever controls that agent can export the guest's memory", att.GetReport().GetReportIdMa()))
	}
	// What was not checked, said where it weakens an "OK".
	if o.MinTCB == (kds.TCBParts{}) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("no minimum TCB was checked (--min-tcb none, or every part 0): a host on firmware or microcode with known vulnerabilities passes; give the TCB of AMD's latest security bulletin for %s (this report's: %s)", orUnknown(res.ProductLine), res.ReportedTCB))
	}
	if o.Roots != nil {
		res.Warnings = append(res.Warnings, "the AMD chain was checked against --roots, not the AMD roots embedded in go-sev-guest: the report is only as genuine as that file")
	}
	return nil
}

// expectedList names a small matrix's measurements (by vCPUs and type),
// so that a mismatch shows what was expected; a large one only by count.
func expectedList(ms []manifest.Measurement) string {
	if len(ms) == 0 || len(ms) > 8 {
		return ""
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d × %s: %s", m.VCPUs, m.VCPUType, m.Measurement)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func orUnknown(s string) string {
	if s == "" {
		return "this product line"
	}
	return s
}

// configDiff names the first difference between the config a report binds
// and the one expected, or returns "" when they hash alike.
func configDiff(got, want agentapi.AppliedConfig) string {
	if agentapi.ConfigDigest(got) == agentapi.ConfigDigest(want) {
		return ""
	}
	if !slices.Equal(got.Argv, want.Argv) {
		g, _ := json.Marshal(got.Argv)
		w, _ := json.Marshal(want.Argv)
		return fmt.Sprintf("argv %s, expected %s", printable.Escape(string(g)), printable.Escape(string(w)))
	}
	keys := slices.Sorted(maps.Keys(want.Settings))
	for k := range got.Settings {
		if _, ok := want.Settings[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, gok := got.Settings[k]
		w, wok := want.Settings[k]
		switch {
		case !gok:
			return fmt.Sprintf("no %s setting, expected %q", k, w)
		case !wok:
			return fmt.Sprintf("a setting %q, which this tool does not know", k)
		case g != w:
			return fmt.Sprintf("%s %q, expected %q", k, g, w)
		}
	}
	return "cmdline bytes differ" // checked before: not reached
}

// sameCmdline reports whether the init's reported cmdline is the measured
// one. With an initrd, OVMF adds "initrd=initrd" to the kernel's command
// line after QEMU measured it: Debian's OVMF appends " initrd=initrd",
// other edk2 loaders prepend "initrd=initrd ". Those two exact forms are
// the measured cmdline as OVMF passes it, and pass; anything else fails.
func sameCmdline(reported, measured string) bool {
	const p = bootcfg.OVMFInitrdParam
	return reported == measured || reported == measured+" "+p || reported == p+" "+measured
}

// rootsComplete refuses trusted roots go-sev-guest would dereference
// without a check: a nil root, one without ProductCerts or an ARK, or one
// with neither an ASK nor an ASVK. LoadRoots never builds such roots; a
// library caller building its own would otherwise crash Verify.
func rootsComplete(roots map[string][]*trust.AMDRootCerts) error {
	for _, line := range slices.Sorted(maps.Keys(roots)) {
		for i, r := range roots[line] {
			switch {
			case r == nil:
				return fmt.Errorf("%s root %d is nil", printable.Quote(line), i)
			case r.ProductCerts == nil || r.ProductCerts.Ark == nil:
				return fmt.Errorf("%s root %d has no ARK (ProductCerts.Ark)", printable.Quote(line), i)
			case r.ProductCerts.Ask == nil && r.ProductCerts.Asvk == nil:
				return fmt.Errorf("%s root %d has neither an ASK nor an ASVK", printable.Quote(line), i)
			}
		}
	}
	return nil
}

// rootsHaveASK reports whether every trusted root has an ASK.
// go-sev-guest's revocation check reads the ASK's list and dereferences
// the ASK: roots for VLEKs alone (--roots with an ASVK and its ARK) have
// none, and a VLEK's ASVK is checked by asvkNotRevoked in any case.
func rootsHaveASK(roots map[string][]*trust.AMDRootCerts) bool {
	for _, rs := range roots {
		for _, r := range rs {
			if r.ProductCerts == nil || r.ProductCerts.Ask == nil {
				return false
			}
		}
	}
	return true
}

// productLine names the processor line of a verified report: from its
// signed CPUID (version 3 and later), else from the certificate of the key
// that signed it (the VCEK, or the VLEK: a VCEK the host adds to the table
// of a VLEK-signed report is never verified). Not from att.Product:
// go-sev-guest sets that to its default, Milan-B1, for a version 2 report
// when it fetches the VCEK (--kds), and otherwise takes it from the host's
// unsigned certificate table.
func productLine(att *spb.Attestation) string {
	if r := att.GetReport(); r.GetVersion() >= 3 {
		return kds.ProductLineFromFms(r.GetCpuid1EaxFms())
	}
	if c, key, err := signingCert(att); err == nil {
		if ext, err := kds.CertificateExtensions(c, key); err == nil {
			return kds.ProductLineOfProductName(ext.ProductName)
		}
	}
	return ""
}

// signingCert is the certificate of the key the report names as its
// signer (SIGNING_KEY): the chain's VCEK or VLEK.
func signingCert(att *spb.Attestation) (*x509.Certificate, abi.ReportSigner, error) {
	si, err := abi.ParseSignerInfo(att.GetReport().GetSignerInfo())
	if err != nil {
		return nil, 0, err
	}
	der := att.GetCertificateChain().GetVcekCert()
	if si.SigningKey == abi.VlekReportSigner {
		der = att.GetCertificateChain().GetVlekCert()
	}
	if len(der) == 0 {
		return nil, si.SigningKey, fmt.Errorf("no %s certificate", si.SigningKey)
	}
	c, err := x509.ParseCertificate(der)
	return c, si.SigningKey, err
}

// checkTCBs compares what go-sev-guest v0.15 compares wrongly: its
// validate.tcbNeError composes both TCB_VERSIONs with kds.ComposeTCBParts
// and drops the error, so any TCB with a part other than microcode over
// 127 equals 0 there. REPORTED_TCB must be the signing key's TCB (the VCEK
// is derived for it, and --min-tcb holds of it only then), and the
// committed TCB the current one (no provisional firmware): compared here
// as the raw 64-bit values.
func checkTCBs(att *spb.Attestation) error {
	rep := att.GetReport()
	if rep.GetCommittedTcb() != rep.GetCurrentTcb() {
		return fail(ClassPolicy, "COMMITTED_TCB 0x%016x differs from CURRENT_TCB 0x%016x: the host runs provisional (uncommitted) firmware, which it can roll back", rep.GetCommittedTcb(), rep.GetCurrentTcb())
	}
	c, key, err := signingCert(att)
	if err != nil {
		return fail(ClassChain, "the signing key's certificate: %w", err)
	}
	ext, err := kds.CertificateExtensions(c, key)
	if err != nil {
		return fail(ClassChain, "the %s certificate's extensions: %w", key, err)
	}
	if rep.GetReportedTcb() != uint64(ext.TCBVersion) {
		return fail(ClassPolicy, "REPORTED_TCB 0x%016x is not the TCB of the %s that signed the report (0x%016x)", rep.GetReportedTcb(), key, uint64(ext.TCBVersion))
	}
	return nil
}

// checkBinding recomputes REPORT_DATA from the verifier's own nonce and the
// returned config; the other checks only make the failure message precise.
func checkBinding(ev *agentapi.AttestationResponse, nonce []byte, res *Result) error {
	if err := agentapi.CheckNonce(nonce); err != nil {
		return fail(ClassReportData, "verifier nonce: %w", err)
	}
	digest := agentapi.ConfigDigest(ev.Config)
	res.ConfigDigest = hex.EncodeToString(digest[:])
	want, _, err := agentapi.ReportData(nonce, digest)
	if err != nil {
		return fail(ClassReportData, "%w", err)
	}
	got := ev.Report[0x50:0x90]
	res.ReportData = hex.EncodeToString(got)
	if !bytes.Equal(got, want[:]) {
		// Say why, most specific first.
		switch pn, pd, perr := agentapi.SplitPreimage(ev.ReportDataPreimage); {
		case !strings.EqualFold(ev.Nonce, hex.EncodeToString(nonce)) || (perr == nil && !bytes.Equal(pn, nonce)):
			bound := "the response's nonce " + printable.Quote(ev.Nonce)
			if perr == nil && !bytes.Equal(pn, nonce) {
				bound = fmt.Sprintf("the preimage's nonce %x", pn)
			}
			return fail(ClassReportData, "nonce reuse: the report binds %s, not the verifier's %x (a replayed or stale report)", bound, nonce)
		case perr == nil && pd != digest:
			return fail(ClassReportData, "the report binds config digest %x, but the returned config hashes to %x (config altered after signing)", pd, digest)
		default:
			return fail(ClassReportData, "REPORT_DATA %x is not SHA-512(tag || nonce || config digest) = %x", got, want)
		}
	}
	// The report is good; the helper fields must agree with it too.
	if !strings.EqualFold(ev.Nonce, hex.EncodeToString(nonce)) {
		return fail(ClassReportData, "response nonce %q differs from the verifier's", ev.Nonce)
	}
	if ev.ReportData != "" && !strings.EqualFold(ev.ReportData, res.ReportData) {
		return fail(ClassReportData, "response report_data %s differs from the report's REPORT_DATA %s", printable.Quote(ev.ReportData), res.ReportData)
	}
	if ev.ConfigDigest != "" && !strings.EqualFold(ev.ConfigDigest, res.ConfigDigest) {
		return fail(ClassReportData, "response config_digest %s differs from the config's digest %s", printable.Quote(ev.ConfigDigest), res.ConfigDigest)
	}
	if pre, _ := agentapi.ReportDataPreimage(nonce, digest); !bytes.Equal(pre, ev.ReportDataPreimage) {
		return fail(ClassReportData, "response report_data_preimage differs from the recomputed one")
	}
	return nil
}

func checkPolicy(att *spb.Attestation, o VerifyOptions, res *Result) error {
	rep := att.Report
	minVer := o.MinReportVersion
	if minVer == 0 {
		minVer = 2
	}
	if rep.GetVersion() < minVer {
		return fail(ClassPolicy, "report version %d is below the minimum %d", rep.GetVersion(), minVer)
	}
	got, err := abi.ParseSnpPolicy(rep.GetPolicy())
	if err != nil {
		return fail(ClassPolicy, "report guest policy 0x%x: %w", rep.GetPolicy(), err)
	}
	if got.Debug && !o.AllowDebug {
		return fail(ClassPolicy, "guest policy 0x%x allows debugging (the host can read and change guest memory); rejected unless --allow-debug", rep.GetPolicy())
	}
	// Refused even when the manifest's policy has the bit: the agent is
	// the host's choice, bound at launch outside the measurement, and can
	// export the guest's memory (REPORT_ID_MA names it, nothing vouches
	// for it), which is debugging by another name.
	if got.MigrateMA && !o.AllowMigrationAgent {
		return fail(ClassPolicy, "guest policy 0x%x allows a migration agent (MIGRATE_MA, bit 18): an agent the host binds at launch, which the measurement does not cover, could export the guest's memory; rejected unless --allow-migration-agent", rep.GetPolicy())
	}
	wantVal, err := o.Manifest.GuestPolicyValue()
	if err != nil {
		return fail(ClassPolicy, "manifest guest policy: %w", err)
	}
	gotVal := rep.GetPolicy()
	if o.AllowDebug {
		gotVal &^= 1 << 19 // the debug bit, accepted on request
		wantVal &^= 1 << 19
	}
	if gotVal != wantVal {
		return fail(ClassPolicy, "guest policy 0x%x differs from the manifest's 0x%x (%s)", rep.GetPolicy(), wantVal, policyDiff(wantVal, gotVal))
	}
	if int(rep.GetVmpl()) != o.VMPL {
		return fail(ClassPolicy, "report was requested at VMPL %d, want %d (a more privileged layer could forge the guest's view)", rep.GetVmpl(), o.VMPL)
	}
	if err := checkChip(rep.GetChipId(), o.ChipIDs); err != nil {
		return err
	}
	if err := o.Platform.check(rep.GetPlatformInfo()); err != nil {
		return err
	}
	if err := checkUnset(rep); err != nil {
		return err
	}
	if o.MinMitVector != 0 && rep.GetVersion() < 5 {
		return fail(ClassPolicy, "--min-mit-vector %#x: the report is version %d, and only version 5 and later carry mitigation vectors (the host's SEV firmware is older)", o.MinMitVector, rep.GetVersion())
	}
	maxPolicy := got
	vmpl := o.VMPL
	// --min-tcb bounds LAUNCH_TCB too: the guest's memory was measured and
	// encrypted under it, and firmware updated in place afterwards does not
	// undo what a flawed firmware could do at launch.
	vo := &validate.Options{
		GuestPolicy:               maxPolicy,
		MinimumTCB:                o.MinTCB,
		MinimumLaunchTCB:          o.MinTCB,
		VMPL:                      &vmpl,
		PermitProvisionalFirmware: false, // committed TCB, build and version must equal current ones
		// Like --min-tcb, of the launch too: what the firmware did not
		// mitigate while it measured and encrypted the guest's memory.
		MinimumLaunchMitigationVector:  o.MinMitVector,
		MinimumCurrentMitigationVector: o.MinMitVector,
	}
	if err := validate.SnpAttestation(att, vo); err != nil {
		return fail(ClassPolicy, "report fields (TCB, policy, VMPL): %w", err)
	}
	return checkTCBs(att)
}

// checkUnset refuses a report in which a field that only an ID block or
// HOST_DATA sets is not zero. The manifest's launch (hostbuild run's QEMU
// line and libvirt XML, like the reference system's) gives the firmware
// neither, so every report of it has them zero. None of them is in the
// launch measurement: the host chooses them at will, so a report with one
// set came from a launch other than the manifest's, and a relying party
// that read one (HOST_DATA as a configuration binding, IMAGE_ID or
// GUEST_SVN as a version) would be trusting the host, not the guest.
func checkUnset(rep *spb.Report) error {
	var set []string
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"HOST_DATA", rep.GetHostData()},
		{"FAMILY_ID", rep.GetFamilyId()},
		{"IMAGE_ID", rep.GetImageId()},
		{"ID_KEY_DIGEST", rep.GetIdKeyDigest()},
		{"AUTHOR_KEY_DIGEST", rep.GetAuthorKeyDigest()},
	} {
		if slices.ContainsFunc(f.b, func(c byte) bool { return c != 0 }) {
			set = append(set, fmt.Sprintf("%s %x", f.name, f.b))
		}
	}
	if v := rep.GetGuestSvn(); v != 0 {
		set = append(set, fmt.Sprintf("GUEST_SVN %d", v))
	}
	if rep.GetSignerInfo()&1 != 0 {
		set = append(set, "AUTHOR_KEY_EN 1")
	}
	if len(set) > 0 {
		return fail(ClassPolicy, "the report has %s, set by the host at launch (an ID block or HOST_DATA), which the manifest's launch never sets: the guest was launched some other way, and these fields are the host's to choose, not measured", strings.Join(set, ", "))
	}
	return nil
}

var policyBits = []struct {
	bit  uint
	name string
}{{16, "SMT"}, {18, "MIGRATE_MA"}, {19, "DEBUG"}, {20, "SINGLE_SOCKET"}, {21, "CXL_ALLOW"}, {22, "MEM_AES_256_XTS"}, {23, "RAPL_DIS"}, {24, "CIPHERTEXT_HIDING"}, {25, "PAGE_SWAP_DISABLE"}}

func policyDiff(want, got uint64) string {
	var parts []string
	for _, b := range policyBits {
		w, g := want>>b.bit&1, got>>b.bit&1
		if w != g {
			parts = append(parts, fmt.Sprintf("%s %d, manifest %d", b.name, g, w))
		}
	}
	if want&0xffff != got&0xffff {
		parts = append(parts, fmt.Sprintf("ABI minimum %d.%d, manifest %d.%d", got>>8&0xff, got&0xff, want>>8&0xff, want&0xff))
	}
	if len(parts) == 0 {
		return "other bits"
	}
	return strings.Join(parts, "; ")
}

// MinTCBNone is the --min-tcb value that accepts any firmware, said
// explicitly: without a floor, a host on firmware or microcode with known
// vulnerabilities passes, so the flag is required and an OK without a
// floor warns.
const MinTCBNone = "none"

// ErrMinTCBRequired: --min-tcb was not given.
var ErrMinTCBRequired = errors.New("--min-tcb is required: give the minimum TCB of AMD's latest security bulletin for the host's processor (bl=N,tee=N,snp=N,ucode=N or 0xHEX; a report's own is its reported_tcb in --json, with --min-tcb none), or --min-tcb none to accept any firmware (an OK then says that no TCB was checked)")

// ParseMinTCB parses --min-tcb: a hex TCB_VERSION ("0x..."), comma-separated
// parts "bl=3,tee=0,snp=8,ucode=115" (each exactly once; fmc= of
// Turin-era parts is not supported by go-sev-guest v0.15 and is refused),
// or MinTCBNone (the zero TCBParts: no minimum). The empty string is
// ErrMinTCBRequired.
func ParseMinTCB(s string) (kds.TCBParts, error) {
	switch s {
	case "":
		return kds.TCBParts{}, ErrMinTCBRequired
	case MinTCBNone:
		return kds.TCBParts{}, nil
	}
	if strings.HasPrefix(s, "0x") {
		v, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: want 0x and at most 16 hex digits (a 64-bit TCB_VERSION), or bl=N,tee=N,snp=N,ucode=N, or none", s)
		}
		return kds.DecomposeTCBVersion(kds.TCBVersion(v)), nil
	}
	var p kds.TCBParts
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.ParseUint(v, 10, 8)
		if ok && errors.Is(err, strconv.ErrRange) {
			return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: %s=%s is over 255 (each part is one byte)", s, k, v)
		}
		if !ok || err != nil {
			return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: want 0xHEX, bl=N,tee=N,snp=N,ucode=N or none", s)
		}
		// A part given twice would keep the last: "snp=22,...,snp=0"
		// lowers the floor the first one set.
		if seen[k] {
			return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: %s given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "bl":
			p.BlSpl = uint8(n)
		case "tee":
			p.TeeSpl = uint8(n)
		case "snp":
			p.SnpSpl = uint8(n)
		case "ucode":
			p.UcodeSpl = uint8(n)
		default:
			return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: unknown part %q (bl, tee, snp, ucode)", s, k)
		}
	}
	// A part left out would be a floor of 0 for it, unseen: "bl=3,tee=0,
	// snp=22" accepted any microcode.
	var missing []string
	for _, k := range []string{"bl", "tee", "snp", "ucode"} {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return kds.TCBParts{}, fmt.Errorf("--min-tcb %q: %s missing: give all four parts, bl=N,tee=N,snp=N,ucode=N (0 where the bulletin asks for none), or 0xHEX", s, strings.Join(missing, ", "))
	}
	return p, nil
}

// LoadCerts reads snpguest's layout from dir: vcek.pem or vlek.pem, and
// optionally ask.pem and ark.pem (PEM or DER). A missing file is skipped;
// a present but unparsable one is an error.
func LoadCerts(dir string) (Certs, error) {
	var c Certs
	if fi, err := os.Stat(dir); err != nil {
		return c, fmt.Errorf("certificates: %w (give the folder snpguest fetch vcek wrote)", err)
	} else if !fi.IsDir() {
		return c, fmt.Errorf("certificates: %s is not a folder: give the folder holding vcek.pem or vlek.pem (and ask.pem, ark.pem)", dir)
	}
	for _, f := range []struct {
		name string
		dst  **x509.Certificate
	}{{"vcek.pem", &c.VCEK}, {"vlek.pem", &c.VLEK}, {"ask.pem", &c.ASK}, {"ark.pem", &c.ARK}} {
		b, err := infile.ReadFile("certificate", filepath.Join(dir, f.name), maxCertFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return c, fmt.Errorf("reading certificates: %w", err)
		}
		cert, err := parseCert(b)
		if err != nil {
			return c, fmt.Errorf("certificate %s: %w", filepath.Join(dir, f.name), err)
		}
		*f.dst = cert
	}
	if c.VCEK == nil && c.VLEK == nil {
		return c, fmt.Errorf("certificates in %s: neither vcek.pem nor vlek.pem", dir)
	}
	return c, nil
}

// Bounds of the certificate files read (infile.ReadFile refuses a larger
// one, and anything but a regular file, a FIFO at once).
const (
	// maxCertFile bounds one certificate, PEM or DER: AMD's are under
	// 2 KiB (DER), and no sane X.509 certificate nears 64 KiB.
	maxCertFile = 64 << 10
	// maxRootsBundle bounds a --roots bundle: KDS's cert_chain (ASK and
	// ARK) is about 4 KiB of PEM.
	maxRootsBundle = 1 << 20
)

// parseCert reads one certificate, PEM or DER. A file with more (a
// second PEM block, bytes after the certificate) is refused rather than
// read up to its first: what else it holds would be kept and never looked
// at (x509.ParseCertificate refuses trailing bytes after DER itself).
func parseCert(b []byte) (*x509.Certificate, error) {
	if p, rest := pem.Decode(b); p != nil {
		if p.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", p.Type)
		}
		// pem.Decode passes over a block it cannot decode and returns
		// the next one: a malformed block before the certificate is more
		// than the certificate too.
		if bytes.Count(b[:len(b)-len(rest)], []byte("-----BEGIN")) > 1 {
			return nil, errors.New("a malformed PEM block before the certificate; want one certificate per file")
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, errors.New("more than the certificate: a second PEM block or other bytes after it; want one certificate per file")
		}
		b = p.Bytes
	}
	return x509.ParseCertificate(b)
}

// TurinReason is why this build refuses reports from AMD Turin.
const TurinReason = "its go-sev-guest (v0.15) reads Turin's TCB_VERSION in the Milan/Genoa layout"

// UnverifiableVCPUType says why attest cannot verify the reports of a
// guest launched with QEMU vCPU type vtype, or returns "": Turin's
// reports are refused (see VerifyChain).
func UnverifiableVCPUType(vtype string) string {
	if strings.HasPrefix(vtype, "EPYC-Turin") {
		return "hostbuild attest refuses reports from AMD Turin (EPYC 9005): " + TurinReason + "; the measurement can be computed and launched, but must be verified by another verifier"
	}
	return ""
}

// LoadRoots reads a PEM bundle with an ASK (or ASVK) followed by its ARK,
// as AMD's KDS cert_chain serves it, as the only trusted roots for
// productLine (Milan, Genoa or Turin).
func LoadRoots(path, productLine string) (map[string][]*trust.AMDRootCerts, error) {
	b, err := infile.ReadFile("--roots", path, maxRootsBundle)
	if err != nil {
		return nil, fmt.Errorf("reading trusted roots: %w", err)
	}
	roots, err := parseRoots(b, productLine)
	if err != nil {
		// go-sev-guest's errors name the PEM block's type and headers
		// raw.
		return nil, fmt.Errorf("trusted roots %s: %s", path, printable.Escape(err.Error()))
	}
	return roots, nil
}

// parseRoots is LoadRoots on the bundle's bytes. go-sev-guest only logs
// an ARK that does not parse (and then fails every chain with "could not
// be verified by any trusted roots"): that, an ARK that is not
// self-signed and an ASK (ASVK) the ARK did not sign are refused here,
// naming the certificate.
func parseRoots(b []byte, productLine string) (map[string][]*trust.AMDRootCerts, error) {
	r := trust.AMDRootCertsProduct(productLine)
	if err := r.FromKDSCertBytes(b); err != nil {
		return nil, err
	}
	pc := r.ProductCerts
	if pc == nil || pc.Ark == nil {
		return nil, errors.New("the second certificate (the ARK) does not parse")
	}
	if err := pc.Ark.CheckSignatureFrom(pc.Ark); err != nil {
		return nil, fmt.Errorf("the ARK (%s) is not self-signed: %w", printable.Quote(pc.Ark.Subject.CommonName), err)
	}
	ica := pc.Ask
	if ica == nil {
		ica = pc.Asvk
	}
	if ica == nil {
		return nil, errors.New("the first certificate (the ASK or ASVK) does not parse")
	}
	if err := ica.CheckSignatureFrom(pc.Ark); err != nil {
		return nil, fmt.Errorf("the first certificate (%s) is not signed by the ARK (%s): want ASK (or ASVK) then ARK, as KDS's cert_chain: %w", printable.Quote(ica.Subject.CommonName), printable.Quote(pc.Ark.Subject.CommonName), err)
	}
	return map[string][]*trust.AMDRootCerts{productLine: {r}}, nil
}

// VerifyChain decodes report (and certTable, the guest's GUID table, may be
// empty), applies o.Certs, and checks the V[CL]EK chain to the trusted roots
// and the report signature with go-sev-guest. res (may be nil) receives the
// decoded fields. Every error is ClassChain.
func VerifyChain(ctx context.Context, report, certTable []byte, o VerifyOptions, res *Result) (*spb.Attestation, error) {
	if res == nil {
		res = &Result{}
	}
	if len(report) != abi.ReportSize {
		return nil, fail(ClassChain, "report is %d bytes, want %d", len(report), abi.ReportSize)
	}
	var att *spb.Attestation
	var err error
	if len(certTable) > 0 {
		att, err = decodeWithCertTable(report, certTable)
	} else {
		var r *spb.Report
		r, err = abi.ReportToProto(report)
		att = &spb.Attestation{Report: r}
	}
	if err != nil {
		return nil, fail(ClassChain, "decoding the report: %w", err)
	}
	if att.CertificateChain == nil {
		att.CertificateChain = &spb.CertificateChain{}
	}
	cc := att.CertificateChain
	if o.Certs.VCEK != nil {
		cc.VcekCert = o.Certs.VCEK.Raw
	}
	if o.Certs.VLEK != nil {
		cc.VlekCert = o.Certs.VLEK.Raw
	}
	if o.Certs.ASK != nil {
		cc.AskCert = o.Certs.ASK.Raw
	}
	if o.Certs.ARK != nil {
		cc.ArkCert = o.Certs.ARK.Raw
	}
	rep := att.Report
	res.Attestation = att
	res.ReportVersion = rep.GetVersion()
	res.Measurement = hex.EncodeToString(rep.GetMeasurement())
	res.Policy = fmt.Sprintf("0x%x", rep.GetPolicy())
	vmpl := rep.GetVmpl()
	res.VMPL = &vmpl
	res.ReportedTCB = fmt.Sprintf("0x%016x", rep.GetReportedTcb())
	res.ChipID = hex.EncodeToString(rep.GetChipId())
	res.PlatformInfo = DescribePlatformInfo(rep.GetPlatformInfo())
	si, err := abi.ParseSignerInfo(rep.GetSignerInfo())
	if err != nil {
		return nil, fail(ClassChain, "report signer info: %w", err)
	}
	res.Signer = si.SigningKey.String()
	if si.SigningKey == abi.NoneReportSigner {
		return nil, fail(ClassChain, "the report is not signed (SIGNING_KEY none: the host's SEV firmware was configured with MASK_CHIP_KEY), so nothing in it can be trusted; the host must clear MASK_CHIP_KEY (SNP_SET_CONFIG) for the guest to get signed reports")
	}
	// go-sev-guest v0.15 reads every TCB_VERSION in the Milan/Genoa layout
	// (bl, tee, snp, ucode), and Turin's is another (fmc first, the others
	// moved), so on Turin its TCB checks and KDS URLs would compare and ask
	// for the wrong parts. Refuse up front rather than verify by accident.
	pl := productLine(att) // from the signed CPUID, or the VCEK at hand
	// From version 3 on, the firmware fills the CPUID fields, and
	// go-sev-guest takes the product line (the roots, the TCB layout) from
	// them, or from the VCEK's name when they are zero: a zero there would
	// let a Turin VCEK past the guard below. No firmware sends that.
	if rep.GetVersion() >= 3 {
		fam, model, _ := abi.FmsFromCpuid1Eax(rep.GetCpuid1EaxFms())
		if fam == 0 && model == 0 {
			return nil, fail(ClassChain, "the report (version %d) has no CPUID family and model (zero), which AMD firmware fills from version 3 on: which processor, so which roots and TCB layout, cannot be told", rep.GetVersion())
		}
		if pl == "" || pl == "Unknown" {
			return nil, fail(ClassChain, "the report comes from an AMD processor of family %#x, model %#x, which go-sev-guest v0.15 does not know (it knows Milan, Genoa and Turin): this build cannot verify it", fam, model)
		}
	}
	if pl == "Turin" {
		return nil, fail(ClassChain, "the report comes from an AMD Turin (EPYC 9005) processor, which this build cannot verify: "+TurinReason+", so the TCB and certificate checks would compare the wrong fields; verify with a build on a go-sev-guest release that supports Turin's TCB layout")
	}
	// go-sev-guest looks the roots up by the report's product line and,
	// when there are none, says only "could not be verified by any trusted
	// roots": name the product line and the flags instead.
	roots := o.Roots
	if roots == nil {
		roots = embeddedRoots()
	} else if err := rootsComplete(roots); err != nil {
		return nil, fail(ClassChain, "trusted roots: %w", err)
	}
	if pl != "" && o.Roots != nil && len(o.Roots[pl]) == 0 {
		have := make([]string, 0, len(o.Roots))
		for k := range o.Roots {
			have = append(have, k)
		}
		sort.Strings(have)
		return nil, fail(ClassChain, "the report comes from an AMD %s processor, but the trusted roots are for %s only: give --roots with %s's cert_chain and --roots-product %s, or leave out --roots for AMD's embedded roots", pl, strings.Join(have, ", "), pl, pl)
	}
	if si.SigningKey == abi.VlekReportSigner && len(cc.VlekCert) == 0 {
		return nil, fail(ClassChain, "report is signed by a VLEK but no VLEK certificate was provided (the guest's table had none; pass --certs DIR with vlek.pem)")
	}
	if si.SigningKey == abi.VcekReportSigner && len(cc.VcekCert) == 0 && !o.AllowKDS {
		sent := "the guest sent no certificate table"
		if len(certTable) > 0 {
			sent = "the guest's certificate table has no VCEK entry"
		}
		return nil, fail(ClassChain, "no VCEK certificate: %s; pass --certs DIR with vcek.pem or allow fetching it from AMD's KDS with --kds", sent)
	}
	getter := o.Getter
	if o.AllowKDS && getter == nil {
		getter = &CachingGetter{Next: trust.DefaultHTTPSGetter()}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.CheckCRL && !o.AllowKDS {
		return nil, fail(ClassChain, "checking AMD's revocation list needs fetching from AMD's KDS (AllowKDS)")
	}
	fetch := getter
	if o.CheckCRL {
		fetch = freshCRLGetter{Next: getter, Now: now}
	}
	vopts := &verify.Options{
		CheckRevocations:    o.CheckCRL && (si.SigningKey != abi.VlekReportSigner || rootsHaveASK(roots)),
		DisableCertFetching: !o.AllowKDS,
		Getter:              fetch,
		Now:                 now,
		TrustedRoots:        roots,
	}
	if err := verify.SnpAttestationContext(ctx, att, vopts); err != nil {
		hint := ""
		if cg, ok := getter.(*CachingGetter); ok {
			if served := cg.Served(); len(served) > 0 {
				hint = fmt.Sprintf(" (from the KDS cache: %s; if one is damaged, remove it and it is fetched again)", strings.Join(served, ", "))
			}
		}
		return nil, fail(ClassChain, "AMD certificate chain or report signature: %w%s", shortDumps{err}, hint)
	}
	if o.CheckCRL && si.SigningKey == abi.VlekReportSigner {
		if err := asvkNotRevoked(ctx, fetch, roots, cc.VlekCert); err != nil {
			return nil, fail(ClassChain, "AMD revocation list: %w", err)
		}
	}
	keepTrustedRoots(cc, roots, si.SigningKey == abi.VlekReportSigner, res)
	// go-sev-guest checks the signature over its own re-encoding of the
	// decoded report, and the decoding drops bits (of report version 3 and
	// later, the top four bits of the CPUID stepping byte at 0x18A): the
	// bytes we keep and show must be exactly the signed encoding.
	if enc, err := abi.ReportToAbiBytes(att.Report); err != nil || !bytes.Equal(abi.SignedComponent(enc), abi.SignedComponent(report)) {
		return nil, fail(ClassChain, "the report carries bits outside its signed encoding (go-sev-guest re-encodes the decoded report to check the signature, and these bytes differ)")
	}
	// r and s are 72 bytes each, 48 used. go-sev-guest v0.15 reads all 72
	// (abi.ReportToSignatureDER), so a non-zero padding byte already fails
	// its signature check; refused here in its own words, and whatever a
	// later go-sev-guest does with the padding.
	sig := report[len(abi.SignedComponent(report)):]
	for _, pad := range [][]byte{sig[48:72], sig[72+48 : 144]} {
		for _, b := range pad {
			if b != 0 {
				return nil, fail(ClassChain, "report signature padding is not zero")
			}
		}
	}
	return att, nil
}

// keepTrustedRoots puts in cc, in place of the ASK (or ASVK) and ARK the
// guest's table or --certs gave, the trusted ones that signed its VCEK (or
// VLEK): go-sev-guest checks the chain against the trusted roots only and
// leaves the table's pair in the chain, which the evidence folder records
// as "the certificates used". A table's pair that differs is said.
func keepTrustedRoots(cc *spb.CertificateChain, roots map[string][]*trust.AMDRootCerts, vlek bool, res *Result) {
	// The leaf that did not sign was never checked: it is not one of
	// "the certificates used".
	leafDER := cc.GetVcekCert()
	if vlek {
		leafDER, cc.VcekCert = cc.GetVlekCert(), nil
	} else {
		cc.VlekCert = nil
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return
	}
	for _, line := range slices.Sorted(maps.Keys(roots)) {
		for _, r := range roots[line] {
			pc := r.ProductCerts
			if pc == nil || pc.Ark == nil {
				continue
			}
			issuer := pc.Ask
			if vlek {
				issuer = pc.Asvk
			}
			if issuer == nil || leaf.CheckSignatureFrom(issuer) != nil {
				continue
			}
			if (len(cc.AskCert) > 0 && !bytes.Equal(cc.AskCert, issuer.Raw)) || (len(cc.ArkCert) > 0 && !bytes.Equal(cc.ArkCert, pc.Ark.Raw)) {
				res.Warnings = append(res.Warnings, "the ASK or ARK the host gave (the guest's certificate table or --certs) is not the trusted one that signed the chain: ignored, and the evidence records the trusted pair")
			}
			cc.AskCert, cc.ArkCert = issuer.Raw, pc.Ark.Raw
			return
		}
	}
	// The chain verified, so one of them signed it; that none is found
	// here is a quirk of this check, said rather than left unseen.
	res.Warnings = append(res.Warnings, "the trusted ASK and ARK that signed the chain could not be told apart here: the evidence keeps the ones the host gave (not checked; do not rely on ark.pem and ask.pem)")
}

// shortDumps is err with the byte slices go-sev-guest prints whole in
// some messages ("could not interpret VCEK DER bytes [48 130 5 ...]",
// over a thousand numbers) shown as their length.
type shortDumps struct{ err error }

var byteDump = regexp.MustCompile(`\[(?:\d{1,3} ){15,}\d{1,3}\]`)

func (s shortDumps) Error() string {
	return byteDump.ReplaceAllStringFunc(s.err.Error(), func(d string) string {
		return fmt.Sprintf("(%d bytes)", strings.Count(d, " ")+1)
	})
}

func (s shortDumps) Unwrap() error { return s.err }

// decodeWithCertTable decodes the report and the guest's GUID certificate
// table. The table comes from the host: every entry is bounds-checked here in
// 64-bit arithmetic first, because go-sev-guest (v0.15) checks
// offset+length in uint32, which wraps, and then slices out of range and
// panics. A panic in the decoder is turned into an error as well.
func decodeWithCertTable(report, table []byte) (att *spb.Attestation, err error) {
	if err := checkCertTable(table); err != nil {
		return nil, fmt.Errorf("certificate table from the guest: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			att, err = nil, fmt.Errorf("certificate table from the guest: go-sev-guest panicked decoding it: %v", r)
		}
	}()
	return abi.ReportCertsToProto(append(bytes.Clone(report), table...))
}

// checkCertTable walks a GUID table (entries of GUID, offset, length, ended
// by an all-zero entry) and checks that every entry's bytes lie after the
// header and inside the table.
func checkCertTable(t []byte) error {
	const n = abi.CertTableEntrySize
	var zero [n]byte
	var header uint64
	var entries [][2]uint64
	for i := 0; ; i += n {
		if i+n > len(t) {
			return fmt.Errorf("no all-zero entry ends the table's header (%d bytes)", len(t))
		}
		e := t[i : i+n]
		header = uint64(i + n)
		if bytes.Equal(e, zero[:]) {
			break
		}
		entries = append(entries, [2]uint64{uint64(binary.LittleEndian.Uint32(e[16:])), uint64(binary.LittleEndian.Uint32(e[20:]))})
	}
	for i, e := range entries {
		if e[0] < header || e[0]+e[1] > uint64(len(t)) {
			return fmt.Errorf("entry %d (offset %d, length %d) is outside the certificate data (bytes %d to %d)", i, e[0], e[1], header, len(t))
		}
	}
	// go-sev-guest copies every entry: entries that overlap would cost
	// their count times the table (a few MiB of table, tens of GiB).
	// Each byte of the data belongs to one entry at most, and each GUID
	// names one entry (readers differ on which of two counts).
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(sorted); i++ {
		if p := sorted[i-1]; p[0]+p[1] > sorted[i][0] {
			return fmt.Errorf("entries overlap (offset %d, length %d and offset %d, length %d): each certificate has bytes of its own", p[0], p[1], sorted[i][0], sorted[i][1])
		}
	}
	seen := map[string]bool{}
	for i := 0; i < len(entries); i++ {
		g := string(t[i*n : i*n+16])
		if seen[g] {
			return fmt.Errorf("entry %d repeats the GUID of an earlier entry", i)
		}
		seen[g] = true
	}
	return nil
}

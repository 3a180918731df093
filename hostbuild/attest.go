package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// kdsTransport is where --kds fetches from: AMD's KDS over HTTPS (tests
// put a fake KDS here).
var kdsTransport trust.HTTPSGetter = trust.DefaultHTTPSGetter()

func init() {
	register(command{name: "attest", summary: "fetch an SEV-SNP report from the guest agent and verify it against the manifest", run: runAttest})
}

const attestUsage = `Usage: hostbuild attest (--cid N [--port 1024] | --addr vsock:CID:PORT | --addr tcp:HOST:PORT) --manifest FILE --min-tcb TCB|none [flags]

Sends a fresh random nonce (or --nonce, a verifier's challenge) to the
guest agent, receives the SEV-SNP report, the guest's certificate table,
the REPORT_DATA preimage and the applied config, and verifies, in this
order:
  1. the AMD chain (ARK -> ASK -> VCEK, or ARK -> ASVK -> VLEK) and the
     report signature with go-sev-guest, trusting only the AMD roots
     embedded in it (or --roots); the VCEK comes from the guest's table,
     --certs DIR (snpguest's layout: vcek.pem or vlek.pem, ask.pem,
     ark.pem), or AMD's KDS with --kds; a VLEK from the table or --certs;
  2. REPORT_DATA = SHA-512(tag || our nonce || digest of the returned config);
  3. the launch measurement is one of the manifest's expected measurements,
     and the cmdline the init reports is the manifest's (OVMF's
     initrd=initrd aside);
  4. the guest policy equals the manifest's (debug refused unless
     --allow-debug, a migration agent unless --allow-migration-agent),
     the VMPL, the report version, --min-tcb (required: of the reported
     TCB and of the TCB the guest was launched under; "none" accepts any
     firmware, and an OK then warns), the firmware is committed (no
     provisional firmware that could roll back),
     and, when given, --min-mit-vector (version 5 reports' mitigation
     vectors), --chip-id (which machine) and --platform (what the
     host runs: SMT, RAPL, ciphertext hiding, ...); HOST_DATA and the
     fields an ID block sets (FAMILY_ID, IMAGE_ID, GUEST_SVN, the key
     digests), which the host chooses outside the measurement and this
     launch never sets, are zero.

Exit status:
  0  verified
  1  other failure (I/O, bad manifest, an unusable --roots or --certs,
     writing evidence; interrupted by a signal before a verdict, with no
     evidence written)
  2  usage error, including an --evidence-out that cannot be written
     (checked before the guest is asked: a report is spent once fetched)
  3  transport: no answer, an agent error (for example no_snp_device), a
     malformed response
  4  AMD certificate chain or report signature (also a malformed report, a
     missing VCEK, an unsigned report, a version 3+ report without its
     CPUID family and model, or a report from an AMD Turin processor or one
     go-sev-guest does not know, which this build cannot verify)
  5  REPORT_DATA binding or nonce (mismatch, replayed report)
  6  launch measurement not in the manifest (try --explain)
  7  guest policy, VMPL, report version, TCB, mitigation vector, chip,
     platform, or a field the host sets at launch (HOST_DATA, ID block)

Flags:
`

// verifyFlags are shared by attest and verify.
type verifyFlags struct {
	cmd                                                           string // attest or verify, for messages
	manifest, certs, roots, rootsProduct, kdsCache, minTCB        string
	platform, minMit                                              string
	chipIDs                                                       stringList
	kds, checkCRL, allowDebug, allowMA, jsonOut, explain, verbose bool
	vmpl, minVersion                                              int
	ovmf, kernel, initrd                                          string
	manifestSHA256                                                [sha256.Size]byte // of the bytes options loaded
	warnings                                                      []string          // added to the result's
	fs                                                            *flag.FlagSet
}

func (v *verifyFlags) register(fs *flag.FlagSet) {
	v.fs = fs
	fs.StringVar(&v.manifest, "manifest", "", "manifest `file` to verify against (required)")
	fs.StringVar(&v.certs, "certs", "", "`dir` with vcek.pem or vlek.pem (and ask.pem, ark.pem) in snpguest's layout; replaces the guest's VCEK")
	fs.BoolVar(&v.kds, "kds", false, "allow fetching a missing VCEK and the AMD chain from AMD's KDS (cached on disk)")
	fs.BoolVar(&v.checkCRL, "check-crl", false, "also fetch AMD's revocation list from KDS (never cached), check that the ARK signed it and that it is current (nextUpdate not passed), and refuse a revoked ASK, or for a VLEK-signed report also the VLEK list and a revoked ASVK (needs --kds)")
	fs.StringVar(&v.kdsCache, "kds-cache", "", "KDS cache `dir` (default $XDG_CACHE_HOME/katana-snp/kds)")
	fs.StringVar(&v.roots, "roots", "", "PEM `file` with an ASK (or, for VLEKs, an ASVK) and its ARK to trust INSTEAD of the embedded AMD roots (test platforms only)")
	fs.StringVar(&v.rootsProduct, "roots-product", "Milan", "product `line` of --roots: Milan or Genoa (Turin reports are refused whatever the roots)")
	fs.BoolVar(&v.allowDebug, "allow-debug", false, "accept a guest policy that allows debugging")
	fs.BoolVar(&v.allowMA, "allow-migration-agent", false, "accept a guest policy that allows a migration agent (MIGRATE_MA: an agent the host binds, outside the measurement, can export guest memory)")
	intVar(fs, &v.vmpl, "vmpl", 0, "required `VMPL` of the report")
	fs.StringVar(&v.minTCB, "min-tcb", "", "required: minimum TCB, of the report's REPORTED_TCB and LAUNCH_TCB (AMD's security bulletins give it per processor): 0xHEX, bl=N,tee=N,snp=N,ucode=N, or none to accept any firmware")
	intVar(fs, &v.minVersion, "min-report-version", 2, "minimum report `version`")
	fs.StringVar(&v.minMit, "min-mit-vector", "", "mitigation bits (0xHEX, from AMD's SEV firmware ABI) that the report's LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR must both have; report version 5 and later only")
	fs.Var(&v.chipIDs, "chip-id", "pin the chip: accept only reports whose CHIP_ID is this `hex` (128 digits, the chip_id of --json; repeat for several machines)")
	fs.StringVar(&v.platform, "platform", "", "require of the host's PLATFORM_INFO each of these comma-separated `words`: "+attest.PlatformWords()+" (default: nothing required)")
	fs.BoolVar(&v.jsonOut, "json", false, "print the result as JSON on stdout")
	fs.BoolVar(&v.explain, "explain", false, "on a measurement mismatch, recompute variants from --ovmf, --kernel and --initrd and name the drifted input")
	fs.StringVar(&v.ovmf, "ovmf", "", "local OVMF `file` for --explain")
	fs.StringVar(&v.kernel, "kernel", "", "local kernel `file` for --explain")
	fs.StringVar(&v.initrd, "initrd", "", "local initrd `file` for --explain")
	fs.BoolVar(&v.verbose, "v", false, "debug logging on stderr")
}

// options turns the flags into attest.VerifyOptions (usage errors first).
func (v *verifyFlags) options() (*manifest.Manifest, attest.VerifyOptions, error) {
	var o attest.VerifyOptions
	if v.manifest == "" {
		return nil, o, usageError{"--manifest is required"}
	}
	// Refused up front: found out only after the guest's report was spent,
	// --explain would have nothing to explain with.
	if v.explain && (v.ovmf == "" || v.kernel == "" || v.initrd == "") {
		return nil, o, usageError{attest.ErrExplainNeedsFiles.Error()}
	}
	if v.vmpl < 0 || v.vmpl > 3 {
		return nil, o, usageError{"--vmpl must be 0 to 3"}
	}
	// A flag that only qualifies another is refused without it, rather
	// than ignored in silence.
	set := flagsSet(v.fs)
	if set["roots-product"] && v.roots == "" {
		return nil, o, usageError{"--roots-product names the product line of --roots; give --roots too, or drop it"}
	}
	if set["kds-cache"] && !v.kds {
		return nil, o, usageError{"--kds-cache is where --kds keeps what it fetches; give --kds too, or drop it"}
	}
	if v.checkCRL && !v.kds {
		return nil, o, usageError{"--check-crl fetches AMD's revocation list from KDS; give --kds too, or drop it"}
	}
	// The report's version is a uint32: a larger value must not wrap to a
	// small one (2^32+2 would accept version 2), and 0 would be taken as
	// the default, 2.
	if v.minVersion < 1 || int64(v.minVersion) > math.MaxUint32 {
		return nil, o, usageError{fmt.Sprintf("--min-report-version must be 1 to %d, got %d", uint32(math.MaxUint32), v.minVersion)}
	}
	platform, err := attest.ParsePlatform(v.platform)
	if err != nil {
		return nil, o, usageError{err.Error()}
	}
	var chips [][]byte
	for _, c := range v.chipIDs {
		b, err := attest.ParseChipID(c)
		if err != nil {
			return nil, o, usageError{err.Error()}
		}
		chips = append(chips, b)
	}
	var minMit uint64
	if v.minMit != "" {
		h, ok := strings.CutPrefix(v.minMit, "0x")
		n, err := strconv.ParseUint(h, 16, 64)
		if !ok || err != nil {
			return nil, o, usageError{fmt.Sprintf("--min-mit-vector %q: want 0xHEX (a 64-bit mask)", v.minMit)}
		}
		minMit = n
	}
	// Last of the usage checks, so that the others name their own flag
	// when it is missing too.
	tcb, err := attest.ParseMinTCB(v.minTCB)
	if err != nil {
		return nil, o, usageError{err.Error()}
	}
	m, digest, err := manifest.LoadDigest(v.manifest)
	if err != nil {
		return nil, o, err
	}
	v.manifestSHA256 = digest
	o = attest.VerifyOptions{
		Manifest:            m,
		AllowKDS:            v.kds,
		CheckCRL:            v.checkCRL,
		AllowDebug:          v.allowDebug,
		AllowMigrationAgent: v.allowMA,
		Explaining:          v.explain,
		VMPL:                v.vmpl,
		MinTCB:              tcb,
		MinMitVector:        minMit,
		MinReportVersion:    uint32(v.minVersion),
		ChipIDs:             chips,
		Platform:            platform,
	}
	if v.kds {
		o.Getter = &attest.CachingGetter{Dir: v.kdsCache, Next: kdsTransport}
	}
	if v.certs != "" {
		if o.Certs, err = attest.LoadCerts(v.certs); err != nil {
			return nil, o, err
		}
	}
	if v.roots != "" {
		if o.Roots, err = attest.LoadRoots(v.roots, v.rootsProduct); err != nil {
			return nil, o, err
		}
	}
	return m, o, nil
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func runAttest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("attest", attestUsage, stderr)
	vf := verifyFlags{cmd: "attest"}
	vf.register(fs)
	cid, port, nonceSize := new(uint), new(uint), new(int)
	uintVar(fs, cid, "cid", 0, "guest vsock `CID` (as in -device vhost-vsock-pci,guest-cid=N)")
	uintVar(fs, port, "port", agentapi.DefaultPort, "agent vsock `port`")
	addr := fs.String("addr", "", "agent address instead of --cid: vsock:CID:PORT or tcp:HOST:PORT (plain-QEMU tests)")
	intVar(fs, nonceSize, "nonce-size", agentapi.MaxNonceSize, "nonce size in `bytes` (32 to 64)")
	nonceHex := fs.String("nonce", "", "send this nonce (`hex`, 32 to 64 bytes) instead of a random one: a verifier's challenge, for it to check the evidence with 'hostbuild verify --nonce'; the report is fresh only to whoever chose it")
	timeout := durationVar(fs, "timeout", attest.DefaultFetchTimeout, "timeout of the exchange with the agent (a `duration`, or whole seconds; the guest's sev-guest driver retries up to 60 s while the host answers busy)")
	evidence := fs.String("evidence-out", "", "write the evidence (raw report, certificates, nonce, preimage, config, manifest digest, result) to the new `dir` (checked before the guest is asked: it must not exist, its parent must be writable)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "hostbuild attest: %s\nrun 'hostbuild attest -h' for the flags\n", msg)
		return exitUsage
	}
	if fs.NArg() != 0 {
		return usage(fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	var a agentapi.Addr
	switch {
	case given(fs, "cid") && *cid == 0:
		return usage("--cid 0: want 3 to 4294967294 (0-2 and 4294967295 are reserved)")
	case *addr != "" && *cid != 0:
		return usage("give --cid or --addr, not both")
	case *addr != "":
		if given(fs, "port") {
			return usage("--port goes with --cid; with --addr, give the port in the address (vsock:CID:PORT or tcp:HOST:PORT)")
		}
		var err error
		if a, err = agentapi.ParseDialAddr(*addr); err != nil {
			return usage(err.Error())
		}
	case *cid != 0:
		if *cid < 3 || *cid > 0xFFFFFFFE {
			return usage(fmt.Sprintf("--cid %d: want 3 to 4294967294 (0-2 and 4294967295 are reserved)", *cid))
		}
		if *port == 0 || *port > 0xFFFFFFFE {
			return usage(fmt.Sprintf("--port %d: want 1 to 4294967294", *port))
		}
		a = agentapi.Addr{Network: "vsock", CID: uint32(*cid), Port: uint32(*port)}
	default:
		return usage("--cid or --addr is required")
	}
	if *nonceSize < agentapi.MinNonceSize || *nonceSize > agentapi.MaxNonceSize {
		return usage("--nonce-size must be 32 to 64")
	}
	var challenge []byte
	if given(fs, "nonce") {
		if given(fs, "nonce-size") {
			return usage("give --nonce or --nonce-size, not both (--nonce's length is its own)")
		}
		var err error
		if challenge, err = parseNonceFlag(*nonceHex); err != nil {
			return usage(err.Error())
		}
	}
	if *timeout <= 0 {
		return usage(fmt.Sprintf("--timeout must be positive, got %v", *timeout))
	}
	logger := newLogger(stderr, vf.verbose)
	m, opts, err := vf.options()
	var ue usageError
	if errors.As(err, &ue) {
		return usage(ue.msg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild attest: %v\n", err)
		return exitFail
	}
	// --cid without --port: the port the manifest's cmdline gives the
	// agent; a guest whose agent is not on vsock cannot answer --cid.
	if *cid != 0 && m != nil {
		if cfg, err := bootcfg.Parse(m.Cmdline); err == nil {
			switch cfg.Agent.Mode {
			case bootcfg.AgentVsock:
				if !given(fs, "port") {
					a.Port = cfg.Agent.VsockPort
				}
			case bootcfg.AgentNone:
				return usage("--cid: the manifest's cmdline has katana.agent=none: this guest runs no attestation agent (build it with the default katana.agent=vsock:1024)")
			case bootcfg.AgentTCP:
				return usage(fmt.Sprintf("--cid: the manifest's cmdline serves the agent over TCP (katana.agent=%s), not vsock: give --addr tcp:HOST:PORT, with a port forward to it", cfg.Agent))
			}
		}
	}
	// The evidence folder is checked before the guest is asked: a report
	// is spent once fetched, and evidence that cannot be written is lost.
	if *evidence != "" {
		if err := attest.CheckEvidenceDir(*evidence); err != nil {
			return usage("--evidence-out " + err.Error())
		}
	}
	nonce := challenge
	if nonce == nil {
		if nonce, err = attest.NewNonce(*nonceSize); err != nil {
			fmt.Fprintf(stderr, "hostbuild attest: %v\n", err)
			return exitFail
		}
	}
	logger.Debug("fetching evidence", "addr", a.String(), "nonce_bytes", len(nonce))
	resp, err := attest.Fetch(ctx, attest.FetchOptions{Addr: a, Nonce: nonce, Timeout: *timeout})
	if err != nil {
		if in := interruptCause(ctx); in != nil {
			return reportInterrupted(stdout, stderr, &vf, fmt.Sprintf("%v while asking the agent at %s", in, a), *evidence, nonce)
		}
		return report(stdout, stderr, "attest", vf.jsonOut, &attest.Result{Error: err.Error(), Class: attest.ClassTransport.String(), ExitCode: attest.ClassTransport.ExitCode(), Nonce: hex.EncodeToString(nonce)}, err)
	}
	opts.Nonce = nonce
	return verifyAndReport(ctx, resp, opts, &vf, *evidence, stdout, stderr, logger)
}

// parseNonceFlag reads --nonce: hex (either case) of 32 to 64 bytes.
func parseNonceFlag(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("--nonce %q: want hex digits (a nonce of 32 to 64 bytes)", s)
	}
	if err := agentapi.CheckNonce(b); err != nil {
		return nil, fmt.Errorf("--nonce: %v", err)
	}
	return b, nil
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	lvl := slog.LevelInfo
	if verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// verifyAndReport runs the checks, --explain, the evidence folder and the
// output; it returns the exit code.
func verifyAndReport(ctx context.Context, resp *agentapi.AttestationResponse, opts attest.VerifyOptions, vf *verifyFlags, evidenceDir string, stdout, stderr io.Writer, logger *slog.Logger) int {
	res, verr := attest.Verify(ctx, resp, opts)
	// A check cut short by a signal (a KDS fetch) is no verdict on the
	// report: not a chain failure, nor evidence recording one.
	if in := interruptCause(ctx); verr != nil && in != nil {
		return reportInterrupted(stdout, stderr, vf, fmt.Sprintf("%v before the report was verified", in), evidenceDir, opts.Nonce)
	}
	res.Warnings = append(res.Warnings, vf.warnings...)
	var explained *attest.Explanation
	if attest.ClassOf(verr) == attest.ClassMeasurement && vf.explain {
		ex, err := attest.Explain(ctx, attest.ExplainOptions{Manifest: opts.Manifest, OVMF: vf.ovmf, Kernel: vf.kernel, Initrd: vf.initrd, Got: res.Measurement})
		if err != nil {
			fmt.Fprintf(stderr, "hostbuild %s: explain: %v\n", vf.cmd, err)
		} else {
			explained = ex
		}
	}
	if evidenceDir != "" {
		if err := attest.WriteEvidence(evidenceDir, attest.EvidenceIn{Response: resp, Nonce: opts.Nonce, ManifestSHA256: vf.manifestSHA256, ManifestPath: vf.manifest, Result: res}); err != nil {
			fmt.Fprintf(stderr, "hostbuild %s: %v\n", vf.cmd, err)
			if verr == nil {
				return exitFail
			}
		} else {
			logger.Debug("evidence written", "dir", evidenceDir)
		}
	}
	if vf.jsonOut {
		out := struct {
			*attest.Result
			Explain *attest.Explanation `json:"explain,omitempty"`
		}{res, explained}
		b, _ := json.MarshalIndent(out, "", "  ")
		// The manifest's argv and env: C1 controls and format runes,
		// which encoding/json leaves raw, escaped as inspect --json does.
		fmt.Fprintf(stdout, "%s\n", printable.JSON(b))
	} else {
		printHuman(stdout, res, explained)
	}
	if verr != nil {
		fmt.Fprintf(stderr, "hostbuild %s: attestation rejected: %v\n", vf.cmd, verr)
		return res.ExitCode
	}
	return exitOK
}

// interruptCause is the Interrupted that canceled ctx, or nil.
func interruptCause(ctx context.Context) error {
	var in Interrupted
	if errors.As(context.Cause(ctx), &in) {
		return in
	}
	return nil
}

// reportInterrupted says that a signal stopped attest or verify before a
// verdict (exit 1, as for pack and build), and that no evidence was
// written; with --json, as a Result without a failure class.
func reportInterrupted(stdout, stderr io.Writer, vf *verifyFlags, what, evidenceDir string, nonce []byte) int {
	msg := what + ": no verdict"
	if evidenceDir != "" {
		msg += "; nothing was written to " + evidenceDir
	}
	return report(stdout, stderr, vf.cmd, vf.jsonOut, &attest.Result{Error: msg, ExitCode: exitFail, Nonce: hex.EncodeToString(nonce)}, errors.New(msg))
}

func report(stdout, stderr io.Writer, cmd string, jsonOut bool, res *attest.Result, err error) int {
	if jsonOut {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(stdout, "%s\n", printable.JSON(b))
	}
	fmt.Fprintf(stderr, "hostbuild %s: %v\n", cmd, err)
	return res.ExitCode
}

func printHuman(w io.Writer, r *attest.Result, ex *attest.Explanation) {
	if r.OK {
		fmt.Fprintln(w, "attestation OK")
	} else {
		fmt.Fprintf(w, "attestation FAILED (%s, exit %d): %s\n", r.Class, r.ExitCode, r.Error)
	}
	line := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" && s != "0" {
			fmt.Fprintf(w, "  %-15s %s\n", k+":", s)
		}
	}
	line("provider", printable.Quote(r.Provider))
	line("signer", r.Signer)
	line("product", r.ProductLine)
	line("measurement", r.Measurement)
	if r.MatchedType != "" {
		line("matches", fmt.Sprintf("%d vCPUs of type %s", r.MatchedVCPUs, r.MatchedType))
		// The report says less than one type: what the measurement covers.
		switch {
		case r.AnyVCPUType:
			line("vcpu type", "not measured by this VMM type: any vCPU model gives this measurement")
		case len(r.Alike) > 1:
			line("vcpu type", fmt.Sprintf("measured by its signature %s only: %s give this measurement too", r.MatchedSig, strings.Join(slices.DeleteFunc(slices.Clone(r.Alike), func(t string) bool { return t == r.MatchedType }), ", ")))
		}
	}
	line("policy", r.Policy)
	if r.VMPL != nil {
		fmt.Fprintf(w, "  %-15s %d\n", "vmpl:", *r.VMPL)
	}
	line("reported tcb", r.ReportedTCB)
	line("platform", r.PlatformInfo)
	line("report version", r.ReportVersion)
	line("nonce", r.Nonce)
	line("config digest", r.ConfigDigest)
	if r.Cmdline != "" {
		// The whole measured cmdline: what argv and env come from, and
		// the kernel parameters and init settings besides.
		fmt.Fprintf(w, "  %-15s %s\n", "cmdline:", printable.Quote(r.Cmdline))
	}
	if r.Argv != nil {
		b, _ := json.Marshal(r.Argv)
		line("katana argv", printable.Quote(string(b)))
	}
	if r.Env != "" {
		line("katana env", printable.Quote(r.Env))
	}
	for _, wmsg := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", wmsg)
	}
	if ex != nil {
		fmt.Fprintf(w, "  explain:        %s\n", ex.Likely)
		for _, f := range ex.Files {
			fmt.Fprintf(w, "    file: %s\n", f)
		}
	}
}

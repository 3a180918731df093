package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

func init() {
	register(command{name: "measure", summary: "compute the SEV-SNP launch measurement (sev-snp-measure compatible)", run: runMeasure})
}

const measureUsage = `Usage: hostbuild measure --ovmf FILE --vcpus N --vcpu-type TYPE [--kernel K [--initrd I] [--append S]] [flags]

Computes the AMD SEV-SNP launch measurement of a QEMU direct kernel boot and
prints it as 96 lowercase hex characters (or base64), exactly like
virtee/sev-snp-measure in modes snp and snp:ovmf-hash; its flags for those
modes are accepted so that the two tools can be swapped there (its SVSM
and --dump-vmsa options are refused with a reason).

The cmdline (--append) is hashed byte for byte plus a NUL, never trimmed.
A kernel with an OVMF that has no SNP_KERNEL_HASHES section is refused:
QEMU would boot that kernel, initrd and cmdline unmeasured.

With --manifest-out FILE it also writes a manifest (see 'hostbuild manifest')
for this single vCPU count and type.

Exit status: 0 ok, 1 the inputs cannot be measured, 2 usage error.

Flags:
`

// sevFlags are the sev-snp-measure compatible flags shared by measure.
type sevFlags struct {
	mode, vcpuType, vcpuSig, vmmType, ovmfPath string
	kernel, initrd, appendS, features          string
	outputFormat, ovmfHash                     string
	vcpus, family, model, stepping             int
}

func runMeasure(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("measure", measureUsage, stderr)
	var f sevFlags
	fs.StringVar(&f.mode, "mode", measure.ModeSNP, "`mode`: snp or snp:ovmf-hash")
	intVar(fs, &f.vcpus, "vcpus", 0, "number of guest vCPUs (mode snp)")
	fs.StringVar(&f.vcpuType, "vcpu-type", "", "guest vCPU `type`: "+strings.Join(measure.VCPUTypes(), ", "))
	fs.StringVar(&f.vcpuSig, "vcpu-sig", "", "guest vCPU signature `value` (CPUID(1).EAX; 0x prefix for hex), overrides --vcpu-type")
	intVar(fs, &f.family, "vcpu-family", 0, "guest vCPU family (with --vcpu-model and --vcpu-stepping), overrides --vcpu-sig")
	intVar(fs, &f.model, "vcpu-model", 0, "guest vCPU model")
	intVar(fs, &f.stepping, "vcpu-stepping", 0, "guest vCPU stepping")
	fs.StringVar(&f.vmmType, "vmm-type", "QEMU", "`VMM` type: QEMU, ec2 or gce")
	fs.StringVar(&f.ovmfPath, "ovmf", "", "OVMF firmware `file` (as given to QEMU -bios)")
	fs.StringVar(&f.kernel, "kernel", "", "kernel `file` (QEMU -kernel)")
	fs.StringVar(&f.initrd, "initrd", "", "initrd `file` (QEMU -initrd), needs --kernel")
	fs.StringVar(&f.appendS, "append", "", "exact kernel `cmdline` (QEMU -append), needs --kernel")
	fs.StringVar(&f.features, "guest-features", "0x1", "SEV_FEATURES `value` of the VMSAs")
	fs.StringVar(&f.outputFormat, "output-format", "hex", "`format` of the measurement: hex or base64")
	fs.StringVar(&f.ovmfHash, "snp-ovmf-hash", "", "precomputed OVMF `hash` (hex, from --mode snp:ovmf-hash) instead of hashing the firmware pages")
	jsonOut := fs.Bool("json", false, "print JSON with the inputs' SHA-256s and the digest after every step")
	verbose := fs.Bool("v", false, "print 'Calculated SEV_SNP guest measurement: ...' like sev-snp-measure -v")
	fs.BoolVar(verbose, "verbose", false, "same as -v")
	manifestPath := fs.String("manifest-out", "", "also write a manifest for this configuration to `file` (replaced)")
	// --manifest is what every other command reads: refused here, so that
	// "measure ... --manifest out/manifest.json", meant as a check, does
	// not replace build's manifest.
	fs.String("manifest", "", "not a flag of measure: --manifest-out FILE writes a manifest")
	// sev-snp-measure's flags for what this tool does not do are known,
	// to say so rather than "flag provided but not defined".
	svsmFlags := []string{"svsm", "vars-size", "vars-file"}
	for _, n := range svsmFlags {
		fs.String(n, "", "sev-snp-measure's SVSM option: not supported (mode snp:svsm is not)")
	}
	fs.Bool("dump-vmsa", false, "sev-snp-measure's VMSA dump: not supported")
	mf := manifestFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageFail := usageErrorf(stderr, "measure")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	set := flagsSet(fs)
	if set["manifest"] {
		return usageFail("--manifest is not a flag of measure (other commands read the manifest it names; measure would write it): give --manifest-out FILE to write one, or 'hostbuild reproduce --manifest FILE ...' to check one")
	}
	for _, n := range svsmFlags {
		if set[n] {
			return usageFail("--%s: SVSM (sev-snp-measure's mode snp:svsm) is not supported: this tool measures SEV-SNP direct boot (modes snp, snp:ovmf-hash)", n)
		}
	}
	if set["dump-vmsa"] {
		return usageFail("--dump-vmsa is not supported: this tool does not write the VMSA pages out (-v and --json show each step's digest)")
	}

	o, err := f.options(set)
	if err != nil {
		return usageFail("%v", err)
	}
	if f.outputFormat != "hex" && f.outputFormat != "base64" {
		return usageFail("--output-format %q: want hex or base64", f.outputFormat)
	}

	if *manifestPath == "" {
		for _, name := range []string{"payload", "init", "policy", "source-date-epoch"} {
			if set[name] {
				return usageFail("--%s only goes into a manifest; add --manifest-out FILE", name)
			}
		}
	}
	ins := []input{{flag: "--ovmf", path: o.OVMF}, {flag: "--kernel", path: o.Kernel}, {flag: "--initrd", path: o.Initrd}}
	if *manifestPath != "" {
		ins = append(ins, input{flag: "--payload", path: mf.payload}, input{flag: "--init", path: mf.init})
	}
	if err := checkInputs(ins...); err != nil {
		fmt.Fprintf(stderr, "hostbuild measure: %v\n", err)
		return exitFail
	}
	if err := checkOutput("--manifest-out", *manifestPath, ins...); err != nil {
		fmt.Fprintf(stderr, "hostbuild measure: %v\n", err)
		return exitFail
	}
	if err := checkOutputFolder("--manifest-out", *manifestPath); err != nil {
		fmt.Fprintf(stderr, "hostbuild measure: %v\n", err)
		return exitFail
	}
	var res measure.Result
	code := exitOK
	compute := func() (measure.Result, int) {
		res, err := measure.Compute(ctx, o)
		if err != nil {
			fmt.Fprintf(stderr, "hostbuild measure: %v\n", err)
			if errors.Is(err, measure.ErrUsage) {
				return res, exitUsage
			}
			return res, exitFail
		}
		return res, exitOK
	}
	if *manifestPath != "" {
		if o.Mode != measure.ModeSNP || o.SnpOVMFHash != "" {
			return usageFail("--manifest-out needs mode snp without --snp-ovmf-hash (the manifest records the firmware's own hash)")
		}
		if o.Kernel == "" || o.Initrd == "" {
			return usageFail("--manifest-out needs --kernel and --initrd")
		}
		if o.VCPUType == "" || o.VCPUSigSet {
			return usageFail("--manifest-out needs --vcpu-type (QEMU is launched with -cpu TYPE) and no --vcpu-sig/--vcpu-family")
		}
		// The manifest is what run launches from: its cmdline must be one
		// the init accepts (measure alone hashes any bytes, as
		// sev-snp-measure does).
		if err := checkBootCmdline(o.Append); err != nil {
			return usageFail("--append: %v", err)
		}
		warnCmdline(stderr, "measure", "--append", o.Append)
		g, err := mf.options(set)
		if err != nil {
			return usageFail("%v", err)
		}
		g.OVMF, g.Kernel, g.Initrd, g.Cmdline = o.OVMF, o.Kernel, o.Initrd, o.Append
		g.VCPUs, g.VCPUTypes = []int{o.VCPUs}, []string{o.VCPUType}
		g.VMMType, g.GuestFeatures = o.VMMType, o.GuestFeatures
		// The warnings 'hostbuild manifest' gives for the same settings.
		// (Those of the OVMF and the kernel come from the manifest's
		// reading of them: writeManifest.)
		warnUnverifiable(stderr, "measure", g.VCPUTypes)
		warnDebugPolicy(stderr, "measure", g.GuestPolicy)
		// --json's steps come from a reading of their own, made first, so
		// that an interruption cannot leave a new manifest behind an
		// "interrupted"; the two readings are compared before the
		// manifest is written, and a difference writes nothing.
		if *jsonOut {
			if res, code = compute(); code != exitOK {
				return code
			}
			measureComputed()
		}
		var d []byte // the manifest holds exactly this measurement
		_, code := writeManifest(ctx, "measure", *manifestPath, g, "the manifest's measurement will match no launch QEMU makes with kernel-hashes=on", stderr, func(m *manifest.Manifest) error {
			var err error
			if d, err = hex.DecodeString(m.Measurements[0].Measurement); err != nil || len(d) != len(res.Digest) {
				return fmt.Errorf("manifest measurement %q is malformed", m.Measurements[0].Measurement)
			}
			if *jsonOut && !bytes.Equal(d, res.Digest[:]) {
				return fmt.Errorf("an input changed while it was read: the manifest's reading gave measurement %s, the JSON's %s; nothing written or printed (%s is as it was): make sure nothing writes the inputs and run again", m.Measurements[0].Measurement, res.Hex(), *manifestPath)
			}
			return nil
		})
		if code != exitOK {
			return code
		}
		copy(res.Digest[:], d)
	} else if res, code = compute(); code != exitOK {
		return code
	}
	out := res.Hex()
	if f.outputFormat == "base64" {
		out = base64.StdEncoding.EncodeToString(res.Digest[:])
	}
	switch {
	case *jsonOut:
		return printMeasureJSON(stdout, stderr, out, res, o)
	case *verbose:
		fmt.Fprintf(stdout, "Calculated SEV_SNP guest measurement: %s\n", out)
	default:
		fmt.Fprintln(stdout, out)
	}
	return exitOK
}

// printMeasureJSON prints measure --json's document: the measurement (out,
// as --output-format gave it), the settings, the inputs' SHA-256s and the
// digest after every step.
func printMeasureJSON(stdout, stderr io.Writer, out string, res measure.Result, o measure.Options) int {
	doc := struct {
		Measurement   string         `json:"measurement"`
		Mode          string         `json:"mode"`
		VMMType       string         `json:"vmm_type"`
		VCPUs         int            `json:"vcpus,omitempty"`
		VCPUType      string         `json:"vcpu_type,omitempty"`
		VCPUSig       string         `json:"vcpu_sig,omitempty"`
		GuestFeatures string         `json:"guest_features"`
		Cmdline       *string        `json:"cmdline,omitempty"`
		Inputs        measure.Inputs `json:"inputs"`
		Steps         []measure.Step `json:"steps"`
	}{
		Measurement: out, Mode: res.Mode, VMMType: res.VMMType, Inputs: res.Inputs, Steps: res.Steps,
		GuestFeatures: fmt.Sprintf("0x%x", o.GuestFeatures),
	}
	if res.Mode == measure.ModeSNP {
		doc.VCPUs, doc.VCPUType, doc.VCPUSig = res.VCPUs, res.VCPUType, fmt.Sprintf("0x%x", res.VCPUSig)
	}
	if o.Kernel != "" {
		doc.Cmdline = &o.Append
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintf(stderr, "hostbuild measure: writing JSON: %v\n", err)
		return exitFail
	}
	// The cmdline is often someone else's (--append "$(cat
	// cmdline)"): C1 controls and format runes, which encoding/json
	// leaves raw, escaped as attest and inspect --json do.
	if _, err := stdout.Write(printable.JSON(buf.Bytes())); err != nil {
		fmt.Fprintf(stderr, "hostbuild measure: writing JSON: %v\n", err)
		return exitFail
	}
	return exitOK
}

func (f *sevFlags) options(set map[string]bool) (measure.Options, error) {
	o := measure.Options{
		Mode:        f.mode,
		VCPUs:       f.vcpus,
		VCPUType:    f.vcpuType,
		VMMType:     f.vmmType,
		OVMF:        f.ovmfPath,
		Kernel:      f.kernel,
		Initrd:      f.initrd,
		Append:      f.appendS,
		SnpOVMFHash: f.ovmfHash,
	}
	switch f.mode {
	case measure.ModeSNP, measure.ModeOVMFHash:
	case "sev", "seves", "snp:svsm":
		return o, fmt.Errorf("--mode %s is not supported: this tool measures SEV-SNP direct boot (snp, snp:ovmf-hash)", f.mode)
	default:
		return o, fmt.Errorf("--mode %q: want snp or snp:ovmf-hash", f.mode)
	}
	if f.ovmfPath == "" {
		return o, errors.New("--ovmf is required")
	}
	if f.kernel == "" && f.initrd != "" {
		return o, errors.New("--kernel required when using --initrd")
	}
	if f.kernel == "" && f.appendS != "" {
		return o, errors.New("--kernel required when using --append")
	}
	if f.mode == measure.ModeSNP && !set["vcpus"] {
		return o, fmt.Errorf("missing --vcpus N in guest mode '%s'", f.mode)
	}
	if f.vcpuType != "" {
		if _, err := measure.VCPUSigOf(f.vcpuType); err != nil {
			return o, fmt.Errorf("--vcpu-type: %w; or give the signature with --vcpu-sig", err)
		}
	}
	feat, err := parseGuestFeatures(f.features)
	o.GuestFeatures = feat
	if err != nil {
		return o, err
	}
	if _, err := measure.ParseVMMType(f.vmmType); err != nil {
		return o, fmt.Errorf("--vmm-type: %w", err)
	}
	switch {
	case set["vcpu-family"] || set["vcpu-model"] || set["vcpu-stepping"]:
		if !set["vcpu-family"] || !set["vcpu-model"] || !set["vcpu-stepping"] {
			return o, errors.New("--vcpu-family, --vcpu-model and --vcpu-stepping go together")
		}
		if f.family < 0 || f.model < 0 || f.stepping < 0 || f.family > 0xff+0xf || f.model > 0xff || f.stepping > 0xf {
			return o, fmt.Errorf("vCPU family %d, model %d, stepping %d out of range", f.family, f.model, f.stepping)
		}
		o.VCPUSig, o.VCPUSigSet = measure.CPUSig(uint32(f.family), uint32(f.model), uint32(f.stepping)), true
	case set["vcpu-sig"]:
		sig, err := parseAutoInt(f.vcpuSig, 32)
		if err != nil {
			return o, fmt.Errorf("--vcpu-sig %q: %w", f.vcpuSig, err)
		}
		o.VCPUSig, o.VCPUSigSet = uint32(sig), true
	case f.vcpuType == "" && f.mode == measure.ModeSNP && (f.vmmType == "QEMU" || f.vmmType == ""):
		return o, fmt.Errorf("missing --vcpu-type or --vcpu-sig or --vcpu-family in guest mode '%s'", f.mode)
	}
	return o, nil
}

// manifestOnly are the flags that only matter for the manifest.
type manifestOnly struct {
	payload, init, policy string
	sourceDateEpoch       int64
}

func manifestFlags(fs *flag.FlagSet) *manifestOnly {
	var m manifestOnly
	fs.StringVar(&m.payload, "payload", "", "payload `file` packed into the initrd (its SHA-256 goes into the manifest)")
	fs.StringVar(&m.init, "init", "", "init `file` packed into the initrd (SHA-256 and Go build info go into the manifest)")
	fs.StringVar(&m.policy, "policy", "0x30000", "SEV-SNP guest `policy` recorded in the manifest")
	// The default is chosen in options (the flag unset: $SOURCE_DATE_EPOCH,
	// else 0); the flag's own default is the zero value, so that -h prints
	// only the usage's "(default: ...)" and no "(default -1)" beside it.
	fs.Int64Var(&m.sourceDateEpoch, "source-date-epoch", 0, "`seconds` recorded as SOURCE_DATE_EPOCH (default: $SOURCE_DATE_EPOCH, else 0; for a hostbuild pack initrd, the epoch it was packed with, which another value may not contradict)")
	return &m
}

func (m *manifestOnly) options(set map[string]bool) (manifest.GenerateOptions, error) {
	g := manifest.GenerateOptions{Payload: m.payload, Init: m.init, ToolName: "hostbuild", ToolVersion: version}
	pol, err := parsePolicy(m.policy)
	if err != nil {
		return g, err
	}
	g.GuestPolicy = pol
	g.SourceDateEpoch = m.sourceDateEpoch
	if !set["source-date-epoch"] {
		g.SourceDateEpoch = 0
		if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
			n, err := strconv.ParseInt(env, 10, 64)
			if err != nil || n < 0 {
				return g, fmt.Errorf("$SOURCE_DATE_EPOCH %q is not a non-negative integer", env)
			}
			g.SourceDateEpoch = n
		}
	}
	if g.SourceDateEpoch < 0 {
		return g, fmt.Errorf("--source-date-epoch %d is negative", g.SourceDateEpoch)
	}
	// As pack refuses it: no initrd has a later one.
	if g.SourceDateEpoch > math.MaxUint32 {
		what := "$SOURCE_DATE_EPOCH"
		if set["source-date-epoch"] {
			what = "--source-date-epoch"
		}
		return g, fmt.Errorf("%s %d is out of range: cpio mtimes are 32-bit unsigned seconds, 0 to %d, and no initrd can carry a later one", what, g.SourceDateEpoch, uint32(math.MaxUint32))
	}
	return g, nil
}

// inputs are the files a manifest is generated from, for checkInputs.
func inputsOf(g manifest.GenerateOptions) []input {
	return []input{{flag: "--ovmf", path: g.OVMF}, {flag: "--kernel", path: g.Kernel}, {flag: "--initrd", path: g.Initrd},
		{flag: "--payload", path: g.Payload}, {flag: "--init", path: g.Init}}
}

// generateExit is the exit status of an error of manifest.Generate or
// GenerateOptions.Check: usage for invalid settings, else failure.
func generateExit(err error) int {
	if errors.Is(err, measure.ErrUsage) || errors.Is(err, manifest.ErrInvalid) {
		return exitUsage
	}
	return exitFail
}

// writeManifest generates a manifest and writes it atomically to path,
// unless one of checks refuses it (its error printed, nothing written).
// The warnings about its OVMF and kernel (warnMeasured: notBzImage says
// what a kernel that is no bzImage means) are of the bytes measured.
func writeManifest(ctx context.Context, cmd, path string, g manifest.GenerateOptions, notBzImage string, stderr io.Writer, checks ...func(*manifest.Manifest) error) (*manifest.Manifest, int) {
	m, in, err := manifest.GenerateInputs(ctx, g)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: %v%s\n", cmd, err, ifInterrupted(err, path+" was not written (left as it was)"))
		return nil, generateExit(err)
	}
	manifestGenerated()
	warnMeasured(stderr, cmd, in, g.GuestFeatures, notBzImage)
	if err := checkContents(ctx, g.Initrd, g.Payload, g.Init, measuredKernel(in), m, func(w string) { fmt.Fprintf(stderr, "hostbuild %s: warning: %s\n", cmd, w) }); err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: %v%s\n", cmd, err, ifInterrupted(err, path+" was not written (left as it was)"))
		return nil, exitFail
	}
	for _, check := range checks {
		if err := check(m); err != nil {
			fmt.Fprintf(stderr, "hostbuild %s: %v\n", cmd, err)
			return nil, exitFail
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "hostbuild %s: %v; %s was not written (left as it was)\n", cmd, context.Cause(ctx), path)
		return nil, exitFail
	}
	removeStaleTemporaries(stderr, cmd, path)
	if err := manifest.WriteFile(path, m); err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: %v\n", cmd, err)
		return nil, exitFail
	}
	return m, exitOK
}

// checkContents checks the payload and init that m records (from --payload
// and --init) against what the initrd at initrdPath holds. The measurement
// covers only the initrd's bytes: nothing else ties those two records to it,
// and attest shows them as what the guest runs, so a payload the initrd
// does not hold must not be recorded. Without either, an initrd with a
// content list (hostbuild pack's, or one that claims to be) is read all the
// same: it is refused when it holds what its list does not vouch for, and
// its operator's files are recorded in m; one without (another builder's,
// the seed's) is recorded by its bytes alone. The kernel modules in an
// initrd with a content list (pack names their folder by their vermagic)
// must be the release of kernel (the kernel m records, as its measurement
// read it; none given: not checked).
// It stops with ctx's cause once ctx is done.
//
// warn gets a broken archive that is recorded all the same: a newc stream
// cut short or malformed (an interrupted copy?), which the kernel unpacks
// as far as it can and boots on.
func checkContents(ctx context.Context, initrdPath, payloadPath, initPath string, kernel kernelHead, m *manifest.Manifest, warn func(string)) error {
	_, err := checkContentsEpoch(ctx, initrdPath, payloadPath, initPath, kernel, m, warn)
	return err
}

// checkContentsEpoch is checkContents that also says whether the initrd
// states its SOURCE_DATE_EPOCH (a content list, and one mtime for every
// entry, as pack writes them), which m then records.
func checkContentsEpoch(ctx context.Context, initrdPath, payloadPath, initPath string, kernel kernelHead, m *manifest.Manifest, warn func(string)) (epochStated bool, err error) {
	p, in := m.Components.Payload, m.Components.Init
	a, err := initrd.ReadFileContext(ctx, initrdPath)
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if err != nil {
		if p == nil && in == nil {
			var fe *newc.FormatError
			if errors.As(err, &fe) || errors.Is(err, io.ErrUnexpectedEOF) {
				warn(fmt.Sprintf("--initrd %s is an initrd archive, but a broken one: %v (a truncated copy? the kernel unpacks what it can and boots on; 'hostbuild inspect' lists it): recorded by its bytes alone", initrdPath, err))
			}
			return false, nil // not an initrd this tool reads: its bytes are all there is to record
		}
		return epochStated, fmt.Errorf("--payload and --init are checked against --initrd, which cannot be read as an initrd: %w (leave them out for an initrd hostbuild pack did not build)", err)
	}
	if p == nil && in == nil && !a.HasContentList() {
		return false, nil
	}
	if a.HasContentList() {
		if err := kernel.checkRelease("--initrd "+initrdPath, a.ModuleReleases()...); err != nil {
			return epochStated, err
		}
	}
	// pack writes every entry's mtime as its SOURCE_DATE_EPOCH: that is
	// the one to record, not whatever this run's environment holds.
	t, ok := a.CommonMTime()
	epochStated = ok && a.HasContentList()
	if epochStated && int64(t) != m.SourceDateEpoch {
		if m.SourceDateEpoch != 0 {
			return epochStated, fmt.Errorf("SOURCE_DATE_EPOCH %d (--source-date-epoch or $SOURCE_DATE_EPOCH), but --initrd %s was packed with %d (its entries' mtime): pass %d, or neither (unset $SOURCE_DATE_EPOCH), and the manifest records the initrd's", m.SourceDateEpoch, initrdPath, t, t)
		}
		m.SourceDateEpoch = int64(t)
	}
	if a.SHA256 != m.Components.Initrd.SHA256 {
		return epochStated, fmt.Errorf("--initrd %s changed while it was read (SHA-256 %s, then %s): run again once it is written", initrdPath, m.Components.Initrd.SHA256, a.SHA256)
	}
	// Read reports no payload when the archive cannot say which file the
	// guest ends up with (a ".." entry, a path through a symlink, a content
	// list the init refuses): then no entry, /init included, can be checked.
	if a.PayloadUnknown != "" && (p != nil || in != nil) {
		what, path := "--payload", payloadPath
		if p == nil {
			what, path = "--init", initPath
		}
		return epochStated, fmt.Errorf("%s %s cannot be checked against --initrd %s: %s", what, path, initrdPath, a.PayloadUnknown)
	}
	if p != nil {
		if a.Payload == nil {
			return epochStated, fmt.Errorf("--payload %s cannot be checked against --initrd %s: it holds no payload (no %s, no %s)", payloadPath, initrdPath,
				initrdlayout.PayloadPath, initrdlayout.FramesPath)
		}
		if a.Payload.SHA256 != p.SHA256 {
			return epochStated, fmt.Errorf("--payload %s (SHA-256 %s) is not the payload of --initrd %s (SHA-256 %s, %d bytes, %s): pass the payload the initrd was packed with, or pack the initrd again with this one",
				payloadPath, p.SHA256, initrdPath, a.Payload.SHA256, a.Payload.Size, a.Payload.Stored)
		}
	}
	if in != nil {
		e, ok := a.Lookup(initrdlayout.InitPath)
		if !ok || e.Type != "file" {
			return epochStated, fmt.Errorf("--init %s cannot be checked against --initrd %s: it has no /%s file", initPath, initrdPath, initrdlayout.InitPath)
		}
		if e.SHA256 != in.SHA256 {
			return epochStated, fmt.Errorf("--init %s (SHA-256 %s) is not the /%s of --initrd %s (SHA-256 %s): pass the init the initrd was packed with, or pack the initrd again with this one",
				initPath, in.SHA256, initrdlayout.InitPath, initrdPath, e.SHA256)
		}
	}
	// The operator's files, as a guest that boots has them; none listed
	// (not an empty list) for an initrd that is not hostbuild's.
	es, err := a.OperatorFiles()
	if errors.Is(err, initrd.ErrNoContentList) {
		return epochStated, nil
	}
	if err != nil {
		return epochStated, fmt.Errorf("--initrd %s holds what its content list does not vouch for, so the manifest cannot list what Katana reads: %w", initrdPath, err)
	}
	files := []manifest.OperatorFile{}
	for _, e := range es {
		files = append(files, manifest.OperatorFile{Path: "/" + e.Path, Size: e.Size, SHA256: e.SHA256})
	}
	m.Components.Files = &files
	return epochStated, nil
}

// manifestGenerated runs once a manifest is generated, before the initrd
// is read again to check it: a test seam (an interruption in between).
var manifestGenerated = func() {}

// measureComputed runs between measure --manifest-out --json's two readings of
// the inputs (a test changes one there).
var measureComputed = func() {}

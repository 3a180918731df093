package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-sev-guest/abi"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func init() {
	register(command{name: "manifest", summary: "write the launch manifest: component hashes, cmdline, expected measurements", run: runManifest})
}

const manifestUsage = `Usage: hostbuild manifest --ovmf F --kernel K --initrd I --cmdline S
         --vcpus 1,2,4 --vcpu-type EPYC-v4,EPYC-Genoa [--payload P] [--init I]
         [--guest-features 0x1] [--policy 0x30000] [--vmm-type QEMU]
         [--source-date-epoch N] -o manifest.json

Writes the launch manifest (schema ` + manifest.Schema + `): the SHA-256 of the
OVMF, kernel, initrd, payload and init; the exact cmdline; VMM type, guest
features and guest policy; the expected SEV-SNP launch measurement for every
combination of vCPU count and vCPU type; SOURCE_DATE_EPOCH; the init's Go
build info and this tool's version. 'hostbuild run' launches from it and
'hostbuild attest' verifies against it. The same inputs give the same bytes.
The file is written atomically (temporary file, fsync, rename).

--payload and --init are checked against the initrd: each must be the file
the initrd holds (the payload the init runs, and /init). An initrd with a
content list (hostbuild pack's) is read with or without them: the manifest
lists the operator's files it holds under /etc/katana/ and /usr/local/bin/
(hostbuild pack --file and --exec) with their SHA-256, and an initrd that
holds anything its content list does not vouch for is refused. Another
builder's initrd (no content list) is recorded by its bytes alone.

Exit status: 0 written, 1 the inputs cannot be read or measured, or --payload
or --init is not what --initrd holds, or the initrd holds a file its content
list does not vouch for or kernel modules of another release than --kernel,
2 usage error.

Flags:
`

func runManifest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("manifest", manifestUsage, stderr)
	ovmfPath := fs.String("ovmf", "", "OVMF firmware `file` (AmdSevX64 build) (required)")
	kernel := fs.String("kernel", "", "kernel `file` (required)")
	initrd := fs.String("initrd", "", "initrd `file` (required)")
	cmdline := fs.String("cmdline", "", "exact kernel `cmdline` (hashed byte for byte; 'hostbuild cmdline' prints one) (required)")
	vcpus := fs.String("vcpus", "", "comma-separated vCPU `counts`, e.g. 1,2,4 (required)")
	vcpuTypes := fs.String("vcpu-type", "", "comma-separated vCPU `types`, e.g. EPYC-v4,EPYC-Genoa (required)")
	features := fs.String("guest-features", "0x1", "SEV_FEATURES `value` of the VMSAs")
	vmmType := fs.String("vmm-type", "QEMU", "`VMM` type: QEMU, ec2 or gce")
	out := fs.String("o", "", "output `file` (required)")
	mf := manifestFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageFail := usageErrorf(stderr, "manifest")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	set := flagsSet(fs)
	if m := unsetFlags(set, "ovmf", "kernel", "initrd", "vcpus", "vcpu-type", "o"); m != "" {
		return usageFail("%s", m)
	}
	// Without --cmdline the manifest would record the empty cmdline, which
	// is almost never the one QEMU is given: refuse rather than guess.
	if !set["cmdline"] {
		return usageFail("--cmdline is required: the exact cmdline QEMU boots with (print it with 'hostbuild cmdline')")
	}
	if err := checkBootCmdline(*cmdline); err != nil {
		return usageFail("--cmdline: %v", err)
	}
	warnCmdline(stderr, "manifest", "--cmdline", *cmdline)
	g, err := mf.options(set)
	if err != nil {
		return usageFail("%v", err)
	}
	g.OVMF, g.Kernel, g.Initrd, g.Cmdline, g.VMMType = *ovmfPath, *kernel, *initrd, *cmdline, *vmmType
	if err := checkInputs(inputsOf(g)...); err != nil {
		fmt.Fprintf(stderr, "hostbuild manifest: %v\n", err)
		return exitFail
	}
	if err := checkOutput("-o", *out, inputsOf(g)...); err != nil {
		fmt.Fprintf(stderr, "hostbuild manifest: %v\n", err)
		return exitFail
	}
	if err := checkOutputFolder("-o", *out); err != nil {
		fmt.Fprintf(stderr, "hostbuild manifest: %v\n", err)
		return exitFail
	}
	if g.VCPUs, g.VCPUTypes, err = parseMatrix(*vcpus, *vcpuTypes); err != nil {
		return usageFail("%v", err)
	}
	warnUnverifiable(stderr, "manifest", g.VCPUTypes)
	warnAlike(stderr, "manifest", g.VMMType, g.VCPUTypes)
	warnDebugPolicy(stderr, "manifest", g.GuestPolicy)
	feat, err := parseGuestFeatures(*features)
	if err != nil {
		return usageFail("%v", err)
	}
	g.GuestFeatures = feat
	// The OVMF and the kernel are warned of as the measurement reads
	// them; a kernel that is no bzImage is measured all the same, as
	// sev-snp-measure would (the measurement only hashes the file), but
	// QEMU boots no such launch.
	m, code := writeManifest(ctx, "manifest", *out, g, "its measurements will match no launch QEMU makes with kernel-hashes=on", stderr)
	if code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "%s: %d measurements (%d vCPU counts × %d vCPU types)\n", *out, len(m.Measurements), len(g.VCPUs), len(g.VCPUTypes))
	return exitOK
}

// checkBootCmdline parses a cmdline with the init's own parser
// (shared/bootcfg), as the guest will at boot: a cmdline it refuses (an
// unknown katana.* key, a bad value) would give a manifest, and a launch,
// for a guest that never starts.
func checkBootCmdline(line string) error {
	// What Generate refuses too (manifest.CheckOVMFCmdline), said here so
	// that the message names the flag.
	if err := bootcfg.CheckBytes(line); err != nil {
		return fmt.Errorf("the guest would not get this cmdline byte for byte: %w", err)
	}
	if err := bootcfg.CheckLen(line); err != nil {
		return fmt.Errorf("the guest would not get the whole cmdline: %w", err)
	}
	if _, err := bootcfg.Parse(line); err != nil {
		return fmt.Errorf("%w; the guest init refuses this cmdline at boot ('hostbuild cmdline' formats a valid one)", err)
	}
	return nil
}

// warnUnverifiable warns of the vCPU types whose reports attest cannot
// verify (Turin), and of those QEMU cannot launch an SEV-SNP guest with
// (run refuses them): the manifest is still written, for another verifier
// or, as the measurement is the same, the replacement type.
func warnUnverifiable(stderr io.Writer, cmd string, types []string) {
	for _, t := range types {
		if why := attest.UnverifiableVCPUType(t); why != "" {
			fmt.Fprintf(stderr, "hostbuild %s: warning: --vcpu-type %s: %s\n", cmd, t, why)
		}
		if why := measure.SNPLaunchRefused(t); why != "" {
			fmt.Fprintf(stderr, "hostbuild %s: warning: --vcpu-type %s: %s (run refuses it)\n", cmd, t, why)
		}
	}
}

// warnOVMFImage warns of an OVMF image that can be measured but that
// QEMU cannot start an SEV-SNP guest on (ovmf.Image.CheckLaunch): the
// manifest is written, for a measurement-only stand-in such as the demo's,
// but no launch will match it with this file.
// im is the image as the measurement parsed it (nil: none, nothing to say).
func warnOVMFImage(stderr io.Writer, cmd, path string, im *ovmf.Image) {
	if im == nil {
		return
	}
	if err := im.CheckLaunch(); err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: warning: --ovmf %s: %v; run cannot launch it\n", cmd, path, err)
	}
}

// warnMeasured gives, for cmd, the warnings about the OVMF and the kernel
// a manifest is written for, from what its measurement read of them (in):
// the files whose hashes it records, even if another file was renamed over
// a path meanwhile. notBzImage says what follows from a kernel that is no
// bzImage.
func warnMeasured(stderr io.Writer, cmd string, in measure.Inputs, features uint64, notBzImage string) {
	k := measuredKernel(in)
	k.warnNotBzImage(stderr, cmd, notBzImage)
	warnOVMFImage(stderr, cmd, in.OVMF.Path, in.OVMFImage)
	k.warnDebugSwap(stderr, cmd, features)
}

// warnAlike warns of vCPU types of the matrix that give the same
// measurements (QEMU measures only a type's signature; ec2 and gce none):
// rows a report cannot tell apart.
func warnAlike(stderr io.Writer, cmd, vmmType string, types []string) {
	vmm, err := measure.ParseVMMType(vmmType)
	if err != nil || len(types) < 2 {
		return
	}
	if vmm != measure.VMMQEMU {
		fmt.Fprintf(stderr, "hostbuild %s: warning: VMM type %s measures no vCPU type: the rows of --vcpu-type %s have the same measurements, and a report cannot say which the guest had\n", cmd, vmm, strings.Join(types, ","))
		return
	}
	for i, a := range types {
		for _, b := range types[i+1:] {
			if slices.Contains(measure.Alike(vmm, a), b) {
				fmt.Fprintf(stderr, "hostbuild %s: warning: --vcpu-type %s and %s have the same signature, so the same measurements (QEMU measures only the signature): a report cannot say which the guest had\n", cmd, a, b)
			}
		}
	}
}

// warnDebugPolicy warns of a guest policy that allows debugging or a
// migration agent: the host can then read and change the guest's memory
// (or export it through an agent it binds), and attest refuses its
// reports (without --allow-debug, --allow-migration-agent).
func warnDebugPolicy(stderr io.Writer, cmd string, pol uint64) {
	p, err := abi.ParseSnpPolicy(pol)
	if err != nil {
		return
	}
	if p.Debug {
		fmt.Fprintf(stderr, "hostbuild %s: warning: guest policy %#x allows debugging (bit 19): the host can read and change the guest's memory, and attest refuses its reports (unless --allow-debug)\n", cmd, pol)
	}
	if p.MigrateMA {
		fmt.Fprintf(stderr, "hostbuild %s: warning: guest policy %#x allows a migration agent (bit 18): an agent the host binds at launch, outside the measurement, can export the guest's memory, attest refuses its reports (unless --allow-migration-agent), and KVM never launches it (run refuses it)\n", cmd, pol)
	}
}

// debugSwapKernel is the first Linux release whose early SEV code accepts
// DebugSwap in an SEV-SNP guest (SNP_FEATURES_PRESENT, "x86/sev: Do not
// handle #VC for DR7 read/write", merged for 6.6); Debian 12's 6.1
// has none there.
var debugSwapKernel = [2]int{6, 6}

// warnDebugSwapKernel warns when guest features ask for DebugSwap (bit 5)
// and the kernel's release (its boot header) predates debugSwapKernel:
// such a kernel's first instructions find a feature they do not know
// enabled and ask the hypervisor to end the guest, before a line reaches
// the console. A distribution may have backported the support, hence a
// warning, not a refusal.
func warnDebugSwapKernel(stderr io.Writer, cmd, kernelPath string, features uint64) {
	if features&(1<<5) == 0 {
		return
	}
	k, err := readKernelHead(kernelPath)
	if err != nil {
		return
	}
	k.warnDebugSwap(stderr, cmd, features)
}

// warnDebugSwap is warnDebugSwapKernel of the kernel k was read from.
func (k kernelHead) warnDebugSwap(stderr io.Writer, cmd string, features uint64) {
	if features&(1<<5) == 0 {
		return
	}
	rel, kernelPath := k.release(), k.path
	var major, minor int
	if n, _ := fmt.Sscanf(rel, "%d.%d", &major, &minor); n != 2 || !olderKernel([2]int{major, minor}, debugSwapKernel) {
		return
	}
	fmt.Fprintf(stderr, "hostbuild %s: warning: guest features %#x ask for DebugSwap, but --kernel %s is Linux %s (its boot header), and Linux accepts DebugSwap in an SEV-SNP guest from %d.%d on: an older kernel stops at its first instructions (it asks the hypervisor to end the guest: SNP features not supported) unless its distribution backported the support; leave out 0x20 (--guest-features 0x1) for this kernel\n", cmd, features, kernelPath, rel, debugSwapKernel[0], debugSwapKernel[1])
}

// olderKernel reports whether release a (major, minor) is older than b.
func olderKernel(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// parseMatrix reads the comma-separated --vcpus and --vcpu-type lists of a
// measurement matrix (manifest, build).
func parseMatrix(vcpus, vcpuTypes string) ([]int, []string, error) {
	var counts []int
	var types []string
	for _, s := range strings.Split(vcpus, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("--vcpus %q: want a comma-separated list of positive counts", vcpus)
		}
		if slices.Contains(counts, n) {
			return nil, nil, fmt.Errorf("--vcpus %q: %d given twice", vcpus, n)
		}
		counts = append(counts, n)
	}
	for _, s := range strings.Split(vcpuTypes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			return nil, nil, fmt.Errorf("--vcpu-type %q: empty type", vcpuTypes)
		}
		if slices.Contains(types, s) {
			return nil, nil, fmt.Errorf("--vcpu-type %q: %s given twice", vcpuTypes, s)
		}
		if _, err := measure.VCPUSigOf(s); err != nil {
			return nil, nil, fmt.Errorf("--vcpu-type: %w", err)
		}
		types = append(types, s)
	}
	return counts, types, nil
}

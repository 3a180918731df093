// Package launch turns a launch manifest plus local copies of its files
// into a QEMU launch, after proving that what would boot is what the
// manifest measured: every file's SHA-256, and the (vCPU count, vCPU type,
// cmdline, guest features) combination recomputed to the manifest's
// expected launch digest. It also follows the guest's console to tell how
// the guest ended. The `hostbuild run` command is a thin layer over it.
package launch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/qemu"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Options describe one launch from a manifest.
type Options struct {
	Manifest     *manifest.Manifest
	ManifestPath string // for the printed attest command

	OVMF   string // required in SNP mode; optional (checked when given) in plain mode
	Kernel string
	Initrd string

	VCPUs    int    // 0: 1 if the matrix has it, else its smallest count
	VCPUType string // "": the matrix's only type (an error when it has several)

	MemoryMiB int
	CID       uint32 // vsock guest CID; required in SNP mode
	Forwards  []qemu.Forward
	SerialLog string
	QMPSocket string

	Plain      bool       // no SEV: boot the same files under TCG or KVM
	Accel      qemu.Accel // plain mode only; default TCG
	QEMUBinary string
}

// Plan is a checked launch: the QEMU options and what the guest should
// measure to. A plan holds the checked files open; Close it once QEMU has
// started (or when it is not used).
type Plan struct {
	// QEMU and Command name the operator's paths: what was checked, for
	// --dry-run, messages and libvirt (which can only pass paths).
	QEMU    qemu.Options
	Command qemu.Command
	// ExecQEMU is what to start: QEMU with the kernel, the initrd (and in
	// SEV-SNP mode the OVMF) named as qemu.InheritedFile(i) of Files, the
	// very open files that were hashed, to pass as RunOptions.ExtraFiles.
	// A path renamed or replaced after the check changes nothing.
	ExecQEMU    qemu.Options
	ExecCommand qemu.Command
	Files       []*os.File

	VCPUs      int
	VCPUType   string
	Expected   manifest.Measurement
	Recomputed bool // the expected digest was recomputed from the files (needs the OVMF)
	AttestHint string
	// AgentHint, in plain mode, says how to reach the guest's agent (a
	// wiring check: without SEV-SNP it answers no_snp_device), or why it
	// cannot be reached.
	AgentHint   string
	Description string
	// Warnings are what the launch cannot check or set but the match of
	// the measurement depends on, one sentence each.
	Warnings []string

	ovmf, kernel, initrd *os.File // open from the check on
	fdPaths              []string // InheritedFile(i), the operator's path, ...
}

// Mismatch is a refusal: a value that differs from what the manifest
// allows. Callers tell refusals from other errors with errors.As.
type Mismatch struct {
	What    string // "initrd", "vCPU count", "cmdline", ...
	Got     string
	Allowed string
}

func (m *Mismatch) Error() string {
	return fmt.Sprintf("refusing to launch: %s is %s, but the manifest allows %s", m.What, m.Got, m.Allowed)
}

// NeedFlag is a choice the manifest leaves to the operator and the flags
// did not make (a usage error: nothing differs from the manifest).
type NeedFlag struct {
	Flag    string // "--vcpu-type"
	Allowed string
}

func (n *NeedFlag) Error() string {
	return fmt.Sprintf("the manifest allows %s: choose with %s", n.Allowed, n.Flag)
}

// CheckSettings checks what in o needs neither the manifest nor a file:
// SEV-SNP mode's firmware and vsock CID, and that a CID given is not a
// reserved one. The messages name the hostbuild flags. Prepare checks them
// first; a caller checks them itself to report a usage error before
// reading anything.
func (o Options) CheckSettings() error {
	// CIDs 0-2 are the hypervisor, local and host addresses; 2^32-1 is
	// VMADDR_CID_ANY.
	if o.CID != 0 && (o.CID < 3 || o.CID == math.MaxUint32) {
		return fmt.Errorf("--cid %d: CIDs 0 to 2 and 4294967295 are reserved; want 3 to 4294967294, unique on this host", o.CID)
	}
	if o.Plain {
		return nil
	}
	if o.OVMF == "" {
		return errors.New("SEV-SNP mode needs the OVMF firmware: give --ovmf FILE (an AmdSevX64 build), or --plain to boot without SEV-SNP")
	}
	if o.CID == 0 {
		return errors.New("SEV-SNP mode needs a vsock guest CID for the attestation agent: give --cid N (3 or more), or --plain to boot without SEV-SNP")
	}
	return nil
}

// featureDebugSwap is DebugSwap in SEV_FEATURES (the APM's "debug
// virtualization"), the one guest feature besides SNPActive that run asks
// QEMU for (sev-snp-guest's debug-swap=on, QEMU 10.2+). QEMU 10.2 also has
// secure-tsc (SecureTSC, which needs a tsc-frequency this tool does not
// know); run does not pass it.
const featureDebugSwap = 1 << 5

// Prepare checks o against its manifest and builds the QEMU launch. It opens
// each file once, copies it into a sealed memfd, hashes it (and recomputes
// the launch digest) from that copy and keeps the copy open for QEMU
// (Plan.ExecQEMU, Plan.Files); it starts nothing. The caller closes the
// plan.
func Prepare(ctx context.Context, o Options) (_ *Plan, err error) {
	if err := o.CheckSettings(); err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	m := o.Manifest
	if m == nil {
		return nil, errors.New("launch: no manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	if o.Kernel == "" || o.Initrd == "" {
		return nil, errors.New("launch: the kernel and the initrd are required")
	}
	if !o.Plain {
		if err := checkSNPManifest(m); err != nil {
			return nil, err
		}
	}

	// Files first: a changed initrd is the most common mistake. The hash,
	// the recomputed digest and QEMU all read the sealed copies, never the
	// paths again.
	p := &Plan{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := p.sealFiles(ctx, o); err != nil {
		return nil, err
	}

	vcpus, vtype, err := chooseConfig(m, o.VCPUs, o.VCPUType, o.Plain)
	if err != nil {
		return nil, err
	}
	if why := measure.SNPLaunchRefused(vtype); why != "" && !o.Plain {
		return nil, fmt.Errorf("launch: vCPU type %s: %s (build the manifest with that type, or give it with --vcpu-type if the manifest has it)", vtype, why)
	}
	if !o.Plain {
		pol, err := m.GuestPolicyValue()
		if err != nil {
			return nil, fmt.Errorf("launch: %w", err)
		}
		if err := snpPolicyLaunchable(pol, &p.Warnings); err != nil {
			return nil, fmt.Errorf("launch: %w", err)
		}
	}
	expected, _ := m.Lookup(vcpus, vtype)

	p.VCPUs, p.VCPUType, p.Expected = vcpus, vtype, expected
	// SEV_FEATURES of the VMSAs is measured. With KVM_SEV_INIT2 (QEMU
	// 9.1+) an SEV-SNP guest gets SNPActive and what QEMU asks for; run
	// asks for DebugSwap (debug-swap=on, 10.2+) and no other bit.
	var debugSwap bool
	if f, err := m.GuestFeaturesValue(); err == nil && !o.Plain {
		debugSwap = f&featureDebugSwap != 0
		if other := f &^ (measure.DefaultGuestFeatures | featureDebugSwap); other != 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("the manifest was measured with guest features %s, but run does not ask QEMU for 0x%x: QEMU gives an SEV-SNP guest 0x%x (SNPActive) and DebugSwap (0x%x) when run asks for it, unless this host's QEMU or KVM adds others, so the guest's measurement matches the manifest only if this host gives exactly %s", m.GuestFeatures, other, measure.DefaultGuestFeatures, featureDebugSwap, m.GuestFeatures))
		}
	}
	// With the firmware given, the digest is recomputed from the files.
	if o.OVMF != "" {
		if err := p.recompute(ctx, m, vcpus, vtype, expected); err != nil {
			return nil, err
		}
	}

	q := qemu.Options{
		Binary:    o.QEMUBinary,
		VCPUs:     vcpus,
		MemoryMiB: o.MemoryMiB,
		Kernel:    o.Kernel,
		Initrd:    o.Initrd,
		Append:    m.Cmdline,
		SerialLog: o.SerialLog,
		QMPSocket: o.QMPSocket,
		Forwards:  o.Forwards,
		GuestAddr: forwardTarget(m.Cmdline),
		VsockCID:  o.CID,
	}
	if w := memoryWarning(m, o.MemoryMiB, !o.Plain); w != "" {
		p.Warnings = append(p.Warnings, w)
	}
	if why := attest.UnverifiableVCPUType(vtype); why != "" && !o.Plain {
		p.Warnings = append(p.Warnings, vtype+": "+why)
	}
	// An image that measures but that QEMU cannot start an SEV-SNP guest
	// on (the 4 KiB stand-in make demo measures with, an OvmfX64 build):
	// said before QEMU fails with "could not load PC BIOS".
	if !o.Plain {
		if im, err := ovmf.ParseFile(ownFD(p.ovmf)); err == nil {
			if err := im.CheckLaunch(); err != nil {
				p.Warnings = append(p.Warnings, fmt.Sprintf("--ovmf %s: %v; QEMU will not start this guest: give the whole AmdSevX64 OVMF.fd", o.OVMF, err))
			}
		}
	}
	if o.Plain {
		q.Accel = o.Accel
	} else {
		if o.Accel != "" && o.Accel != qemu.KVM {
			return nil, fmt.Errorf("launch: SEV-SNP needs the kvm accelerator, not %q (use --plain for %s)", o.Accel, o.Accel)
		}
		policy, err := m.GuestPolicyValue()
		if err != nil {
			return nil, fmt.Errorf("launch: %w", err)
		}
		q.CPU = vtype
		q.SNP = &qemu.SNP{OVMF: o.OVMF, Policy: policy, DebugSwap: debugSwap}
	}
	c, err := qemu.Build(q)
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	p.QEMU, p.Command = q, c

	// The same launch with the open files: QEMU opens /proc/self/fd/N in
	// its own process, where N is the inherited descriptor.
	x := q
	if q.SNP != nil {
		s := *q.SNP
		s.OVMF = p.inherit(p.ovmf)
		x.SNP = &s
	}
	x.Kernel = p.inherit(p.kernel)
	x.Initrd = p.inherit(p.initrd)
	if p.ExecCommand, err = qemu.Build(x); err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	p.ExecQEMU = x
	p.describe(o, q)
	return p, nil
}

// checkSNPManifest refuses, in SEV-SNP mode, a manifest run would launch
// wrongly: one for another VMM, or whose cmdline the firmware's hash table
// or the init would refuse (a manifest written by hand, by another tool,
// or before the check existed). --plain boots such a line, for seeing the
// init refuse it.
func checkSNPManifest(m *manifest.Manifest) error {
	if !strings.EqualFold(m.VMMType, string(measure.VMMQEMU)) {
		return &Mismatch{What: "the VMM", Got: "QEMU (run and libvirt launch with QEMU)", Allowed: fmt.Sprintf("VMM type %q only", m.VMMType)}
	}
	// Manifests written before the check existed may carry one.
	if err := manifest.CheckOVMFCmdline(m.Cmdline); err != nil {
		return fmt.Errorf("launch: refusing this manifest in SEV-SNP mode: %w", err)
	}
	// A manifest written by hand (or by another tool) may carry a
	// cmdline 'hostbuild manifest' refuses: one that replaces the
	// init, steers it, or hands the host a debugger (kgdboc). --plain
	// boots such a line, for seeing the init refuse it.
	if _, err := bootcfg.Parse(m.Cmdline); err != nil {
		return fmt.Errorf("launch: refusing this manifest in SEV-SNP mode: its cmdline is one the init refuses or that steers it ('hostbuild manifest' refuses it too): %w", err)
	}
	return nil
}

// sealFiles opens each file of o once (the OVMF, when given, the kernel
// and the initrd), checks its size against the manifest, copies it into a
// sealed memfd and hashes that copy, which is what QEMU gets: neither a
// file renamed over the path nor a write into the file after the check is
// what boots. The files stay open in p (closed by p.Close).
func (p *Plan) sealFiles(ctx context.Context, o Options) error {
	m := o.Manifest
	type file struct {
		what, path string
		want       manifest.File
		f          **os.File
	}
	var files []file
	if o.OVMF != "" {
		files = append(files, file{"OVMF", o.OVMF, m.Components.OVMF, &p.ovmf})
	}
	files = append(files, file{"kernel", o.Kernel, m.Components.Kernel, &p.kernel},
		file{"initrd", o.Initrd, m.Components.Initrd, &p.initrd})
	for _, f := range files {
		// infile.Open refuses a pipe or a device, which would not give
		// QEMU the bytes that were hashed, and a FIFO at once.
		fd, err := infile.Open("the "+f.what, f.path)
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		*f.f = fd
		// A file of another size cannot match: refused before anything is
		// read, so what is hashed is always the sealed copy.
		st, err := fd.Stat()
		if err != nil {
			return fmt.Errorf("launch: reading the %s %s: %w", f.what, f.path, err)
		}
		if st.Size() != f.want.Size {
			return &Mismatch{What: "the " + f.what + " " + f.path, Got: fmt.Sprintf("%d bytes", st.Size()),
				Allowed: fmt.Sprintf("%d bytes (%s, SHA-256 %s)", f.want.Size, printable.Quote(f.want.Name), f.want.SHA256)}
		}
		sealed, err := sealedCopy(f.what, fd, f.want.Size)
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		if sealed != fd {
			fd.Close()
		}
		fd, *f.f = sealed, sealed
		got, err := manifest.HashOpenFile(ctx, "the "+f.what, fd)
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		if got.SHA256 != f.want.SHA256 {
			return &Mismatch{What: "the " + f.what + " " + f.path, Got: "SHA-256 " + got.SHA256,
				Allowed: fmt.Sprintf("SHA-256 %s (%s, %d bytes)", f.want.SHA256, printable.Quote(f.want.Name), f.want.Size)}
		}
	}
	return nil
}

// recompute recomputes the launch digest from the sealed copies, the
// manifest's cmdline and guest features, and refuses a manifest whose
// matrix entry (expected, for vcpus × vtype) it does not reproduce: a
// cmdline or guest features edited after measuring. measure opens paths;
// /proc/self/fd/N reopens the files hashed (errors name the operator's
// paths again).
func (p *Plan) recompute(ctx context.Context, m *manifest.Manifest, vcpus int, vtype string, expected manifest.Measurement) error {
	mo, err := m.MeasureOptions(ownFD(p.ovmf), ownFD(p.kernel), ownFD(p.initrd), vcpus, vtype)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	r, err := measure.Compute(ctx, mo)
	if err != nil {
		return fmt.Errorf("launch: recomputing the launch digest: %w", p.realPathsErr(err))
	}
	if r.Hex() != expected.Measurement {
		return &Mismatch{
			What:    fmt.Sprintf("the launch digest of these files with the manifest's cmdline %q and guest features %s (%d × %s)", m.Cmdline, m.GuestFeatures, vcpus, vtype),
			Got:     r.Hex(),
			Allowed: expected.Measurement + " (was the manifest's cmdline or guest_features edited after measuring?)",
		}
	}
	p.Recomputed = true
	return nil
}

// describe sets the plan's one-line description and the hint run prints
// once the guest is ready: how to reach the agent (plain) or to attest.
func (p *Plan) describe(o Options, q qemu.Options) {
	m, vcpus, vtype := o.Manifest, p.VCPUs, p.VCPUType
	if o.Plain {
		p.Description = fmt.Sprintf("plain mode (%s, no SEV-SNP, nothing to attest): %d vCPU(s)", accelName(q.Accel), vcpus)
		p.AgentHint = plainAgentHint(m.Cmdline, o.ManifestPath, o.Forwards)
	} else {
		p.Description = fmt.Sprintf("SEV-SNP: %d × %s, policy %s, guest features %s", vcpus, vtype, m.GuestPolicy, m.GuestFeatures)
		if q.SNP.DebugSwap {
			p.Description += " (debug-swap=on: QEMU 10.2 or newer)"
		}
		mp := o.ManifestPath
		if mp == "" {
			mp = "manifest.json"
		}
		p.AttestHint = attestHint(m.Cmdline, o.CID, mp, o.Forwards)
	}
}

// memoryWarning says when the guest's memory (mib; 0: QEMU's default for
// the mode) looks too small for the manifest's initrd and payload. While
// the kernel unpacks the initrd it holds the image and the files made
// from it at once (and a rootfs tmpfs takes half the memory at most);
// then the init decodes the payload into memory beside those files. With
// too little the boot stops with "Initramfs unpacking failed" and "no
// space left on device": an estimate with room for the kernel, not a
// bound, so a warning.
func memoryWarning(m *manifest.Manifest, mib int, snp bool) string {
	if mib == 0 {
		mib = qemu.DefaultPlainMemoryMiB
		if snp {
			mib = qemu.DefaultSNPMemoryMiB
		}
	}
	const MiB = 1 << 20
	initrd := (m.Components.Initrd.Size + MiB - 1) / MiB
	payload := int64(0)
	if m.Components.Payload != nil {
		payload = (m.Components.Payload.Size + MiB - 1) / MiB
	}
	need := max(2*initrd, initrd+payload) + 160
	bounce := ""
	if snp {
		// An SEV guest kernel sets aside 6 % of its memory, 64 MiB to
		// 1 GiB, for the DMA bounce buffers (SWIOTLB) of its virtio
		// devices (sev_setup_arch), which a plain boot does not.
		sw := min(max(int64(mib)*6/100, 64), 1024)
		need += sw
		bounce = fmt.Sprintf(", and under SEV-SNP the kernel keeps %d MiB for DMA bounce buffers", sw)
	}
	if int64(mib) >= need {
		return ""
	}
	return fmt.Sprintf("%d MiB of guest memory may be too little for this initrd (%d MiB, payload %d MiB): the kernel holds the initrd and the files it unpacks from it at once, then the init decodes the payload into memory%s; give --memory %dM or more (with too little the boot stops with \"Initramfs unpacking failed\" and \"no space left on device\")",
		mib, initrd, payload, bounce, need)
}

// plainAgentHint is AgentHint: with a TCP agent, the attest command that
// reaches it (the SEV-SNP hint's, with --min-tcb none: there is no report
// to hold to a floor); with a vsock agent, why plain mode cannot reach it.
func plainAgentHint(cmdline, manifestPath string, forwards []qemu.Forward) string {
	if manifestPath == "" {
		manifestPath = "manifest.json"
	}
	cfg, err := bootcfg.Parse(cmdline)
	if err != nil {
		cfg = bootcfg.Default()
	}
	switch cfg.Agent.Mode {
	case bootcfg.AgentNone:
		return ""
	case bootcfg.AgentTCP:
		h := attestHint(cmdline, 0, manifestPath, forwards)
		return strings.Replace(h, "--min-tcb MIN_TCB", "--min-tcb none", 1) + " (a wiring check: without SEV-SNP the agent answers no_snp_device, exit 3)"
	}
	return fmt.Sprintf("the agent listens on vsock port %d, and plain mode gives the guest no vsock device: to reach it without SEV-SNP, build with --agent tcp:0.0.0.0:%d and run with --forward HOSTPORT:%d", cfg.Agent.VsockPort, cfg.Agent.VsockPort, cfg.Agent.VsockPort)
}

// forwardTarget is the guest address QEMU's hostfwd connects to: eth0's
// IPv4 address from the cmdline's katana.net, or "" for QEMU's default
// (10.0.2.15, which is also katana.net's default; IPv6 and
// katana.net=none have no IPv4 address to give).
func forwardTarget(cmdline string) string {
	cfg, err := bootcfg.Parse(cmdline)
	if err != nil || cfg.Net.None || !cfg.Net.Addr.Addr().Is4() || cfg.Net.Addr.Addr() == bootcfg.Default().Net.Addr.Addr() {
		return ""
	}
	return cfg.Net.Addr.Addr().String()
}

// attestHint is the attest command for the agent the cmdline sets up: the
// vsock port when it is not the default, the host end of the --forward
// to a TCP agent's port (QEMU's user networking: the guest's own address
// cannot be reached from the host), or "" for katana.agent=none (no agent
// to ask).
func attestHint(cmdline string, cid uint32, manifestPath string, forwards []qemu.Forward) string {
	// MIN_TCB is the operator's to fill in (attest requires it): the TCB
	// of AMD's latest bulletin for the host's processor, or none.
	tail := " --manifest " + shellWord(manifestPath) + " --min-tcb MIN_TCB"
	cfg, err := bootcfg.Parse(cmdline)
	if err != nil {
		cfg = bootcfg.Default()
	}
	a := cfg.Agent
	switch a.Mode {
	case bootcfg.AgentNone:
		return ""
	case bootcfg.AgentTCP:
		// A forward reaches the guest's eth0 address only (QEMU's user
		// networking); an agent listening elsewhere is named as it is.
		if !a.TCP.Addr().IsUnspecified() && (cfg.Net.None || a.TCP.Addr() != cfg.Net.Addr.Addr()) {
			return "hostbuild attest --addr " + shellWord("tcp:"+a.TCP.String()) + tail
		}
		for _, f := range forwards {
			if f.GuestPort == int(a.TCP.Port()) {
				host := f.HostAddr
				if host == "" {
					host = qemu.DefaultHostAddr
				}
				return "hostbuild attest --addr " + shellWord("tcp:"+net.JoinHostPort(host, strconv.Itoa(f.HostPort))) + tail
			}
		}
		return fmt.Sprintf("hostbuild attest --addr tcp:127.0.0.1:HOSTPORT%s (the agent listens on TCP port %d in the guest: forward it with --forward HOSTPORT:%d)", tail, a.TCP.Port(), a.TCP.Port())
	}
	port := ""
	if a.VsockPort != agentapi.DefaultPort {
		port = fmt.Sprintf(" --port %d", a.VsockPort)
	}
	return fmt.Sprintf("hostbuild attest --cid %d%s", cid, port) + tail
}

// Place gives the plan the serial log and QMP socket paths QEMU gets,
// in place of those Options gave Prepare, and rebuilds its commands (which
// check them again). hostbuild run makes its scratch folder for them only
// once the launch is checked, so that a refused launch leaves nothing behind.
func (p *Plan) Place(serialLog, qmpSocket string) error {
	q, x := p.QEMU, p.ExecQEMU
	q.SerialLog, q.QMPSocket = serialLog, qmpSocket
	x.SerialLog, x.QMPSocket = serialLog, qmpSocket
	c, err := qemu.Build(q)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	xc, err := qemu.Build(x)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	p.QEMU, p.Command, p.ExecQEMU, p.ExecCommand = q, c, x, xc
	return nil
}

// ownFD names f in this process: /proc/self/fd/N reopens the same file.
func ownFD(f *os.File) string { return "/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10) }

// inherit adds f to the files QEMU inherits and returns the path QEMU
// opens it by.
func (p *Plan) inherit(f *os.File) string {
	p.Files = append(p.Files, f)
	p.fdPaths = append(p.fdPaths, qemu.InheritedFile(len(p.Files)-1), f.Name())
	return qemu.InheritedFile(len(p.Files) - 1)
}

// RealPaths rewrites the /proc/self/fd paths of the plan's files in s (in
// QEMU's messages, say) to the operator's paths.
func (p *Plan) RealPaths(s string) string {
	if len(p.fdPaths) == 0 {
		return s
	}
	return strings.NewReplacer(p.fdPaths...).Replace(s)
}

// ExecNote says how the command QEMU runs with differs from Command, or is
// empty.
func (p *Plan) ExecNote() string {
	var d []string
	a, b := p.Command.Options, p.ExecCommand.Options
	for i := range a {
		if i < len(b) && a[i] != b[i] {
			d = append(d, b[i].Name+" "+b[i].Value)
		}
	}
	if len(d) == 0 {
		return ""
	}
	return "QEMU is started with " + strings.Join(d, ", ") + " in place of the paths printed: " +
		"sealed in-memory copies of the files hashed here, inherited by QEMU, so neither a path replaced nor a file written after the check is what boots"
}

// realPathsErr is err with the plan's own /proc/self/fd paths (measure was
// given them) written as the operator's paths; errors.Is and As still see err.
func (p *Plan) realPathsErr(err error) error {
	var r []string
	for _, f := range []*os.File{p.ovmf, p.kernel, p.initrd} {
		if f != nil {
			r = append(r, ownFD(f), f.Name())
		}
	}
	return &rewrittenError{err: err, msg: strings.NewReplacer(r...).Replace(err.Error())}
}

type rewrittenError struct {
	err error
	msg string
}

func (e *rewrittenError) Error() string { return e.msg }
func (e *rewrittenError) Unwrap() error { return e.err }

// Kernel is the kernel as checked (the sealed copy that was hashed and
// that QEMU boots), for checks of its own; nil once the plan is closed.
// Read it at offsets (ReadAt): QEMU opens its own description of it.
func (p *Plan) Kernel() *os.File { return p.kernel }

// Close closes the plan's files. QEMU keeps its own copies once started.
func (p *Plan) Close() error {
	var errs []error
	for _, f := range []*os.File{p.ovmf, p.kernel, p.initrd} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	p.ovmf, p.kernel, p.initrd, p.Files = nil, nil, nil, nil
	return errors.Join(errs...)
}

func accelName(a qemu.Accel) string {
	if a == "" {
		return string(qemu.TCG)
	}
	return string(a)
}

// chooseConfig picks (vCPUs, type) and refuses combinations the matrix
// does not have, naming what it allows. Without a type it takes the
// matrix's only one, or in a plain launch its first.
func chooseConfig(m *manifest.Manifest, vcpus int, vtype string, plain bool) (int, string, error) {
	var types []string
	counts := map[string][]int{}
	for _, e := range m.Measurements {
		if !slices.Contains(types, e.VCPUType) {
			types = append(types, e.VCPUType)
		}
		counts[e.VCPUType] = append(counts[e.VCPUType], e.VCPUs)
	}
	if vtype == "" {
		// A plain launch runs -cpu max whatever the type: the first
		// of several will do.
		if len(types) != 1 && !plain {
			return 0, "", &NeedFlag{Flag: "--vcpu-type", Allowed: "the vCPU types " + strings.Join(types, ", ")}
		}
		vtype = types[0]
	}
	allowed, ok := counts[vtype]
	if !ok {
		return 0, "", &Mismatch{What: "the vCPU type", Got: strconv.Quote(vtype), Allowed: "one of " + strings.Join(types, ", ")}
	}
	slices.Sort(allowed)
	if vcpus == 0 {
		vcpus = allowed[0]
		if slices.Contains(allowed, 1) {
			vcpus = 1
		}
	}
	if !slices.Contains(allowed, vcpus) {
		return 0, "", &Mismatch{What: "the vCPU count", Got: strconv.Itoa(vcpus), Allowed: joinInts(allowed) + " for " + vtype}
	}
	return vcpus, vtype, nil
}

// snpPolicyLaunchable refuses a guest policy KVM never launches and warns
// of bits that only some KVM versions, firmware or hosts take, as
// KVM_SEV_SNP_LAUNCH_START (Linux 6.11 on) checks them: QEMU passes the
// policy on unchecked, so these fail only there, on the SEV-SNP host.
func snpPolicyLaunchable(pol uint64, warnings *[]string) error {
	if pol&(1<<18) != 0 {
		return fmt.Errorf("guest policy %#x allows a migration agent (bit 18), which KVM never launches (EINVAL from KVM_SEV_SNP_LAUNCH_START; attest refuses such reports too): build the manifest with a policy without it", pol)
	}
	if pol&(1<<16) == 0 {
		*warnings = append(*warnings, fmt.Sprintf("guest policy %#x does not allow SMT (bit 16): KVM 6.11 to 6.15 refuses to launch it, and later the firmware refuses it on a host with SMT on", pol))
	}
	if pol&(1<<20) != 0 {
		*warnings = append(*warnings, fmt.Sprintf("guest policy %#x asks for a single socket (bit 20), which KVM 6.11 and later refuse to launch (EINVAL)", pol))
	}
	if b := pol & (0x1f << 21); b != 0 {
		*warnings = append(*warnings, fmt.Sprintf("guest policy %#x sets bits %#x (21-25: CXL, AES-256-XTS, RAPL, ciphertext hiding, page swap), which KVM launches only when it and the firmware support them (KVM_X86_SNP_POLICY_BITS)", pol, b))
	}
	return nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Console markers of the init and the kernel that Outcome reads. The init's
// are stable (guestinit's package doc, "Console lines"); this package
// restates them rather than importing the guest's packages.
//
// Katana's own stdout and stderr share the serial console, unprefixed, so a
// marker is trusted only where its author puts it: the init's at the start
// of one of its lines, "[SSSSS.UUUUUU] guestinit: MESSAGE" (a printk-style
// timestamp, guestinit/internal/klog), and the kernel's after the printk
// timestamp (the Debian kernel's CONFIG_PRINTK_TIME; a cmdline with
// printk.time=0 hides the kernel's markers, and then only the init's
// count). A Katana log line that merely contains a marker changes nothing.
const (
	MarkKatanaStarted = "guestinit: katana started"
	MarkBootError     = "guestinit: boot error: "
	MarkPoweringOff   = "guestinit: powering off"
	MarkRebooting     = "guestinit: rebooting" // katana.on_exit=reboot; -no-reboot then ends QEMU
	MarkPowerDown     = "reboot: Power down"
	MarkRestarting    = "reboot: Restarting system"
	MarkPanic         = "Kernel panic - not syncing"
)

// consoleStamp is the timestamp that starts every line of the init and of
// the kernel: "[    6.278107] ".
const consoleStamp = `^\[ *\d+\.\d+\] `

// katanaExited is the init's exit marker, from "guestinit: " to the end of
// the line: group 1 the status, group 2 " stop=graceful".
const katanaExited = `guestinit: katana exited status=(-?\d+)(?: signal=\w+)?( stop=graceful)?\s*$`

var (
	reStamp = regexp.MustCompile(consoleStamp)

	// ReadyLine matches the init's line that ends the wait for Katana:
	// "katana started" or a boot error. Group 1 is the message from
	// "guestinit: " on.
	ReadyLine = regexp.MustCompile(consoleStamp + `(` + regexp.QuoteMeta(MarkKatanaStarted) + `.*|` + regexp.QuoteMeta(MarkBootError) + `.*)$`)

	// The init's exit marker (the message, from "guestinit: "); "
	// stop=graceful" at the end says that Katana was ended by the graceful
	// stop's own signal (see supervise.MarkStopSignal).
	reKatanaExited = regexp.MustCompile(`^` + katanaExited)

	// reKatanaExitedGlued finds the exit marker after a timestamp anywhere
	// in a line. Katana writes to the console without a prefix; when it
	// dies in the middle of a line (SIGKILL after the grace period), the
	// init's exit line is glued to that partial line and must not be lost
	// (the run would count as clean). Only this marker is read there: the
	// init prints the real one after Katana has died, so the last wins, and
	// a fake inside Katana's output cannot hide it.
	reKatanaExitedGlued = regexp.MustCompile(consoleStamp[1:] + katanaExited)
)

// consoleMessage splits a console line into its message after the
// timestamp, and whether it is the init's ("guestinit: ..."). ok is false
// for a line without the timestamp: neither the init's nor the kernel's.
func consoleMessage(l string) (msg string, init, ok bool) {
	loc := reStamp.FindStringIndex(l)
	if loc == nil {
		return "", false, false
	}
	msg = strings.TrimRight(l[loc[1]:], " \r")
	return msg, strings.HasPrefix(msg, "guestinit: "), true
}

// Ending classifies how a guest ended, from its console and QEMU's exit.
type Ending int

const (
	EndedClean       Ending = iota // powered off, Katana's last status 0, or ended by a graceful stop's signal (or never started by request)
	EndedBootError                 // the init reported a boot error
	EndedKatana                    // Katana exited with a non-zero status
	EndedPanic                     // the kernel panicked
	EndedKilled                    // QEMU had to be killed
	EndedQEMU                      // QEMU failed (non-zero exit)
	EndedNoPowerOff                // QEMU ended (status 0, or killed by a signal it was not sent by the runner) but the console never showed the guest going down, e.g. QEMU was sent SIGTERM
	EndedQEMUStopped               // QEMU stopped the VM (internal-error, guest-panicked) and the runner killed it
)

// Outcome is how a guest ended.
type Outcome struct {
	Ending       Ending
	KatanaStatus *int   // the last logged Katana exit status
	StopSignal   bool   // that exit was the graceful stop's signal (clean)
	Rebooted     bool   // the init rebooted (katana.on_exit=reboot) instead of powering off
	BootError    string // the init's boot error line, if any
	WentDown     bool   // the console showed the guest powering off or rebooting
	Exit         qemu.Exit
}

func (o Outcome) String() string {
	switch o.Ending {
	case EndedBootError:
		return "the guest stopped with a boot error: " + strings.TrimPrefix(o.BootError, MarkBootError)
	case EndedKatana:
		return fmt.Sprintf("katana exited with status %d; the guest %s", *o.KatanaStatus, o.ended(""))
	case EndedPanic:
		return "the guest kernel panicked"
	case EndedKilled:
		return "the guest did not power off; qemu was killed"
	case EndedQEMU:
		return o.Exit.String()
	case EndedQEMUStopped:
		return o.Exit.String() + " (under SEV-SNP often the guest's termination request: the host's dmesg has \"SEV-ES guest requested termination\")"
	case EndedNoPowerOff:
		s := "QEMU ended without the guest powering off"
		if o.Exit.Signal != "" {
			s += " (qemu ended by a signal hostbuild did not send: " + o.Exit.Signal + ")"
		}
		if l := lastLine(o.Exit.Stderr); l != "" {
			s += " (qemu: " + l + ")"
		}
		return s
	}
	if o.KatanaStatus != nil && o.StopSignal {
		return fmt.Sprintf("katana was ended by the graceful stop's signal (status %d); the guest %s", *o.KatanaStatus, o.ended(" cleanly"))
	}
	if o.KatanaStatus != nil {
		return fmt.Sprintf("katana exited with status %d; the guest %s", *o.KatanaStatus, o.ended(" cleanly"))
	}
	return "the guest " + o.ended(" cleanly")
}

// ended says how the guest went down; how is "" or " cleanly".
func (o Outcome) ended(how string) string {
	if o.Rebooted {
		return "rebooted" + how + " (katana.on_exit=reboot; QEMU runs with -no-reboot, so the VM ended)"
	}
	return "powered off" + how
}

// lastLine is the last non-empty line of s, trimmed.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// Console follows a guest's serial console line by line and keeps only
// what Outcome needs (the last Katana exit, the first boot error, whether
// the kernel panicked, whether the guest went down), so that a guest that
// runs for weeks needs no full history: feed it every line (Piece, from
// qemu.RunOptions.ConsolePiece, which says where the runner cut an
// over-long line; Line for whole lines). The zero value is ready; it is
// safe for concurrent use.
type Console struct {
	mu           sync.Mutex
	katanaStatus *int
	stopSignal   bool
	rebooted     bool
	wentDown     bool
	panicked     bool
	bootError    string
	tail         string // the end of the last piece, when the next may continue it
}

// Piece reads one console line from qemu.RunOptions.ConsolePiece: a piece
// that continues a cut line is never a line start, and only the glued exit
// marker is looked for in it, across the cut.
func (c *Console) Piece(l string, continued bool) {
	if !continued {
		c.mu.Lock()
		c.tail = l[max(0, len(l)-256):]
		c.mu.Unlock()
		c.Line(l)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	joined := c.tail + l
	c.tail = l[max(0, len(l)-256):]
	if m := reKatanaExitedGlued.FindStringSubmatch(joined); m != nil {
		c.katanaExited(m)
	}
}

// Line reads one console line.
func (c *Console) Line(l string) {
	msg, init, ok := consoleMessage(l)
	if !ok || !init {
		if m := reKatanaExitedGlued.FindStringSubmatch(l); m != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.katanaExited(m)
			return
		}
	}
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !init { // the kernel's
		if strings.HasPrefix(msg, MarkPanic) {
			c.panicked = true
		}
		if strings.HasPrefix(msg, MarkPowerDown) || strings.HasPrefix(msg, MarkRestarting) {
			c.wentDown = true
		}
		return
	}
	if m := reKatanaExited.FindStringSubmatch(msg); m != nil {
		c.katanaExited(m)
	}
	if strings.HasPrefix(msg, MarkBootError) && c.bootError == "" {
		c.bootError = msg
	}
	if msg == MarkRebooting {
		c.rebooted = true
	}
	if msg == MarkPoweringOff || msg == MarkRebooting {
		c.wentDown = true
	}
}

// katanaExited records an exit marker's status (c.mu held).
func (c *Console) katanaExited(m []string) {
	if n, err := strconv.Atoi(m[1]); err == nil {
		c.katanaStatus = &n
		c.stopSignal = m[2] != ""
	}
}

// Classify reads the serial console lines and QEMU's exit (Console, for
// lines already in memory).
func Classify(lines []string, exit qemu.Exit) Outcome {
	var c Console
	for _, l := range lines {
		c.Line(l)
	}
	return c.Outcome(exit)
}

// Outcome tells how the guest ended from the lines read so far and QEMU's
// exit. QEMU's status 0 alone is not a clean end (QEMU exits 0 when it is
// itself sent SIGTERM): the console must show the guest going down, by the
// init's power-off or reboot line or the kernel's.
func (c *Console) Outcome(exit qemu.Exit) Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := Outcome{Exit: exit, StopSignal: c.stopSignal, Rebooted: c.rebooted, BootError: c.bootError, WentDown: c.wentDown}
	if c.katanaStatus != nil {
		n := *c.katanaStatus
		o.KatanaStatus = &n
	}
	switch {
	case exit.Stopped != "":
		o.Ending = EndedQEMUStopped
	case exit.Killed:
		o.Ending = EndedKilled
	case c.panicked:
		o.Ending = EndedPanic
	case exit.Signal == syscall.SIGKILL.String() && !o.WentDown:
		// Killed by someone else (the OOM killer, kill -9): the
		// guest never powered off, as when QEMU is sent SIGTERM. A
		// crash (SIGABRT, SIGSEGV) is QEMU's failure, below.
		o.Ending = EndedNoPowerOff
	case exit.Code != 0 || exit.Signal != "":
		o.Ending = EndedQEMU
	case !o.WentDown:
		o.Ending = EndedNoPowerOff
	case o.BootError != "":
		o.Ending = EndedBootError
	case o.KatanaStatus != nil && *o.KatanaStatus != 0 && !o.StopSignal:
		o.Ending = EndedKatana
	default:
		o.Ending = EndedClean
	}
	return o
}

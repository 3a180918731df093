// Package doctor checks that a host can launch the Katana VM under
// AMD SEV-SNP: the SEV device, KVM's SNP support, a QEMU that knows
// sev-snp-guest, an OVMF with the kernel-hashes table, vhost-vsock for
// the attestation agent, and a processor whose reports attest verifies.
// Each check passes or fails with the fix; `hostbuild doctor` prints them.
//
// There is no memlock check: SEV and SEV-ES pin guest memory (QEMU
// registers it with KVM, which counts it against RLIMIT_MEMLOCK), but an
// SEV-SNP guest's private memory is guest_memfd, which KVM pins by its own
// means (QEMU's target/i386/sev.c registers its RAM notifier for sev-guest
// only).
package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

// Status of one check.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP" // not checked (an input was not given); never a failure
)

// Result is one check's outcome.
type Result struct {
	Name   string
	Status Status
	Detail string // what was found
	Fix    string // how to fix a failure
}

// Options tune the checks. Zero values are the real host.
type Options struct {
	// Root prefixes /dev, /sys and /proc (tests point it at a fake tree).
	Root string
	// QEMU is the QEMU binary; default qemu-system-x86_64.
	QEMU string
	// OVMF is the firmware to check; empty skips that check.
	OVMF string
	// Access checks that this process may read and write a device
	// (faccessat with the effective IDs); default: the real check.
	Access func(path string) error
	// VMTypes returns KVM_CHECK_EXTENSION(KVM_CAP_VM_TYPES) of the KVM
	// device at path: the VM types this host's KVM creates, one bit each;
	// default: the real ioctl.
	VMTypes func(path string) (uint64, error)
	// SNPStatus returns SNP_PLATFORM_STATUS from the SEV device at path;
	// default: the real ioctl.
	SNPStatus func(path string) (SNPStatus, error)
}

// KVM's VM types (arch/x86/include/uapi/asm/kvm.h) and the capability
// that lists them (Linux 6.10+; older kernels answer 0).
const (
	kvmCheckExtension = 0xAE03 // _IO(KVMIO, 0x03)
	kvmCapVMTypes     = 235
	kvmX86SNPVM       = 4
)

// kvmVMTypes asks the KVM device at path which VM types it creates.
func kvmVMTypes(path string) (uint64, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCheckExtension, kvmCapVMTypes)
	if errno != 0 {
		return 0, errno
	}
	return uint64(r), nil
}

// MinQEMU is the first QEMU release with the sev-snp-guest object.
var MinQEMU = [2]int{9, 1}

// Run runs every check, in a fixed order.
func Run(ctx context.Context, o Options) []Result {
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	if o.Access == nil {
		o.Access = func(p string) error { return unix.Faccessat(unix.AT_FDCWD, p, unix.R_OK|unix.W_OK, unix.AT_EACCESS) }
	}
	var rs []Result
	sev := checkCharDev(o, "/dev/sev", "SEV firmware device /dev/sev",
		"enable SEV-SNP in the BIOS (SMEE, SEV-SNP, SNP memory coverage), boot a host kernel with SNP host support (Linux 6.11+ or AMD's snp-host branch) and load kvm_amd")
	snpParam := checkSNPParam(o.Root)
	rs = append(rs, sev, snpParam, checkSNPFirmware(o, sev.Status == Pass, snpParam.Status == Pass))
	kvm := checkCharDev(o, "/dev/kvm", "KVM device /dev/kvm",
		"load kvm_amd (modprobe kvm_amd) and make sure virtualisation (SVM) is enabled in the BIOS")
	rs = append(rs, kvm, checkSNPVMType(o, kvm.Status == Pass))
	rs = append(rs, checkQEMU(ctx, o.QEMU)...)
	rs = append(rs, checkOVMF(o.OVMF))
	rs = append(rs, checkCharDev(o, "/dev/vhost-vsock", "vhost-vsock device /dev/vhost-vsock (attestation agent)",
		"modprobe vhost_vsock (and add it to /etc/modules-load.d/ to keep it)"))
	rs = append(rs, checkCPU(o.Root))
	return rs
}

// checkCPU checks that the host's processor is one whose reports
// hostbuild attest verifies: AMD family 25 (Milan, Genoa). SEV-SNP
// started with Milan; Turin (family 26) launches, but attest refuses its
// reports (attest.TurinReason).
func checkCPU(root string) Result {
	r := Result{Name: "processor whose SEV-SNP reports attest verifies"}
	vendor, family, err := cpuInfo(root)
	if err != nil {
		r.Status, r.Detail = Skip, "cannot read /proc/cpuinfo: "+errText(err)
		return r
	}
	r.Detail = fmt.Sprintf("%s, family %d", vendor, family)
	switch {
	case vendor == "AuthenticAMD" && family == 25:
		r.Status, r.Detail = Pass, r.Detail+" (EPYC 7003 Milan or 9004 Genoa)"
	case vendor == "AuthenticAMD" && family == 26:
		r.Status, r.Detail = Fail, r.Detail+" (EPYC 9005 Turin): the guest launches, but hostbuild attest refuses Turin's reports: "+attest.TurinReason
		r.Fix = "verify this host's reports with a verifier that supports Turin's TCB layout (a go-sev-guest release with it), or run on Milan or Genoa"
	case vendor == "AuthenticAMD" && family > 26:
		r.Status, r.Fix = Fail, "a processor newer than this tool knows: verify its reports with a verifier that supports it"
	default:
		r.Status, r.Fix = Fail, "SEV-SNP needs an AMD EPYC 7003 (Milan) or newer processor"
	}
	return r
}

// cpuInfo reads the first processor's vendor and family from
// /proc/cpuinfo (family -1 when it has none).
func cpuInfo(root string) (vendor string, family int, err error) {
	b, err := os.ReadFile(filepath.Join(root, "/proc/cpuinfo"))
	if err != nil {
		return "", -1, err
	}
	family = -1
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch k, v = strings.TrimSpace(k), strings.TrimSpace(v); {
		case k == "vendor_id" && vendor == "":
			vendor = v
		case k == "cpu family" && family < 0:
			family, _ = strconv.Atoi(v)
		}
	}
	return vendor, family, nil
}

// Failed reports whether any check failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

func checkCharDev(o Options, path, name, fix string) Result {
	r := Result{Name: name}
	p := filepath.Join(o.Root, path)
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		r.Status, r.Detail, r.Fix = Fail, "missing: "+errText(err), fix
	case fi.Mode()&fs.ModeCharDevice == 0:
		r.Status, r.Detail, r.Fix = Fail, fmt.Sprintf("%s exists but is not a character device (%v)", path, fi.Mode()), fix
	default:
		// QEMU runs as this user: a device it cannot open fails the
		// launch as surely as a missing one.
		if err := o.Access(p); err != nil {
			r.Status, r.Detail = Fail, fmt.Sprintf("%s present, but this user cannot open it for reading and writing: %v", path, errText(err))
			r.Fix = fmt.Sprintf("run as root, or give this user access to %s (for /dev/kvm: add it to group kvm)", path)
		} else {
			r.Status, r.Detail = Pass, path+" present"
		}
	}
	return r
}

func checkSNPParam(root string) Result {
	r := Result{Name: "kvm_amd sev_snp enabled"}
	p := filepath.Join(root, "/sys/module/kvm_amd/parameters/sev_snp")
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, e := os.Stat(filepath.Join(root, "/sys/module/kvm_amd")); e != nil {
			r.Status, r.Detail = Fail, "kvm_amd is not loaded"
			r.Fix = "modprobe kvm_amd sev_snp=1 (an AMD EPYC host with SVM enabled is needed)"
		} else {
			r.Status, r.Detail = Fail, "kvm_amd has no sev_snp parameter: the host kernel predates SNP host support"
			r.Fix = "boot a host kernel with SEV-SNP host support (Linux 6.11+ or AMD's snp-host branch)"
		}
	case err != nil:
		r.Status, r.Detail, r.Fix = Fail, errText(err), "run as root, or check /sys is mounted"
	default:
		v := strings.TrimSpace(string(b))
		if v == "Y" || v == "1" {
			r.Status, r.Detail = Pass, "sev_snp="+v
		} else {
			r.Status, r.Detail = Fail, "sev_snp="+v
			r.Fix = "enable SEV-SNP in the BIOS, then reload: modprobe -r kvm_amd && modprobe kvm_amd sev_snp=1 (dmesg | grep -i sev says why KVM disabled it)"
		}
	}
	return r
}

// checkSNPVMType asks KVM whether it creates SEV-SNP VMs, as QEMU 9.1+
// asks it for one (KVM_X86_SNP_VM, Linux 6.11's interface): kvm_amd's
// sev_snp parameter alone does not say so (AMD's older snp-host kernels
// have it with another interface, and it stays Y on a host whose SNP
// firmware did not initialise on some kernels).
func checkSNPVMType(o Options, kvmOK bool) Result {
	r := Result{Name: "KVM creates SEV-SNP VMs (KVM_X86_SNP_VM)"}
	if !kvmOK {
		r.Status, r.Detail = Skip, "/dev/kvm cannot be opened (see above)"
		return r
	}
	ask := o.VMTypes
	if ask == nil {
		ask = kvmVMTypes
	}
	types, err := ask(filepath.Join(o.Root, "/dev/kvm"))
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, "asking /dev/kvm for its VM types (KVM_CAP_VM_TYPES): "+errText(err)
		r.Fix = "boot a host kernel with SEV-SNP host support (Linux 6.11 or newer) with kvm_amd sev_snp=1"
	case types&(1<<kvmX86SNPVM) == 0:
		r.Status, r.Detail = Fail, fmt.Sprintf("KVM's VM types are %#x, without KVM_X86_SNP_VM (bit %d): QEMU cannot create an SEV-SNP guest here", types, kvmX86SNPVM)
		r.Fix = "boot a host kernel with Linux 6.11's SEV-SNP host interface (Linux 6.11 or newer; an older AMD snp-host branch does not serve QEMU 9.1+), enable SEV-SNP in the BIOS and load kvm_amd sev_snp=1 (dmesg | grep -i sev says why KVM left it out)"
	default:
		r.Status, r.Detail = Pass, fmt.Sprintf("VM types %#x", types)
	}
	return r
}

// probeWaitDelay bounds how long a probe waits for its output to end
// once QEMU has exited or been killed.
var probeWaitDelay = time.Second

// probeOutput runs bin with args and returns what it wrote, stdout then
// stderr (an *exec.ExitError carries the stderr, as from Output). A
// process it left behind holding them (a --qemu wrapper's child) delays
// it by probeWaitDelay at most, and an exit that only met that bound
// still counts as bin's own.
func probeOutput(ctx context.Context, bin string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = probeWaitDelay
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		err = nil
	case errors.As(err, &ee):
		ee.Stderr = stderr.Bytes()
	}
	return append(stdout.Bytes(), stderr.Bytes()...), err
}

var reQEMUVersion = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?`)

func checkQEMU(ctx context.Context, bin string) []Result {
	ver := Result{Name: fmt.Sprintf("QEMU %d.%d or newer", MinQEMU[0], MinQEMU[1])}
	obj := Result{Name: "QEMU knows the sev-snp-guest object"}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := probeOutput(ctx, bin, "--version")
	if err != nil {
		ver.Status, ver.Detail = Fail, fmt.Sprintf("running %s --version: %s", bin, errText(err))
		ver.Fix = "install QEMU 9.1 or newer (on Debian 12, bookworm-backports' qemu-system-x86, 10.0; Debian 13's; or build it: AMD's AMDSEV repository has a script)"
		obj.Status, obj.Detail, obj.Fix = Fail, "no QEMU to ask", ver.Fix
		return []Result{ver, obj}
	}
	qemuVersion(&ver, bin, out)
	out, err = probeOutput(ctx, bin, "-object", "help")
	switch {
	case err != nil:
		obj.Status, obj.Detail = Fail, fmt.Sprintf("running %s -object help: %s", bin, errText(err))
		obj.Fix = "install QEMU 9.1 or newer"
	case regexp.MustCompile(`(?m)^\s*sev-snp-guest\s*$`).Match(out):
		obj.Status, obj.Detail = Pass, "sev-snp-guest listed by -object help"
	default:
		obj.Status, obj.Detail = Fail, "sev-snp-guest is not among QEMU's object types"
		obj.Fix = "install QEMU 9.1 or newer built for x86_64 with KVM"
	}
	return []Result{ver, obj}
}

// qemuVersion judges the output of bin --version into ver.
func qemuVersion(ver *Result, bin string, out []byte) {
	m := reQEMUVersion.FindStringSubmatch(string(out))
	if m == nil {
		ver.Status, ver.Detail = Fail, fmt.Sprintf("cannot read a version from %q", firstLine(string(out)))
		ver.Fix = "check that " + bin + " is QEMU's qemu-system-x86_64"
		return
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	ver.Detail = fmt.Sprintf("%s is QEMU %s.%s", bin, m[1], m[2])
	if m[3] != "" {
		ver.Detail += "." + m[3]
	}
	if major > MinQEMU[0] || major == MinQEMU[0] && minor >= MinQEMU[1] {
		ver.Status = Pass
	} else {
		ver.Status = Fail
		ver.Fix = "install QEMU 9.1 or newer (sev-snp-guest and kernel-hashes for SNP arrived in 9.1), e.g. on Debian 12 bookworm-backports' qemu-system-x86 (10.0), and pass it with --qemu"
	}
}

func checkOVMF(path string) Result {
	r := Result{Name: "OVMF supports measured direct kernel boot (kernel-hashes table)"}
	if path == "" {
		r.Status, r.Detail = Skip, "no firmware given: pass --ovmf FILE to check it"
		return r
	}
	im, err := ovmf.ParseFile(path)
	if err != nil {
		r.Status, r.Detail = Fail, errText(err)
		r.Fix = "pass an OVMF image built from OvmfPkg/AmdSev/AmdSevX64.dsc"
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			r.Fix = "check the --ovmf path: " + r.Fix
		}
		return r
	}
	if err := im.CheckSNP(); err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: %v", path, err)
		r.Fix = "pass the OVMF.fd of an OvmfPkg/AmdSev/AmdSevX64.dsc build (measure refuses this image)"
		return r
	}
	if err := im.CheckDirectBoot(); err != nil {
		r.Status, r.Detail = Fail, errText(err)
		r.Fix = "build OVMF from OvmfPkg/AmdSev/AmdSevX64.dsc (Debian's ovmf package ships OvmfX64, which has no SNP_KERNEL_HASHES section): QEMU would boot the kernel unmeasured"
		return r
	}
	if err := im.CheckLaunch(); err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: %v", path, err)
		r.Fix = "pass the whole OVMF.fd of an OvmfPkg/AmdSev/AmdSevX64.dsc build"
		return r
	}
	r.Status, r.Detail = Pass, fmt.Sprintf("%s: SNP_KERNEL_HASHES section and hashes table present", path)
	return r
}

func errText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Sprintf("%v: %s", err, firstLine(string(ee.Stderr)))
	}
	return err.Error()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

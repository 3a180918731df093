// Package qemu builds QEMU command lines for a direct-kernel boot of the
// Katana guest and runs them.
//
// Two modes share one Options struct: plain mode (no SEV; TCG or KVM) for
// development and the boot tests, and SEV-SNP mode (Options.SNP set) with the
// QEMU 9.1+ syntax: a memory-backend-memfd, a sev-snp-guest object with
// kernel-hashes=on, -bios OVMF and an explicit -cpu type, so that firmware,
// kernel, initrd and command line are all part of the launch measurement.
//
// Build is pure: it turns Options into a Command (no files are touched, no
// process is started). Start runs a Command, tails its serial log and stops
// it gracefully (QMP system_powerdown) before killing it.
package qemu

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// DefaultBinary is the QEMU system emulator used when Options.Binary is empty.
const DefaultBinary = "qemu-system-x86_64"

// Accel is a QEMU accelerator.
type Accel string

const (
	// TCG is QEMU's software emulation. It is the default in plain mode
	// because KVM hangs on the CI machines (nested Firecracker).
	TCG Accel = "tcg"
	// KVM is hardware virtualisation; SEV-SNP requires it.
	KVM Accel = "kvm"
)

// Defaults applied by Build when a field is zero.
const (
	DefaultPlainMemoryMiB  = 1024
	DefaultSNPMemoryMiB    = 2048
	DefaultSNPPolicy       = 0x30000 // SMT allowed, reserved bit 17 set, debug off
	DefaultCBitPos         = 51
	DefaultReducedPhysBits = 1
	DefaultSNPCPU          = "EPYC-v4"
	DefaultHostAddr        = "127.0.0.1"
	// MinMemoryMiB is the least guest memory Build accepts.
	MinMemoryMiB = 64
	// MaxVCPUs is the most vCPUs Build accepts: QEMU's q35 maximum
	// (hw/i386/pc_q35.c; an older QEMU refuses fewer itself), the same
	// bound as the measurement's and the manifest's, so that every vCPU
	// count a manifest allows can be launched.
	MaxVCPUs = 4096
	// MaxCmdline is bootcfg.MaxLen: the x86 kernel's COMMAND_LINE_SIZE
	// minus its NUL and minus the " initrd=initrd" OVMF adds. The kernel
	// silently truncates anything longer, so Build refuses it.
	MaxCmdline = bootcfg.MaxLen
	// plainMaxCmdline is the kernel's COMMAND_LINE_SIZE minus its NUL: a
	// plain boot adds nothing to the cmdline.
	plainMaxCmdline = 2047
)

// MaxUnixPath is the longest unix socket path Linux accepts (sun_path less
// its NUL): a QMP socket path must fit.
const MaxUnixPath = 107

// Options describe one VM. Zero values take the documented defaults.
type Options struct {
	Binary  string // QEMU binary; default DefaultBinary
	Accel   Accel  // default TCG in plain mode, KVM (required) in SNP mode
	Machine string // machine type; default "q35"
	// CPU is the -cpu model. Default: "max" under TCG, "host" under plain
	// KVM, DefaultSNPCPU in SNP mode (where it is part of the measurement).
	CPU       string
	VCPUs     int // -smp; default 1 (measured in SNP mode: one VMSA per vCPU)
	MemoryMiB int // -m; default DefaultPlainMemoryMiB or DefaultSNPMemoryMiB

	Kernel string // -kernel (required)
	Initrd string // -initrd (optional)
	Append string // -append, passed as one argv element, byte for byte

	// SerialLog is the file QEMU writes the guest's serial console (ttyS0)
	// to. Required: the runner tails it and tests assert on it.
	SerialLog string
	// QMPSocket, when set, is a unix socket path for the QMP monitor, used
	// for a graceful stop (system_powerdown).
	QMPSocket string

	// Forwards are TCP ports forwarded from the host into the guest through
	// QEMU user networking (a virtio-net NIC, guest 10.0.2.15 by default).
	Forwards []Forward
	// GuestAddr is the guest's IPv4 address the forwards connect to (its
	// cmdline's katana.net); "": QEMU's default, 10.0.2.15.
	GuestAddr string
	// NoNetwork leaves the VM without a NIC (Forwards must be empty).
	NoNetwork bool
	// RestrictNetwork isolates the guest from the host's network
	// (user networking restrict=on); forwarded ports still work.
	RestrictNetwork bool

	// VsockCID, when non-zero, adds a vhost-vsock-pci device with this guest
	// CID (3 or more). It needs /dev/vhost-vsock on the host.
	VsockCID uint32

	// SNP, when non-nil, selects SEV-SNP mode.
	SNP *SNP
}

// SNP holds the SEV-SNP launch parameters.
type SNP struct {
	OVMF            string // -bios: an AmdSevX64 OVMF with the kernel-hashes table (required)
	Policy          uint64 // guest policy; default DefaultSNPPolicy
	CBitPos         int    // default DefaultCBitPos
	ReducedPhysBits int    // default DefaultReducedPhysBits
	// DebugSwap sets DebugSwap (bit 5) in the VMSAs' SEV_FEATURES, which
	// the launch measurement covers: debug-swap=on, QEMU 10.2 or newer
	// (older ones refuse the property). Without it QEMU gives SNPActive
	// alone.
	DebugSwap bool
}

// Forward is one host TCP port forwarded to a guest port.
type Forward struct {
	HostAddr  string // default DefaultHostAddr (loopback only)
	HostPort  int
	GuestPort int
}

// String gives the ParseForward form: HOSTADDR:HOSTPORT:GUESTPORT.
func (f Forward) String() string {
	addr := f.HostAddr
	if addr == "" {
		addr = DefaultHostAddr
	}
	return fmt.Sprintf("%s:%d:%d", addr, f.HostPort, f.GuestPort)
}

// ParseForward parses "HOSTPORT:GUESTPORT" or "HOSTADDR:HOSTPORT:GUESTPORT"
// (an IPv4 host address; IPv6 is not supported by QEMU's hostfwd).
func ParseForward(s string) (Forward, error) {
	parts := strings.Split(s, ":")
	var f Forward
	switch len(parts) {
	case 2:
		f.HostAddr = DefaultHostAddr
	case 3:
		ip := net.ParseIP(parts[0])
		if ip == nil || ip.To4() == nil {
			return Forward{}, fmt.Errorf("parsing forward %q: host address %q is not an IPv4 address", s, parts[0])
		}
		f.HostAddr = ip.String()
		parts = parts[1:]
	default:
		return Forward{}, fmt.Errorf("parsing forward %q: want HOSTPORT:GUESTPORT or HOSTADDR:HOSTPORT:GUESTPORT", s)
	}
	var err error
	if f.HostPort, err = parsePort(parts[0]); err != nil {
		return Forward{}, fmt.Errorf("parsing forward %q: host port: %w", s, err)
	}
	if f.GuestPort, err = parsePort(parts[1]); err != nil {
		return Forward{}, fmt.Errorf("parsing forward %q: guest port: %w", s, err)
	}
	return f, nil
}

func parsePort(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || len(s) > 5 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number between 1 and 65535", s)
	}
	return n, nil
}

// InheritedFile is the path under which QEMU opens entry i of
// RunOptions.ExtraFiles: /proc/self/fd/N, N = 3+i, read in QEMU's own
// process, so that -kernel, -initrd or -bios get that open file (the bytes a
// caller checked), whatever its path names by then.
func InheritedFile(i int) string { return "/proc/self/fd/" + strconv.Itoa(3+i) }

// Option is one QEMU option with its value, if it takes one.
type Option struct {
	Name     string // with the leading dash, e.g. "-m"
	Value    string
	HasValue bool
}

// Command is a QEMU invocation.
type Command struct {
	Binary  string
	Options []Option
}

// Args returns the argument vector without the binary. Every value is one
// element: the kernel command line is never split or quoted.
func (c Command) Args() []string {
	var a []string
	for _, o := range c.Options {
		a = append(a, o.Name)
		if o.HasValue {
			a = append(a, o.Value)
		}
	}
	return a
}

// Argv returns the binary followed by Args.
func (c Command) Argv() []string { return append([]string{c.Binary}, c.Args()...) }

// String renders the command for humans and --dry-run: one option per line,
// values quoted for a POSIX shell, lines continued with a backslash, so the
// output can be pasted into a shell as is. A value with a rune other than
// a tab that Go does not count as printable (a control or format
// character, a space other than ASCII's: a manifest's cmdline with ESC or
// CR) or with bytes that are not UTF-8 is written as $'...', which bash,
// ksh and zsh read, not dash.
func (c Command) String() string {
	var b strings.Builder
	b.WriteString(shellQuote(c.Binary))
	for _, o := range c.Options {
		b.WriteString(" \\\n  ")
		b.WriteString(o.Name)
		if o.HasValue {
			b.WriteByte(' ')
			b.WriteString(shellQuote(o.Value))
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// ShellQuote quotes s for bash as Command.String does.
func ShellQuote(s string) string { return shellQuote(s) }

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	// A tab stays in '...' (every POSIX shell reads it back; a terminal
	// shows it as space).
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r != '\t' && !unicode.IsPrint(r) }) < 0 {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	// A control or format character (a manifest's cmdline with ESC, CR,
	// a newline or U+202E): bash's $'...' with each such byte as \xNN,
	// so the line shows no raw control text and still gives the same
	// bytes to a shell.
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(s[i])
		case r != utf8.RuneError && unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// qemuOptValue escapes a value inside a QEMU "key=value,key=value" option
// string: a comma is written twice.
func qemuOptValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// ErrInvalid is wrapped by every error Build returns for bad Options.
var ErrInvalid = errors.New("invalid qemu options")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Build validates o and returns the QEMU command. It does not touch the file
// system: missing files are QEMU's (or the caller's) to report.
func Build(o Options) (Command, error) {
	snp := o.SNP != nil
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.Accel == "" {
		o.Accel = TCG
		if snp {
			o.Accel = KVM
		}
	}
	if o.Accel != TCG && o.Accel != KVM {
		return Command{}, invalid("accelerator %q: want %q or %q", o.Accel, TCG, KVM)
	}
	if snp && o.Accel != KVM {
		return Command{}, invalid("SEV-SNP needs the kvm accelerator, not %q", o.Accel)
	}
	if o.Machine == "" {
		o.Machine = "q35"
	}
	if snp && o.Machine != "q35" && !strings.HasPrefix(o.Machine, "pc-q35-") {
		return Command{}, invalid("SEV-SNP needs a q35 machine type, not %q", o.Machine)
	}
	if o.CPU == "" {
		switch {
		case snp:
			o.CPU = DefaultSNPCPU
		case o.Accel == KVM:
			o.CPU = "host"
		default:
			o.CPU = "max"
		}
	}
	if o.VCPUs == 0 {
		o.VCPUs = 1
	}
	if o.VCPUs < 1 || o.VCPUs > MaxVCPUs {
		return Command{}, invalid("vCPU count %d: want 1 to %d", o.VCPUs, MaxVCPUs)
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultPlainMemoryMiB
		if snp {
			o.MemoryMiB = DefaultSNPMemoryMiB
		}
	}
	if o.MemoryMiB < MinMemoryMiB {
		return Command{}, invalid("memory %d MiB: want at least %d", o.MemoryMiB, MinMemoryMiB)
	}
	if o.Kernel == "" {
		return Command{}, invalid("no kernel: direct kernel boot needs Options.Kernel")
	}
	if strings.IndexByte(o.Append, 0) >= 0 {
		return Command{}, invalid("kernel command line contains a NUL byte")
	}
	// Through OVMF (SEV-SNP) the kernel gets " initrd=initrd" more; a plain
	// boot (SeaBIOS) passes the cmdline as it is.
	if snp && len(o.Append) > MaxCmdline {
		return Command{}, invalid("kernel command line is %d bytes; at most %d fit (the kernel keeps 2047, OVMF adds \" initrd=initrd\")", len(o.Append), MaxCmdline)
	}
	if len(o.Append) > plainMaxCmdline {
		return Command{}, invalid("kernel command line is %d bytes; the kernel keeps at most %d", len(o.Append), plainMaxCmdline)
	}
	if o.SerialLog == "" {
		return Command{}, invalid("no serial log file: set Options.SerialLog")
	}
	if len(o.QMPSocket) > MaxUnixPath {
		return Command{}, invalid("QMP socket path is %d bytes; unix sockets allow %d (use a shorter folder)", len(o.QMPSocket), MaxUnixPath)
	}
	if o.NoNetwork && len(o.Forwards) > 0 {
		return Command{}, invalid("port forwards need a network, but NoNetwork is set")
	}
	if ip := net.ParseIP(o.GuestAddr); o.GuestAddr != "" && (ip == nil || ip.To4() == nil || strings.Contains(o.GuestAddr, ":")) {
		return Command{}, invalid("guest address %q is not an IPv4 address", o.GuestAddr)
	}
	o.Forwards = slices.Clone(o.Forwards) // defaults are filled in below; never write to the caller's slice
	seen := map[string]bool{}
	for i, f := range o.Forwards {
		if f.HostAddr == "" {
			f.HostAddr = DefaultHostAddr
		}
		if ip := net.ParseIP(f.HostAddr); ip == nil || ip.To4() == nil {
			return Command{}, invalid("forward %d: host address %q is not an IPv4 address", i, f.HostAddr)
		}
		if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
			return Command{}, invalid("forward %d: ports %d->%d: want 1 to 65535", i, f.HostPort, f.GuestPort)
		}
		key := fmt.Sprintf("%s:%d", f.HostAddr, f.HostPort)
		if seen[key] {
			return Command{}, invalid("forward %d: host port %s is forwarded twice", i, key)
		}
		seen[key] = true
		o.Forwards[i] = f
	}
	if o.VsockCID != 0 && (o.VsockCID < 3 || o.VsockCID == 0xffffffff) {
		return Command{}, invalid("vsock guest CID %d: 0-2 and 4294967295 are reserved; want 3 or more", o.VsockCID)
	}
	var s SNP
	if snp {
		s = *o.SNP
		if s.OVMF == "" {
			return Command{}, invalid("SEV-SNP needs an OVMF firmware (SNP.OVMF), built from OvmfPkg/AmdSev/AmdSevX64.dsc")
		}
		if s.Policy == 0 {
			s.Policy = DefaultSNPPolicy
		}
		if s.Policy&(1<<17) == 0 {
			return Command{}, invalid("SEV-SNP policy %#x: bit 17 is reserved and must be 1", s.Policy)
		}
		if s.Policy>>32 != 0 {
			return Command{}, invalid("SEV-SNP policy %#x: bits 32-63 are reserved and must be 0", s.Policy)
		}
		if s.CBitPos == 0 {
			s.CBitPos = DefaultCBitPos
		}
		if s.ReducedPhysBits == 0 {
			s.ReducedPhysBits = DefaultReducedPhysBits
		}
		if s.CBitPos < 32 || s.CBitPos > 63 {
			return Command{}, invalid("SEV-SNP cbitpos %d: want 32 to 63", s.CBitPos)
		}
		if s.ReducedPhysBits < 1 || s.ReducedPhysBits > 63 {
			return Command{}, invalid("SEV-SNP reduced-phys-bits %d: want 1 to 63", s.ReducedPhysBits)
		}
	}

	var opts []Option
	add := func(name string, value ...string) {
		if len(value) == 0 {
			opts = append(opts, Option{Name: name})
			return
		}
		opts = append(opts, Option{Name: name, Value: value[0], HasValue: true})
	}
	mem := strconv.Itoa(o.MemoryMiB) + "M"

	// No default devices (VGA, default NIC, parallel port, monitor): every
	// device the guest sees is listed below, which matters for a measured
	// launch and keeps TCG boots fast.
	add("-nodefaults")
	add("-no-reboot")
	add("-display", "none")
	if snp {
		add("-machine", o.Machine+",confidential-guest-support=sev0,memory-backend=ram0,vmport=off")
		add("-object", "memory-backend-memfd,id=ram0,size="+mem+",share=true,prealloc=false")
		obj := fmt.Sprintf("sev-snp-guest,id=sev0,policy=%#x,cbitpos=%d,reduced-phys-bits=%d,kernel-hashes=on",
			s.Policy, s.CBitPos, s.ReducedPhysBits)
		if s.DebugSwap {
			obj += ",debug-swap=on"
		}
		add("-object", obj)
	} else {
		add("-machine", o.Machine)
	}
	add("-accel", string(o.Accel))
	add("-cpu", o.CPU)
	add("-smp", strconv.Itoa(o.VCPUs))
	add("-m", mem)
	if snp {
		add("-bios", s.OVMF)
	}
	add("-kernel", o.Kernel)
	if o.Initrd != "" {
		add("-initrd", o.Initrd)
	}
	add("-append", o.Append)
	add("-chardev", "file,id=serial0,path="+qemuOptValue(o.SerialLog))
	add("-serial", "chardev:serial0")
	if o.QMPSocket != "" {
		add("-chardev", "socket,id=qmp0,path="+qemuOptValue(o.QMPSocket)+",server=on,wait=off")
		add("-mon", "chardev=qmp0,mode=control")
	}
	// Under SEV-SNP guest memory is private: virtio devices must use the
	// DMA API (iommu_platform) and modern virtio only.
	virtioFlags := ""
	if snp {
		virtioFlags = ",disable-legacy=on,iommu_platform=true"
	}
	if !o.NoNetwork {
		netdev := "user,id=net0"
		if o.RestrictNetwork {
			netdev += ",restrict=on"
		}
		for _, f := range o.Forwards {
			netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-%s:%d", f.HostAddr, f.HostPort, o.GuestAddr, f.GuestPort)
		}
		add("-netdev", netdev)
		// romfile= skips the iPXE option ROM: nothing boots from the network.
		add("-device", "virtio-net-pci,netdev=net0"+virtioFlags+",romfile=")
	}
	if o.VsockCID != 0 {
		add("-device", fmt.Sprintf("vhost-vsock-pci,guest-cid=%d", o.VsockCID)+virtioFlags)
	}
	return Command{Binary: o.Binary, Options: slices.Clip(opts)}, nil
}

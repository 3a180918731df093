package bootcfg

import "fmt"

// OVMFInitrdParam is what OVMF adds to the kernel's command line when QEMU
// gives it an initrd: Debian's OVMF appends " "+OVMFInitrdParam, other edk2
// loaders prepend OVMFInitrdParam+" ". The guest's /proc/cmdline is then
// longer than the measured command line by len(OVMFInitrdParam)+1 bytes.
const OVMFInitrdParam = "initrd=initrd"

// MaxLen is the longest command line Format writes and a manifest accepts:
// the x86 kernel's COMMAND_LINE_SIZE (2048 bytes including the NUL) less
// the NUL and less the " initrd=initrd" OVMF adds, so the whole line
// reaches the guest. The kernel (and the EFI stub) cut anything longer.
const MaxLen = 2048 - 1 - len(" "+OVMFInitrdParam)

// unsafeByte reports the first byte of s that the SEV-SNP boot path cannot
// carry unchanged from the measured command line to the guest's
// /proc/cmdline, with the reason; -1 when there is none.
//
// QEMU measures the command line bytes it passes through fw_cfg. OVMF
// widens each byte to a UTF-16 code unit as if it were Latin-1, and the
// kernel's EFI stub converts the UTF-16 back as UTF-8, so every byte >= 0x80
// arrives changed (é, C3 A9, arrives as C3 83 C2 A9): the guest would apply
// a command line other than the measured one. The EFI stub also ends the
// command line at a newline. Other control bytes would pass, but nothing
// needs them; only the kernel's ASCII whitespace \t, \v, \f and \r are
// allowed besides the printable ASCII bytes.
func unsafeByte(s string) (int, string) {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 0x80:
			return i, fmt.Sprintf("byte 0x%02X is not ASCII: OVMF converts the command line to UTF-16 as Latin-1 "+
				"and the kernel's EFI stub converts it back as UTF-8, so the guest would see other bytes than the measured ones", b)
		case b == '\n':
			return i, "a newline: the kernel's EFI stub ends the command line there, so the guest would see less than the measured bytes"
		case b == 0:
			return i, "a NUL byte ends the command line"
		case (b < 0x20 || b == 0x7f) && !isKernelSpace(b):
			return i, fmt.Sprintf("control byte 0x%02X (only printable ASCII, space, \\t, \\v, \\f and \\r are allowed)", b)
		}
	}
	return -1, ""
}

// CheckLen returns an error wrapping ErrUnformattable if cmdline is longer
// than MaxLen.
func CheckLen(cmdline string) error {
	if len(cmdline) > MaxLen {
		return &Error{Err: ErrUnformattable, Text: abbrev(cmdline), Offset: MaxLen,
			Detail: fmt.Sprintf("the command line is %d bytes, at most %d fit: the kernel keeps %d bytes "+
				"(COMMAND_LINE_SIZE less its NUL) and OVMF adds %q", len(cmdline), MaxLen, 2047, " "+OVMFInitrdParam)}
	}
	return nil
}

// abbrev shortens a long text for an error message.
func abbrev(s string) string {
	const keep = 60
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "..."
}

// CheckBytes returns an error wrapping ErrUnformattable if cmdline has a
// byte that the boot path through OVMF and the kernel's EFI stub cannot
// carry unchanged: a byte >= 0x80, a newline, a NUL or another control
// byte than \t, \v, \f and \r. Format writes no such byte; use CheckBytes
// for a command line written by hand.
func CheckBytes(cmdline string) error {
	if i, why := unsafeByte(cmdline); i >= 0 {
		return &Error{Err: ErrUnformattable, Text: cmdline, Offset: i, Detail: why}
	}
	return nil
}

package bootcfg

import (
	"fmt"
	"strings"
)

// The x86 kernel reads a few options long before parse_args(), with
// parsers of its own that see the command line as words split at every
// byte <= ' ' and know nothing of double quotes or "--". A word inside
// katana.args="--name nokaslr --dev", inside any quoted value, or after
// "--" is then read as the kernel option nokaslr, while next_arg(),
// Parse and a verifier reading KernelParams see no such kernel parameter.
// Parse and Format refuse such a word unless it is itself a kernel
// parameter before "--" (given deliberately, and visible in KernelParams).
//
// The options are those of the Linux 6.1 and 6.12 x86_64 sources (Debian
// 12's linux-source-6.1, 6.1.192, and linux-source-6.12, 6.12.117, the
// kernel of Debian 13 and of bookworm-backports), found by a search of
// each whole tree for cmdline_find_option, cmdline_find_option_bool and
// strstr() on the command line: the union of both, so that a command line
// is safe under either kernel. TestKernelDiff runs the kernel's own
// parsers, from the source of the kernel the boot tests use (make
// kernel-source; KERNEL_SOURCE may name a 6.12 tree), against this
// package's model: a kernel that splits or finds these options otherwise
// fails it. An option a newer kernel reads from a new caller is found
// only by searching its tree again.

// earlyScan is how an early parser finds its option in the command line.
type earlyScan int

const (
	// scanX86Word: arch/x86/lib/cmdline.c and arch/x86/boot/cmdline.c
	// (the decompressor's copy): words split at every byte <= ' '
	// (myisspace); a boolean option matches a word equal to its name, an
	// option with a value a word that starts with "name=".
	scanX86Word earlyScan = iota
	// scanEFIStub: drivers/firmware/efi/libstub/x86-stub.c parse_options():
	// strstr() for "name=" at the start of the line or after an isspace()
	// byte (lib/ctype.c: the kernel's whitespace and 0xA0).
	scanEFIStub
	// scanAnywhere: kernel/crash_core.c get_last_crashkernel(): strstr()
	// for "name=" anywhere, even inside a word.
	scanAnywhere
)

// earlyOption is an option an early parser reads; name ends in "=" for an
// option with a value.
type earlyOption struct {
	name   string
	scan   earlyScan
	source string
}

// earlyOptions is every option Linux 6.1 or 6.12 x86_64 reads with a
// parser that ignores quotes and "--", with where it is read (6.1's
// places unless a source says otherwise). 6.12 reads pti= and nopti with
// early_param() (quote-aware), mem_encrypt= in the decompressor only, as
// the whole words mem_encrypt=on and mem_encrypt=off
// (arch/x86/boot/compressed/misc.c parse_mem_encrypt(); its EFI stub with
// next_arg()), and its EFI stub no longer efi_fake_mem=: they stay for
// 6.1. Left out, because an
// EFI-stub boot never runs the 16-bit setup code (arch/x86/boot/*.c other
// than the decompressor's copies) and x86_64 does not build the rest:
// "debug" (arch/x86/boot/main.c), "edd=" and "quiet" (arch/x86/boot/edd.c),
// "forcepae" (arch/x86/boot/cpucheck.c), "no387" and "nofxsr"
// (arch/x86/kernel/cpu/common.c, CONFIG_X86_32 only).
var earlyOptions = []earlyOption{
	// The decompressor, arch/x86/boot/compressed/ (cmdline.c includes
	// ../cmdline.c). A 6.1.y kernel with "x86/efistub: Avoid legacy
	// decompressor when doing EFI boot" backported skips it on an EFI-stub
	// boot (the stub reads nokaslr and no5lvl with next_arg(), which
	// honours quotes); these are kept so that a command line is safe
	// whichever way the kernel is entered, at the cost of refusing these
	// few words inside Katana's arguments.
	{"nokaslr", scanX86Word, "arch/x86/boot/compressed/kaslr.c choose_random_location(), when the decompressor runs: KASLR off"},
	{"no5lvl", scanX86Word, "arch/x86/boot/compressed/pgtable_64.c, when the decompressor runs"},
	{"acpi_rsdp=", scanX86Word, "arch/x86/boot/compressed/acpi.c, when the decompressor runs"},
	{"acpi=", scanX86Word, "arch/x86/boot/compressed/acpi.c, when the decompressor runs"},
	{"earlyprintk=", scanX86Word, "arch/x86/boot/early_serial_console.c, when the decompressor runs"},
	{"console=", scanX86Word, "arch/x86/boot/early_serial_console.c, when the decompressor runs"},
	// The kernel proper, on boot_command_line (or the boot_params copy)
	// with arch/x86/lib/cmdline.c.
	{"mem_encrypt=", scanX86Word, "arch/x86/mm/mem_encrypt_identity.c sme_enable() (6.12: arch/x86/boot/compressed/misc.c parse_mem_encrypt(), when the decompressor runs)"},
	{"pti=", scanX86Word, "arch/x86/mm/pti.c pti_check_boottime_disable(): page table isolation"},
	{"nopti", scanX86Word, "arch/x86/mm/pti.c pti_check_boottime_disable(): page table isolation off"},
	{"split_lock_detect=", scanX86Word, "arch/x86/kernel/cpu/intel.c sld_state_setup()"},
	{"dis_ucode_ldr", scanX86Word, "arch/x86/kernel/cpu/microcode/core.c check_loader_disabled_bsp()"},
	{"tsx=", scanX86Word, "arch/x86/kernel/cpu/tsx.c tsx_init()"},
	{"spectre_v2_user=", scanX86Word, "arch/x86/kernel/cpu/bugs.c spectre_v2_parse_user_cmdline(): a Spectre v2 mitigation"},
	{"nospectre_v2", scanX86Word, "arch/x86/kernel/cpu/bugs.c spectre_v2_parse_cmdline(): Spectre v2 mitigations off"},
	{"spectre_v2=", scanX86Word, "arch/x86/kernel/cpu/bugs.c spectre_v2_parse_cmdline(): Spectre v2 mitigations"},
	{"nospec_store_bypass_disable", scanX86Word, "arch/x86/kernel/cpu/bugs.c ssb_parse_cmdline(): Speculative Store Bypass mitigation off"},
	{"spec_store_bypass_disable=", scanX86Word, "arch/x86/kernel/cpu/bugs.c ssb_parse_cmdline(): Speculative Store Bypass mitigation"},
	{"noxsave", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param()"},
	{"noxsaveopt", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param()"},
	{"noxsaves", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param()"},
	{"clearcpuid=", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param(): hides CPU features (SMAP, SMEP, ...)"},
	// Linux 6.12 only (none of them in 6.1).
	{"nousershstk", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param() (Linux 6.12): user-mode shadow stacks off"},
	{"fred=", scanX86Word, "arch/x86/kernel/cpu/common.c cpu_parse_early_param() (Linux 6.12): FRED on or off"},
	{"microcode.amd_sha_check=", scanX86Word, "arch/x86/kernel/cpu/microcode/amd.c load_ucode_amd_bsp() (Linux 6.12): off skips the SHA check of AMD microcode blobs"},
	// The EFI stub: any of these disables physical KASLR.
	{"mem=", scanEFIStub, "drivers/firmware/efi/libstub/x86-stub.c parse_options(): physical KASLR off"},
	{"memmap=", scanEFIStub, "drivers/firmware/efi/libstub/x86-stub.c parse_options(): physical KASLR off"},
	{"efi_fake_mem=", scanEFIStub, "drivers/firmware/efi/libstub/x86-stub.c parse_options(): physical KASLR off"},
	{"hugepages=", scanEFIStub, "drivers/firmware/efi/libstub/x86-stub.c parse_options(): physical KASLR off"},
	// arch/x86/kernel/setup.c reserve_crashkernel() on boot_command_line.
	{"crashkernel=", scanAnywhere, "kernel/crash_core.c get_last_crashkernel(), from arch/x86/kernel/setup.c"},
}

// isX86EarlySpace is myisspace() of arch/x86/lib/cmdline.c and
// arch/x86/boot/cmdline.c: "c <= ' '" on an unsigned byte.
func isX86EarlySpace(b byte) bool { return b <= ' ' }

// earlyHit is a place where an early parser reads an option that is not a
// kernel parameter of its own.
type earlyHit struct {
	word   string // the text the parser matched, up to the next byte <= ' '
	offset int    // byte offset of word in the command line
	opt    earlyOption
}

// findEarlyOption returns the first place in cmdline where an early
// parser reads one of earlyOptions though no kernel parameter before "--"
// (params, as splitKernel returns them) is that word. ok is false when
// there is none.
func findEarlyOption(cmdline string, params []Param) (hit earlyHit, ok bool) {
	genuine := make(map[int]int, len(params)) // offset -> length of Raw
	for _, p := range params {
		genuine[p.Offset] = len(p.Raw)
	}
	wordEnd := func(i int) int {
		for i < len(cmdline) && !isX86EarlySpace(cmdline[i]) {
			i++
		}
		return i
	}
	var hits []earlyHit
	// The x86 words.
	for i := 0; i < len(cmdline); {
		if isX86EarlySpace(cmdline[i]) {
			i++
			continue
		}
		end := wordEnd(i)
		w := cmdline[i:end]
		if n, ok := genuine[i]; !ok || n != len(w) {
			for _, o := range earlyOptions {
				if o.scan != scanX86Word {
					continue
				}
				if w == o.name || strings.HasSuffix(o.name, "=") && strings.HasPrefix(w, o.name) {
					hits = append(hits, earlyHit{w, i, o})
					break
				}
			}
		}
		i = end
	}
	// The substring scans.
	for _, o := range earlyOptions {
		if o.scan == scanX86Word {
			continue
		}
		for from := 0; ; {
			j := strings.Index(cmdline[from:], o.name)
			if j < 0 {
				break
			}
			i := from + j
			from = i + 1
			// parse_options() looks at strstr()'s first hit only; every
			// hit after whitespace is refused here, which is stricter
			// (one the kernel skips is refused too) and simpler.
			if o.scan == scanEFIStub && i > 0 && !isKernelSpace(cmdline[i-1]) {
				continue
			}
			if _, ok := genuine[i]; ok {
				continue
			}
			hits = append(hits, earlyHit{cmdline[i:wordEnd(i)], i, o})
		}
	}
	for _, h := range hits {
		if !ok || h.offset < hit.offset {
			hit, ok = h, true
		}
	}
	return hit, ok
}

// why explains the hit for an error message.
func (h earlyHit) why() string {
	name := strings.TrimSuffix(h.opt.name, "=")
	var how string
	switch h.opt.scan {
	case scanX86Word:
		how = "the x86 kernel's early command line parser splits the line at every byte <= ' ' and ignores double quotes and \"--\""
	case scanEFIStub:
		how = "the kernel's EFI stub looks for \"" + h.opt.name + "\" at the start of the line or after any whitespace and ignores double quotes and \"--\""
	default:
		how = "the kernel looks for \"" + h.opt.name + "\" anywhere in the line, even inside a word, and ignores double quotes and \"--\""
	}
	return fmt.Sprintf("%s, so it reads this as the kernel option %s (%s), though it is not a kernel parameter of its own before \"--\"; "+
		"to set %s, give it as a kernel parameter; if it is one of Katana's arguments, join it to its flag (--flag=%s)", how, name, h.opt.source, name, h.word)
}

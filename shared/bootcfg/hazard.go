package bootcfg

import "strings"

// Hazard says why the kernel parameter p, given before any "--", may not
// be on a command line this package parses or formats, or returns "". The
// command line is measured, so such a parameter is no secret from a
// verifier, but nothing would flag it: these replace the init (which then
// checks nothing, serves no attestation and supervises nothing), run
// other programs as root before it, steer its Go runtime, or give the
// host, which reads and writes the serial console, a way into the guest
// or a view of its memory. The list is of the parameters known to do so, not
// every parameter that weakens a guest (nokaslr, mitigations=off, ...).
//
// Each entry is matched the way the kernel (Linux 6.1) matches it, or
// more widely, never less: see setupMatches for the __setup handlers.
func Hazard(p Param) string {
	line := setupLine(p)
	// __setup("init=") and __setup("rdinit=") (init/main.c). Without
	// "=", init and rdinit are unknown parameters the kernel passes to
	// PID 1's argv, which is harmless.
	if setupMatches(line, "rdinit=") || setupMatches(line, "init=") {
		return "it names a program other than the initrd's /init to run as PID 1: nothing would check the initrd, serve attestation or supervise Katana"
	}
	// __setup("sysrq_always_enabled") (drivers/tty/sysrq.c), without
	// "=": sysrq_always_enabledX, sysrq-always-enabled.x and
	// sysrq_always_enabled_foo=1 all enable SysRq.
	if setupMatches(line, "sysrq_always_enabled") {
		return "it enables magic SysRq whatever the init sets: the host could send SysRq over the serial line (register and task dumps, crash, reboot)"
	}
	// __setup("noinitrd") (init/do_mounts_initrd.c; the x86 EFI stub
	// reads it too, whole), early_param("initrdmem") and early_param
	// ("initrd") with ADDR,SIZE (phys_initrd_start): the measured initrd
	// is not unpacked, or other memory is taken for it. OVMF's own
	// "initrd=initrd" has no comma.
	key := strings.ReplaceAll(p.Key, "-", "_")
	if setupMatches(line, "noinitrd") || key == "initrdmem" || key == "initrd" && strings.Contains(p.Value, ",") {
		return "it keeps the kernel from unpacking the measured initrd, or points it at other memory: the initrd's /init would not run"
	}
	// fs/proc/proc_sysctl.c do_sysctl_args(), right before the kernel
	// runs /init: a key "sysctl" (strncmp, matched here in any case)
	// then '.' or '/'. kernel.core_pattern=|PROG, kernel.poweroff_cmd
	// (run on an ACPI event the host sends) and kernel.modprobe run
	// programs as root; net.ipv4.conf.*.route_localnet opens services
	// bound to 127.0.0.1 to eth0; kernel.sysrq widens SysRq over the
	// serial line until the init turns it off.
	if k := p.Key; len(k) > 6 && strings.EqualFold(k[:6], "sysctl") && (k[6] == '.' || k[6] == '/') {
		return "the kernel applies sysctl.* as root right before it runs /init, and the init checks none of them: some run programs (kernel.core_pattern=|..., kernel.poweroff_cmd, kernel.modprobe), others open the guest to the host (net.ipv4.conf.*.route_localnet, kernel.sysrq)"
	}
	// __setup("kprobe_event=") (kernel/trace/trace_kprobe.c: probes that
	// read any kernel or user memory), __setup("tp_printk") and
	// __setup("ftrace_dump_on_oops") (kernel/trace/trace.c: every trace
	// event, or the whole buffer on an oops, printed to the console) and
	// core_param(panic_print) (kernel/panic.c: the buffer on a panic).
	if setupMatches(line, "kprobe_event=") || setupMatches(line, "tp_printk") || setupMatches(line, "ftrace_dump_on_oops") || key == "panic_print" {
		return "it prints kernel trace events or buffers to the console the host reads (kprobe_event= probes can read any memory)"
	}
	// The kernel knows kgdbcon, kgdbwait, kgdbdbgp, ekgdboc and
	// kgdboc_earlycon as early_param (parameq: the whole name, '-' and
	// '_' alike), kgdboc= and kgdbts= as __setup (a prefix of the line,
	// so the name is exactly kgdboc or kgdbts), and kgdboc.kgdboc and
	// kgdbts.kgdbts as built-in module parameters: every one is a name
	// that starts with kgdb or ekgdb once '-' is read as '_', and so is
	// any the kernel adds.
	if strings.HasPrefix(key, "kgdb") || strings.HasPrefix(key, "ekgdb") {
		return "it starts the kernel debugger on a console the host reads and writes: the host could read and change the guest's memory"
	}
	// The kernel gives a parameter with a value and without a dot in its
	// name that it does not know itself to PID 1's environment
	// (init/main.c, unknown_bootoption), as "name=value", where GODEBUG,
	// GOGC, GOMAXPROCS, GOMEMLIMIT and GOTRACEBACK steer the init's Go
	// runtime.
	if p.HasValue && strings.HasPrefix(p.Key, "GO") && !strings.Contains(p.Key, ".") {
		return "the kernel puts it in PID 1's environment, where it steers the init's Go runtime"
	}
	return ""
}

// setupLine is the text init/main.c unknown_bootoption() works on once
// repair_env_string() has put the "=" back and removed the value's
// quotes: "key=value", or "key" for a parameter without "=".
func setupLine(p Param) string {
	if p.HasValue {
		return p.Key + "=" + p.Value
	}
	return p.Key
}

// setupMatches reports whether init/main.c obsolete_checksetup() calls the
// __setup handler registered as str for a parameter whose setupLine is
// line: parameqn(line, str, strlen(str)) (kernel/params.c), so str need
// only be a prefix of the whole "key=value" text, with '-' and '_' alike.
// That runs before unknown_bootoption() drops a name with a '.', so a dot
// does not stop it; only a built-in parameter of exactly that name
// (parse_one), a sysctl alias or a boot loader identifier (BOOT_IMAGE=,
// kexec) would take the parameter first, and none of those starts like a
// name this package looks for.
func setupMatches(line, str string) bool {
	if len(line) < len(str) {
		return false
	}
	for i := 0; i < len(str); i++ {
		if dash2underscore(line[i]) != dash2underscore(str[i]) {
			return false
		}
	}
	return true
}

// dash2underscore is kernel/params.c's.
func dash2underscore(c byte) byte {
	if c == '-' {
		return '_'
	}
	return c
}

// anyCaseKey reports whether key starts with Prefix in any case: a
// katana.* key, or one in another case (KATANA.args, Katana.agent), which
// the kernel ignores like any unknown parameter with a dot, and so would
// Parse, silently.
func anyCaseKey(key string) bool {
	return len(key) >= len(Prefix) && strings.EqualFold(key[:len(Prefix)], Prefix)
}

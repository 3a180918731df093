package bootcfg

import "strings"

// Hazard says why the kernel parameter p, given before any "--", may not
// be on a command line this package parses or formats, or returns "". The
// command line is measured, so such a parameter is no secret from a
// verifier, but nothing would flag it: these replace the init (which then
// checks nothing, serves no attestation and supervises nothing), steer its
// Go runtime, or give the host, which reads and writes the serial console,
// a way into the guest. The list is of the parameters known to do so, not
// every parameter that weakens a guest (nokaslr, mitigations=off, ...).
func Hazard(p Param) string {
	// The kernel matches early parameters with dashes and underscores
	// alike (parameq); refusing both spellings costs nothing.
	key := strings.ReplaceAll(p.Key, "-", "_")
	switch key {
	case "rdinit", "init":
		return "it names a program other than the initrd's /init to run as PID 1: nothing would check the initrd, serve attestation or supervise Katana"
	case "sysrq_always_enabled":
		return "it enables magic SysRq whatever the init sets: the host could send SysRq over the serial line (register and task dumps, crash, reboot)"
	}
	// kgdboc, kgdboc_earlycon, kgdbwait, kgdbcon, kgdbdbgp, ekgdboc, and
	// any the kernel adds.
	if strings.HasPrefix(key, "kgdb") || strings.HasPrefix(key, "ekgdb") {
		return "it starts the kernel debugger on a console the host reads and writes: the host could read and change the guest's memory"
	}
	// The kernel gives a parameter with a value and without a dot that
	// it does not know itself to PID 1's environment (init/main.c,
	// unknown_bootoption), where GODEBUG, GOGC, GOMAXPROCS, GOMEMLIMIT
	// and GOTRACEBACK steer the init's Go runtime.
	if p.HasValue && strings.HasPrefix(p.Key, "GO") && !strings.Contains(p.Key, ".") {
		return "the kernel puts it in PID 1's environment, where it steers the init's Go runtime"
	}
	return ""
}

// anyCaseKey reports whether key starts with Prefix in any case: a
// katana.* key, or one in another case (KATANA.args, Katana.agent), which
// the kernel ignores like any unknown parameter with a dot, and so would
// Parse, silently.
func anyCaseKey(key string) bool {
	return len(key) >= len(Prefix) && strings.EqualFold(key[:len(Prefix)], Prefix)
}

package bootcfg

import (
	"fmt"
	"strings"
)

// The kernel's limits on what it hands PID 1 from the command line
// (init/main.c, Linux 6.1: MAX_INIT_ARGS and MAX_INIT_ENVS are
// CONFIG_INIT_ENV_ARG_LIMIT, 32 on x86). argv_init and envp_init have
// MAX+2 slots and the loops that fill them (set_init_arg,
// unknown_bootoption) set panic_later when they reach index MAX with that
// slot in use; start_kernel() then panics "Too many boot init vars" or
// "Too many boot env vars". So PID 1 gets at most 33 argv entries (argv[0]
// and 32 arguments) and 33 environment entries (HOME=/, TERM=linux and 31
// more).
const (
	maxInitArgs = 32 // MAX_INIT_ARGS
	maxInitEnvs = 32 // MAX_INIT_ENVS
)

// initBound reports how the kernel may hand a parameter before "--" to
// PID 1: to its environment, to its argv, or not at all. It is an upper
// bound: init/main.c unknown_bootoption() hands on what no built-in
// parameter, __setup or early_param took, which depends on the kernel's
// build; this package cannot tell those apart, so it counts every
// parameter that would go to PID 1 if the kernel did not know it. It
// leaves out what never reaches PID 1: a "." in the name (an unused
// module parameter) and the boot loader identifiers "BOOT_IMAGE=..." and
// "kexec...".
func initBound(p Param) (env, arg bool) {
	line := setupLine(p)
	if strings.HasPrefix(line, "BOOT_IMAGE=") || strings.HasPrefix(line, "kexec") || strings.Contains(p.Key, ".") {
		return false, false
	}
	return p.HasValue, !p.HasValue
}

// checkInitLimits refuses a command line on which the kernel may hand
// PID 1 more arguments or environment variables than it has room for, and
// panic. params and initArgs are as splitKernel returns them.
func checkInitLimits(params, initArgs []Param) error {
	// argv: argv[0], then the unknown parameters before "--" without "="
	// or ".", then every parameter after "--".
	var argv []Param
	for _, p := range params {
		if _, arg := initBound(p); arg {
			argv = append(argv, p)
		}
	}
	argv = append(argv, initArgs...)
	// With a "--", the initrd=initrd Debian's OVMF appends lands after it
	// and is one more argument (prepended, as other edk2 loaders do, the
	// kernel takes it itself).
	ovmf := ""
	if initArgs != nil {
		argv = append(argv, Param{Key: "initrd", Value: "initrd", HasValue: true, Raw: OVMFInitrdParam})
		ovmf = "; with \"--\" on the line, the " + OVMFInitrdParam + " OVMF appends is one of them"
	}
	if len(argv) > maxInitArgs {
		at := argv[maxInitArgs]
		if at.Raw == OVMFInitrdParam && initArgs != nil && len(argv) == maxInitArgs+1 {
			// OVMF's word is the one too many: name the caller's last.
			at = argv[maxInitArgs-1]
			ovmf = "; the " + OVMFInitrdParam + " OVMF appends after \"--\" would be the one too many: drop one argument"
		}
		return &Error{Err: ErrUnformattable, Text: at.Raw, Offset: -1,
			Detail: fmt.Sprintf("%d arguments may reach PID 1's argv, at most %d fit (init/main.c MAX_INIT_ARGS): the kernel panics "+
				"(\"Too many boot init vars\") at argument %d; it gives PID 1 every parameter after \"--\" and every one before it "+
				"without \"=\" or \".\" that it does not know itself, which this package counts as if none were known%s",
				len(argv), maxInitArgs, maxInitArgs+1, ovmf)}
	}
	// envp: HOME=/ and TERM=linux, then the unknown parameters before
	// "--" with "=" and no "." in the name, a later one replacing an
	// entry with the same NAME= (unknown_bootoption's strncmp over the
	// name and its "=").
	envp := []string{"HOME=/", "TERM=linux"}
	var over *Param
	for _, p := range params {
		if env, _ := initBound(p); !env {
			continue
		}
		line := setupLine(p)
		name := line[:len(p.Key)+1]
		i := 0
		for ; i < len(envp); i++ {
			if i == maxInitEnvs && over == nil {
				over = &p
			}
			if strings.HasPrefix(envp[i], name) {
				break
			}
		}
		if i == len(envp) {
			envp = append(envp, line)
		} else {
			envp[i] = line
		}
	}
	if over != nil {
		what := fmt.Sprintf("PID 1's environment may get %d entries with the kernel's HOME=/ and TERM=linux, at most %d fit", len(envp), maxInitEnvs+1)
		if len(envp) <= maxInitEnvs+1 {
			what = fmt.Sprintf("PID 1's environment is full (%d entries with the kernel's HOME=/ and TERM=linux) and this would replace the last, which the kernel cannot do", len(envp))
		}
		return &Error{Err: ErrUnformattable, Text: over.Raw, Offset: -1,
			Detail: fmt.Sprintf("%s (init/main.c MAX_INIT_ENVS %d; once there are %d entries, only the first %d can still be replaced): the kernel panics "+
				"(\"Too many boot env vars\") at this one; it gives PID 1's environment every parameter before \"--\" with \"=\" "+
				"and no \".\" in the name that it does not know itself, which this package counts as if none were known",
				what, maxInitEnvs, maxInitEnvs+1, maxInitEnvs)}
	}
	return nil
}

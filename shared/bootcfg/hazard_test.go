package bootcfg

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// refObsoleteSetup models init/main.c obsolete_checksetup() for one
// non-early __setup string: the kernel calls the handler when str is a
// prefix of the repaired "param=val" line (kernel/params.c parameqn over
// strlen(str), '-' and '_' alike), before unknown_bootoption() looks for
// a '.'.
func refObsoleteSetup(line, str string) bool {
	if len(line) < len(str) {
		return false
	}
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	return norm(line[:len(str)]) == norm(str)
}

// TestHazardKernelMatching: every spelling under which the kernel runs
// the sysrq_always_enabled, init= or rdinit= handler is refused by Parse
// and Format; spellings it does not match are kernel parameters like any.
func TestHazardKernelMatching(t *testing.T) {
	for _, tc := range []struct {
		param string
		setup string // the __setup string the kernel matches it to, "" for none
	}{
		{"sysrq_always_enabled", "sysrq_always_enabled"},
		{"sysrq_always_enabledX", "sysrq_always_enabled"},
		{"sysrq_always_enabled1", "sysrq_always_enabled"},
		{"sysrq_always_enabled.x", "sysrq_always_enabled"},
		{"sysrq-always-enabled_foo=1", "sysrq_always_enabled"},
		{"sysrq_always-enabled=0", "sysrq_always_enabled"},
		{`sysrq_always_enabled="0"`, "sysrq_always_enabled"},
		{`"sysrq_always_enabled x"`, "sysrq_always_enabled"},
		{"Sysrq_always_enabled", ""},
		{"sysrq_always_enable", ""},
		{"xsysrq_always_enabled", ""},
		{"init=/bin/sh", "init="},
		{"init=", "init="},
		{`"init=/bin/sh"`, "init="},
		{`init="/bin/sh"`, "init="},
		{"rdinit=/bin/katana", "rdinit="},
		{"rdinit=", "rdinit="},
		{"init", ""},
		{"rdinit", ""},
		{"init.x=1", ""},
		{"rdinit.x", ""},
		{"initx=1", ""},
		{"init_on_free=1", ""},
	} {
		ps, _, err := SplitKernel(tc.param)
		if err != nil || len(ps) != 1 {
			t.Fatalf("SplitKernel(%q) = %v, %v", tc.param, ps, err)
		}
		line := ps[0].Key
		if ps[0].HasValue {
			line += "=" + ps[0].Value
		}
		kernel := ""
		for _, s := range []string{"sysrq_always_enabled", "init=", "rdinit="} {
			if refObsoleteSetup(line, s) {
				kernel = s
			}
		}
		if kernel != tc.setup {
			t.Fatalf("%q: the model matches %q, the table says %q", tc.param, kernel, tc.setup)
		}
		_, perr := Parse("console=ttyS0 " + tc.param)
		_, ferr := Format(Default(), []string{"console=ttyS0", tc.param})
		if refused := tc.setup != ""; refused {
			if !errors.Is(perr, ErrHazard) || !errors.Is(ferr, ErrHazard) {
				t.Errorf("%q, which the kernel runs as %s: Parse %v, Format %v; want ErrHazard", tc.param, tc.setup, perr, ferr)
			}
		} else if perr != nil || ferr != nil {
			t.Errorf("%q, no hazard to the kernel: Parse %v, Format %v", tc.param, perr, ferr)
		}
	}
}

// TestHazardEarlyKgdb: the kgdb early parameters are matched whole with
// '-' and '_' alike (do_early_param, parameq), __setup("kgdboc=") and
// __setup("kgdbts=") as a prefix, the built-in module parameters with
// their module name; the kgdb/ekgdb prefix covers every spelling.
func TestHazardEarlyKgdb(t *testing.T) {
	for _, p := range []string{"kgdbwait", "kgdbcon", "kgdbdbgp=0", "ekgdboc=ttyS0", "kgdboc_earlycon", "kgdboc-earlycon=uart8250,io,0x3f8",
		"kgdboc=ttyS0", "kgdbts=V1", "kgdboc.kgdboc=ttyS0", "kgdbts.kgdbts=V1"} {
		if _, err := Parse(p); !errors.Is(err, ErrHazard) {
			t.Errorf("Parse(%q) = %v, want ErrHazard", p, err)
		}
	}
}

// TestHazardMore: parameters that keep the measured initrd from being
// unpacked, sysctl.* (applied as root right before /init) and the trace
// sinks to the console are refused under every spelling the kernel
// matches (noinitrd, tp_printk, ftrace_dump_on_oops and kprobe_event= as
// __setup prefixes; initrdmem, initrd and panic_print whole, '-' and '_'
// alike; sysctl then '.' or '/'); their neighbours are not (found by a
// review of the 6.1.192 source).
func TestHazardMore(t *testing.T) {
	for _, tc := range []struct {
		param, want string // want: part of the reason, "" for no hazard
	}{
		{"noinitrd", "measured initrd"},
		{"noinitrd=0", "measured initrd"},
		{"noinitrdX", "measured initrd"},
		{"initrdmem=0x1000000,0x400000", "measured initrd"},
		{"initrd-mem=0x1000000,0x400000", ""},
		{"initrd=0x1000000,0x400000", "measured initrd"},
		{"initrd=initrd", ""},
		{"no-initrd", ""},
		{"sysctl.kernel.core_pattern=|/bin/katana", "sysctl"},
		{"sysctl/kernel/modprobe=/usr/local/bin/x", "sysctl"},
		{"sysctl.kernel..poweroff_cmd=/bin/katana", "sysctl"},
		{"sysctl.net.ipv4.conf.all.route_localnet=1", "sysctl"},
		{"SYSCTL.kernel.sysrq=1", "sysctl"},
		{"sysctl", ""},
		{"sysctl=1", ""},
		{"sysctl_x.y=1", ""},
		{"kprobe_event=p:o,do_sys_open,+0(%si):ustring", "trace"},
		{"kprobe-event=p:o,do_sys_open", "trace"},
		{"kprobe_event", ""},
		{"tp_printk", "trace"},
		{"tp-printk", "trace"},
		{"tp_printk_stop_on_boot", "trace"},
		{"ftrace_dump_on_oops", "trace"},
		{"ftrace_dump_on_oops=orig_cpu", "trace"},
		{"panic_print=0x10", "trace"},
		{"panic-print=0x10", "trace"},
		{"panic_printX=1", ""},
		{"trace_event=sched", ""},
		{"panic=-1", ""},
	} {
		_, perr := Parse("console=ttyS0 " + tc.param)
		_, ferr := Format(Default(), []string{"console=ttyS0", tc.param})
		if tc.want == "" {
			if perr != nil || ferr != nil {
				t.Errorf("%q, no hazard: Parse %v, Format %v", tc.param, perr, ferr)
			}
			continue
		}
		for _, err := range []error{perr, ferr} {
			if !errors.Is(err, ErrHazard) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: %v; want ErrHazard naming %q", tc.param, err, tc.want)
			}
		}
	}
}

func TestErrorsNameTheValue(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := ParseAgent("bogus:1"); return err }(), `"bogus:1"`},
		{func() error { _, err := ParseAgent("unix:/x"); return err }(), `"unix:/x"`},
		{func() error { _, err := ParseStopTimeout("2h"); return err }(), `"2h"`},
		{func() error { _, err := ParseStopTimeout("soon"); return err }(), `"soon"`},
		{func() error { _, err := ParseStopTimeout("-1s"); return err }(), `"-1s"`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v does not name %s", tc.err, tc.want)
		}
	}
}

// TestFormatInitLimits: init/main.c gives PID 1 at most argv[0] and 32
// arguments, and at most 33 environment entries (HOME=/, TERM=linux and
// 31 more; once there are 33 the last cannot be replaced); one more and
// the kernel panics ("Too many boot init vars" / "env vars"). Format
// counts every parameter that may reach PID 1 and refuses past the limit.
func TestFormatInitLimits(t *testing.T) {
	seq := func(format string, n int) []string {
		var out []string
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprintf(format, i))
		}
		return out
	}
	cat := func(l ...[]string) (out []string) {
		for _, x := range l {
			out = append(out, x...)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		kernel   []string
		initArgs []string // nil: no "--"
		refuse   string   // the parameter the kernel panics at, "" for none
		count    string
	}{
		{"32 flags", seq("flag%d", 32), nil, "", ""},
		{"33 flags", seq("flag%d", 33), nil, "flag33", "33 arguments may reach PID 1's argv, at most 32 fit"},
		// With "--", OVMF's appended initrd=initrd is one more argument.
		{"20 flags and 11 init args", seq("flag%d", 20), seq("arg%d", 11), "", ""},
		{"20 flags and 12 init args", seq("flag%d", 20), seq("arg%d", 12), "arg12", "33 arguments may reach PID 1's argv, at most 32 fit (init/main.c MAX_INIT_ARGS): the kernel panics (\"Too many boot init vars\") at argument 33; it gives PID 1 every parameter after \"--\" and every one before it without \"=\" or \".\" that it does not know itself, which this package counts as if none were known; the initrd=initrd OVMF appends after \"--\" would be the one too many: drop one argument"},
		{"20 flags and 13 init args", seq("flag%d", 20), seq("arg%d", 13), "arg13", "34 arguments"},
		{"31 init args", nil, seq("arg%d", 31), "", ""},
		{"32 init args", nil, seq("arg%d", 32), "arg32", "33 arguments"},
		{"dotted flags do not count", seq("mod.flag%d", 40), nil, "", ""},
		{"boot loader identifiers do not count", cat(seq("kexec%d", 20), seq("BOOT_IMAGE=/vmlinuz%d", 20), seq("flag%d", 32)), nil, "", ""},
		{"31 variables", seq("V%d=1", 31), nil, "", ""},
		{"32 variables", seq("V%d=1", 32), nil, "V32=1", "34 entries with the kernel's HOME=/ and TERM=linux, at most 33 fit"},
		{"repeats replace", cat(seq("V%d=1", 31), seq("V1=%d", 30)), nil, "", ""},
		{"HOME and TERM replace", cat([]string{"HOME=/root", "TERM=vt100"}, seq("V%d=1", 31)), nil, "", ""},
		{"the 33rd entry cannot be replaced", cat(seq("V%d=1", 31), []string{"V31=2"}), nil, "V31=2", "PID 1's environment is full (33 entries with the kernel's HOME=/ and TERM=linux) and this would replace the last"},
		{"the 32nd entry can", cat(seq("V%d=1", 31), []string{"V30=2"}), nil, "", ""},
		{"dotted variables do not count", seq("mod.v%d=1", 40), nil, "", ""},
		{"values with dots count", seq("V%d=a.b", 32), nil, "V32=a.b", "34 entries"},
		{"flags and variables apart", cat(seq("flag%d", 32), seq("V%d=1", 31)), nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.InitArgs = tc.initArgs
			line, err := Format(c, tc.kernel)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("Format: %v", err)
				}
				if _, err := Parse(line); err != nil {
					t.Fatalf("Parse(%q): %v", line, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrUnformattable) || e.Text != tc.refuse ||
				!strings.Contains(e.Detail, tc.count) || !strings.Contains(e.Detail, "Too many boot") {
				t.Fatalf("Format = %q, %v; want ErrUnformattable naming %q, %q and the kernel's panic", line, err, tc.refuse, tc.count)
			}
		})
	}
}

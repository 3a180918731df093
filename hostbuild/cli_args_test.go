package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --restart-limit takes bootcfg.MaxRestartLimit itself: "want 0 to 1000"
// includes 1000.
func TestCmdlineRestartLimitMaxAccepted(t *testing.T) {
	stdout, stderr, code := runHB(t, "cmdline", "--on-exit", "restart", "--restart-limit", "1000")
	if want := "console=ttyS0 panic=-1 katana.on_exit=restart katana.restart_limit=1000\n"; code != exitOK || stdout != want {
		t.Errorf("--restart-limit 1000: exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitOK, want)
	}
}

// A --kernel-param whose key is the katana. prefix alone, in capitals, is
// refused as a capitalised katana.* key, as longer ones are.
func TestCmdlineKatanaPrefixAloneInCapitals(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--kernel-param", "KATANA.=1")
	if want := `--kernel-param "KATANA.=1": katana.* keys are lowercase`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

// A katana.* key given as a --kernel-param is named with its flag even
// after an ordinary kernel parameter: every parameter is checked, not only
// the first.
func TestCmdlineKatanaKeyAfterOtherParam(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--kernel-param", "quiet", "--kernel-param", "katana.args=x")
	if want := `--kernel-param "katana.args=x": set katana.args with --args, not as a kernel parameter`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

// A --kernel-param that does not split as kernel parameters (an unbalanced
// quote) is refused quoting the flag's value.
func TestCmdlineKernelParamUnbalancedQuote(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--kernel-param", `x="b`)
	if want := `hostbuild cmdline: --kernel-param "x=\"b": `; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

// cmdline takes no positional argument, not even one: Katana's arguments
// go in --args.
func TestCmdlineOneArgumentRefused(t *testing.T) {
	stdout, stderr, code := runHB(t, "cmdline", "extra")
	if want := `hostbuild cmdline: unexpected argument "extra" (Katana's arguments go in --args)`; code != exitUsage || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("cmdline extra: exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, want)
	}
}

// diffPair writes two uncompressed initrds that differ in exactly one
// entry: b has a file a lacks.
func diffPair(t *testing.T) (a, b string) {
	t.Helper()
	a, _ = plainInitrdImage(t, 0, initrdEntry{"bin/", nil})
	b, _ = plainInitrdImage(t, 0, initrdEntry{"bin/", nil}, initrdEntry{"etc/", nil})
	return a, b
}

// Two initrds with a single difference: diff lists it, counts it and exits
// 1, not "identical" and 0.
func TestDiffSingleDifference(t *testing.T) {
	a, b := diffPair(t)
	stdout, stderr, code := runHB(t, "diff", a, b)
	if code != exitFail || strings.Contains(stdout, "identical") || !strings.Contains(stdout, "etc") || !strings.HasSuffix(stdout, "# 1 difference(s)\n") {
		t.Errorf("diff with one difference: exit %d, stdout %q, stderr %q; want exit 1, the entry and \"# 1 difference(s)\"", code, stdout, stderr)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(t.TempDir(), "same.img")
	if err := os.WriteFile(same, data, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runHB(t, "diff", a, same)
	if want := "identical: " + a + " and " + same + " (sha256 "; code != exitOK || !strings.HasPrefix(stdout, want) {
		t.Errorf("diff A copy-of-A: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}
}

// diff takes exactly two initrds: a third is a usage error.
func TestDiffThreeArgumentsRefused(t *testing.T) {
	a, b := diffPair(t)
	stdout, stderr, code := runHB(t, "diff", a, b, a)
	if want := "hostbuild diff: want two initrds, A and B, got 3"; code != exitUsage || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("diff A B A: exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, want)
	}
}

// One failed check is enough to exit 1, and the summary counts it.
func TestDoctorSingleFailure(t *testing.T) {
	stdout, stderr, code := runHB(t, doctorHost(t, false)...)
	if code != exitFail || strings.Count(stdout, "FAIL  ") != 1 || !strings.Contains(stdout, "FAIL  vhost-vsock device") ||
		!strings.Contains(stdout, "\n1 of 10 checks failed: ") {
		t.Errorf("exit %d, want %d with one FAIL (vhost-vsock) and \"1 of 10 checks failed\":\n%s%s", code, exitFail, stdout, stderr)
	}
}

// One skipped check is enough to withhold "all checks passed", and the
// summary counts the passed ones and names the skipped one.
func TestDoctorSingleSkip(t *testing.T) {
	stdout, stderr, code := runHB(t, doctorHost(t, true)...)
	if code != exitOK || strings.Count(stdout, "SKIP  ") != 1 || strings.Contains(stdout, "all checks passed") ||
		!strings.Contains(stdout, "\n9 of 10 checks passed, none failed; not checked: OVMF") {
		t.Errorf("exit %d, want %d with one SKIP (OVMF), \"9 of 10 checks passed\" and not \"all checks passed\":\n%s%s", code, exitOK, stdout, stderr)
	}
}

// A --memory that does not parse is refused with parseMemory's reason, in
// run and libvirt alike, not as a size too small.
func TestLaunchMemoryUnparsable(t *testing.T) {
	f := newRunFixture(t)
	for _, cmd := range [][]string{
		{"run", "--dry-run", "--plain"},
		{"libvirt", "--ovmf", f.ovmf, "--cid", "3"},
	} {
		args := append(cmd, "--memory", "2X", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd)
		_, stderr, code := runHB(t, args...)
		if want := `--memory "2X": want a positive size in MiB, or with a suffix M or G`; code != exitUsage || !strings.Contains(stderr, want) || strings.Contains(stderr, "want at least") {
			t.Errorf("%s --memory 2X: exit %d, stderr %q; want %d and %q", cmd[0], code, stderr, exitUsage, want)
		}
	}
}

// A command name registered twice is a bug caught at start, not a command
// silently replaced.
func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("registering cmdline a second time did not panic")
		}
	}()
	register(command{name: "cmdline"})
}

// A bad value of a flag that is not a duration gets no duration hint.
func TestBadIntValueNoDurationHint(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--restart-limit", "abc")
	if code != exitUsage || !strings.Contains(stderr, `invalid value "abc" for flag -restart-limit`) || strings.Contains(stderr, "takes a duration") {
		t.Errorf("exit %d, stderr %q; want %d, the flag package's reason and no duration hint", code, stderr, exitUsage)
	}
	// An int64 flag of the flag package's own (a flag.Getter, unlike intVar).
	_, stderr, code = runHB(t, "measure", "--source-date-epoch", "abc")
	if code != exitUsage || !strings.Contains(stderr, `invalid value "abc" for flag -source-date-epoch`) || strings.Contains(stderr, "takes a duration") {
		t.Errorf("measure --source-date-epoch abc: exit %d, stderr %q; want %d, the flag package's reason and no duration hint", code, stderr, exitUsage)
	}
}

// A one-letter flag given twice is named with one dash, as it is written.
func TestOneLetterFlagGivenTwice(t *testing.T) {
	_, stderr, code := runHB(t, "pack", "-o", "a.img", "-o", "b.img")
	if want := `hostbuild pack: -o given twice ("-o a.img", then "-o b.img")`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

// The flag package's own error names an unknown flag raw: run's stderr
// backstop escapes the control characters in it.
func TestUnknownFlagNameEscaped(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--\x1b]0;PWNED\a")
	if code != exitUsage || strings.ContainsAny(stderr, "\x1b\a") || !strings.Contains(stderr, "flag provided but not defined") {
		t.Errorf("exit %d, stderr %q; want %d and the unknown flag escaped", code, stderr, exitUsage)
	}
}

// --file and --exec are repeatable: given twice they add up, and what
// pack says is wrong is something else.
func TestRepeatableFileFlagsNotGivenTwice(t *testing.T) {
	_, stderr, code := runHB(t, "pack", "--file", "a:/etc/katana/a", "--file", "b:/etc/katana/b",
		"--exec", "c:/usr/local/bin/c", "--exec", "d:/usr/local/bin/d")
	if code != exitUsage || strings.Contains(stderr, "given twice") || !strings.Contains(stderr, "--payload and -o are required") {
		t.Errorf("exit %d, stderr %q; want %d and no \"given twice\"", code, stderr, exitUsage)
	}
}

// A setting the cmdline cannot carry is not blamed on --kernel-param when
// --kernel-param is given too: only a refused parameter names that flag.
func TestCmdlineSettingErrorNotBlamedOnKernelParam(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--kernel-param", "quiet", "--env", "A=é")
	if code != exitUsage || !strings.Contains(stderr, "katana.env word 1") || strings.Contains(stderr, "--kernel-param:") {
		t.Errorf("exit %d, stderr %q; want %d, the katana.env refusal and no --kernel-param: prefix", code, stderr, exitUsage)
	}
}

// A switch given more than once is given: not refused as a flag taking
// one value (nor does it take the next word as its value).
func TestSwitchGivenTwice(t *testing.T) {
	stdout, stderr, code := runHB(t, "cmdline", "--shell", "--shell", "--shell")
	if want := "'console=ttyS0 panic=-1'\n"; code != exitOK || stdout != want {
		t.Errorf("cmdline --shell --shell --shell: exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitOK, want)
	}
}

// The first interrupt signal cancels interruptContext's context with an
// Interrupted naming it, which the commands print ("interrupted
// (SIGINT)"), not a bare context.Canceled.
func TestInterruptContextCauseNamesSignal(t *testing.T) {
	ctx, stop := interruptContext()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
	var in Interrupted
	if cause := context.Cause(ctx); !errors.As(cause, &in) || in.Signal != syscall.SIGINT || cause.Error() != "interrupted (SIGINT)" {
		t.Errorf("cause %v, want Interrupted{SIGINT} saying \"interrupted (SIGINT)\"", cause)
	}
}

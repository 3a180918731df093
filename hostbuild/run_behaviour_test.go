package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/hostbuild/internal/launch"
	"github.com/katana-tee/snpboot/qemu"
)

// Behaviour of run.go, libvirt.go and flags.go that no other test pins:
// each fails on a one-line change of the code that the other tests let
// pass.

// run.go:170 (*stopTimeout = stop): without --stop-timeout the graceful
// stop gets the default budget (the cmdline's katana.stop_timeout + 30 s,
// at least 60 s), not 0, which kills QEMU at once. Every other signal
// test passes --stop-timeout 60s.
func TestRunDefaultStopTimeout(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRunArgs(t, f, nil, fakeQEMUPowerOffDelayEnv+"=200ms")
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	stderr := r.stderr.String()
	if code != exitOK || events != "system_powerdown\n" {
		t.Errorf("exit %d, QEMU got %q; want %d after the power button only\n%s", code, events, exitOK, stderr)
	}
	if want := "stopping the guest (system_powerdown, up to 1m0s;"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q (the default --stop-timeout):\n%s", want, stderr)
	}
}

// run.go:260 (os.Remove(o.QMPSocket)): the QMP socket QEMU made in run's
// scratch folder goes, and with it the folder (the shell fakes of
// TestRunScratchFolder make no socket).
func TestRunRemovesQMPSocket(t *testing.T) {
	f := newRunFixture(t)
	tmp := shortTempDir(t)
	t.Setenv("TMPDIR", tmp)
	r := startFakeRun(t, f)
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := r.wait(t); code != exitOK {
		t.Fatalf("exit %d, want %d\n%s", code, exitOK, r.stderr.String())
	}
	var left []string
	filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if p != tmp {
			left = append(left, strings.TrimPrefix(p, tmp+"/"))
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("run left %q in $TMPDIR (the QMP socket and its scratch folder)", left)
	}
}

// run.go:261 (defaultSerial && ...): a --serial-log the operator named is
// never removed by run, even when QEMU did not start: here it holds an
// earlier boot's console.
func TestRunKeepsOperatorsSerialLog(t *testing.T) {
	f := newRunFixture(t)
	t.Setenv("TMPDIR", shortTempDir(t))
	serial := filepath.Join(t.TempDir(), "serial.log")
	const old = "[    1.000000] an earlier boot's console\n"
	if err := os.WriteFile(serial, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runHB(t, "run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--qemu", filepath.Join(f.dir, "no-such-qemu"), "--serial-log", serial)
	if code != exitFail {
		t.Errorf("exit %d, want %d\n%s", code, exitFail, stderr)
	}
	if b, err := os.ReadFile(serial); err != nil || string(b) != old {
		t.Errorf("--serial-log %s after a QEMU that did not start: %q, %v; want it kept as it was", serial, b, err)
	}
}

// run.go:178 (n > qemu.MaxUnixPath): a $TMPDIR whose longest QMP socket
// path is exactly qemu.MaxUnixPath bytes is accepted (TestRunTMPDIRTooLong
// has one byte more).
func TestRunTMPDIRLongestAccepted(t *testing.T) {
	f := newRunFixture(t)
	tmp := shortTempDir(t)
	tail := len("/hostbuild-run-4294967295/qmp.sock")
	long := filepath.Join(tmp, strings.Repeat("d", qemu.MaxUnixPath-tail-len(tmp)-1))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}
	if n := len(filepath.Join(long, "hostbuild-run-4294967295", "qmp.sock")); n != qemu.MaxUnixPath {
		t.Fatalf("the socket path would be %d bytes, want %d", n, qemu.MaxUnixPath)
	}
	t.Setenv("TMPDIR", long)
	stdout, stderr, code := runHB(t, "run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd)
	if code != exitOK || stdout == "" {
		t.Errorf("$TMPDIR with a %d-byte socket path: exit %d, stderr:\n%s\nwant exit 0 and the argv", qemu.MaxUnixPath, code, stderr)
	}
}

// run.go:155, 158 and 220: in SEV-SNP mode run warns of a debug policy
// (warnDebugPolicy), of DebugSwap with a kernel older than 6.6
// (warnDebugSwapKernel) and prints the plan's warnings (here a policy
// without SMT); --plain, which has no policy or features, warns of none.
// Only manifest and libvirt were checked for these.
func TestRunWarnings(t *testing.T) {
	f := newRunFixture(t)
	kernel := filepath.Join(f.dir, "vmlinuz-6.1")
	if err := os.WriteFile(kernel, fakeBzImageRelease("6.1.0-57-amd64"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(f.dir, "debug.json")
	if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", kernel, "--initrd", f.initrd,
		"--cmdline", runFixtureCmdline, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--policy", "0xa0000", "--guest-features", "0x21", "-o", m); code != exitOK {
		t.Fatalf("hostbuild manifest: exit %d\n%s", code, stderr)
	}
	warnings := []string{
		"hostbuild run: warning: guest policy 0xa0000 allows debugging (bit 19)",
		"hostbuild run: warning: guest policy 0xa0000 does not allow SMT (bit 16)",
		"DebugSwap",
	}
	base := []string{"run", "--dry-run", "--manifest", m, "--kernel", kernel, "--initrd", f.initrd}
	_, stderr, code := runHB(t, append(base, "--ovmf", f.ovmf, "--cid", "3")...)
	if code != exitOK {
		t.Fatalf("SEV-SNP: exit %d\n%s", code, stderr)
	}
	for _, w := range warnings {
		if !strings.Contains(stderr, w) {
			t.Errorf("SEV-SNP: stderr lacks %q:\n%s", w, stderr)
		}
	}
	_, stderr, code = runHB(t, append(base, "--plain")...)
	if code != exitOK {
		t.Fatalf("plain: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "warning:") {
		t.Errorf("plain: stderr warns:\n%s", stderr)
	}
}

// run.go:278: --console copies each console line to stderr behind
// "console| ", which tells it from run's own lines.
func TestRunConsolePrefix(t *testing.T) {
	f := newRunFixture(t)
	t.Setenv("TMPDIR", shortTempDir(t))
	fake := fakeQEMUScript(t, t.TempDir(), fakeCleanBoot)
	_, stderr, code := runHB(t, "run", "--plain", "--console", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--qemu", fake)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if want := "\nconsole| [    1.300000] reboot: Power down\n"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// run.go:366 and 372: after "ready:", a SEV-SNP guest without an agent
// (katana.agent=none) gets no attest command but says why; in plain mode
// run says how (or why not) to reach the agent.
func TestRunAgentHints(t *testing.T) {
	t.Setenv("TMPDIR", shortTempDir(t))
	fake := fakeQEMUScript(t, t.TempDir(), fakeCleanBoot)
	none := newRunFixtureCmdline(t, "console=ttyS0 panic=-1 katana.agent=none")
	stdout, stderr, code := runHB(t, "run", "--manifest", none.manifest, "--ovmf", none.ovmf, "--kernel", none.kernel, "--initrd", none.initrd,
		"--cid", "3", "--qemu", fake)
	if code != exitOK || !strings.Contains(stdout, "attest: this guest has no attestation agent (its cmdline sets katana.agent=none)\n") || strings.Contains(stdout, "attest with:") {
		t.Errorf("SEV-SNP, katana.agent=none: exit %d, stdout:\n%s\nwant the no-agent line and no attest command\n%s", code, stdout, stderr)
	}
	f := newRunFixture(t)
	stdout, stderr, code = runHB(t, "run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--qemu", fake)
	if want := "agent: the agent listens on vsock port 1024, and plain mode gives the guest no vsock device"; code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("plain: exit %d, stdout:\n%s\nwant %q\n%s", code, stdout, want, stderr)
	}
}

// run.go:391 (plan.RealPaths): QEMU's messages name the inherited files
// as /proc/self/fd/N; run shows the operator's path instead.
func TestRunShowsRealPaths(t *testing.T) {
	f := newRunFixture(t)
	t.Setenv("TMPDIR", shortTempDir(t))
	fake := fakeQEMUScript(t, t.TempDir(), `prev=
for a in "$@"; do
	[ "$prev" = -bios ] && echo "qemu-system-x86_64: could not load PC BIOS '$a'" >&2
	prev=$a
done
exit 1
`)
	_, stderr, code := runHB(t, "run", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "--qemu", fake)
	if want := "could not load PC BIOS '" + f.ovmf + "'"; code != exitFail || !strings.Contains(stderr, want) || strings.Contains(stderr, "/proc/self/fd/") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q, no /proc/self/fd path", code, stderr, exitFail, want)
	}
}

// run.go:482: a boot that never gets ready under a manifest whose cmdline
// lacks console=ttyS0 (the init's lines never reach the serial log) says
// that the cmdline may be why.
func TestRunReadyTimeoutNamesConsole(t *testing.T) {
	f := newRunFixtureCmdline(t, "panic=-1")
	fake := filepath.Join(t.TempDir(), fakeQEMUName)
	if err := os.Symlink(os.Args[0], fake); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeQEMUNotReadyEnv, "1")
	_, stderr, code := runHB(t, "run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--qemu", fake, "--serial-log", filepath.Join(t.TempDir(), "serial.log"), "--ready-timeout", "1s")
	if want := "the manifest's cmdline may be why: console="; code != exitFail || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, exitFail, want)
	}
}

// run.go:495-530: qemuHint for each QEMU message it knows, and none in
// plain mode but for the signal one (plain mode has no SEV-SNP to blame).
func TestRunQEMUHint(t *testing.T) {
	const (
		firmware = "KVM or the SEV firmware refused to launch this guest"
		kvm      = "this host's KVM cannot run an SEV-SNP guest"
		signal   = "QEMU was sent the signal itself"
	)
	for _, tc := range []struct {
		ending launch.Ending
		stderr string
		plain  bool
		want   string // prefix; "" for no hint
	}{
		{launch.EndedQEMU, "qemu-system-x86_64: sev_snp_launch_start: SNP_LAUNCH_START ret=-1 fw_error=7 'Policy is not allowed'", false, firmware},
		{launch.EndedQEMU, "qemu-system-x86_64: sev_kvm_init: failed to initialize ret=-22 fw_error=0 ''", false, firmware},
		{launch.EndedQEMU, "Could not access KVM kernel module: No such file or directory", false, kvm},
		{launch.EndedQEMU, "qemu-system-x86_64: failed to initialize kvm: No such file or directory", false, kvm},
		{launch.EndedQEMU, "qemu-system-x86_64: failed to initialize kvm: No such file or directory", true, ""},
		{launch.EndedQEMU, "qemu-system-x86_64: could not load PC BIOS 'x'", true, ""},
		{launch.EndedNoPowerOff, "qemu-system-x86_64: terminating on signal 15 from pid 1", true, signal},
		{launch.EndedNoPowerOff, "", false, ""},
		{launch.EndedClean, "Could not access KVM kernel module", false, ""},
	} {
		got := qemuHint(launch.Outcome{Ending: tc.ending, Exit: qemu.Exit{Stderr: tc.stderr}}, tc.plain)
		if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
			t.Errorf("qemuHint(ending %d, %q, plain %v) = %q, want %q...", tc.ending, tc.stderr, tc.plain, got, tc.want)
		}
	}
}

// run.go:532-544: every Ending has its documented exit status
// (TestRunEndsWhenQEMUStopsTheVM checks only "not 0" for a stopped VM).
func TestRunOutcomeCode(t *testing.T) {
	for e, want := range map[launch.Ending]int{
		launch.EndedClean:       exitOK,
		launch.EndedBootError:   exitRunBootError,
		launch.EndedKatana:      exitRunKatana,
		launch.EndedPanic:       exitRunKilled,
		launch.EndedKilled:      exitRunKilled,
		launch.EndedNoPowerOff:  exitRunKilled,
		launch.EndedQEMUStopped: exitRunKilled,
		launch.EndedQEMU:        exitFail,
	} {
		if got := outcomeCode(launch.Outcome{Ending: e}); got != want {
			t.Errorf("outcomeCode(ending %d) = %d, want %d", e, got, want)
		}
	}
}

// libvirt.go:172 (stopBudget(m.Cmdline, 0)): the stop hint's figure is
// the manifest's katana.stop_timeout + 30 s (the goldens' cmdline has the
// default, whose figure is the 60 s floor).
func TestLibvirtStopHintFromManifest(t *testing.T) {
	f := newRunFixtureCmdline(t, "console=ttyS0 panic=-1 katana.stop_timeout=10m")
	_, stderr, code := runHB(t, "libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cid", "3", "--name", "k1", "-o", filepath.Join(f.dir, "d.xml"))
	if want := "stop it with 'virsh shutdown k1' and allow 10m30s before 'virsh destroy k1'"; code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %q", code, stderr, want)
	}
}

// libvirt.go:158: the plan's warnings (here a guest policy without SMT,
// which KVM 6.11-6.15 refuses) are printed by libvirt too.
func TestLibvirtPrintsPlanWarnings(t *testing.T) {
	f := newRunFixture(t)
	m := filepath.Join(f.dir, "nosmt.json")
	if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cmdline", runFixtureCmdline, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--policy", "0x20000", "-o", m); code != exitOK {
		t.Fatalf("hostbuild manifest: exit %d\n%s", code, stderr)
	}
	_, stderr, code := runHB(t, "libvirt", "--manifest", m, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cid", "3", "-o", filepath.Join(f.dir, "d.xml"))
	if want := "hostbuild libvirt: warning: guest policy 0x20000 does not allow SMT (bit 16)"; code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %q", code, stderr, want)
	}
}

// libvirt.go:128-131: -o and --serial-log named by two paths of one file
// (here through a symlinked folder, which filepath.Abs does not resolve)
// are refused as one path is (TestLibvirtOutputIsSerialLog).
func TestLibvirtOutputIsSerialLogByAnotherPath(t *testing.T) {
	f := newRunFixture(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "katana.xml")
	if err := os.WriteFile(out, []byte("<previous/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "logs")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runHB(t, "libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cid", "3", "--serial-log", filepath.Join(link, "katana.xml"), "-o", out)
	if code != exitFail || !strings.Contains(stderr, "is also the --serial-log") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d: -o is the --serial-log", code, stderr, exitFail)
	}
	if b, _ := os.ReadFile(out); string(b) != "<previous/>" {
		t.Errorf("%s was overwritten: %q", out, b)
	}
}

// flags.go:49: the uint flags (--cid, --port) are decimal too: "010" is
// 10, not octal 8 (only the int flags were checked, by measure).
func TestFlagsDecimalUint(t *testing.T) {
	var u uint
	if err := (decimalUint{&u}).Set("010"); err != nil || u != 10 {
		t.Errorf("decimalUint.Set(\"010\") = %d, %v; want 10", u, err)
	}
	if err := (decimalUint{&u}).Set("0x10"); err == nil {
		t.Errorf("decimalUint.Set(\"0x10\") = %d, want an error", u)
	}
}

// flags.go:89: whole seconds are decimal ("010" is 10 s) and at most
// 32 bits: a larger count would overflow time.Duration (9300000000 s is
// past its 292 years) into a negative budget.
func TestFlagsSecondsDecimalAndBounded(t *testing.T) {
	var d time.Duration
	if err := (secondsOrDuration{&d}).Set("010"); err != nil || d != 10*time.Second {
		t.Errorf("Set(\"010\") = %v, %v; want 10s", d, err)
	}
	for _, in := range []string{"0x10", "9300000000", "4294967296"} {
		d = 0
		if err := (secondsOrDuration{&d}).Set(in); err == nil {
			t.Errorf("Set(%q) = %v, want an error", in, d)
		}
	}
}

// flags.go:149-151: parseAutoInt holds a value to its bits (measure's
// --vcpu-sig is 32) and says so.
func TestFlagsAutoIntBits(t *testing.T) {
	if v, err := parseAutoInt("0x100000000", 32); err == nil || !strings.Contains(err.Error(), "out of range: more than 32 bits") {
		t.Errorf("parseAutoInt(0x100000000, 32) = %#x, %v; want out of range, more than 32 bits", v, err)
	}
	if v, err := parseAutoInt("0xffffffff", 32); err != nil || v != 0xffffffff {
		t.Errorf("parseAutoInt(0xffffffff, 32) = %#x, %v; want 0xffffffff", v, err)
	}
}

// run.go:392 (qemuHint(out, o.Plain)): in plain mode a QEMU without KVM
// (--accel kvm) gets QEMU's own message, not the SEV-SNP host hint.
func TestRunPlainNoSNPHint(t *testing.T) {
	f := newRunFixture(t)
	t.Setenv("TMPDIR", shortTempDir(t))
	fake := fakeQEMUScript(t, t.TempDir(), `echo "qemu-system-x86_64: failed to initialize kvm: No such file or directory" >&2
exit 1
`)
	_, stderr, code := runHB(t, "run", "--plain", "--accel", "kvm", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--qemu", fake)
	if code != exitFail || !strings.Contains(stderr, "failed to initialize kvm") || strings.Contains(stderr, "this host's KVM cannot run an SEV-SNP guest") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d, QEMU's message and not the SEV-SNP host hint", code, stderr, exitFail)
	}
}

// run.go:141: --accel tcg is refused only without --plain; --plain
// --accel tcg (the default, given) runs under TCG.
func TestRunPlainAccelTCG(t *testing.T) {
	f := newRunFixture(t)
	stdout, stderr, code := runHB(t, "run", "--dry-run", "--plain", "--accel", "tcg", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd)
	if code != exitOK || !strings.Contains(stdout, "-accel tcg") {
		t.Errorf("--plain --accel tcg: exit %d, stdout:\n%s\nwant exit 0 and -accel tcg\n%s", code, stdout, stderr)
	}
}

package boottest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

var (
	reKatanaStarted = regexp.MustCompile(`guestinit: katana started pid=(\d+) argv=(\[.*\])\s*$`)
	reStandinArgv   = regexp.MustCompile(`standin-katana: argv=(\[.*\])\s*$`)
	reStandinEnv    = regexp.MustCompile(`standin-katana: env=(\[.*\])\s*$`)
	reStandinMounts = regexp.MustCompile(`standin-katana: mounts=(\[.*\])\s*$`)
	reKatanaExited  = regexp.MustCompile(`guestinit: katana exited status=(-?\d+)`)
)

// TestBootStandIn boots the stand-in with awkward arguments, talks to it
// through the forwarded port, then presses the ACPI power button (QMP
// system_powerdown) and expects a graceful stop: SIGTERM to Katana, its exit
// status logged, a clean power-off.
func TestBootStandIn(t *testing.T) {
	e := needEnv(t)
	// A quoted argument with a space, a literal * (an initrd root has
	// files for it to match if anything globbed), a glob with a path, an
	// empty argument and an apostrophe.
	args := []string{
		"--http.addr", "0.0.0.0", "--http.port", strconv.Itoa(katanaPort),
		"--name", "a b", "--cors", "*", "--glob", "/bin/*", "--empty", "", "--quote", "it's",
	}
	c := bootcfg.Default()
	c.Args = args
	g, ports := boot(t, e, defaultInitrd(t, e), cmdline(t, c), katanaPort)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	initArgv := waitJSONStrings(ctx, t, g, reKatanaStarted, 2, "the init's argv")
	// The init logs the argv it passed to execve, program name first.
	if len(initArgv) == 0 || !strings.HasSuffix(initArgv[0], "katana") {
		t.Errorf("the init's argv %q does not start with the katana path", initArgv)
	} else if diff := cmp.Diff(args, initArgv[1:]); diff != "" {
		t.Errorf("argv the init passed to katana (-katana.args +passed):\n%s", diff)
	}

	got := waitJSONStrings(ctx, t, g, reStandinArgv, 1, "stand-in argv")
	if diff := cmp.Diff(args, got); diff != "" {
		t.Errorf("argv the stand-in received (-katana.args +received):\n%s", diff)
	}

	if err := g.WaitUntil(ctx, 200*time.Millisecond, chainIDProbe(ports[katanaPort])); err != nil {
		t.Fatalf("starknet_chainId through host port %d: %v", ports[katanaPort], err)
	}

	// The padded stand-in arrived in frames, decoded on both vCPUs with
	// the kernel's sha256, before Katana started.
	if l := findLine(g, "guestinit: stage=payload ok frames=4 bytes=37748736 "); !strings.Contains(l, "hash=kernel") ||
		lineIndex(g, "guestinit: stage=payload ok") > lineIndex(g, markKatanaStarted) {
		t.Errorf("no payload stage line with 4 frames and hash=kernel before katana started: %q", l)
	}
	checkModuleOrder(t, g)
	if findLine(g, "guestinit: payload: /bin is a read-only tmpfs with huge pages") == "" {
		t.Errorf("the payload was not written to a huge-page tmpfs:\n%s", tail(g.Lines(), 30))
	}
	for _, w := range []string{"hostbuild run: checked the kernel and initrd", "ready: guestinit: katana started"} {
		if !strings.Contains(g.Output(), w) {
			t.Errorf("hostbuild run output lacks %q:\n%s", w, g.Output())
		}
	}

	// The operator's graceful stop: SIGINT to hostbuild run, which
	// presses the ACPI power button (QMP system_powerdown).
	if err := g.PowerDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitForLine(ctx, markStandinTerm); err != nil {
		t.Fatalf("the stand-in got no SIGTERM after system_powerdown: %v", err)
	}
	_, m, err := g.WaitForRegexp(ctx, reKatanaExited)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "0" {
		t.Errorf("katana exit status %s after a graceful stop, want 0", m[1])
	}
	expectPowerOff(ctx, t, g, runExitClean)
	if i, j := lineIndex(g, markKatanaExited), lineIndex(g, markPoweringOff); i > j {
		t.Errorf("the init powered off (line %d) before katana exited (line %d)", j, i)
	}
}

// checkModuleOrder checks the init's three module passes in its "module
// times" line: the AF_ALG hash modules, then those eth0 needs (so that the
// network comes up while the rest load: a client's connection is refused at
// once instead of left unanswered until Katana listens), then the rest; and
// the markers' order.
func checkModuleOrder(t *testing.T, g *guest) {
	t.Helper()
	l := findLine(g, "guestinit: module times: ")
	_, times, _ := strings.Cut(l, "module times: ")
	var names []string
	for _, f := range strings.Fields(times) {
		name, _, _ := strings.Cut(f, "=")
		names = append(names, name)
	}
	pass := map[string]int{"af_alg": 0, "algif_hash": 0, "sha256_ssse3": 0, "ipv6": 1,
		"failover": 1, "net_failover": 1, "virtio": 1, "virtio_ring": 1,
		"virtio_pci_legacy_dev": 1, "virtio_pci_modern_dev": 1, "virtio_pci": 1, "virtio_net": 1}
	last, seen := 0, map[int]bool{}
	for _, n := range names {
		p, ok := pass[n]
		if !ok {
			p = 2
		}
		if p < last {
			t.Errorf("module %s (pass %d) loaded after a module of pass %d: %q", n, p, last, l)
		}
		last, seen[p] = p, true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		t.Errorf("want the hash modules, eth0's and others in the module times line, got %q", l)
	}
	// The network's marker is written after the modules' (their kernel
	// messages would split it), before Katana starts.
	if m, i, j := lineIndex(g, "guestinit: stage=modules ok"), lineIndex(g, "guestinit: stage=network ok"), lineIndex(g, markKatanaStarted); m < 0 || i < m || i > j {
		t.Errorf("markers at lines modules %d, network %d, katana started %d: want them in that order", m, i, j)
	}
}

// waitJSONStrings waits for a line matching re and decodes its group as a
// JSON array of strings.
func waitJSONStrings(ctx context.Context, t *testing.T, g *guest, re *regexp.Regexp, group int, what string) []string {
	t.Helper()
	_, m, err := g.WaitForRegexp(ctx, re)
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	if err := json.Unmarshal([]byte(m[group]), &l); err != nil {
		t.Fatalf("%s %s is not a JSON array of strings: %v", what, m[group], err)
	}
	return l
}

// TestBootStandInExit: when Katana exits by itself, the init logs its
// status and (default katana.on_exit=poweroff) powers off cleanly.
func TestBootStandInExit(t *testing.T) {
	e := needEnv(t)
	c := bootcfg.Default()
	c.Net = bootcfg.Net{None: true} // no NIC needed; also covers katana.net=none
	// No agent either (katana.agent=none): the agent would mount configfs
	// itself, and the mounts checked below must be the init's own.
	c.Agent = bootcfg.Agent{Mode: bootcfg.AgentNone}
	// The stand-in also signals PID 1 with what the Go runtime would die of
	// (for PID 1, a kernel panic): the init logs and drops them.
	c.Args = []string{"--exit-after", "1s", "--exit-code", "7", "--signal-init", "SIGQUIT,SIGABRT,SIGSEGV,SIGPIPE"}
	// katana.env, with a comma, a space, an empty value and a $ that must
	// stay literal.
	c.Env = []string{"RUST_LOG=info,rpc=trace", "SPACED=a b", "EMPTY=", "LITERAL=$HOME"}
	// A parameter the kernel does not know goes to the init's own
	// environment, never Katana's.
	line, err := bootcfg.Format(c, append(slices.Clone(baseParams), "snpboot_leftover=1"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := boot(t, e, defaultInitrd(t, e), line)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	if _, err := g.WaitForLine(ctx, markKatanaStarted); err != nil {
		t.Fatal(err)
	}
	_, m, err := g.WaitForRegexp(ctx, reKatanaExited)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "7" {
		t.Errorf("logged katana exit status %s, want 7", m[1])
	}
	expectPowerOff(ctx, t, g, runExitKatana)
	for _, s := range []string{"SIGQUIT", "SIGABRT", "SIGSEGV", "SIGPIPE"} {
		if findLine(g, "guestinit: ignoring "+s+" sent to PID 1") == "" {
			t.Errorf("no line saying the init ignored %s from the stand-in:\n%s", s, tail(g.Lines(), 30))
		}
	}
	// Katana starts with no signal ignored (dispositions of PID 1 that
	// would survive execve).
	if l := findLine(g, "standin-katana: sigign="); l != "" && !strings.Contains(l, "sigign=0000000000000000") {
		t.Errorf("the stand-in started with signals ignored: %q", l)
	} else if l == "" {
		t.Errorf("the stand-in did not report its ignored signals:\n%s", tail(g.Lines(), 30))
	}
	// The magic SysRq keys are off (Debian's kernel enables some, and
	// takes them from the host's serial line).
	if l := findLine(g, "standin-katana: sysrq="); !strings.HasSuffix(strings.TrimSpace(l), "standin-katana: sysrq=0") {
		t.Errorf("the stand-in reported %q, want sysrq=0:\n%s", l, tail(g.Lines(), 30))
	}
	// The kernel's console log level is at most 4: the register dumps a
	// host can provoke (soft lockup, RCU stall) stay off its serial line.
	// An oops or a panic (which the host can provoke by injecting an
	// exception) does not raise it again: console_no_auto_verbose=Y.
	if l := findLine(g, "standin-katana: console loglevel="); !strings.HasSuffix(strings.TrimSpace(l), "standin-katana: console loglevel=4 ignore_loglevel=N console_no_auto_verbose=Y") {
		t.Errorf("the stand-in reported %q, want console loglevel=4 ignore_loglevel=N console_no_auto_verbose=Y:\n%s", l, tail(g.Lines(), 30))
	}
	// The kernel keymap's register, memory and task dumps (Scroll Lock
	// with AltGr, Shift, Ctrl) are gone: q35's PS/2 keyboard is the
	// host's, and those keys print on its serial console whatever
	// kernel.sysrq says.
	if l := findLine(g, "standin-katana: keymap dump keys="); !strings.HasSuffix(strings.TrimSpace(l), "standin-katana: keymap dump keys=0") {
		t.Errorf("the stand-in reported %q, want keymap dump keys=0:\n%s", l, tail(g.Lines(), 30))
	}
	// The kernel's SIMD SHA-256 (sha256_ssse3: SSSE3 at least under
	// -cpu max) is loaded beside the generic C one, which AF_ALG would
	// use otherwise, about 3x slower than Go's on SEV-SNP hardware.
	if l := findLine(g, "standin-katana: sha256 drivers="); !strings.Contains(l, "sha256-generic") ||
		!(strings.Contains(l, "sha256-ssse3") || strings.Contains(l, "sha256-avx") || strings.Contains(l, "sha256-ni")) {
		t.Errorf("the stand-in reported %q, want sha256-generic and a SIMD driver (sha256_ssse3 loaded):\n%s", l, tail(g.Lines(), 30))
	}
	// No module and no kexec once the init's modules are in.
	if l := findLine(g, "standin-katana: locks "); !strings.HasSuffix(strings.TrimSpace(l), "locks modules_disabled=1 kexec_load_disabled=1") {
		t.Errorf("the stand-in reported %q, want modules_disabled=1 kexec_load_disabled=1:\n%s", l, tail(g.Lines(), 30))
	}
	// The operator's file, packed with --file, as Katana would read it.
	wantFile := fmt.Sprintf("standin-katana: file %s sha256=%x", operatorFile, sha256.Sum256([]byte(operatorFileData)))
	if l := findLine(g, "standin-katana: file "); !strings.HasSuffix(strings.TrimSpace(l), wantFile) {
		t.Errorf("the stand-in reported %q, want %q:\n%s", l, wantFile, tail(g.Lines(), 30))
	}
	// Katana's whole environment: the init's minimal one (no CA bundle in
	// this initrd), katana.env in its order, then TMPDIR; nothing of the
	// init's own environment (the kernel's leftover parameter).
	wantEnv := append([]string{"PATH=/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/"}, c.Env...)
	wantEnv = append(wantEnv, "TMPDIR=/tmp/katana")
	gotEnv := waitJSONStrings(ctx, t, g, reStandinEnv, 1, "stand-in env")
	if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
		t.Errorf("environment the stand-in received (-want +got):\n%s", diff)
	}
	// The init's mounts, as issue 3 lists them, with the flags its early
	// table gives: the table, and the configfs it mounts once the modules
	// (configfs is one on Debian's kernel) are loaded.
	gotMounts := waitJSONStrings(ctx, t, g, reStandinMounts, 1, "stand-in mounts")
	for _, want := range []struct{ target, fstype, flags string }{
		{"/proc", "proc", "nosuid,nodev,noexec"},
		{"/sys", "sysfs", "nosuid,nodev,noexec"},
		{"/dev", "devtmpfs", "nosuid"},
		{"/dev/pts", "devpts", "nosuid,noexec"},
		{"/dev/shm", "tmpfs", "nosuid,nodev"},
		{"/run", "tmpfs", "nosuid,nodev"},
		{"/tmp", "tmpfs", "nosuid,nodev"},
		{"/sys/kernel/config", "configfs", "nosuid,nodev,noexec"},
	} {
		found := false
		for _, m := range gotMounts {
			f := strings.Fields(m)
			if len(f) != 3 || f[0] != want.target || f[1] != want.fstype {
				continue
			}
			found = true
			opts := strings.Split(f[2], ",")
			for _, fl := range strings.Split(want.flags, ",") {
				if !slices.Contains(opts, fl) {
					t.Errorf("%s (%s) mounted with %s, want %s among them", want.target, want.fstype, f[2], fl)
				}
			}
		}
		if !found {
			t.Errorf("no %s mount at %s; the stand-in saw:\n%s", want.fstype, want.target, strings.Join(gotMounts, "\n"))
		}
	}
	// Katana's TMPDIR, empty and private, and its open-files limit.
	const wantTmp = "standin-katana: tmpdir=/tmp/katana mode=drwx------ entries=0 nofile=65536/65536"
	if l := findLine(g, "standin-katana: tmpdir="); !strings.HasSuffix(strings.TrimSpace(l), wantTmp) {
		t.Errorf("the stand-in reported %q, want %q:\n%s", l, wantTmp, tail(g.Lines(), 30))
	}
	// No descriptor of the init's reaches Katana: it starts with 0, 1
	// and 2 only.
	if l := findLine(g, "standin-katana: fds="); !strings.HasSuffix(strings.TrimSpace(l), "standin-katana: fds=0,1,2") {
		t.Errorf("the stand-in reported %q, want fds=0,1,2:\n%s", l, tail(g.Lines(), 30))
	}
	// Its stdout: the console, through a file description that is not the
	// one the init logs through.
	const wantStdout = "standin-katana: stdout description=own"
	if l := findLine(g, "standin-katana: stdout description="); !strings.HasSuffix(strings.TrimSpace(l), wantStdout) {
		t.Errorf("the stand-in reported %q, want %q:\n%s", l, wantStdout, tail(g.Lines(), 30))
	}
}

// TestBootSidecarRestart: an executable packed with --exec is on Katana's
// PATH, where Katana finds its sidecars; with katana.on_exit=restart, the
// sidecar the first Katana left running, in a session of its own (out of
// Katana's process group, as a daemon would be), is killed before the
// second starts (it would hold its port), and the guest powers off at the
// limit.
func TestBootSidecarRestart(t *testing.T) {
	e := needEnv(t)
	img := filepath.Join(t.TempDir(), "initrd.img")
	if err := pack(e, img, "--exec", e.standin+":/usr/local/bin/standin-sidecar"); err != nil {
		t.Fatal(err)
	}
	c := bootcfg.Default()
	c.Net = bootcfg.Net{None: true}
	c.OnExit = bootcfg.OnExitRestart
	c.RestartLimit = 1
	// Each Katana lives 4 s: time for its sidecar to start and take its
	// port under TCG.
	c.Args = []string{"--sidecar-setsid", "standin-sidecar", "--exit-after", "4s", "--exit-code", "3"}
	g, _ := boot(t, e, img, cmdline(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := g.WaitForLine(ctx, "guestinit: restarting katana (restart 1 of 1)"); err != nil {
		t.Fatal(err)
	}
	expectPowerOff(ctx, t, g, runExitKatana)
	lines := g.Lines()
	var started, running []int
	for i, l := range lines {
		switch {
		case strings.Contains(l, "standin-katana: started sidecar /usr/local/bin/standin-sidecar pid="):
			started = append(started, i)
		case strings.Contains(l, "standin-katana: sidecar running"):
			running = append(running, i)
		}
	}
	if len(started) != 2 || len(running) != 2 {
		t.Fatalf("want the sidecar started (from /usr/local/bin) and running once per Katana, twice; got %d and %d:\n%s", len(started), len(running), tail(lines, 40))
	}
	killed := lineIndex(g, "SIGKILL before the restart")
	if first, second := lineIndex(g, markKatanaExited), started[1]; killed < first || killed > second {
		t.Errorf("no line between the first exit (line %d) and the second sidecar (line %d) saying the leftover was killed (line %d):\n%s", first, second, killed, tail(lines, 40))
	}
	if findLine(g, "restart limit 1 reached") == "" {
		t.Errorf("no power-off at the restart limit:\n%s", tail(lines, 30))
	}
}

// TestBootEarlyInterrupt: the operator interrupts hostbuild run while the
// guest is still in its firmware, long before the init listens for the
// power button. The first press is lost; run presses again until the init
// hears one, and the guest powers off cleanly instead of being killed.
func TestBootEarlyInterrupt(t *testing.T) {
	e := needEnv(t)
	g, _ := boot(t, e, defaultInitrd(t, e), cmdline(t, bootcfg.Default()))
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	qemuStarted := func(context.Context) error {
		if !strings.Contains(g.Output(), "qemu started") {
			return errors.New("hostbuild run has not started qemu yet")
		}
		return nil
	}
	if err := g.WaitUntil(ctx, 20*time.Millisecond, qemuStarted); err != nil {
		t.Fatalf("%v:\n%s", err, g.Output())
	}
	if err := g.PowerDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitForLine(ctx, "guestinit: power button pressed"); err != nil {
		t.Fatal(err)
	}
	expectPowerOff(ctx, t, g, runExitClean)
}

// TestBootErrors: malformed measured input and a missing module each stop
// the boot with their reason on the console, before Katana starts, and
// power off cleanly (never a kernel panic).
func TestBootErrors(t *testing.T) {
	e := needEnv(t)
	good := cmdline(t, bootcfg.Default())
	tests := []struct {
		name    string
		initrd  func() string
		append  string
		memory  string   // MiB; "": defaultMemory
		wantErr []string // substrings of the boot error line
	}{
		{
			name:    "unbalanced quote",
			initrd:  func() string { return defaultInitrd(t, e) },
			append:  `console=ttyS0 panic=-1 katana.args="--http.addr 0.0.0.0`,
			wantErr: []string{"unbalanced double quote"},
		},
		{
			name:    "unknown katana key",
			initrd:  func() string { return defaultInitrd(t, e) },
			append:  `console=ttyS0 panic=-1 katana.bogus=1`,
			wantErr: []string{"unknown katana.* key", "katana.bogus"},
		},
		{
			name:    "missing module",
			initrd:  func() string { return missingModuleInitrd(t, e, false) },
			append:  good,
			wantErr: []string{"loading module " + missingModule},
		},
		{
			name:    "payload frame changed after packing",
			initrd:  func() string { return tamperedPayloadInitrd(t, e, false) },
			append:  good,
			wantErr: []string{"bin/katana.zst frame 3 (bytes", "does not match the content list"},
		},
		{
			name:    "inline payload changed after packing",
			initrd:  func() string { return tamperedPayloadInitrd(t, e, true) },
			append:  good,
			wantErr: []string{"integrity: bin/katana", "does not match the content list"},
		},
		{
			name:    "file appended after packing",
			initrd:  func() string { return appendedFileInitrd(t, e) },
			append:  good,
			wantErr: []string{"/etc/ld.so.preload is in the initrd but not in its content list"},
		},
		{
			// 128 MiB leaves ~46 MiB available when decoding starts, less
			// than the 36 MiB payload plus payload.Headroom; without the
			// check this guest ends in the kernel's OOM panic ("System is
			// deadlocked on memory"), with only PID 1 to kill.
			name:    "guest short of memory for the payload",
			initrd:  func() string { return defaultInitrd(t, e) },
			append:  good,
			memory:  "128",
			wantErr: []string{"MiB of memory available, and bin/katana needs 36 MiB decoded plus 32 MiB", "--memory"},
		},
		{
			name:    "listed module file missing",
			initrd:  func() string { return missingModuleInitrd(t, e, true) },
			append:  good,
			wantErr: []string{"loading module " + missingModule, "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := tt.memory
			if mem == "" {
				mem = defaultMemory
			}
			g, _ := bootMemory(t, e, tt.initrd(), tt.append, mem)
			ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
			defer cancel()
			line, err := g.WaitForLine(ctx, markBootError)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(line, w) {
					t.Errorf("boot error line %q does not contain %q", line, w)
				}
			}
			expectPowerOff(ctx, t, g, runExitBootError)
			if l := findLine(g, markKatanaStarted); l != "" {
				t.Errorf("katana was started despite the boot error: %q", l)
			}
		})
	}
}

// TestBootNewerQEMU boots the default initrd with the QEMU an SEV-SNP host
// runs (9.1 or newer; $SNPBOOT_QEMU_SNP, which make test fetches from
// bookworm-backports), plain under TCG, where every other boot test uses
// Debian 12's 7.2: Katana answers, and the power button stops it
// gracefully. (Its firmware, SeaBIOS, is the host's, as QEMU's data
// folder has it: bookworm-backports' qemu-system-data links to it.)
func TestBootNewerQEMU(t *testing.T) {
	e := needEnv(t)
	bin := os.Getenv("SNPBOOT_QEMU_SNP")
	if bin == "" {
		t.Skip("skipping: set SNPBOOT_QEMU_SNP to a qemu-system-x86_64 of version 9.1 or newer to boot the guest with it too (make test fetches QEMU 10 from Debian's bookworm-backports)")
	}
	out, err := exec.Command(bin, "--version").Output()
	m := regexp.MustCompile(`version (\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("SNPBOOT_QEMU_SNP=%s --version: %v %q", bin, err, out)
	}
	if major, _ := strconv.Atoi(m[1]); major < 9 || major == 9 && m[2] == "0" {
		t.Fatalf("SNPBOOT_QEMU_SNP=%s is QEMU %s.%s, not 9.1 or newer", bin, m[1], m[2])
	}
	c := bootcfg.Default()
	c.Args = []string{"--http.addr", "0.0.0.0", "--http.port", strconv.Itoa(katanaPort)}
	g, ports := bootWith(t, e, defaultInitrd(t, e), cmdline(t, c), defaultMemory, []string{"--qemu", bin}, katanaPort)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if err := g.WaitUntil(ctx, 200*time.Millisecond, chainIDProbe(ports[katanaPort])); err != nil {
		t.Fatalf("starknet_chainId through host port %d (QEMU %s): %v", ports[katanaPort], bin, err)
	}
	if err := g.PowerDown(); err != nil {
		t.Fatal(err)
	}
	_, m, err = g.WaitForRegexp(ctx, reKatanaExited)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "0" {
		t.Errorf("katana exit status %s after a graceful stop, want 0", m[1])
	}
	expectPowerOff(ctx, t, g, runExitClean)
}

// TestBootOVMF boots the default initrd through UEFI firmware, as an
// SEV-SNP launch does (the other plain boots use SeaBIOS): Debian's OVMF
// (an OvmfX64 build, no SEV) runs QEMU's direct kernel boot, starting the
// kernel's EFI stub and handing it the initrd over LoadFile2, and appends
// " initrd=initrd" to the command line, which the init must take as
// OVMF's and Katana must not see.
func TestBootOVMF(t *testing.T) {
	e := needEnv(t)
	const fw = "/usr/share/ovmf/OVMF.fd"
	if _, err := os.Stat(fw); err != nil {
		t.Skipf("skipping: %v (Debian's ovmf package has it: apt-get install ovmf, which make deps does)", err)
	}
	c := bootcfg.Default()
	c.Net = bootcfg.Net{None: true}
	c.Agent = bootcfg.Agent{Mode: bootcfg.AgentNone}
	c.Args = []string{"--exit-after", "1s", "--exit-code", "0"}
	line, err := bootcfg.Format(c, baseParams)
	if err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(t.TempDir(), "serial.log")
	args := []string{"-machine", "q35", "-accel", "tcg", "-m", defaultMemory, "-nodefaults", "-no-reboot",
		"-display", "none", "-monitor", "none", "-bios", fw, "-kernel", e.vmlinuz, "-initrd", defaultInitrd(t, e),
		"-append", line, "-chardev", "file,id=s0,path=" + serial, "-serial", "chardev:s0"}
	t.Logf("booting: qemu-system-x86_64 %s", strings.Join(args, " "))
	g := startProc(t, "qemu-system-x86_64", args, serial)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	// The kernel was started by the EFI stub, with OVMF's addition.
	l, err := g.WaitForLine(ctx, "Kernel command line:")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l, line) || !strings.Contains(l, bootcfg.OVMFInitrdParam) {
		t.Errorf("kernel command line %q: want %q with OVMF's %q", l, line, bootcfg.OVMFInitrdParam)
	}
	_, m, err := g.WaitForRegexp(ctx, reKatanaStarted)
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	if err := json.Unmarshal([]byte(m[2]), &argv); err != nil {
		t.Fatal(err)
	}
	if want := append([]string{"/bin/katana"}, c.Args...); !slices.Equal(argv, want) {
		t.Errorf("katana argv %q, want %q", argv, want)
	}
	if _, m, err = g.WaitForRegexp(ctx, reKatanaExited); err != nil {
		t.Fatal(err)
	} else if m[1] != "0" {
		t.Errorf("katana exited status=%s, want 0", m[1])
	}
	if _, err := g.WaitForLine(ctx, "reboot: Power down"); err != nil {
		t.Fatal(err)
	}
	if code, err := g.Wait(ctx); err != nil || code != 0 {
		t.Errorf("qemu: exit %d, %v; want 0 after the guest powered off", code, err)
	}
	if l := findLine(g, "guestinit: boot error"); l != "" {
		t.Errorf("boot error under OVMF: %s", l)
	}
	// QEMU's default CPU (qemu64) has none of SSSE3, AVX, AVX2: the init
	// leaves sha256_ssse3 out instead of offering it to a refusal.
	if l := findLine(g, "guestinit: module sha256_ssse3: the CPU has none of SSSE3, AVX, AVX2"); l == "" ||
		strings.Contains(findLine(g, "guestinit: module times: "), "sha256_ssse3=") {
		t.Errorf("under qemu64, want sha256_ssse3 skipped for the CPU and not loaded:\n%s", tail(g.Lines(), 40))
	}
	// Nor AES-NI: aesni_intel is left out the same way; and outside
	// SEV-SNP its dependencies are left out with sev_guest, which alone
	// needs them.
	if l := findLine(g, "guestinit: module aesni_intel: the CPU has no AES-NI"); l == "" ||
		strings.Contains(findLine(g, "guestinit: module times: "), "aesni_intel=") ||
		strings.Contains(findLine(g, "guestinit: module times: "), "crypto_simd=") ||
		findLine(g, "guestinit: module crypto_simd: only sev_guest needs it") == "" {
		t.Errorf("under qemu64, want aesni_intel skipped for the CPU and not loaded, crypto_simd left out with sev_guest:\n%s", tail(g.Lines(), 40))
	}
}

// TestBootNoNIC boots the default initrd in a VM without a network card:
// the init brings the network up in the background while its last modules
// load, and bounds the wait for eth0 after they are all in; no eth0 is a
// boot error that says what to check, and a clean power-off.
func TestBootNoNIC(t *testing.T) {
	e := needEnv(t)
	c := bootcfg.Default()
	c.Agent = bootcfg.Agent{Mode: bootcfg.AgentNone}
	line, err := bootcfg.Format(c, baseParams)
	if err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(t.TempDir(), "serial.log")
	args := []string{"-accel", "tcg", "-m", defaultMemory, "-nodefaults", "-no-reboot",
		"-display", "none", "-monitor", "none", "-kernel", e.vmlinuz, "-initrd", defaultInitrd(t, e),
		"-append", line, "-chardev", "file,id=s0,path=" + serial, "-serial", "chardev:s0"}
	t.Logf("booting: qemu-system-x86_64 %s", strings.Join(args, " "))
	g := startProc(t, "qemu-system-x86_64", args, serial)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	l, err := g.WaitForLine(ctx, markBootError)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"eth0 after 10s", "virtio-net-pci"} {
		if !strings.Contains(l, w) {
			t.Errorf("boot error %q lacks %q", l, w)
		}
	}
	// The 10 s count from the end of the module stage, not from the
	// network's start in the background.
	if m, e2 := lineTime(findLine(g, "guestinit: stage=modules ok")), lineTime(l); m < 0 || e2-m < 9.95 {
		t.Errorf("boot error %.3f s after the modules stage (line %q), want at least ~10 s", e2-m, findLine(g, "guestinit: stage=modules ok"))
	}
	if _, err := g.WaitForLine(ctx, "reboot: Power down"); err != nil {
		t.Fatal(err)
	}
	if code, err := g.Wait(ctx); err != nil || code != 0 {
		t.Errorf("qemu: exit %d, %v; want 0 after the guest powered off", code, err)
	}
	if l := findLine(g, markKatanaStarted); l != "" {
		t.Errorf("katana was started without a network: %q", l)
	}
}

// lineTime returns the seconds-since-boot stamp of a console line
// ("[    1.234567] ..."), or -1.
func lineTime(l string) float64 {
	_, rest, ok := strings.Cut(l, "[")
	if !ok {
		return -1
	}
	stamp, _, ok := strings.Cut(rest, "]")
	if !ok {
		return -1
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(stamp), 64)
	if err != nil {
		return -1
	}
	return f
}

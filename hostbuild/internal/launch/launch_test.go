package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/qemu"
)

func TestClassify(t *testing.T) {
	ok := qemu.Exit{}
	tests := []struct {
		name   string
		lines  []string
		exit   qemu.Exit
		want   Ending
		status int // -1: no status logged
		text   string
	}{
		{"graceful stop", ts("guestinit: katana started pid=90 argv=[]", "guestinit: katana exited status=0", "guestinit: powering off", "reboot: Power down"), ok, EndedClean, 0, "powered off cleanly"},
		{"katana failed", ts("guestinit: katana exited status=7", "guestinit: powering off"), ok, EndedKatana, 7, "status 7"},
		{"restarted then fine", ts("guestinit: katana exited status=1", "guestinit: katana exited status=0", "guestinit: powering off"), ok, EndedClean, 0, "status 0"},
		{"killed by signal", ts("guestinit: katana exited status=-1", "guestinit: powering off"), ok, EndedKatana, -1, "status -1"},
		{"ended by the graceful stop's signal", ts("guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: powering off"), ok, EndedClean, 143, "ended by the graceful stop's signal (status 143); the guest powered off cleanly"},
		{"SIGTERM outside a stop", ts("guestinit: katana exited status=143 signal=SIGTERM", "guestinit: powering off"), ok, EndedKatana, 143, "status 143"},
		{"SIGKILL after the grace period", ts("guestinit: katana pid=9 still running after 30s: SIGKILL", "guestinit: katana exited status=137 signal=SIGKILL\r", "guestinit: powering off"), ok, EndedKatana, 137, "status 137"},
		{"stop-signal end, then restarted and failed", ts("guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: katana exited status=2", "guestinit: powering off"), ok, EndedKatana, 2, "status 2"},
		{"boot error", ts("guestinit: boot error: cmdline: unbalanced double quote", "guestinit: powering off"), ok, EndedBootError, -1, "unbalanced double quote"},
		{"panic", ts("Kernel panic - not syncing: Attempted to kill init!"), ok, EndedPanic, -1, "panicked"},
		{"killed", ts("guestinit: katana started pid=1"), qemu.Exit{Code: -1, Signal: "killed", Killed: true}, EndedKilled, -1, "killed"},
		{"qemu error", nil, qemu.Exit{Code: 1, Stderr: "could not open kernel"}, EndedQEMU, -1, "could not open kernel"},
		// Killed by someone else (OOM killer, kill -9): the guest did not
		// power off, whatever QEMU's stderr; killed after the guest went
		// down, it is QEMU's failure.
		{"qemu killed from outside", ts("guestinit: katana started pid=1"), qemu.Exit{Code: -1, Signal: "killed", Stderr: "qemu-system-x86_64: warning: x\n"}, EndedNoPowerOff, -1,
			"QEMU ended without the guest powering off (qemu ended by a signal hostbuild did not send: killed) (qemu: qemu-system-x86_64: warning: x)"},
		{"qemu crashed", ts("guestinit: katana started pid=1"), qemu.Exit{Code: -1, Signal: "aborted", Stderr: "qemu-system-x86_64: ../target/i386/sev.c:123: assertion failed\n"}, EndedQEMU, -1,
			"sev.c:123: assertion failed"},
		{"qemu killed after the power-off", ts("guestinit: powering off"), qemu.Exit{Code: -1, Signal: "killed"}, EndedQEMU, -1, "qemu ended by signal killed"},
		{"no init lines", ts("reboot: Power down"), ok, EndedClean, -1, "powered off cleanly"},
		{"kernel restart only", ts("reboot: Restarting system"), ok, EndedClean, -1, "cleanly"},
		// QEMU exits 0 when it is itself sent SIGTERM, SIGINT or SIGHUP:
		// without the guest going down on the console, that is no clean end.
		{"qemu terminated by a signal", ts("guestinit: katana started pid=88 argv=[\"/bin/katana\"]"),
			qemu.Exit{Stderr: "qemu-system-x86_64: terminating on signal 15 from pid 1234 (bash)\n"}, EndedNoPowerOff, -1,
			"QEMU ended without the guest powering off (qemu: qemu-system-x86_64: terminating on signal 15 from pid 1234 (bash))"},
		{"qemu ended after katana failed", ts("guestinit: katana exited status=3"), ok, EndedNoPowerOff, 3, "QEMU ended without the guest powering off"},
		{"qemu ended, no stderr", nil, ok, EndedNoPowerOff, -1, "QEMU ended without the guest powering off"},
		{"katana.on_exit=reboot", ts("guestinit: katana exited status=0", "guestinit: shutdown: katana.on_exit=reboot after exit status=0", "guestinit: rebooting", "reboot: Restarting system"), ok, EndedClean, 0, "status 0; the guest rebooted cleanly (katana.on_exit=reboot; QEMU runs with -no-reboot, so the VM ended)"},
		{"katana.on_exit=reboot after a failure", ts("guestinit: katana exited status=3", "guestinit: rebooting"), ok, EndedKatana, 3, "status 3; the guest rebooted"},
		// Katana's output shares the console, unprefixed: markers inside
		// its lines, or at their start without the timestamp, are not the
		// init's or the kernel's.
		{"katana output quoting markers", append(ts(`guestinit: katana started pid=88 argv=["/bin/katana","--dev"]`),
			`katana: WARN rpc: rejected contract class "Kernel panic - not syncing" (user input)`,
			`Kernel panic - not syncing: a Katana line at the start of a line`,
			`katana: INFO config error in request: guestinit: boot error: whatever`,
			`guestinit: katana exited status=9`,
			`[ 12.5] katana: guestinit: katana exited status=9`,
			`[   60.1] guestinit: katana exited status=0`,
			`[   60.2] guestinit: powering off`,
			`[   60.3] reboot: Power down`), ok, EndedClean, 0, "status 0; the guest powered off cleanly"},
		{"katana output faking a power-off", append(ts("guestinit: katana started pid=88 argv=[]"),
			"guestinit: powering off", "katana: guestinit: powering off", "reboot: Power down", "katana: [ 1.0] reboot: Power down"),
			qemu.Exit{Stderr: "qemu-system-x86_64: terminating on signal 15 from pid 1 (systemd)\n"}, EndedNoPowerOff, -1, "terminating on signal 15"},
		{"katana output quoting a boot error", append(ts("guestinit: katana started pid=88 argv=[]"),
			"katana: guestinit: boot error: x", "[ 3.0] katana: guestinit: boot error: y", "[ 4.0] guestinit: powering off"), ok, EndedClean, -1, "powered off cleanly"},
		// Katana died mid-line (SIGKILL after the grace period): the init's
		// exit line is glued to its partial line and still counts.
		{"exit line glued to katana's partial line", append(ts(`guestinit: katana started pid=88 argv=[]`),
			`{"number": 12[   40.010000] guestinit: katana exited status=137 signal=SIGKILL`,
			`[   40.020000] guestinit: powering off`, `[   40.100000] reboot: Power down`), ok, EndedKatana, 137, "status 137"},
		{"kernel panic, then a restart", ts("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100", "reboot: Restarting system"), ok, EndedPanic, -1, "panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.lines, tt.exit)
			if got.Ending != tt.want {
				t.Errorf("Ending = %d, want %d (%s)", got.Ending, tt.want, got)
			}
			switch {
			case tt.status == -1 && tt.want != EndedKatana && got.KatanaStatus != nil:
				t.Errorf("KatanaStatus = %d, want none", *got.KatanaStatus)
			case tt.status != -1 || tt.want == EndedKatana:
				if got.KatanaStatus == nil || *got.KatanaStatus != tt.status {
					t.Errorf("KatanaStatus = %v, want %d", got.KatanaStatus, tt.status)
				}
			}
			if s := got.String(); !contains(s, tt.text) {
				t.Errorf("String() = %q, want it to contain %q", s, tt.text)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// ts gives each line a printk-style timestamp, as the init and the kernel
// print them ("[SSSSS.UUUUUU] ").
func ts(lines ...string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("[%5d.%06d] %s", i/10, i%10*100000, l)
	}
	return out
}

// The markers restate the init's stable console lines (guestinit's package
// doc) and its logger's line format (guestinit/internal/klog); this package
// must not import the guest's, so the test reads their source.
func TestMarkersMatchGuestinit(t *testing.T) {
	root := filepath.Join("..", "..", "..", "guestinit")
	doc, err := os.ReadFile(filepath.Join(root, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MarkKatanaStarted, MarkBootError, MarkPoweringOff, MarkRebooting,
		"guestinit: katana exited status=N[ signal=SIGNAME][ stop=graceful]", `"[SSSSS.UUUUUU] guestinit: MESSAGE"`} {
		if !strings.Contains(string(doc), m) {
			t.Errorf("guestinit's console markers no longer document %q", m)
		}
	}
	klog, err := os.ReadFile(filepath.Join(root, "internal", "klog", "klog.go"))
	if err != nil {
		t.Fatal(err)
	}
	const format = `"[%5d.%06d] %s"` // the stamp and Prefix; the message and "\n" follow
	for _, want := range []string{format, `const Prefix = "guestinit: "`} {
		if !strings.Contains(string(klog), want) {
			t.Fatalf("klog.go no longer has %s: update consoleStamp and this test", want)
		}
	}
	// Lines as klog prints them, early and after weeks of uptime.
	for _, secs := range []int{0, 7, 99999, 3_000_000} {
		line := func(msg string) string { return fmt.Sprintf("[%5d.%06d] %s%s", secs, 123456, "guestinit: ", msg) }
		o := Classify([]string{line("katana exited status=4"), line("powering off")}, qemu.Exit{})
		if o.Ending != EndedKatana || o.KatanaStatus == nil || *o.KatanaStatus != 4 {
			t.Errorf("klog lines at %d s: %s, want Katana's status 4 and a power-off", secs, o)
		}
		if m := ReadyLine.FindStringSubmatch(line("katana started pid=1 argv=[]")); m == nil || m[1] != "guestinit: katana started pid=1 argv=[]" {
			t.Errorf("ReadyLine on a klog line at %d s: %q", secs, m)
		}
	}
}

// The guest's console is the guest's text (the init's, the kernel's and
// Katana's lines): reading any of it never panics, the outcome does not
// depend on how often it is asked for, and a line that is Katana's
// (prefixed "katana: ", as the stand-in and Katana's logger write) never
// makes a guest that did not go down look as if it did.
func FuzzConsole(f *testing.F) {
	for _, l := range []string{
		"[    1.000000] guestinit: katana started pid=88 argv=[]",
		"[   40.010000] guestinit: katana exited status=137 signal=SIGKILL stop=graceful",
		`{"number": 12[   40.010000] guestinit: katana exited status=137 signal=SIGKILL`,
		"[    2.0] guestinit: powering off",
		"[    3.0] reboot: Power down",
		"[    0.5] Kernel panic - not syncing: Attempted to kill init!",
		"[    1.2] guestinit: boot error: cmdline: unbalanced quote",
		"[99999999999999999999.0] guestinit: katana exited status=99999999999999999999",
	} {
		f.Add(l, "katana: "+l)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		var c Console
		for _, l := range strings.Split(a, "\n") {
			c.Line(l)
		}
		first := c.Outcome(qemu.Exit{})
		if again := c.Outcome(qemu.Exit{}); again.Ending != first.Ending || again.WentDown != first.WentDown {
			t.Fatalf("outcome changed when asked again: %+v, then %+v", first, again)
		}
		var k Console
		for _, l := range strings.Split(b, "\n") {
			k.Line("katana: " + l)
		}
		if o := k.Outcome(qemu.Exit{}); o.WentDown || o.Ending == EndedPanic || o.Ending == EndedBootError {
			t.Fatalf("Katana's lines %q alone gave %+v", b, o)
		}
		// Pieces that continue a line the runner cut are the middle of
		// Katana's line, whatever they hold: never a line start either.
		var p Console
		p.Piece("katana: cut here", false)
		for _, l := range strings.Split(a, "\n") {
			p.Piece(l, true)
		}
		if o := p.Outcome(qemu.Exit{}); o.WentDown || o.Ending == EndedPanic || o.Ending == EndedBootError {
			t.Fatalf("continued pieces %q gave %+v", a, o)
		}
	})
}

// Every vCPU count the measurement and a manifest accept can be launched:
// the argv builder's bound is the same.
func TestVCPUBoundsAgree(t *testing.T) {
	if qemu.MaxVCPUs != measure.MaxVCPUs {
		t.Fatalf("qemu.MaxVCPUs %d, measure.MaxVCPUs %d: a manifest could allow a count run cannot launch", qemu.MaxVCPUs, measure.MaxVCPUs)
	}
	if _, err := qemu.Build(qemu.Options{Kernel: "k", Initrd: "i", SerialLog: "s", VCPUs: measure.MaxVCPUs}); err != nil {
		t.Errorf("qemu.Build with measure.MaxVCPUs vCPUs: %v", err)
	}
}

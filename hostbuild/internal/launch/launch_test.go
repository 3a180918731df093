package launch

import (
	"strings"
	"testing"

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
		{"graceful stop", []string{"[ 1.0] guestinit: katana started pid=90 argv=[]", "[ 9.0] guestinit: katana exited status=0", "guestinit: powering off", "reboot: Power down"}, ok, EndedClean, 0, "powered off cleanly"},
		{"katana failed", []string{"guestinit: katana exited status=7", "guestinit: powering off"}, ok, EndedKatana, 7, "status 7"},
		{"restarted then fine", []string{"guestinit: katana exited status=1", "guestinit: katana exited status=0", "guestinit: powering off"}, ok, EndedClean, 0, "status 0"},
		{"killed by signal", []string{"guestinit: katana exited status=-1", "guestinit: powering off"}, ok, EndedKatana, -1, "status -1"},
		{"ended by the graceful stop's signal", []string{"guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: powering off"}, ok, EndedClean, 143, "ended by the graceful stop's signal (status 143); the guest powered off cleanly"},
		{"SIGTERM outside a stop", []string{"guestinit: katana exited status=143 signal=SIGTERM", "guestinit: powering off"}, ok, EndedKatana, 143, "status 143"},
		{"SIGKILL after the grace period", []string{"guestinit: katana pid=9 still running after 30s: SIGKILL", "guestinit: katana exited status=137 signal=SIGKILL\r", "guestinit: powering off"}, ok, EndedKatana, 137, "status 137"},
		{"stop-signal end, then restarted and failed", []string{"guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: katana exited status=2", "guestinit: powering off"}, ok, EndedKatana, 2, "status 2"},
		{"boot error", []string{"[ 0.5] guestinit: boot error: cmdline: unbalanced double quote", "guestinit: powering off"}, ok, EndedBootError, -1, "unbalanced double quote"},
		{"panic", []string{"Kernel panic - not syncing: Attempted to kill init!"}, ok, EndedPanic, -1, "panicked"},
		{"killed", []string{"guestinit: katana started pid=1"}, qemu.Exit{Code: -1, Signal: "killed", Killed: true}, EndedKilled, -1, "killed"},
		{"qemu error", nil, qemu.Exit{Code: 1, Stderr: "could not open kernel"}, EndedQEMU, -1, "could not open kernel"},
		{"no init lines", []string{"reboot: Power down"}, ok, EndedClean, -1, "powered off cleanly"},
		{"kernel restart only", []string{"reboot: Restarting system"}, ok, EndedClean, -1, "cleanly"},
		// QEMU exits 0 when it is itself sent SIGTERM, SIGINT or SIGHUP:
		// without the guest going down on the console, that is no clean end.
		{"qemu terminated by a signal", []string{"[    6.278107] guestinit: katana started pid=88 argv=[\"/bin/katana\"]"},
			qemu.Exit{Stderr: "qemu-system-x86_64: terminating on signal 15 from pid 1234 (bash)\n"}, EndedNoPowerOff, -1,
			"QEMU ended without the guest powering off (qemu: qemu-system-x86_64: terminating on signal 15 from pid 1234 (bash))"},
		{"qemu ended after katana failed", []string{"guestinit: katana exited status=3"}, ok, EndedNoPowerOff, 3, "QEMU ended without the guest powering off"},
		{"qemu ended, no stderr", nil, ok, EndedNoPowerOff, -1, "QEMU ended without the guest powering off"},
		{"katana.on_exit=reboot", []string{"guestinit: katana exited status=0", "guestinit: shutdown: katana.on_exit=reboot after exit status=0", "guestinit: rebooting", "reboot: Restarting system"}, ok, EndedClean, 0, "status 0; the guest rebooted cleanly (katana.on_exit=reboot; QEMU runs with -no-reboot, so the VM ended)"},
		{"katana.on_exit=reboot after a failure", []string{"guestinit: katana exited status=3", "guestinit: rebooting"}, ok, EndedKatana, 3, "status 3; the guest rebooted"},
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

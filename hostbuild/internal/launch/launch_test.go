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
		{"restarted then fine", []string{"guestinit: katana exited status=1", "guestinit: katana exited status=0"}, ok, EndedClean, 0, "status 0"},
		{"killed by signal", []string{"guestinit: katana exited status=-1"}, ok, EndedKatana, -1, "status -1"},
		{"ended by the graceful stop's signal", []string{"guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: powering off"}, ok, EndedClean, 143, "ended by the graceful stop's signal (status 143); the guest powered off cleanly"},
		{"SIGTERM outside a stop", []string{"guestinit: katana exited status=143 signal=SIGTERM", "guestinit: powering off"}, ok, EndedKatana, 143, "status 143"},
		{"SIGKILL after the grace period", []string{"guestinit: katana pid=9 still running after 30s: SIGKILL", "guestinit: katana exited status=137 signal=SIGKILL\r"}, ok, EndedKatana, 137, "status 137"},
		{"stop-signal end, then restarted and failed", []string{"guestinit: katana exited status=143 signal=SIGTERM stop=graceful", "guestinit: katana exited status=2"}, ok, EndedKatana, 2, "status 2"},
		{"boot error", []string{"[ 0.5] guestinit: boot error: cmdline: unbalanced double quote", "guestinit: powering off"}, ok, EndedBootError, -1, "unbalanced double quote"},
		{"panic", []string{"Kernel panic - not syncing: Attempted to kill init!"}, ok, EndedPanic, -1, "panicked"},
		{"killed", []string{"guestinit: katana started pid=1"}, qemu.Exit{Code: -1, Signal: "killed", Killed: true}, EndedKilled, -1, "killed"},
		{"qemu error", nil, qemu.Exit{Code: 1, Stderr: "could not open kernel"}, EndedQEMU, -1, "could not open kernel"},
		{"no init lines", []string{"reboot: Power down"}, ok, EndedClean, -1, "powered off cleanly"},
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

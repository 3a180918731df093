package power

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// One test only: Shutdown takes a process-wide lock that is never released.
func TestShutdownSequence(t *testing.T) {
	var steps []string
	// Two children that ignore SIGTERM and die on SIGKILL.
	alive, killed := 2, false
	o := Options{
		Log: func(f string, a ...any) { steps = append(steps, "log "+fmt.Sprintf(f, a...)) },
		KillAll: func(sig unix.Signal) error {
			steps = append(steps, "kill "+unix.SignalName(sig))
			killed = sig == unix.SIGKILL
			return nil
		},
		Reap: func() bool {
			if killed {
				alive = 0
			}
			return alive > 0
		},
		Sync:    func() { steps = append(steps, "sync") },
		Unmount: func() error { steps = append(steps, "unmount"); return errors.New("busy") },
		Reboot: func(cmd int) error {
			steps = append(steps, fmt.Sprintf("reboot %#x", cmd))
			return unix.EPERM
		},
		Park:   func() { steps = append(steps, "park") },
		Settle: 200 * time.Millisecond,
	}
	start := time.Now()
	Shutdown(PowerOff, o)
	want := []string{
		"log powering off",
		"kill SIGTERM",
		"kill SIGKILL",
		"sync",
		"unmount",
		"log unmount: busy",
		"sync",
		fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
		"log poweroff failed: operation not permitted; parking (the VM must be stopped from outside)",
		"park",
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
		t.Errorf("took %v: want the 200ms settle time, then SIGKILL", d)
	}
	// Nobody left: no signals, no waiting.
	steps = nil
	alive = 0
	fill(&o)
	if o.Reap() {
		t.Error("Reap reports children with none alive")
	}
	// A second shutdown blocks forever.
	done := make(chan struct{})
	go func() { Shutdown(Reboot, o); close(done) }()
	select {
	case <-done:
		t.Error("second Shutdown returned")
	case <-time.After(100 * time.Millisecond):
	}
}

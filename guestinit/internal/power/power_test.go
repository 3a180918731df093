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
	alive := 2
	o := Options{
		Log: func(f string, a ...any) { steps = append(steps, "log "+fmt.Sprintf(f, a...)) },
		KillAll: func(sig unix.Signal) error {
			if sig == 0 {
				if alive == 0 {
					return unix.ESRCH
				}
				alive--
				return nil
			}
			steps = append(steps, "kill "+unix.SignalName(sig))
			return nil
		},
		Reap:    func() {},
		Sync:    func() { steps = append(steps, "sync") },
		Unmount: func() error { steps = append(steps, "unmount"); return errors.New("busy") },
		Reboot: func(cmd int) error {
			steps = append(steps, fmt.Sprintf("reboot %#x", cmd))
			return unix.EPERM
		},
		Park:   func() { steps = append(steps, "park") },
		Settle: time.Second,
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
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v: should stop waiting once nobody is left", d)
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

package qemu

import (
	"context"
	"errors"
	"testing"
	"time"
)

// QEMU exited by itself, but a process it (or a --qemu wrapper) left behind
// holds its stderr: the runner must still see the end, and report QEMU's own
// status, in bounded time. Without a bound on the wait for stderr, Done,
// Wait, Kill and Stop block until that process ends (here 20 s; a daemon
// never), and hostbuild run with them, even after a second Ctrl-C.
func TestRunnerExitWithHelperHoldingStderr(t *testing.T) {
	v, _ := startBooted(t, "fake.daemon=20 fake.exit=0", false)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	exit, err := v.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v: QEMU exited, but the runner waits on for the stderr its helper holds", err)
	}
	if !exit.Clean() {
		t.Errorf("exit = %+v, want QEMU's own status 0 (clean)", exit)
	}
}

// A start asked for on a context already canceled names the cause (the
// host CLI's interrupt, which says which signal), not "context canceled",
// and starts nothing.
func TestStartCanceledNamesCause(t *testing.T) {
	o := fakeOptions(t, "", false)
	cause := errors.New("interrupted (SIGTERM)")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	v, err := Start(ctx, o, RunOptions{})
	if v != nil || !errors.Is(err, cause) || err.Error() != "starting qemu: interrupted (SIGTERM)" {
		t.Fatalf("Start on a canceled context: %v, %v; want the cause", v, err)
	}
}

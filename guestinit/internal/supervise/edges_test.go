package supervise

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// MarkStopSignal is for a payload ended by the stop's signal before any
// SIGKILL: one whose SIGTERM death is seen only after the grace period ran
// out and SIGKILL was sent (it unblocked SIGTERM just then) is not marked
// as a clean graceful stop.
func TestNoStopMarkAfterSIGKILL(t *testing.T) {
	h := newHarness(t)
	r := &runner{o: h.opts("plain")}
	r.grace, r.kill, r.restart = stopped(), stopped(), stopped()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	h.waitReport("ready")
	r.stopping, r.stopSig, r.killed = true, unix.SIGTERM, true
	r.reason = "graceful stop (test)"
	unix.Kill(r.pid, unix.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := r.reap(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the payload did not exit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !h.logged("katana exited status=143 signal=SIGTERM") {
		t.Fatalf("logs %q lack the exit line", h.logs)
	}
	if h.logged(MarkStopSignal) {
		t.Errorf("logs %q mark a payload already sent SIGKILL as ended by the graceful stop", h.logs)
	}
}

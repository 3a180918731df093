package supervise

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Katana's exit is seen while orphans keep exiting to the init as fast as
// a shell can fork them: each SIGCHLD's reap loop ends when no zombie is
// left, and a fork costs far more than a wait4, so the loop never chases
// the storm for good.
func TestExitSeenDuringOrphanStorm(t *testing.T) {
	if os.Getpid() != 1 {
		t.Skipf("not PID 1 of a PID namespace (pid %d): the storm's orphans would go to another reaper; run the tests as root", os.Getpid())
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("no /bin/sh to fork the storm (%v); install dash", err)
	}
	h := newHarness(t)
	o := h.opts("storm")
	// The storm must not outlive the test whatever failed (Run not
	// returning, a report missing): it would fork on, and leave zombies
	// to this PID 1, under every later test of the package.
	t.Cleanup(func() {
		for _, l := range h.report() {
			if v, ok := strings.CutPrefix(l, "grandchild="); ok {
				if p, _ := strconv.Atoi(v); p > 1 {
					unix.Kill(-p, unix.SIGKILL) // its session's process group
				}
			}
		}
		// Reap what the kill left: the shell and its last orphans.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
			if err != nil { // ECHILD: none left
				break
			}
			if pid == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	out := run(t, o)
	last := lastPid(t)
	pids := h.grandchildren(1)
	stormer := pids[0]
	state := procState(stormer)
	if !strings.Contains(out.Reason, "status=3") {
		t.Fatalf("outcome %+v, want katana's exit status=3", out)
	}
	if state == "" || state == "Z" {
		t.Errorf("the storm had ended (state %q) when the exit was seen", state)
	}
	// The pids the namespace gave out from the shell's start to Run's
	// return: two forks per orphan.
	forks := last - stormer
	t.Logf("%d forks during the storm before Run returned", forks)
	if forks < 100 {
		t.Errorf("only %d forks: no storm to test against", forks)
	}
}

func lastPid(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// procState is the state letter of pid in /proc/pid/stat, "" if it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Started with SIGHUP ignored (nohup, trap "" HUP, a daemon's start-up),
// run must keep ignoring it: the SIGHUP of a closed terminal (bash sends it
// to every job on exit) must not stop a guest that was launched to survive
// it. Go installs a handler over an inherited "ignore" when Notify asks for
// the signal, so catching SIGHUP unconditionally undoes nohup.
func TestRunKeepsInheritedIgnoredSIGHUP(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRunWrapped(t, f, []string{"/bin/sh", "-c", `trap "" HUP; exec "$@"`, "sh"},
		[]string{"--stop-timeout", "60s"})
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
		t.Fatalf("run (SIGHUP ignored, as under nohup) ended on SIGHUP:\n%s", r.stderr.String())
	case <-time.After(time.Second):
	}
	if b, _ := os.ReadFile(r.serial + ".events"); len(b) != 0 {
		t.Fatalf("run (SIGHUP ignored, as under nohup) acted on SIGHUP: QEMU got %q\n%s", b, r.stderr.String())
	}
	// SIGTERM still stops the guest gracefully.
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	if events != "system_powerdown\n" || code != exitOK {
		t.Errorf("exit %d, events %q; want 0 after only the power button\n%s", code, events, r.stderr.String())
	}
}

// Started with SIGINT ignored (a background job of a non-interactive
// shell: "hostbuild run ... &" in a script, as .ci/demo.sh does), run still
// takes SIGINT as the request to stop the guest gracefully: the script's
// "kill -INT" is how it asks, and a terminal's Ctrl-C never reaches such a
// job.
func TestRunCatchesInheritedIgnoredSIGINT(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRunWrapped(t, f, []string{"/bin/sh", "-c", `trap "" INT; exec "$@"`, "sh"},
		[]string{"--stop-timeout", "60s"})
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	if events != "system_powerdown\n" || code != exitOK {
		t.Errorf("exit %d, events %q; want 0 after only the power button\n%s", code, events, r.stderr.String())
	}
}

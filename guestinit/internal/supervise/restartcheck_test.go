package supervise

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/power"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// SIGTERM or SIGINT (Ctrl-Alt-Del) reaching PID 1 while a restart's check
// of the payload runs is a stop requested before that start, as Run treats
// one pending at the boot: no Katana is started only to be stopped.
func TestSignalDuringRestartCheck(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			h := newHarness(t)
			o := h.opts("exit", "SUPERVISE_CODE=1")
			o.OnExit, o.RestartLimit = bootcfg.OnExitRestart, 5
			o.Verify = func() error {
				h.sigs <- sig // delivered while the check runs
				return nil
			}
			out := run(t, o)
			if out.Err != nil || out.Action != power.PowerOff || !strings.Contains(out.Reason, "katana not running") {
				t.Errorf("outcome %+v, want power-off with katana not running", out)
			}
			if n := strings.Count(strings.Join(h.report(), "\n"), "argv="); n != 1 {
				t.Errorf("payload ran %d times, logs %q; want once (no start after the stop signal)", n, h.logs)
			}
		})
	}
}

// The line for a SIGTERM taken before a restart does not say Katana had
// not started: its start and exit lines are just above it.
func TestSignalDuringRestartCheckLogLine(t *testing.T) {
	h := newHarness(t)
	o := h.opts("exit", "SUPERVISE_CODE=1")
	o.OnExit, o.RestartLimit = bootcfg.OnExitRestart, 5
	o.Verify = func() error { h.sigs <- unix.SIGTERM; return nil }
	run(t, o)
	if h.logged("before katana started") || !h.logged("received SIGTERM before katana's restart: graceful stop") {
		t.Errorf("logs %q: want the SIGTERM named as coming before the restart", h.logs)
	}
}

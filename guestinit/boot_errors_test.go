package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/power"
	"github.com/katana-tee/snpboot/guestinit/internal/supervise"
)

// Exactly three of one kind: the third line says no more will come
// (TestLogAbsorbed sends five, which hid the third being dropped).
func TestLogAbsorbedThird(t *testing.T) {
	ch := make(chan os.Signal, 3)
	for range 3 {
		ch <- unix.SIGQUIT
	}
	close(ch)
	var lines []string
	logAbsorbed(ch, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	if len(lines) != 3 || !strings.Contains(lines[2], "no more lines") {
		t.Errorf("lines %q: want three, the third saying no more", lines)
	}
}

// A boot error ends the agent's reports at once, not after the wait for
// Katana's graceful stop (up to katana.stop_timeout and more).
func TestFatalEndsReadinessBeforeWaitingForKatana(t *testing.T) {
	in, log, halted := testInit(t)
	in.ready.Checked()
	stuck := make(chan struct{})
	started := make(chan struct{})
	go in.superviseRun(30*time.Second, func() supervise.Outcome {
		close(started)
		<-stuck
		return supervise.Outcome{}
	})
	<-started
	go in.fatal(errors.New("test"))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "stopping katana before the power-off"); {
		if time.Now().After(deadline) {
			t.Fatalf("fatal never began its wait for the supervisor:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if in.ready.Err() == nil {
		t.Error("the agent still gives reports while the boot error waits for katana's stop")
	}
	close(stuck)
	<-halted
}

// A panic in one of the init's goroutines is a boot error (logged, then
// the power-off), never the end of PID 1 nor a silent loss.
func TestGoSafePanicIsBootError(t *testing.T) {
	in, _, halted := testInit(t)
	in.goSafe("tester", func() { panic("boom") })
	select {
	case at := <-halted:
		mode, log, _ := strings.Cut(at, "\n")
		if mode != "poweroff" || !strings.Contains(log, "guestinit: boot error: panic in tester: boom") {
			t.Errorf("power-off %s with log:\n%s", mode, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a panic in a goSafe goroutine did not power off")
	}
}

// end logs its reason (the stable "shutdown: ..." marker) before the
// power-off or reboot.
func TestEndLogsReason(t *testing.T) {
	in, _, halted := testInit(t)
	in.end(power.Reboot, "shutdown: %s", "katana.on_exit=reboot after exit status=0")
	mode, log, _ := strings.Cut(<-halted, "\n")
	if mode != "reboot" || !strings.Contains(log, "guestinit: shutdown: katana.on_exit=reboot after exit status=0") {
		t.Errorf("%s with log %q; want reboot after the shutdown line", mode, log)
	}
}

// aesni_intel is refused for a CPU without the "aes" flag itself: VAES
// (a flag whose name only contains it) with PCLMULQDQ is not AES-NI.
func TestCPURefusedVAESWithoutAES(t *testing.T) {
	got := cpuRefused(cpuFlags([]byte("flags\t\t: fpu pni pclmulqdq ssse3 vaes avx\n")))
	if err, ok := got["aesni_intel"]; !ok || !strings.Contains(err.Error(), "no AES-NI") {
		t.Errorf("cpuRefused = %v; want aesni_intel refused for no AES-NI", got)
	}
}

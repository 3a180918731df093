package launch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/qemu"
)

// The runner cuts a line longer than qemu.MaxLineBytes into pieces. A piece
// after a cut is the middle of a Katana line, not a line start: it must not
// be read as an init or kernel marker, and a real marker the cut splits must
// not be lost.
func TestOutcomeAcrossRunnerCuts(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-qemu")
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -chardev ]; then case \"$2\" in file,*) log=\"${2#*path=}\";; esac; fi; shift; done\ncat \"$FAKE_CONSOLE\" >> \"$log\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	const started = "[    1.000000] guestinit: katana started pid=90 argv=[\"/bin/katana\"]\n"
	const down = "[    3.100000] guestinit: powering off\n[    3.200000] reboot: Power down\n"
	katana := "2025-01-01T00:00:00Z INFO katana_rpc: rejected body=\""
	pad := func(prefix string, n int) string { return prefix + strings.Repeat("A", n-len(prefix)) }
	tests := []struct {
		name, console string
		want          Ending
	}{
		{"forged panic after a cut", started + pad(katana, qemu.MaxLineBytes) + "[    9.000000] Kernel panic - not syncing: forged\"\n" +
			"[    3.000000] guestinit: katana exited status=0\n" + down, EndedClean},
		{"forged boot error after a cut", started + pad(katana, qemu.MaxLineBytes) + "[    9.000000] guestinit: boot error: forged\"\n" +
			"[    3.000000] guestinit: katana exited status=0\n" + down, EndedClean},
		{"glued exit marker split by a cut", started + pad(katana, qemu.MaxLineBytes-20) +
			"[    3.000000] guestinit: katana exited status=1\n" + down, EndedKatana},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "console")
			if err := os.WriteFile(in, []byte(tt.console), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("FAKE_CONSOLE", in)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var c Console
			vm, err := qemu.Start(ctx, qemu.Options{Binary: fake, Kernel: "k", NoNetwork: true, SerialLog: filepath.Join(t.TempDir(), "serial.log")},
				qemu.RunOptions{ConsolePiece: c.Piece, Poll: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			exit, err := vm.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Outcome(exit); got.Ending != tt.want {
				t.Errorf("outcome %q (ending %d), want ending %d", got, got.Ending, tt.want)
			}
		})
	}
}

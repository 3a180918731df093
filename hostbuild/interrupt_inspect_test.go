package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inspect and diff never looked at the context: the first Ctrl-C, and
// the one SIGTERM that timeout or systemd sends, were swallowed while
// they read a large initrd (seconds for a few hundred MB of payload),
// which they then listed in full with their usual exit status. They must
// stop at the first, and say so.
func TestInterruptStopsInspectAndDiff(t *testing.T) {
	img := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<30); err != nil { // sparse: long to read
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"inspect", img}, exitFail},
		{[]string{"diff", img, img}, 2},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(200*time.Millisecond, func() { cancel(Interrupted{syscall.SIGINT}) })
		var stdout, stderr bytes.Buffer
		start := time.Now()
		code := run(ctx, tc.args, &stdout, &stderr)
		took := time.Since(start)
		cancel(nil)
		if code != tc.code || !strings.Contains(stderr.String(), "interrupted (SIGINT)") || took > 5*time.Second {
			t.Errorf("%s interrupted after 200 ms: exit %d after %v, want %d at once, saying it was interrupted:\n%s", tc.args[0], code, took.Round(time.Millisecond), tc.code, stderr.String())
		}
	}
}

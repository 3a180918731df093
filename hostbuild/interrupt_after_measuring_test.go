package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
)

// An interruption (Ctrl-C, the SIGTERM of timeout or systemd) that comes
// once the measurements are computed, while the initrd is read again to
// check it against --payload and --init (for a large payload, most of
// manifest's run time), was swallowed: nothing after manifest.Generate
// looked at the context, so the command wrote its output and exited 0.
// It must stop, say so, and leave the output as it was.
func TestInterruptAfterMeasuringWritesNothing(t *testing.T) {
	abs, ovmf, build, previous := goodBuild(t)
	manifestArgs := []string{"manifest", "--ovmf", ovmf, "--kernel", abs("vmlinuz"), "--initrd", abs("out/" + buildInitrd),
		"--payload", abs("katana"), "--init", abs("guestinit"), "--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4"}

	interrupted := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		manifestGenerated = func() { cancel(Interrupted{syscall.SIGINT}) }
		defer func() { manifestGenerated = func() {} }()
		var stdout, stderr bytes.Buffer
		code := run(ctx, args, &stdout, &stderr)
		return code, stderr.String()
	}

	t.Run("manifest", func(t *testing.T) {
		out := abs("m.json")
		code, errOut := interrupted(append(manifestArgs, "-o", out)...)
		if code != exitFail || !strings.Contains(errOut, "interrupted (SIGINT)") {
			t.Errorf("manifest interrupted after measuring: exit %d, want %d saying it was interrupted:\n%s", code, exitFail, errOut)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("manifest interrupted after measuring wrote %s", out)
		}
	})
	t.Run("measure --manifest-out", func(t *testing.T) {
		out := abs("m2.json")
		code, errOut := interrupted("measure", "--ovmf", ovmf, "--kernel", abs("vmlinuz"), "--initrd", abs("out/"+buildInitrd),
			"--payload", abs("katana"), "--init", abs("guestinit"), "--append", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4",
			"--manifest-out", out)
		if code != exitFail || !strings.Contains(errOut, "interrupted (SIGINT)") {
			t.Errorf("measure --manifest-out interrupted after measuring: exit %d, want %d saying it was interrupted:\n%s", code, exitFail, errOut)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("measure interrupted after measuring wrote %s", out)
		}
	})
	t.Run("build", func(t *testing.T) {
		code, errOut := interrupted(build("--args", "--other")...)
		if code != exitFail || !strings.Contains(errOut, "interrupted (SIGINT)") {
			t.Errorf("build interrupted after measuring: exit %d, want %d saying it was interrupted:\n%s", code, exitFail, errOut)
		}
		for n, b := range previous {
			if after, err := os.ReadFile(abs("out/" + n)); err != nil || !bytes.Equal(after, b) {
				t.Errorf("build interrupted after measuring replaced %s (err %v)", n, err)
			}
		}
	})
	t.Run("reproduce", func(t *testing.T) {
		code, errOut := interrupted("reproduce", "--manifest", abs("out/"+buildManifest), "--ovmf", ovmf, "--kernel", abs("vmlinuz"),
			"--initrd", abs("out/"+buildInitrd), "--payload", abs("katana"), "--init", abs("guestinit"))
		if code != exitFail || !strings.Contains(errOut, "interrupted (SIGINT)") {
			t.Errorf("reproduce interrupted after measuring: exit %d, want %d saying it was interrupted:\n%s", code, exitFail, errOut)
		}
	})
}

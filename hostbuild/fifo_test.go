package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO given as an input file is refused at once, with a message naming
// it: the commands once waited in open(2) for a writer for ever ('hostbuild
// inspect FIFO' even ignored the first SIGTERM). Each runs as its own
// process, killed if it has not exited within the deadline.
func TestFIFOInputsRefused(t *testing.T) {
	dir, ovmf := stageBuild(t)
	kernel := filepath.Join(dir, "vmlinuz")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, "manifest.json")
	if _, stderr, code := runHB(t, "manifest", "--ovmf", ovmf, "--kernel", kernel, "--initrd", kernel, "--cmdline", "console=ttyS0",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", mpath); code != exitOK {
		t.Fatalf("hostbuild manifest: exit %d\n%s", code, stderr)
	}
	ev := filepath.Join(dir, "ev")
	if err := os.Mkdir(ev, 0o755); err != nil {
		t.Fatal(err)
	}
	response := filepath.Join(ev, "response.json")
	if err := syscall.Mkfifo(response, 0o600); err != nil {
		t.Fatal(err)
	}
	const notRegular = " is not a regular file (p---------, a FIFO)"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"inspect FIFO", []string{"inspect", fifo}, exitFail, "hostbuild inspect: initrd " + fifo + notRegular},
		{"diff FIFO", []string{"diff", fifo, kernel}, 2, "initrd " + fifo + notRegular},
		{"ovmf FIFO", []string{"ovmf", fifo}, exitFail, "hostbuild ovmf: OVMF image " + fifo + notRegular},
		{"report FIFO", []string{"report", fifo}, exitFail, "hostbuild report: cannot read the report " + fifo + ": not a regular file (p---------, a FIFO); give a file holding a raw report"},
		{"verify, response.json a FIFO", []string{"verify", "--min-tcb", "none", ev, "--manifest", mpath}, exitFail, "hostbuild verify: evidence file response.json " + response + notRegular},
		{"verify --manifest FIFO", []string{"verify", "--min-tcb", "none", ev, "--manifest", fifo}, exitFail, "hostbuild verify: manifest " + fifo + notRegular},
		{"measure --kernel FIFO", []string{"measure", "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", fifo}, exitFail, "hostbuild measure: kernel " + fifo + notRegular},
		{"measure --ovmf FIFO", []string{"measure", "--ovmf", fifo, "--vcpus", "1", "--vcpu-type", "EPYC-v4"}, exitFail, "hostbuild measure: OVMF image " + fifo + notRegular},
		{"build --init FIFO", []string{"build", "-q", "--init", fifo, "--payload", "katana", "--kernel", kernel, "--ovmf", ovmf, "-o", "out"}, exitFail, "hostbuild build: --init: init " + fifo + notRegular},
		{"pack --payload FIFO", []string{"pack", "-q", "--init", "guestinit", "--payload", fifo, "-o", "x.img"}, exitFail, "hostbuild pack: payload " + fifo + notRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOSTBUILD_TEST_MAIN=1")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after 20s (killed); stderr %q", errb.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("run: %v", err)
			}
			if ee.ExitCode() != tc.code || out.Len() != 0 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", ee.ExitCode(), out.String(), errb.String(), tc.code, tc.want)
			}
		})
	}
}

package early

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const blockingEnv = "EARLY_TEST_BLOCKING_CONSOLE"

// Helper of TestGapReopenConsoleBlocking: reports whether descriptors 0-2
// are blocking right after ReopenConsole, without calling f.Fd() again
// (os.File.Fd clears O_NONBLOCK of a pollable file, which would hide it).
func TestGapReopenConsoleBlockingHelper(t *testing.T) {
	path, ok := os.LookupEnv(blockingEnv)
	if !ok {
		t.Skip("helper process of TestGapReopenConsoleBlocking")
	}
	report := os.NewFile(3, "report")
	defer report.Close()
	f, err := ReopenConsole(path)
	if err != nil {
		fmt.Fprintf(report, "ReopenConsole: %v\n", err)
		return
	}
	for fd := 0; fd <= 2; fd++ {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			fmt.Fprintf(report, "fd %d: %v\n", fd, err)
			continue
		}
		what := "blocking"
		if fl&unix.O_NONBLOCK != 0 {
			what = "non-blocking"
		}
		fmt.Fprintf(report, "fd %d: %s\n", fd, what)
	}
	runtime.KeepAlive(f)
}

// ReopenConsole leaves descriptors 0, 1 and 2 blocking: on a non-blocking
// tty the kernel's write lock is a try-lock, and Katana's and the init's
// writes to the console fail with EAGAIN whenever another writer holds it.
func TestGapReopenConsoleBlocking(t *testing.T) {
	consoles := map[string]func(t *testing.T) string{
		"temporary file": func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "console")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"pseudo-terminal": func(t *testing.T) string {
			ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				t.Skipf("no pseudo-terminal (%v)", err)
			}
			t.Cleanup(func() { ptmx.Close() })
			if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
				t.Fatal(err)
			}
			n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/dev/pts/%d", n)
		},
	}
	for name, open := range consoles {
		t.Run(name, func(t *testing.T) {
			path := open(t)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestGapReopenConsoleBlockingHelper$")
			cmd.Env = append(os.Environ(), blockingEnv+"="+path)
			cmd.ExtraFiles = []*os.File{pw}
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			var report bytes.Buffer
			report.ReadFrom(pr)
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper: %v\n%s", err, stderr.String())
			}
			want := "fd 0: blocking\nfd 1: blocking\nfd 2: blocking\n"
			if diff := cmp.Diff(want, report.String()); diff != "" {
				t.Errorf("descriptors after ReopenConsole (-want +got):\n%s", diff)
			}
		})
	}
}

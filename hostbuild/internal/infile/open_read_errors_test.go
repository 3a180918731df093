package infile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list /proc/self/fd: %v", err)
	}
	return len(es)
}

// Open closes what it refuses, and ReadFile what it read: hostbuild opens
// many inputs, and a leak per refused or read file adds up (fails for:
// infile.go:83 `f.Close()` removed on the not-regular path, infile.go:117
// `defer f.Close()` removed).
func TestNoDescriptorLeak(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Open of a FIFO":   func() error { _, err := Open("--in", fifo); return err },
		"Open of a folder": func() error { _, err := Open("--in", dir); return err },
		"ReadFile":         func() error { _, err := ReadFile("--in", regular, 64); return err },
	} {
		before := openFDs(t)
		for range 20 {
			call()
		}
		if after := openFDs(t); after > before+2 {
			t.Errorf("%s 20 times: %d descriptors open, %d before", name, after, before)
		}
	}
}

// A negative bound is the caller's error, not a file too large (fails for:
// infile.go:110 `max < 0` -> `max < -1`).
func TestNegativeBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile("--in", p, -1)
	var tl *TooLargeError
	if err == nil || errors.As(err, &tl) || !strings.Contains(err.Error(), "negative bound") {
		t.Errorf("ReadFile with bound -1: %v, want the negative-bound error", err)
	}
}

// A read that fails after the open names the input and wraps the cause
// (fails for: infile.go:120 `%w` -> `%v`). /proc/self/mem is a regular file
// whose read at offset 0 fails with EIO.
func TestReadErrorWrapped(t *testing.T) {
	_, err := ReadFile("--in", "/proc/self/mem", 64)
	if err == nil || !strings.HasPrefix(err.Error(), "reading --in: ") {
		t.Skipf("reading /proc/self/mem: %v; want a read error to test with", err)
	}
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("ReadFile: %v; want it to wrap EIO", err)
	}
}

// Opening a terminal given as an input does not make it the controlling
// terminal of a process that has none (O_NOCTTY; fails for: infile.go:73
// without syscall.O_NOCTTY). A child in a session of its own opens a pty's
// slave with Open, then checks that /dev/tty is still no terminal.
func TestOpenNoCTTY(t *testing.T) {
	if p := os.Getenv("INFILE_NOCTTY_PTS"); p != "" {
		var nr *NotRegularError
		if _, err := Open("--in", p); !errors.As(err, &nr) {
			fmt.Printf("Open(%s) = %v, want a *NotRegularError\n", p, err)
			os.Exit(2)
		}
		if f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
			f.Close()
			fmt.Println("Open made the pty the controlling terminal")
			os.Exit(3)
		}
		os.Exit(0)
	}
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("ptsname: %v", e)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenNoCTTY$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("INFILE_NOCTTY_PTS=/dev/pts/%d", n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("child: %v\n%s", err, out)
	}
}

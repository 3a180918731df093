package infile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFile: a regular file (or a symlink to one) is read; a FIFO, a
// folder, a device, a symlink to a device, a file over the bound and a
// missing file are refused, each with a message naming the input, and a
// FIFO at once (a plain open waits for a writer for ever).
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("regular", link); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name, path string
		max        int64
		want       string // "" for success; else a substring of the error
		notRegular bool
		notExist   bool
		tooLarge   bool
	}{
		{"regular", regular, 10, "", false, false, false},
		{"over a bound of 0", regular, 0, "--in " + regular + " is larger than 0 bytes", false, false, true},
		{"symlink to a regular file", link, 64, "", false, false, false},
		{"FIFO", fifo, 64, "--in " + fifo + " is not a regular file (p---------, a FIFO)", true, false, false},
		{"folder", dir, 64, "--in " + dir + " is not a regular file (d---------, a folder)", true, false, false},
		{"device", os.DevNull, 64, "--in " + os.DevNull + " is not a regular file (Dc---------, a character device)", true, false, false},
		{"symlink to /dev/zero", zero, 64, "--in " + zero + " is not a regular file (Dc", true, false, false},
		{"over the bound", regular, 9, "--in " + regular + " is larger than 9 bytes", false, false, true},
		{"missing", missing, 64, "opening --in: open " + missing + ": no such file or directory", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := ReadFile("--in", tc.path, tc.max)
				done <- result{b, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadFile(%s) still blocked after 10s", tc.path)
			}
			if tc.want == "" {
				if r.err != nil || string(r.b) != "0123456789" {
					t.Fatalf("ReadFile = %q, %v; want the file's bytes", r.b, r.err)
				}
				return
			}
			if r.err == nil {
				t.Fatalf("ReadFile = %q, nil; want an error with %q", r.b, tc.want)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("ReadFile: %v\nwant it to contain %q", r.err, tc.want)
			}
			var nr *NotRegularError
			if errors.As(r.err, &nr) != tc.notRegular {
				t.Errorf("ReadFile: %v: errors.As(*NotRegularError) = %v, want %v", r.err, !tc.notRegular, tc.notRegular)
			}
			if errors.Is(r.err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("ReadFile: %v: errors.Is(fs.ErrNotExist) = %v, want %v", r.err, !tc.notExist, tc.notExist)
			}
			var tl *TooLargeError
			if errors.As(r.err, &tl) != tc.tooLarge {
				t.Errorf("ReadFile: %v: errors.As(*TooLargeError) = %v, want %v", r.err, !tc.tooLarge, tc.tooLarge)
			}
		})
	}
}

// TestIsNullDevice: /dev/null, by its name or a symlink's, is the null
// device; /dev/zero and a FIFO are not.
func TestIsNullDevice(t *testing.T) {
	dir := t.TempDir()
	null := filepath.Join(dir, "null")
	zero := filepath.Join(dir, "zero")
	fifo := filepath.Join(dir, "fifo")
	if err := os.Symlink(os.DevNull, null); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{os.DevNull: true, null: true, zero: false, fifo: false, dir: false} {
		_, err := Open("--in", p)
		var nr *NotRegularError
		if !errors.As(err, &nr) {
			t.Fatalf("Open(%s) = %v, want a *NotRegularError", p, err)
		}
		if got := nr.IsNullDevice(); got != want {
			t.Errorf("Open(%s): IsNullDevice() = %v, want %v", p, got, want)
		}
	}
}

// TestOpenBlocking: the regular file Open returns is in blocking mode
// again, as QEMU inherits it.
func TestOpenBlocking(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open("the file", p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
	if errno != 0 || fl&syscall.O_NONBLOCK != 0 {
		t.Errorf("flags %#x (%v), want O_NONBLOCK clear", fl, errno)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1000: "1000 bytes", 1 << 10: "1 KiB", 64 << 10: "64 KiB", 4 << 20: "4 MiB", 1 << 30: "1 GiB", 1<<20 + 1: "1048577 bytes", 1536: "1536 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

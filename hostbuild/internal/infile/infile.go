// Package infile opens the files a user gives hostbuild (kernels, initrds,
// OVMF images, manifests, reports, evidence, certificates) so that no
// input can hang or exhaust it: anything but a regular file is refused at
// once (a FIFO would otherwise block open(2) until a writer appears, for
// ever), and ReadFile reads at most a stated bound (a symlink to /dev/zero
// is not a regular file; a huge regular file is cut off at the bound).
package infile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/katana-tee/snpboot/shared/filekind"
)

// NotRegularError is Open's refusal of a path that is not a regular file.
// Callers with a better fix for one kind (a folder given for the file in
// it, say) can tell it apart with errors.As.
type NotRegularError struct {
	What, Path string
	Mode       fs.FileMode // the type bits of what Path is
	info       fs.FileInfo // of the file opened
	// Pseudo names the kernel's file system ("/proc", "/sys") of a file
	// that is regular to stat(2) but made as it is read: its size says
	// nothing of what reading it gives (/proc/self/pagemap: 256 GiB).
	Pseudo string
}

// IsNullDevice reports whether the file refused was the null device
// (/dev/null, by whatever name): reading it neither blocks nor gives a
// byte, so a caller may take it as an empty file (measure does, as
// sev-snp-measure's own test vectors measure --kernel /dev/null).
func (e *NotRegularError) IsNullDevice() bool {
	if e.info == nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(e.info, null)
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s %s is %s: it must be a regular file (or a symlink to one)", e.What, e.Path, e.Reason())
}

// Reason is what the path is, for a caller's own message: "not a regular
// file (p---------, a FIFO)".
func (e *NotRegularError) Reason() string {
	if e.Pseudo != "" {
		return fmt.Sprintf("a file of the kernel's %s, made as it is read (reading may not end), not a regular file on disk", e.Pseudo)
	}
	return fmt.Sprintf("not a regular file (%s, %s)", e.Mode, filekind.Describe(e.Mode))
}

// TooLargeError is ReadFile's refusal of a file longer than its bound.
type TooLargeError struct {
	What, Path string
	Max        int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s %s is larger than %s, more than such a file can be: check that it is the right file", e.What, e.Path, Size(e.Max))
}

// Open opens path for reading and refuses anything but a regular file;
// what names the input in errors ("--kernel", "the initrd", "evidence file
// response.json"). The open does not block (O_NONBLOCK): a FIFO is refused
// at once, where a plain open would wait for a writer for ever. Nor does it
// make a terminal the controlling one (O_NOCTTY). A regular file is then
// put back in blocking mode (QEMU may inherit it). Symlinks are followed:
// it is what they point to that must be a regular file.
//
// An error opening it reads "opening WHAT: ..." and wraps the cause, so
// errors.Is(err, fs.ErrNotExist) holds for a missing file; a file that
// is not regular gives a *NotRegularError.
func Open(what, path string) (*os.File, error) {
	// Refused before it is opened: opening a device can act (opening
	// /dev/watchdog arms the hardware watchdog, a tape device rewinds),
	// and a symlink in an evidence folder or a report from someone else
	// can point at one. The check on the opened file below stays, for a
	// path replaced in between.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &NotRegularError{What: what, Path: path, Mode: fi.Mode().Type(), info: fi}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{What: what, Path: path, Mode: fi.Mode().Type(), info: fi}
	}
	if fsName := pseudoFS(f); fsName != "" {
		f.Close()
		return nil, &NotRegularError{What: what, Path: path, Mode: fi.Mode().Type(), info: fi, Pseudo: fsName}
	}
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	return f, nil
}

// setBlocking clears O_NONBLOCK on f's open file description.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// ReadFile is Open and reads the whole file, which must be at most max
// bytes: a longer one is a *TooLargeError naming the file and the bound,
// after reading no more than max+1 bytes.
func ReadFile(what, path string, max int64) ([]byte, error) {
	if max < 0 {
		return nil, errors.New("infile.ReadFile: negative bound")
	}
	f, err := Open(what, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{What: what, Path: path, Max: max}
	}
	return b, nil
}

// Size writes n bytes the way the bounds are stated: "64 KiB", "4 MiB",
// or "1000 bytes" when not a whole number of KiB.
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ContextReader is r failing with ctx's cause once ctx is done: a read of
// a large input (an initrd, a payload to hash) stops at an interruption.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx, r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

package integrity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Hasher returns the SHA-256 of the file read from its current offset to
// the end, and the number of bytes hashed; SumRange that of n bytes at off
// (without moving the file offset, so ranges of one file can be hashed at
// once), an error when the file ends before; SumBytes that of b (for bytes
// the caller goes on to use: what is used is what was checked).
type Hasher interface {
	Sum(f *os.File) (sum [32]byte, n int64, err error)
	SumRange(f *os.File, off, n int64) (sum [32]byte, err error)
	SumBytes(b []byte) (sum [32]byte, err error)
	Name() string
}

// GoHasher hashes with crypto/sha256. Under QEMU TCG without SHA-NI or AVX2
// it runs at roughly 10-25 MB/s.
type GoHasher struct{}

func (GoHasher) Name() string { return "go" }

func (GoHasher) Sum(f *os.File) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}

func (GoHasher) SumBytes(b []byte) ([32]byte, error) { return sha256.Sum256(b), nil }

func (GoHasher) SumRange(f *os.File, off, n int64) ([32]byte, error) {
	h := sha256.New()
	var sum [32]byte
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), make([]byte, 1<<20))
	if err == nil && got != n {
		err = fmt.Errorf("file ends %d bytes into a %d-byte range at %d", got, n, off)
	}
	h.Sum(sum[:0])
	return sum, err
}

// KernelHasher hashes with the kernel's sha256 through an AF_ALG socket
// (modules af_alg and algif_hash on Debian kernels). Under QEMU TCG the
// kernel's C implementation is about 2.3x faster than crypto/sha256's
// generic code; on hardware it uses SHA-NI or AVX2 like Go does.
type KernelHasher struct{}

func (KernelHasher) Name() string { return "kernel" }

// NewKernelHasher checks that AF_ALG sha256 works and returns it.
func NewKernelHasher() (Hasher, error) {
	k := KernelHasher{}
	op, err := k.open()
	if err != nil {
		return nil, err
	}
	unix.Close(op)
	return k, nil
}

func (KernelHasher) open() (int, error) {
	fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("AF_ALG socket (are af_alg and algif_hash loaded?): %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrALG{Type: "hash", Name: "sha256"}); err != nil {
		return -1, fmt.Errorf("AF_ALG bind hash/sha256: %w", err)
	}
	op, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("AF_ALG accept: %w", errno)
	}
	return int(op), nil
}

func (k KernelHasher) Sum(f *os.File) ([32]byte, int64, error) {
	var sum [32]byte
	op, err := k.open()
	if err != nil {
		return sum, 0, err
	}
	defer unix.Close(op)
	total, spliced, err := splice(f, op, nil, -1)
	if err != nil {
		return sum, total, err
	}
	if !spliced {
		if total, err = copyAll(f, op); err != nil {
			return sum, total, err
		}
	}
	sum, err = finish(op)
	return sum, total, err
}

// finish ends the hash on op and reads its digest.
func finish(op int) ([32]byte, error) {
	var sum [32]byte
	if err := sendAll(op, nil, 0); err != nil {
		return sum, fmt.Errorf("AF_ALG final send: %w", err)
	}
	if n, err := unix.Read(op, sum[:]); err != nil || n != len(sum) {
		return sum, fmt.Errorf("AF_ALG read digest: %d bytes, %v", n, err)
	}
	return sum, nil
}

// SumRange hashes n bytes at off through its own AF_ALG socket, so several
// ranges can be hashed on several CPUs at once.
func (k KernelHasher) SumRange(f *os.File, off, n int64) ([32]byte, error) {
	var sum [32]byte
	op, err := k.open()
	if err != nil {
		return sum, err
	}
	defer unix.Close(op)
	pos := off
	total, spliced, err := splice(f, op, &pos, n)
	if err != nil {
		return sum, err
	}
	if !spliced {
		if total, err = copyAll(io.NewSectionReader(f, off, n), op); err != nil {
			return sum, err
		}
	}
	if total != n {
		return sum, fmt.Errorf("file ends %d bytes into a %d-byte range at %d", total, n, off)
	}
	return finish(op)
}

// SumBytes hashes b through its own AF_ALG socket (the kernel reads the
// pages in place).
func (k KernelHasher) SumBytes(b []byte) ([32]byte, error) {
	var sum [32]byte
	op, err := k.open()
	if err != nil {
		return sum, err
	}
	defer unix.Close(op)
	for len(b) > 0 {
		n := min(len(b), 1<<20)
		if err := sendAll(op, b[:n], unix.MSG_MORE); err != nil {
			return sum, fmt.Errorf("AF_ALG send: %w", err)
		}
		b = b[n:]
	}
	return finish(op)
}

// splice moves the file into the hash through a pipe without copying
// (file pages -> pipe -> algif_hash), every chunk with SPLICE_F_MORE so the
// hash is only finalized by the caller: from the file offset to the end
// (off nil, limit -1), or limit bytes from *off. spliced is false when the
// kernel refuses splicing before any byte moved (the caller then copies).
func splice(f *os.File, op int, off *int64, limit int64) (total int64, spliced bool, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, false, nil
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	size := 1 << 20
	if n, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err == nil {
		size = n
	} else {
		size = 64 << 10
	}
	fd := int(f.Fd())
	for {
		want := size
		if limit >= 0 {
			if total >= limit {
				return total, true, nil
			}
			want = int(min(int64(size), limit-total))
		}
		n, err := unix.Splice(fd, off, p[1], nil, want, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if total == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
				return 0, false, nil
			}
			return total, true, fmt.Errorf("splice from file: %w", err)
		}
		if n == 0 {
			return total, true, nil
		}
		for left := n; left > 0; {
			m, err := unix.Splice(p[0], nil, op, nil, int(left), unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return total, true, fmt.Errorf("splice into AF_ALG: %w", err)
			}
			left -= m
			total += m
		}
	}
}

func copyAll(f io.Reader, op int) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if err := sendAll(op, buf[:n], unix.MSG_MORE); err != nil {
				return total, fmt.Errorf("AF_ALG send: %w", err)
			}
			total += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func sendAll(fd int, b []byte, flags int) error {
	for {
		n, err := unix.SendmsgN(fd, b, nil, nil, flags)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n >= len(b) {
			return nil
		}
		b = b[n:]
	}
}

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
// the end, and the number of bytes hashed.
type Hasher interface {
	Sum(f *os.File) (sum [32]byte, n int64, err error)
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
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if err := sendAll(op, buf[:n], unix.MSG_MORE); err != nil {
				return sum, total, fmt.Errorf("AF_ALG send: %w", err)
			}
			total += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return sum, total, rerr
		}
	}
	if err := sendAll(op, nil, 0); err != nil { // finalize
		return sum, total, fmt.Errorf("AF_ALG final send: %w", err)
	}
	n, err := unix.Read(op, sum[:])
	if err != nil || n != len(sum) {
		return sum, total, fmt.Errorf("AF_ALG read digest: %d bytes, %v", n, err)
	}
	return sum, total, nil
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

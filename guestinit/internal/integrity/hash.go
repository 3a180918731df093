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
	total, spliced, err := spliceAll(f, op)
	if err != nil {
		return sum, total, err
	}
	if !spliced {
		if total, err = copyAll(f, op); err != nil {
			return sum, total, err
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

// spliceAll moves the file into the hash through a pipe without copying
// (file pages -> pipe -> algif_hash), every chunk with SPLICE_F_MORE so the
// hash is only finalized by the caller. spliced is false when the kernel
// refuses splicing before any byte moved (the caller then copies).
func spliceAll(f *os.File, op int) (total int64, spliced bool, err error) {
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
		n, err := unix.Splice(fd, nil, p[1], nil, size, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
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

func copyAll(f *os.File, op int) (int64, error) {
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

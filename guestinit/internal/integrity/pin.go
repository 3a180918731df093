package integrity

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrChanged: a pinned file no longer has its pinned hash.
var ErrChanged = errors.New("changed since the boot check")

// Pinned is the SHA-256 a file must still have when it is used again
// later: the payload before each restart (katana.on_exit=restart).
// Katana runs as root and could have replaced /bin/katana (a tmpfs it may
// remount read-write, or cover with a mount of its own); restarting that
// file would run code outside the launch measurement while the agent goes
// on issuing reports for this boot. The check catches a replaced file (an
// updater, a mistake); it is no defence against a payload set on defeating
// it, which as root can change the kernel itself (a module) or PID 1
// (ptrace).
type Pinned struct {
	Path string   // absolute path, e.g. /bin/katana
	Sum  [32]byte // the SHA-256 it must have
	// From says where Sum comes from, for the error: "the content list",
	// or, for a payload decoded from frames (which no content-list entry
	// covers: the list vouches for the frames), "the frame list", whose
	// first line has the decoded payload's SHA-256.
	From string
	Hash Hasher // nil: GoHasher
}

// Pin hashes the file at path now and pins it to that hash (from says
// where this moment is, see Pinned.From).
func Pin(path, from string, h Hasher) (Pinned, error) {
	p := Pinned{Path: path, From: from, Hash: h}
	sum, _, err := p.sum()
	if err != nil {
		return Pinned{}, err
	}
	p.Sum = sum
	return p, nil
}

func (p Pinned) sum() ([32]byte, int64, error) {
	h := p.Hash
	if h == nil {
		h = GoHasher{}
	}
	// Open: a regular file only, never a symbolic link followed, so that
	// what is hashed is the file the path names.
	f, err := Open(p.Path)
	if err != nil {
		return [32]byte{}, 0, fmt.Errorf("integrity: %w", err)
	}
	defer f.Close()
	sum, n, err := h.Sum(f)
	if err != nil {
		return sum, n, fmt.Errorf("integrity: hashing %s (%s): %w", p.Path, h.Name(), err)
	}
	return sum, n, nil
}

// Check hashes the file again and compares. Its cost, paid before each
// restart: 32-34 ms for a file of 58 MiB (the size of a musl Katana) with
// crypto/sha256 on a 2-vCPU AMD EPYC VM with SHA-NI, about 1.8 GB/s
// (BenchmarkPinnedCheck58MiB, measured in 2026; that machine had no AF_ALG for
// the kernel's sha256). Under QEMU TCG, at GoHasher's 10-25 MB/s, the same
// file would take some 2.5-6 s, about 2.3 times less with KernelHasher.
func (p Pinned) Check() error {
	sum, n, err := p.sum()
	if err != nil {
		return err
	}
	if sum != p.Sum {
		return fmt.Errorf("integrity: %s %w (%d bytes, sha256 %s, want %s from %s): refusing to run it again",
			p.Path, ErrChanged, n, hex.EncodeToString(sum[:]), hex.EncodeToString(p.Sum[:]), p.From)
	}
	return nil
}

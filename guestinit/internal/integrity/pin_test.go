package integrity

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pinned file checks while it is unchanged, and is refused, naming the
// file, both hashes in full and where the wanted one comes from, once it
// has been replaced (what a root payload could do to /bin/katana before a
// restart); a symbolic link in its place is refused, not followed.
func TestPinned(t *testing.T) {
	for _, h := range hashers(t) {
		t.Run(h.Name(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "katana")
			orig := []byte(strings.Repeat("measured katana ", 1<<16))
			if err := os.WriteFile(path, orig, 0o755); err != nil {
				t.Fatal(err)
			}
			p, err := Pin(path, "its hash when decoded at boot", h)
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(orig); p.Sum != want {
				t.Fatalf("pinned sum %x, want %x", p.Sum, want)
			}
			if err := p.Check(); err != nil {
				t.Fatalf("unchanged file: %v", err)
			}
			// From the content list: the same hash given, not taken.
			listed := Pinned{Path: path, Sum: sha256.Sum256(orig), From: "the content list", Hash: h}
			if err := listed.Check(); err != nil {
				t.Fatalf("unchanged file against the content list: %v", err)
			}

			evil := []byte("#!/bin/sh\nunmeasured\n")
			if err := os.WriteFile(path+".new", evil, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
			err = listed.Check()
			got := sha256.Sum256(evil)
			for _, want := range []string{path + " changed since the boot check", hex.EncodeToString(got[:]),
				hex.EncodeToString(listed.Sum[:]) + " from the content list"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("replaced file: %v, want it to say %q", err, want)
				}
			}
			if !errors.Is(err, ErrChanged) {
				t.Errorf("replaced file: %v, want ErrChanged", err)
			}

			os.Remove(path)
			os.WriteFile(path+".real", orig, 0o755)
			os.Symlink(path+".real", path)
			if err := p.Check(); !errors.Is(err, ErrNotRegular) {
				t.Errorf("a symbolic link to the right bytes: %v, want ErrNotRegular", err)
			}
			os.Remove(path)
			if err := p.Check(); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("a missing file: %v, want an error naming it", err)
			}
		})
	}
}

// hashers are the Hashers this machine has (the kernel's needs AF_ALG).
func hashers(t testing.TB) []Hasher {
	hs := []Hasher{GoHasher{}}
	if k, err := NewKernelHasher(); err == nil {
		hs = append(hs, k)
	} else {
		t.Logf("no kernel hasher here: %v", err)
	}
	return hs
}

// The cost of Pinned.Check for a payload the size of a musl Katana (58
// MiB), the time each restart takes longer; see Check's comment.
func BenchmarkPinnedCheck58MiB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "katana")
	buf := make([]byte, 58<<20)
	r := rand.NewChaCha8([32]byte{})
	r.Read(buf)
	if err := os.WriteFile(path, buf, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, h := range hashers(b) {
		b.Run(h.Name(), func(b *testing.B) {
			p, err := Pin(path, "test", h)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if err := p.Check(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Package integrity checks the unpacked initrd against its content list
// (initrdlayout.ContentsPath): the kernel reports a failed initrd unpack
// (for example a truncated or badly framed archive) and boots on, leaving
// files short. The init therefore hashes what it is about to use before
// using it and fails the boot naming the first bad file.
package integrity

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Errors, for errors.Is.
var (
	ErrNotListed = errors.New("not in the content list")
	ErrMismatch  = errors.New("SHA-256 does not match the content list")
)

// LoadList reads and parses the content list under root.
func LoadList(root string) (initrdlayout.Contents, error) {
	p := filepath.Join(root, initrdlayout.ContentsPath)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening content list (was the initrd packed by hostbuild pack?): %w", err)
	}
	defer f.Close()
	c, err := initrdlayout.ParseContents(f)
	if err != nil {
		return nil, fmt.Errorf("content list %s: %w", p, err)
	}
	return c, nil
}

// Checker verifies files under Root against List.
type Checker struct {
	Root string
	List initrdlayout.Contents
	Hash Hasher // nil: GoHasher
	// Workers is how many files All hashes at once; 0: one per CPU, at
	// most 4.
	Workers int
}

func (c Checker) hasher() Hasher {
	if c.Hash == nil {
		return GoHasher{}
	}
	return c.Hash
}

// ReadFile reads rel (relative to Root) and returns its bytes after checking
// them against the list: the bytes returned are the bytes checked.
func (c Checker) ReadFile(rel string) ([]byte, error) {
	want, ok := c.List[rel]
	if !ok {
		return nil, fmt.Errorf("integrity: %s: %w", rel, ErrNotListed)
	}
	b, err := os.ReadFile(filepath.Join(c.Root, rel))
	if err != nil {
		return nil, fmt.Errorf("integrity: %w", err)
	}
	if got := sha256.Sum256(b); got != want {
		return nil, mismatch(rel, got, want, int64(len(b)))
	}
	return b, nil
}

// File checks one file by streaming it through SHA-256.
func (c Checker) File(rel string) error {
	want, ok := c.List[rel]
	if !ok {
		return fmt.Errorf("integrity: %s: %w", rel, ErrNotListed)
	}
	f, err := os.Open(filepath.Join(c.Root, rel))
	if err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	defer f.Close()
	got, n, err := c.hasher().Sum(f)
	if err != nil {
		return fmt.Errorf("integrity: hashing %s (%s): %w", rel, c.hasher().Name(), err)
	}
	if got != want {
		return mismatch(rel, got, want, n)
	}
	return nil
}

func mismatch(rel string, got, want [32]byte, size int64) error {
	return fmt.Errorf("integrity: %s (%d bytes, sha256 %s, want %s; truncated initrd unpack? look for \"Initramfs unpacking failed\" above): %w",
		rel, size, hex.EncodeToString(got[:8]), hex.EncodeToString(want[:8]), ErrMismatch)
}

// Report is the outcome of All.
type Report struct {
	Files int           // files checked
	Bytes int64         // bytes hashed
	Took  time.Duration // wall time
}

// All checks every listed file except those in skip (checked elsewhere or
// rewritten by the init), on up to Workers files at a time (0: the number of
// CPUs, at most 4), largest first so that the long pole starts at once. It
// reports the first bad file it meets (sorted by path when several are).
func (c Checker) All(skip map[string]bool) (Report, error) {
	start := time.Now()
	type item struct {
		rel  string
		size int64
	}
	var items []item
	for rel := range c.List {
		if skip[rel] {
			continue
		}
		fi, err := os.Stat(filepath.Join(c.Root, rel))
		if err != nil {
			return Report{}, fmt.Errorf("integrity: %w", err)
		}
		items = append(items, item{rel, fi.Size()})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.size != b.size {
			return int(min(max(b.size-a.size, -1), 1))
		}
		return strings.Compare(a.rel, b.rel)
	})
	workers := c.Workers
	if workers <= 0 {
		workers = min(runtime.NumCPU(), 4)
	}
	var (
		mu   sync.Mutex
		r    Report
		errs = map[string]error{}
		next int
		wg   sync.WaitGroup
	)
	for range min(workers, max(len(items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(items) || len(errs) > 0 {
					mu.Unlock()
					return
				}
				it := items[next]
				next++
				mu.Unlock()
				err := c.File(it.rel)
				mu.Lock()
				if err != nil {
					errs[it.rel] = err
				} else {
					r.Files++
					r.Bytes += it.size
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.Took = time.Since(start)
	if len(errs) > 0 {
		bad := slices.Sorted(maps.Keys(errs))
		return r, errs[bad[0]]
	}
	return r, nil
}

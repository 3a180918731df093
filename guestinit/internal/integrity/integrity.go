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
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Errors, for errors.Is.
var (
	ErrNotListed = errors.New("not in the content list")
	ErrMismatch  = errors.New("SHA-256 does not match the content list")
	// ErrNotRegular: a listed path is a FIFO, device, symbolic link, ...
	ErrNotRegular = errors.New("not a regular file")
)

// Open opens a file of the unpacked initrd for reading. Only a regular
// file is opened: a symbolic link as the last element of path is not
// followed, and the open never blocks, so that a FIFO, a device or a link
// to one, which a damaged archive header can leave where a file should
// be, is an error naming path instead of a boot that hangs (a FIFO blocks
// in open, /dev/zero never ends). O_NOCTTY: PID 1 opening a terminal
// there must not make it its controlling terminal.
func Open(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, notRegular(path, os.ModeSymlink)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	// Reads of a regular file ignore O_NONBLOCK; clear it all the same.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

func notRegular(path string, m os.FileMode) error {
	return fmt.Errorf("%s is a %s (damaged initrd?): %w", path, kindName(m), ErrNotRegular)
}

// kindName names the type of a file of mode m.
func kindName(m os.FileMode) string {
	kind := map[os.FileMode]string{
		os.ModeNamedPipe: "FIFO", os.ModeDevice | os.ModeCharDevice: "character device", os.ModeDevice: "block device",
		os.ModeDir: "directory", os.ModeSocket: "socket", os.ModeSymlink: "symbolic link",
	}[m.Type()]
	if kind == "" {
		kind = "file of mode " + m.String()
	}
	return kind
}

// ReadFile reads a file of the unpacked initrd (Open: a regular file only).
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// LoadList reads and parses the content list under root.
func LoadList(root string) (initrdlayout.Contents, error) {
	p := filepath.Join(root, initrdlayout.ContentsPath)
	f, err := Open(p)
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
	// Chunks, when set, lists large files in pieces (initrdlayout.ChunksPath,
	// itself checked against List): All checks those files piece by piece,
	// on all workers at once, instead of as one SHA-256.
	Chunks []initrdlayout.Chunk
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
	b, err := ReadFile(filepath.Join(c.Root, rel))
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
	f, err := Open(filepath.Join(c.Root, rel))
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

// chunk checks one piece of a large file.
func (c Checker) chunk(ch initrdlayout.Chunk) error {
	f, err := Open(filepath.Join(c.Root, ch.Path))
	if err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	defer f.Close()
	got, err := c.hasher().SumRange(f, ch.Off, ch.Len)
	if err != nil {
		return fmt.Errorf("integrity: hashing %s bytes %d-%d (%s): %w", ch.Path, ch.Off, ch.Off+ch.Len, c.hasher().Name(), err)
	}
	if got != ch.Sum {
		return fmt.Errorf("integrity: %s bytes %d-%d (sha256 %s, want %s; truncated initrd unpack? look for \"Initramfs unpacking failed\" above): %w",
			ch.Path, ch.Off, ch.Off+ch.Len, hex.EncodeToString(got[:8]), hex.EncodeToString(ch.Sum[:8]), ErrMismatch)
	}
	return nil
}

// item checks one file or one chunk. A panic (a Hasher's bug) becomes
// the item's error: All runs items in goroutines of its own, which the
// caller's recover does not cover, and in the guest a panic there would
// end PID 1.
func (c Checker) item(rel string, ch *initrdlayout.Chunk) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("integrity: checking %s: panic: %v", rel, r)
		}
	}()
	if ch == nil {
		return c.File(rel)
	}
	return c.chunk(*ch)
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
		rel   string
		size  int64               // bytes hashed by this item
		chunk *initrdlayout.Chunk // nil: the whole file
	}
	byFile := map[string][]initrdlayout.Chunk{}
	for _, ch := range c.Chunks {
		byFile[ch.Path] = append(byFile[ch.Path], ch)
	}
	var items []item
	files := 0
	for rel := range c.List {
		if skip[rel] {
			continue
		}
		fi, err := os.Lstat(filepath.Join(c.Root, rel))
		if err != nil {
			return Report{}, fmt.Errorf("integrity: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return Report{}, fmt.Errorf("integrity: %w", notRegular(rel, fi.Mode()))
		}
		files++
		cs := byFile[rel]
		if len(cs) == 0 {
			items = append(items, item{rel: rel, size: fi.Size()})
			continue
		}
		last := cs[len(cs)-1]
		if fi.Size() != last.Off+last.Len {
			return Report{}, fmt.Errorf("integrity: %s is %d bytes, the chunk list says %d (truncated initrd unpack?): %w",
				rel, fi.Size(), last.Off+last.Len, ErrMismatch)
		}
		for i := range cs {
			items = append(items, item{rel: rel, size: cs[i].Len, chunk: &cs[i]})
		}
	}
	// Largest first, so that the long pole starts at once.
	off := func(it item) int64 {
		if it.chunk == nil {
			return 0
		}
		return it.chunk.Off
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.size != b.size {
			return int(min(max(b.size-a.size, -1), 1))
		}
		if c := strings.Compare(a.rel, b.rel); c != 0 {
			return c
		}
		return int(min(max(off(a)-off(b), -1), 1))
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
				err := c.item(it.rel, it.chunk)
				mu.Lock()
				if err != nil {
					errs[it.rel] = err
				} else {
					r.Bytes += it.size
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.Took = time.Since(start)
	if len(errs) == 0 {
		r.Files = files
	}
	if len(errs) > 0 {
		bad := slices.Sorted(maps.Keys(errs))
		return r, errs[bad[0]]
	}
	return r, nil
}

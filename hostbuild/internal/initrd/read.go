package initrd

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// Entry is one archive member as inspect and diff see it.
type Entry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   string `json:"mode"` // octal permission bits, e.g. "0755", "1777"
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // regular files
	Link   string `json:"link,omitempty"`   // symlinks
	Device string `json:"device,omitempty"` // "major:minor" for device nodes
	MTime  uint32 `json:"mtime"`
	NLink  uint32 `json:"nlink"`
}

// Archive is a parsed initrd.
type Archive struct {
	Compression string  `json:"compression"`
	Size        int64   `json:"size"`   // bytes on disk
	SHA256      string  `json:"sha256"` // of the file on disk
	Archives    int     `json:"archives"`
	Entries     []Entry `json:"entries"`
}

// MaxUnpacked bounds the uncompressed bytes Read accepts, so a small
// hostile file cannot keep it busy for ever.
const MaxUnpacked = 8 << 30

var maxUnpacked int64 = MaxUnpacked // lowered by the fuzz test

// ReadFile parses the initrd at path.
func ReadFile(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening initrd: %w", err)
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

type hashCounter struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *hashCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	return n, err
}

// Read parses an initrd: one compressed (or uncompressed) stream holding one
// or more newc archives. Malformed input gives an error that says where.
func Read(r io.Reader) (*Archive, error) {
	hc := &hashCounter{r: r, h: sha256.New()}
	br := bufio.NewReaderSize(hc, 64<<10)
	head, _ := br.Peek(8)
	if len(head) == 0 {
		return nil, errors.New("empty file: not an initrd")
	}
	a := &Archive{Compression: Detect(head)}
	dr, closeFn, err := decompressor(a.Compression, br)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	lim := &io.LimitedReader{R: errContext{dr, a.Compression + " stream"}, N: maxUnpacked + 1}
	nr := newc.NewReader(lim)
	seen := map[string]bool{}
	inArchive := false
	for {
		h, err := nr.Next()
		if err == newc.ErrTrailer {
			a.Archives++
			inArchive = false
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if lim.N <= 0 {
				return nil, fmt.Errorf("more than %d bytes uncompressed: refusing", maxUnpacked)
			}
			return nil, err
		}
		inArchive = true
		e := Entry{
			Path: h.Name, Type: newc.TypeString(h.Mode), Mode: fmt.Sprintf("%04o", h.Mode&0o7777),
			UID: h.UID, GID: h.GID, Size: int64(h.Size), MTime: h.MTime, NLink: h.NLink,
		}
		switch h.Type() {
		case newc.TypeReg:
			sum := sha256.New()
			if _, err := io.Copy(sum, nr); err != nil {
				return nil, fmt.Errorf("reading %s: %w", h.Name, err)
			}
			e.SHA256 = hex.EncodeToString(sum.Sum(nil))
		case newc.TypeLink:
			b, err := io.ReadAll(nr)
			if err != nil {
				return nil, fmt.Errorf("reading symlink %s: %w", h.Name, err)
			}
			e.Link = string(b)
		case newc.TypeChar, newc.TypeBlock:
			e.Device = fmt.Sprintf("%d:%d", h.RDevMajor, h.RDevMinor)
		}
		// A later entry of the same name replaces the earlier one when the
		// kernel unpacks; keep the last, as the guest will see it.
		if seen[e.Path] {
			i := slices.IndexFunc(a.Entries, func(x Entry) bool { return x.Path == e.Path })
			a.Entries = slices.Delete(a.Entries, i, i+1)
		}
		seen[e.Path] = true
		a.Entries = append(a.Entries, e)
	}
	if inArchive {
		return nil, errors.New("archive ends without a TRAILER!!! record (truncated?)")
	}
	if a.Archives == 0 {
		return nil, errors.New("no cpio archive found")
	}
	// Drain what the decompressor did not need, so the file hash covers it.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	a.Size = hc.n
	a.SHA256 = hex.EncodeToString(hc.h.Sum(nil))
	slices.SortStableFunc(a.Entries, func(x, y Entry) int { return strings.Compare(x.Path, y.Path) })
	return a, nil
}

// errContext names the decompressor in its errors ("gzip stream: unexpected EOF").
type errContext struct {
	r    io.Reader
	what string
}

func (e errContext) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", e.what, err)
	}
	return n, err
}

// Lookup returns the entry for path, if any.
func (a *Archive) Lookup(path string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(a.Entries, path, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return a.Entries[i], true
}

// modeString renders type and permissions like ls -l.
func modeString(e Entry) string {
	var perm uint32
	fmt.Sscanf(e.Mode, "%o", &perm)
	t := map[string]byte{"file": '-', "dir": 'd', "symlink": 'l', "chardev": 'c', "blockdev": 'b', "fifo": 'p', "socket": 's'}[e.Type]
	if t == 0 {
		t = '?'
	}
	b := []byte{t}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if perm&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	if perm&0o4000 != 0 {
		b[3] = map[bool]byte{true: 's', false: 'S'}[b[3] == 'x']
	}
	if perm&0o2000 != 0 {
		b[6] = map[bool]byte{true: 's', false: 'S'}[b[6] == 'x']
	}
	if perm&0o1000 != 0 {
		b[9] = map[bool]byte{true: 't', false: 'T'}[b[9] == 'x']
	}
	return string(b)
}

// WriteListing prints one line per entry: mode, uid/gid, size (or device
// numbers), SHA-256 (files) and path (with the target of a symlink).
func (a *Archive) WriteListing(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, e := range a.Entries {
		size := fmt.Sprint(e.Size)
		if e.Device != "" {
			size = strings.Replace(e.Device, ":", ",", 1)
		}
		sum := e.SHA256
		if sum == "" {
			sum = "-"
		}
		name := e.Path
		if e.Type == "symlink" {
			name += " -> " + e.Link
		}
		fmt.Fprintf(bw, "%s %4d/%-4d %10s %-64s %s\n", modeString(e), e.UID, e.GID, size, sum, name)
	}
	return bw.Flush()
}

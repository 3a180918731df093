package initrd

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// Entry names and symlink targets are kept for every entry: a few MB of
// zstd can hold maxEntries of them at PATH_MAX each (2 GiB, and 5 GB of
// RSS for inspect, 14 GB for diff --json). Read must bound what it keeps,
// not only the count of entries.
func TestReadBoundsNameBytes(t *testing.T) {
	const n = 16384 // far below maxEntries
	pr, pw := io.Pipe()
	go func() {
		nw := newc.NewWriter(pw)
		nw.WriteHeader(&newc.Header{Name: "d", Mode: newc.TypeDir | 0o755, NLink: 2})
		target := strings.Repeat("T", 4095)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("d/%07d%s", i, strings.Repeat("L", 4000))
			nw.WriteHeader(&newc.Header{Name: name, Mode: newc.TypeLink | 0o777, NLink: 1, Size: uint32(len(target))})
			io.WriteString(nw, target)
		}
		pw.CloseWithError(nw.Close())
	}()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a, err := Read(pr)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d entries kept, %d MiB of heap", len(a.Entries), kept>>20)
	if kept > 64<<20 {
		t.Errorf("Read kept %d MiB for %d entries of long names and targets (a %d-byte zstd initrd holds %d of them): bound the bytes of names and link targets too", kept>>20, n, 2474055, maxEntries)
	}
	runtime.KeepAlive(a)
}

// endless is an xz magic followed by NULs without end, counting what is read.
type endless struct{ n, stop int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n >= e.stop {
		return 0, fmt.Errorf("read %d bytes: past any bound", e.n)
	}
	p = p[:min(int64(len(p)), e.stop-e.n)]
	for i := range p {
		p[i] = 0
		if k := e.n + int64(i); k < 6 {
			p[i] = "\xfd7zXZ\x00"[k]
		}
	}
	e.n += int64(len(p))
	return len(p), nil
}

// An xz initrd is read whole into memory before it is decoded: the read
// must be bounded like a zstd frame's (min(budget, maxZstdFrame)), not run
// to the end of the file (a 3 GiB sparse file took 6.8 GB of RSS, a 12 GiB
// one ends in "fatal error: out of memory").
func TestReadBoundsXZStream(t *testing.T) {
	defer func(m int64) { maxUnpacked = m }(maxUnpacked)
	maxUnpacked = 1 << 20
	r := &endless{stop: 8 << 20}
	_, err := Read(r)
	if r.n > maxUnpacked+2*readBuffer {
		t.Errorf("read %d bytes of an xz stream with a budget of %d (%v)", r.n, maxUnpacked, err)
	}
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Read: %v, want a refusal naming the bound", err)
	}
}

// An entry's name is the archive author's text: errors that name it must
// quote it (as FormatError and the payload-unknown reasons do), or a
// newline in it forges a line on the terminal (printable.NewWriter, which
// inspect and diff put on stderr, keeps newlines).
func TestReadErrorsQuoteNames(t *testing.T) {
	name := "x\nhostbuild inspect: OK, nothing wrong"
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1, 0o100644, 0, 0, 1, 0, 100, 0, 0, 0, 0, len(name)+1, 0)
	img := []byte(hdr + name + "\x00")
	for len(img)%4 != 0 {
		img = append(img, 0)
	}
	img = append(img, "abc"...) // 97 of the 100 bytes missing
	_, err := Read(bytes.NewReader(img))
	if err == nil {
		t.Fatal("Read accepted a truncated entry")
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error carries the name's raw newline:\n%v", err)
	}
}

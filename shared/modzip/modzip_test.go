package modzip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func compress(t testing.TB, ext string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch ext {
	case ".ko.gz":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case ".ko.xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".ko.zst":
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	default:
		return data
	}
	return buf.Bytes()
}

// Each format gives the module back up to the limit and refuses one
// byte more by name, with ErrTooBig.
func TestDecompressLimit(t *testing.T) {
	const max = 1 << 16
	for _, ext := range []string{".ko", ".ko.gz", ".ko.xz", ".ko.zst"} {
		fits := bytes.Repeat([]byte{0x7f}, max)
		got, err := Decompress("m"+ext, compress(t, ext, fits), max)
		if err != nil || !bytes.Equal(got, fits) {
			t.Errorf("%s of exactly %d bytes: %d bytes, %v", ext, max, len(got), err)
		}
		_, err = Decompress("m"+ext, compress(t, ext, append(fits, 0)), max)
		if want := "module m" + ext + " decompresses to more than the limit of 65536 bytes"; err == nil || err.Error() != want || !errors.Is(err, ErrTooBig) {
			t.Errorf("%s one byte over: %v, want %q", ext, err, want)
		}
	}
	if _, err := Decompress("m.ko.bz2", nil, max); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "m.ko.bz2") {
		t.Errorf("bz2: %v, want ErrFormat naming the module", err)
	}
}

// A zstd frame of 14 bytes whose header declares a 512 MiB window: the
// streaming reader allocated the window (the guest's init used it: an
// out-of-memory ends PID 1); Decompress allocates what it decodes. Found
// by review.
func TestDecompressZstdWindowHeader(t *testing.T) {
	for _, wlog := range []int{27, 29, 31} {
		bh := 1 | (5 << 3) // last block, raw, 5 bytes
		frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((wlog - 10) << 3), byte(bh), byte(bh >> 8), byte(bh >> 16), 'h', 'e', 'l', 'l', 'o'}
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		img, err := Decompress("m.ko.zst", frame, MaxDecompressed)
		runtime.ReadMemStats(&b)
		if alloc := b.TotalAlloc - a.TotalAlloc; alloc > 32<<20 {
			t.Errorf("windowLog %d: %d bytes of input allocated %d MiB (output %q, %v)", wlog, len(frame), alloc>>20, img, err)
		}
	}
}

// A small bomb (64 MiB of zeros, a few KB compressed) is refused at a
// smaller limit without decoding it all.
func TestDecompressBomb(t *testing.T) {
	bomb := compress(t, ".ko.zst", make([]byte, 64<<20))
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	_, err := Decompress("m.ko.zst", bomb, 1<<20)
	runtime.ReadMemStats(&b)
	if !errors.Is(err, ErrTooBig) {
		t.Errorf("a %d-byte zstd bomb: %v, want ErrTooBig", len(bomb), err)
	}
	if alloc := b.TotalAlloc - a.TotalAlloc; alloc > 16<<20 {
		t.Errorf("refusing it allocated %d MiB", alloc>>20)
	}
}

// FuzzDecompress: whatever the bytes, no panic, and never more than the
// limit out.
func FuzzDecompress(f *testing.F) {
	for _, ext := range []string{".ko.gz", ".ko.xz", ".ko.zst"} {
		f.Add(ext, compress(f, ext, []byte("\x7fELF module")))
	}
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		const max = 1 << 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := Decompress("m"+ext, data, max)
		runtime.ReadMemStats(&after)
		if err == nil && len(out) > max {
			t.Fatalf("%d bytes out, limit %d", len(out), max)
		}
		// The package's promise: crafted bytes do not make it allocate
		// more than the limit (and, for xz, a dictionary of MaxXZDict),
		// with room for the decoders' own buffers.
		bound := uint64(4*max + 16<<20)
		if strings.HasSuffix(ext, ".xz") {
			bound += MaxXZDict
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
			t.Fatalf("Decompress(%q) of %d bytes allocated %d bytes, bound %d", "m"+ext, len(data), grew, bound)
		}
		// What a gzip module holds, as the standard library reads it.
		if err == nil && strings.HasSuffix(ext, ".gz") {
			gr, gerr := gzip.NewReader(bytes.NewReader(data))
			var want []byte
			if gerr == nil {
				want, gerr = io.ReadAll(io.LimitReader(gr, max+1))
			}
			if gerr != nil || !bytes.Equal(out, want) {
				t.Fatalf("Decompress(%q) = %d bytes; compress/gzip reads %d other bytes (%v)", "m"+ext, len(out), len(want), gerr)
			}
		}
	})
}

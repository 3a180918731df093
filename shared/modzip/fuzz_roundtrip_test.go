package modzip

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// A module compressed as each suffix says comes back byte for byte, up to
// the limit and exactly at it (a zstd frame also within its window);
// over it is ErrTooBig. Whatever the
// bytes, a refusal names the module file.
func FuzzDecompressRoundTrip(f *testing.F) {
	f.Add(uint8(0), []byte("\x7fELF module"), uint16(100), []byte("x"))
	f.Add(uint8(1), bytes.Repeat([]byte("ab"), 3000), uint16(6000), []byte{0xfd, '7', 'z'})
	f.Add(uint8(2), []byte{}, uint16(0), []byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add(uint8(3), []byte("m"), uint16(0), []byte{0x1f, 0x8b})
	exts := []string{".ko", ".ko.gz", ".ko.xz", ".ko.zst"}
	f.Fuzz(func(t *testing.T, which uint8, plain []byte, limit uint16, junk []byte) {
		ext := exts[int(which)%len(exts)]
		name := "kernel/drivers/virt/sev-guest" + ext
		max := max(int(limit), 1) // the callers pass MaxDecompressed; zstd takes no limit of 0
		packed := compress(t, ext, plain)
		out, err := Decompress(name, packed, max)
		// zstd refuses, before decoding, a frame whose window is larger
		// than the limit, whatever its content (MaxDecompressed is far
		// above the windows of zstd's levels).
		var h zstd.Header
		window := ext == ".ko.zst" && h.Decode(packed) == nil && h.WindowSize > uint64(max)
		switch {
		case window && errors.Is(err, ErrTooBig):
		case len(plain) > max:
			if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s of %d bytes, limit %d: %v, want ErrTooBig naming the file", ext, len(plain), max, err)
			}
		case err != nil:
			t.Fatalf("%s of %d bytes, limit %d: %v", ext, len(plain), max, err)
		case !bytes.Equal(out, plain):
			t.Fatalf("%s of %d bytes came back as %d other bytes", ext, len(plain), len(out))
		}
		if out, err := Decompress(name, junk, max); err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("refusal %q does not name %s", err, name)
			}
		} else if len(out) > max {
			t.Fatalf("%d bytes out of %s, limit %d", len(out), name, max)
		}
	})
}

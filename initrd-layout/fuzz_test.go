package initrdlayout

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// A frame decodes to exactly the size its list gives, the round trip
// holds, and no frame makes the decoder allocate far past MaxFrameSize.
func FuzzFrameDecode(f *testing.F) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	f.Add(enc.EncodeAll(bytes.Repeat([]byte("katana"), 1000), nil), int64(6000), []byte("x"))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x09, 0x00, 0x00, 'x'}, int64(1), []byte{})
	f.Fuzz(func(t *testing.T, src []byte, size int64, plain []byte) {
		d, err := NewFrameDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := d.Decode(src, size, nil)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*MaxFrameSize+(16<<20) {
			t.Fatalf("decoding %d bytes allocated %d", len(src), grew)
		}
		if err == nil && int64(len(out)) != size {
			t.Fatalf("decoded %d bytes, size %d", len(out), size)
		}
		if len(plain) > 0 {
			back, err := d.Decode(enc.EncodeAll(plain, nil), int64(len(plain)), nil)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("round trip of %d bytes: %v", len(plain), err)
			}
		}
	})
}

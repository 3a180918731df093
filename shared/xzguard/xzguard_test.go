package xzguard

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"github.com/ulikunitz/xz"
)

// xzOf is data as an xz stream of one block with a 4 KiB dictionary and
// CRC-32 checks: the shape WithDict rewrites.
func xzOf(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.CRC32}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BigDict finds a block header declaring a dictionary over the limit, in
// every encoding the decoder accepts, and none at or under it.
func TestBigDict(t *testing.T) {
	plain := xzOf(t, bytes.Repeat([]byte("module "), 1000))
	for _, tc := range []struct {
		name  string
		id    []byte
		code  byte
		sizes []uint64
		big   bool
	}{
		{"4 KiB", []byte{0x21}, 0, nil, false},
		{"1 MiB, at the limit", []byte{0x21}, 16, nil, false},
		{"1.5 MiB", []byte{0x21}, 17, nil, true},
		{"4 GiB", []byte{0x21}, 40, nil, true},
		{"4 GiB, long filter ID", []byte{0xa1, 0x00}, 40, nil, true},
		{"4 GiB, with sizes", []byte{0x21}, 40, []uint64{1 << 20, 300}, true},
	} {
		data, err := WithDict(plain, tc.id, tc.code, tc.sizes...)
		if err != nil {
			t.Fatal(err)
		}
		if dict, big := BigDict(data, 1<<20); big != tc.big {
			t.Errorf("%s: BigDict = %d, %v; want big %v", tc.name, dict, big, tc.big)
		}
	}
	if _, big := BigDict(plain, 1<<20); big {
		t.Error("an xz stream with a 4 KiB dictionary reported big")
	}
}

// What BigDict lets through under a limit, the decoder decodes without
// allocating much more than that limit: the property the callers (kmod,
// the initrd reader) rely on for files they are given.
func FuzzBigDict(f *testing.F) {
	plain := xzOf(f, bytes.Repeat([]byte("module "), 1000))
	f.Add(plain)
	for _, code := range []byte{0, 16, 17, 28, 40} {
		for _, id := range [][]byte{{0x21}, {0xa1, 0x00}} {
			if data, err := WithDict(plain, id, code); err == nil {
				f.Add(data)
			}
		}
	}
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, big := BigDict(data, limit); big {
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if r, err := xz.NewReader(bytes.NewReader(data)); err == nil {
			io.Copy(io.Discard, io.LimitReader(r, 1<<20))
		}
		runtime.ReadMemStats(&after)
		// The dictionary (at most limit), the decoder's buffers and up to
		// 1 MiB of output read through a 32 KiB buffer.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Fatalf("BigDict let through a stream whose decoding allocated %d bytes (limit %d)", grew, limit)
		}
	})
}

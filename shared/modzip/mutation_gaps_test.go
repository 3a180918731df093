package modzip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"runtime"
	"testing"

	"github.com/ulikunitz/xz"
)

// A gzip or xz bomb (16 MiB of zeros, some KB compressed) is refused at a
// 1 MiB limit after decoding little more than the limit, not all of it
// (TestDecompressBomb covers zstd only).
func TestGapStreamBombs(t *testing.T) {
	zeros := make([]byte, 16<<20)
	var gz, x bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(zeros)
	gw.Close()
	xw, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.CRC32}.NewWriter(&x)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(zeros)
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}
	zeros = nil
	for _, tc := range []struct {
		name string
		data []byte
	}{{"m.ko.gz", gz.Bytes()}, {"m.ko.xz", x.Bytes()}} {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		_, err := Decompress(tc.name, tc.data, 1<<20)
		runtime.ReadMemStats(&b)
		if !errors.Is(err, ErrTooBig) {
			t.Errorf("%s bomb of %d bytes: %v, want ErrTooBig", tc.name, len(tc.data), err)
		}
		if alloc := b.TotalAlloc - a.TotalAlloc; alloc > 12<<20 {
			t.Errorf("%s bomb of %d bytes: refusing it allocated %d MiB", tc.name, len(tc.data), alloc>>20)
		}
	}
}

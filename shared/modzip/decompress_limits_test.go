package modzip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/shared/xzguard"
	"github.com/ulikunitz/xz"
)

// A gzip or xz bomb (16 MiB of zeros, some KB compressed) is refused at a
// 1 MiB limit after decoding little more than the limit, not all of it
// (TestDecompressBomb covers zstd only).
func TestStreamBombs(t *testing.T) {
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

// An xz module whose block header declares a 4 GiB LZMA2 dictionary is
// refused by name before the decoder allocates it (the guest's init calls
// Decompress directly: an out-of-memory would end PID 1); 64 MiB, xz -9's
// dictionary, is still decoded.
func TestDecompressXZDictLimit(t *testing.T) {
	mod := bytes.Repeat([]byte("\x7fELF module "), 100)
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.CRC32}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(mod)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code byte // lzma.DecodeDictCap code: 28 is 64 MiB, 40 is 4 GiB
		ok   bool
	}{{28, true}, {29, false}, {40, false}} {
		data, err := xzguard.WithDict(b.Bytes(), []byte{0x21}, tc.code)
		if err != nil {
			t.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		got, err := Decompress("m.ko.xz", data, MaxDecompressed)
		runtime.ReadMemStats(&m1)
		if tc.ok {
			if err != nil || !bytes.Equal(got, mod) {
				t.Errorf("dict code %d: %d bytes, %v; want the module", tc.code, len(got), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "module m.ko.xz: xz dictionary of") {
			t.Errorf("dict code %d: %v; want the xz dictionary refused by name", tc.code, err)
		}
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 16<<20 {
			t.Errorf("dict code %d: refusing it allocated %d MiB", tc.code, alloc>>20)
		}
	}
}

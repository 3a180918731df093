package xzguard

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// bigDictNoPanic runs BigDict and turns a panic into a test failure.
func bigDictNoPanic(t *testing.T, data []byte, max int64) (dict int64, big bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("BigDict(% x) panicked: %v", data, r)
		}
	}()
	return BigDict(data, max)
}

// withCRC appends the CRC-32 of h.
func withCRC(h ...byte) []byte {
	return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
}

// A block header that ends exactly where the data ends is found: the
// decoder allocates the dictionary when it has read the header, before it
// reads (and misses) the block's data, so 24 bytes would be enough.
func TestHeaderAtTheEnd(t *testing.T) {
	plain := xzOf(t, bytes.Repeat([]byte("module "), 1000))
	data, err := WithDict(plain, []byte{0x21}, 40)
	if err != nil {
		t.Fatal(err)
	}
	hdrLen := (int(data[12]) + 1) * 4
	cut := data[:12+hdrLen]
	if dict, big := bigDictNoPanic(t, cut, 1<<20); !big || dict < 4<<30-1 {
		t.Errorf("stream cut after its block header: BigDict = %d, %v; want 4 GiB, true", dict, big)
	}
}

// A header that declares a big dictionary but whose CRC-32 does not match
// is not reported: the decoder refuses such a header, so it allocates
// nothing for it, and modules that hold the shape by chance stay readable.
func TestWrongCRCNotBig(t *testing.T) {
	h := withCRC(0x02, 0x00, 0x21, 0x01, 40, 0, 0, 0)
	if _, big := bigDictNoPanic(t, h, 1<<20); !big {
		t.Fatalf("BigDict of a well-formed header: not big")
	}
	h[len(h)-1] ^= 0xff
	if dict, big := bigDictNoPanic(t, h, 1<<20); big {
		t.Errorf("header with a wrong CRC-32: BigDict = %d, true; want false", dict)
	}
}

// Headers that end inside the size fields or right after the filter's
// properties-size byte are skipped, not read past their end.
func TestTruncatedHeadersNoPanic(t *testing.T) {
	for _, h := range [][]byte{
		withCRC(0x01, 0xc0, 0x80, 0x80), // both sizes present, every byte continued
		withCRC(0x01, 0x40, 0xff, 0xff), // compressed size running to the end
		withCRC(0x01, 0x00, 0x21, 0x01), // LZMA2, props size 1, no props byte
		withCRC(0x01, 0x00, 0xa1, 0x00), // long filter ID filling the header
	} {
		if dict, big := bigDictNoPanic(t, h, 1<<20); big {
			t.Errorf("BigDict(% x) = %d, true; want false", h, dict)
		}
	}
}

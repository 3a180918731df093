package xzguard

import (
	"bytes"
	"testing"
)

// Data whose every byte could start a block header whose size fields run
// on (0xc0: a size byte, flags with both sizes present, and continuation
// bytes) is scanned in time linear in its length: the decoder refuses a
// size field longer than 10 bytes, so BigDict reads no further. It read
// each header to its end (up to 768 bytes) at every offset: 64 MiB took
// hostbuild inspect 142 s, and the 512 MiB an xz initrd or a 256 MiB
// module may be, many minutes, before the decoder refuses the file at once.
// Fails for: the bound on a size field's bytes removed.
func TestBigDictSizeFieldsBounded(t *testing.T) {
	h := append([]byte{0xc0, 0xc0}, bytes.Repeat([]byte{0xc0}, 760)...) // the longest header: (0xc0+1)*4 bytes less the CRC
	if i, ok := sizeFieldsEnd(h); ok || i > 2+maxUvarintLen {
		t.Errorf("sizeFieldsEnd of a header of continuation bytes = %d, %v; want false within %d bytes", i, ok, 2+maxUvarintLen)
	}
	// BigDict refuses no such data and finds nothing in it.
	if dict, big := bigDictNoPanic(t, bytes.Repeat([]byte{0xc0}, 1<<20), 1<<20); big {
		t.Errorf("BigDict of continuation bytes = %d, true; want false", dict)
	}
}

// A header whose size fields take the 10 bytes the decoder still accepts
// (value 0, 9 continuation bytes) is found all the same.
func TestBigDictTenByteSizeFields(t *testing.T) {
	ten := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	h := []byte{0, 0xc0}
	h = append(append(h, ten...), ten...)
	h = append(h, 0x21, 0x01, 40)
	for len(h)%4 != 0 {
		h = append(h, 0)
	}
	h[0] = byte(len(h) / 4)
	if dict, big := bigDictNoPanic(t, withCRC(h...), 1<<20); !big || dict < 4<<30-1 {
		t.Errorf("header with 10-byte size fields: BigDict = %d, %v; want 4 GiB, true", dict, big)
	}
}

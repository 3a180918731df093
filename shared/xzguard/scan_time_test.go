package xzguard

import (
	"bytes"
	"testing"
	"time"
)

// Data whose every byte could start a block header whose size fields run
// on (0xc0: a size byte, flags with both sizes present, and continuation
// bytes) is scanned in time linear in its length: the decoder refuses a
// size field longer than 10 bytes, so BigDict need not read further. It
// read each header to its end (up to 768 bytes) at every offset: 8 MiB
// took seconds, and the 512 MiB an xz initrd or a 256 MiB module may be,
// many minutes, before the decoder refuses the file at once.
func TestBigDictLongSizeFieldsLinearTime(t *testing.T) {
	const size = 4 << 20
	hostile := bytes.Repeat([]byte{0xc0}, size)
	// Data of the same length with no header shape to follow up, the
	// yardstick: the machine may be busy, the ratio holds all the same.
	plain := bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1}, size/8)
	fastest := func(data []byte) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if dict, big := bigDictNoPanic(t, data, 1<<20); big {
				t.Fatalf("BigDict(% x ...) = %d, true; want false", data[:8], dict)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	h, p := fastest(hostile), fastest(plain)
	if h > 150*p+50*time.Millisecond {
		t.Errorf("BigDict of 4 MiB of 0xc0 took %v, %.0f times as long as 4 MiB of other bytes (%v); want a scan linear in the length, at most 150 times (each offset reads at most 10 bytes of a size field, where other bytes are refused at the first)",
			h.Round(time.Millisecond), float64(h)/float64(p), p.Round(time.Millisecond))
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

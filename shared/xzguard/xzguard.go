// Package xzguard finds what makes the xz decoder allocate more than a
// caller allows before it decodes anything: a block header that declares a
// large LZMA2 dictionary. hostbuild reads xz modules (kmod) and xz initrds
// (initrd) given to it, both untrusted, and the guest's init decompresses
// xz modules (through modzip), where running out of memory ends PID 1.
package xzguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"

	"github.com/ulikunitz/xz/lzma"
)

// maxUvarintLen is the longest multibyte integer the decoder reads.
const maxUvarintLen = 10

// BigDict returns the dictionary size of an xz block header in data that
// declares more than max bytes, if there is one. The xz decoder allocates a
// block's whole dictionary before it reads the block, so a header of a few
// bytes could make it allocate 4 GiB. Where the decoder looks for
// a block header depends on the blocks it decoded before, so every offset is
// tried: the decoder uses a header only if its CRC-32 matches, and this
// finds any such header wherever it is (a false match, 1 in 2^32 for an
// offset that has the shape, refuses the data; it cannot let any through).
func BigDict(data []byte, max int64) (int64, bool) {
	for q := 0; q+2 < len(data); q++ {
		// Size byte (0 is the index), then flags: one filter, no
		// reserved bits, maybe the compressed and uncompressed sizes.
		if data[q] == 0 || data[q+1]&0x3f != 0 {
			continue
		}
		end := q + (int(data[q])+1)*4
		if end > len(data) {
			continue
		}
		h := data[q : end-4]
		i, ok := sizeFieldsEnd(h)
		if !ok {
			continue
		}
		// The filter: LZMA2 (0x21) with one byte of properties, the
		// dictionary size. The ID is a multibyte integer, read by the
		// decoder with binary.Uvarint's rules: an encoding longer than
		// needed counts (0xa1 0x00 is 0x21 too); past 64 bits or the
		// header's end, the decoder refuses the header as well.
		if i >= len(h) {
			continue
		}
		id, n := binary.Uvarint(h[i:])
		if n <= 0 || id != 0x21 {
			continue
		}
		i += n
		if i+2 > len(h) || h[i] != 1 {
			continue
		}
		dict, err := lzma.DecodeDictCap(h[i+1])
		if err != nil || dict <= max {
			continue
		}
		// The decoder refuses a header whose padding is not all zeros.
		if slices.ContainsFunc(h[i+2:], func(b byte) bool { return b != 0 }) {
			continue
		}
		if crc32.ChecksumIEEE(h) == binary.LittleEndian.Uint32(data[end-4:end]) {
			return dict, true
		}
	}
	return 0, false
}

// sizeFieldsEnd returns where the optional compressed and uncompressed
// size fields of block header h (its flags in h[1]) end. They are
// multibyte integers of at most maxUvarintLen bytes (the decoder refuses a
// longer one): a longer one gives ok false, at most maxUvarintLen bytes
// into it. Reading no further keeps BigDict's scan linear, where data of
// continuation bytes would have each offset read its header to the end.
func sizeFieldsEnd(h []byte) (i int, ok bool) {
	i = 2
	for _, present := range []bool{h[1]&0x40 != 0, h[1]&0x80 != 0} {
		if !present {
			continue
		}
		n := 0
		for i < len(h) && h[i]&0x80 != 0 && n < maxUvarintLen {
			i++
			n++
		}
		if n == maxUvarintLen {
			return i, false
		}
		i++
	}
	return i, true
}

// WithDict returns data, an xz stream of one block written with a 4 KiB
// dictionary and CRC-32 checks (xz.WriterConfig{DictCap: 4096, CheckSum:
// xz.CRC32}), with its block header rewritten to declare the LZMA2
// dictionary of the given code (lzma.DecodeDictCap: 28 is 64 MiB, 40 is
// 4 GiB), its filter ID encoded as id (the decoder reads a multibyte
// integer, and takes 0xa1 0x00 for 0x21 too) and, if sizes are given, the
// block's compressed and uncompressed sizes: what a crafted file could
// hold. For tests of the callers' limits.
func WithDict(data []byte, id []byte, code byte, sizes ...uint64) ([]byte, error) {
	// The stream header is 12 bytes; the block header after it is the
	// size byte, flags, the LZMA2 filter (0x21, 1, the dictionary code),
	// zero padding to a multiple of 4 and a CRC-32.
	if len(data) < 17 || !bytes.Equal(data[13:16], []byte{0, 0x21, 1}) {
		return nil, errors.New("xzguard.WithDict: not an xz stream whose first block header has one LZMA2 filter and no sizes")
	}
	old := (int(data[12]) + 1) * 4
	if 12+old > len(data) {
		return nil, errors.New("xzguard.WithDict: truncated block header")
	}
	h := []byte{0, 0}
	if len(sizes) > 0 {
		h[1] = 0xc0
		for _, n := range sizes {
			h = binary.AppendUvarint(h, n)
		}
	}
	h = append(append(h, id...), 1, code)
	for len(h)%4 != 0 {
		h = append(h, 0)
	}
	h[0] = byte(len(h) / 4) // (size byte + 1) * 4 = len(h) + 4 with the CRC
	h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
	return slices.Concat(data[:12], h, data[12+old:]), nil
}

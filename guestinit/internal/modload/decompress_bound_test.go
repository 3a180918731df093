package modload

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/katana-tee/snpboot/shared/modzip"
)

// The guest's Decompress holds a module to modzip.MaxDecompressed: a zstd
// module of a few bytes whose frame header declares one byte more than
// that is refused as too big, before anything is decoded or allocated.
func TestDecompressHoldsModulesToMaxDecompressed(t *testing.T) {
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // magic; single segment, 8-byte content size
	frame = binary.LittleEndian.AppendUint64(frame, modzip.MaxDecompressed+1)
	frame = append(frame, 0x0b, 0x00, 0x00, 0x00) // last block, RLE, one byte: 0
	_, err := Decompress("m.ko.zst", frame)
	if !errors.Is(err, modzip.ErrTooBig) {
		t.Errorf("a zstd module declaring %d bytes: %v, want ErrTooBig", modzip.MaxDecompressed+1, err)
	}
}

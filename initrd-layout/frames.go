package initrdlayout

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// FrameDecoder decodes payload frames. The init decodes with it, and the
// packer decodes every frame it writes with it too, so a frame that the
// init would decode differently (or not at all) is caught at pack time.
// One FrameDecoder per goroutine.
type FrameDecoder struct{ d *zstd.Decoder }

// NewFrameDecoder returns a decoder bounded to MaxFrameSize of window and
// memory: a frame cannot make it allocate more.
func NewFrameDecoder() (*FrameDecoder, error) {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(false),
		zstd.WithDecoderMaxWindow(MaxFrameSize),
		zstd.WithDecoderMaxMemory(MaxFrameSize))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &FrameDecoder{d}, nil
}

// Decode decodes the compressed frame src into dst[:0] (grown as needed)
// and checks that it is exactly size bytes.
func (f *FrameDecoder) Decode(src []byte, size int64, dst []byte) ([]byte, error) {
	out, err := f.d.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("decodes to %d bytes, the frame list says %d", len(out), size)
	}
	return out, nil
}

// Close releases the decoder.
func (f *FrameDecoder) Close() { f.d.Close() }

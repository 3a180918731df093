package initrd

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// DefaultPayloadEncoding is chosen by measurement (BENCHMARKS.md, boot):
// under TCG the kernel's single-threaded unpack of a 58 MiB payload and the
// init's SHA-256 of the unpacked file were the two longest steps of the
// boot. In frames, the kernel only copies the packed payload; the init
// checks each frame's SHA-256 (of the compressed bytes, a third of the
// payload's size), decodes it with the same decoder the packer checked it
// with, and writes /bin/katana, on every CPU at once and while the modules
// load.
const DefaultPayloadEncoding = "frames"

// PayloadEncodings lists the values Options.PayloadEncoding accepts.
var PayloadEncodings = []string{"frames", "inline"}

// frameTarget is the largest decoded frame the packer writes. The payload
// is cut into the fewest frames of at most this size, but at least one per
// frameMin bytes up to minFrames (so that a small payload is decoded on
// several CPUs too), all of one size but the last: a 58 MiB payload gives
// 4 frames of 14.5 MiB, even work for 2 or 4 CPUs; a 6 MiB one 2 frames.
// Larger frames compress better (each frame starts with an empty history);
// 16 MiB frames at zstd's "better" level keep the initrd within the
// pack-size target (BENCHMARKS.md, pack).
const (
	frameTarget = 16 << 20
	frameMin    = 4 << 20
	minFrames   = 4
)

// frameSize is the decoded size of every frame but the last.
func frameSize(n int) int {
	frames := max((n+frameTarget-1)/frameTarget, min(minFrames, (n+frameMin-1)/frameMin), 1)
	return (n + frames - 1) / frames
}

// encodeFrames cuts payload into independent zstd frames (in parallel; the
// bytes do not depend on how many goroutines run), decodes each one back
// with the init's decoder and returns them concatenated, with their list.
func encodeFrames(ctx context.Context, payload []byte) ([]byte, initrdlayout.Frames, error) {
	list := initrdlayout.Frames{Size: int64(len(payload)), SHA256: sha256.Sum256(payload)}
	if len(payload) == 0 {
		return nil, list, badInput("payload is empty")
	}
	size := frameSize(len(payload))
	var parts [][]byte
	for off := 0; off < len(payload); off += size {
		parts = append(parts, payload[off:min(off+size, len(payload))])
	}
	enc := make([][]byte, len(parts))
	errs := make([]error, len(parts))
	next := make(chan int, len(parts))
	for i := range parts {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					errs[i] = context.Cause(ctx)
					continue
				}
				enc[i], errs[i] = encodeFrame(parts[i])
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range parts {
		if errs[i] != nil {
			return nil, list, errs[i]
		}
		total += len(enc[i])
	}
	// Allocated once: appended frame by frame, a large slice grows by a
	// quarter at a time, five times the frames' size allocated on the way.
	blob := make([]byte, 0, total)
	for i := range parts {
		list.List = append(list.List, initrdlayout.Frame{
			Off: int64(len(blob)), Len: int64(len(enc[i])), Size: int64(len(parts[i])), Sum: sha256.Sum256(enc[i]),
		})
		blob = append(blob, enc[i]...)
		enc[i] = nil // copied: the collector may take it
	}
	return blob, list, nil
}

// encodeFrame compresses one frame and checks that the init's decoder gives
// back exactly its bytes. Every setting that could change the bytes is
// pinned: level, window (a power of two at least the frame size), one
// goroutine per frame, no content checksum (the frame list's SHA-256
// covers the compressed bytes, checked before decoding).
func encodeFrame(b []byte) ([]byte, error) {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithWindowSize(frameTarget),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(false))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	defer e.Close()
	// Into room for the largest frame: grown as it goes, the output of
	// an incompressible frame was allocated about five times over.
	out := e.EncodeAll(b, make([]byte, 0, e.MaxEncodedSize(len(b))))
	d, err := initrdlayout.NewFrameDecoder()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	back, err := d.Decode(out, int64(len(b)), make([]byte, 0, len(b)))
	if err != nil || sha256.Sum256(back) != sha256.Sum256(b) {
		return nil, fmt.Errorf("payload frame does not decode back to its bytes (%v): zstd encoder or decoder fault", err)
	}
	return out, nil
}

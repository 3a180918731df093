package initrd

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
)

// Joining the frames allocates the joined bytes once: appended frame by
// frame, the slice grew by a quarter at a time, allocating about five times
// the compressed payload on the way, and a 1 GiB payload (incompressible)
// ran hostbuild pack out of memory under an 8 GB address-space limit
// ("cannot allocate 675282944-byte block (5942968320 in use)"). Beyond
// what encoding the same number of frames of zeros allocates (the
// encoders' and decoders' state, the check buffers), encodeFrames may
// allocate the frames and their joined copy: not three times the payload.
func TestEncodeFramesAllocation(t *testing.T) {
	const size = 96 << 20
	random := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(random) // incompressible: the frames are as large as the payload
	allocated := func(payload []byte) (uint64, int) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		blob, list, err := encodeFrames(context.Background(), payload)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.List) != frameCount(size) {
			t.Fatalf("%d frames; want %d", len(list.List), frameCount(size))
		}
		return after.TotalAlloc - before.TotalAlloc, len(blob)
	}
	base, _ := allocated(make([]byte, size))
	alloc, n := allocated(random)
	t.Logf("payload %d MiB: %d MiB of frames; allocated %d MiB, %d MiB for zeros", size>>20, n>>20, alloc>>20, base>>20)
	if alloc > base+3*size {
		t.Errorf("encoding a %d MiB payload allocated %d MiB more than encoding zeros, %d MiB: more than 3 times the payload", size>>20, (alloc-base)>>20, alloc>>20)
	}
}

// frameCount is how many frames encodeFrames cuts n bytes into.
func frameCount(n int) int { return (n + frameSize(n) - 1) / frameSize(n) }

// Package payload writes /bin/katana from the packed payload: the frames of
// initrdlayout.PackedPayloadPath listed in initrdlayout.FramesPath (itself
// checked against the content list by the caller).
//
// Each frame's compressed bytes are read into memory, their SHA-256 checked
// against the list, and only then decoded, by the decoder the packer
// checked every frame with (initrdlayout.FrameDecoder), into exactly the
// listed number of bytes, and written at their place in the payload. The
// decoded bytes are not hashed again: they are a function of checked bytes
// and of the init's own code, both in the launch measurement. Frames are
// independent, so every CPU takes some. The payload is written to a
// temporary name and renamed to /bin/katana once whole; the packed file is
// then dropped (its memory returns to the guest). With HugeTmpfs, /bin is
// first covered by a tmpfs with transparent huge pages, made read-only
// once the payload is in.
package payload

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Options say where the payload is and how to check it.
type Options struct {
	Root   string              // initrd root ("/" in the guest)
	Frames initrdlayout.Frames // the checked frame list
	Hash   integrity.Hasher    // nil: integrity.GoHasher
	// Workers is how many frames are decoded at once; 0: one per CPU, at
	// most 4.
	Workers int
	// HugeTmpfs mounts a tmpfs with transparent huge pages over the
	// payload's folder (/bin) for the decoded payload, read-only once it is
	// written; the packed file is unlinked first (its pages stay mapped
	// until decoded). Without huge pages (or when the mount fails) the
	// payload is written to the initramfs.
	HugeTmpfs bool
	// Meminfo is the kernel's memory report read before decoding (default
	// /proc/meminfo); see Headroom.
	Meminfo string
}

// Headroom is the memory, beyond the decoded payload, that must be
// available when decoding starts. Before Katana runs, PID 1 is the only
// process: when the guest runs out of memory the kernel's OOM killer finds
// nothing it may kill and panics ("System is deadlocked on memory") rather
// than failing the allocation, so a guest too small for its payload is
// refused here, with a boot error, instead. Measured under TCG with the
// boot tests' 36 MiB payload: 8.6 MiB to spare (128 MiB guest) ended in
// that panic, 37 MiB (160 MiB guest) booted.
const Headroom = 32 << 20

// Report is the outcome of Unpack.
type Report struct {
	Frames int
	Packed int64 // compressed bytes checked
	Size   int64 // payload bytes written
	Took   time.Duration
	// Time spent in each step, added up over the workers (Write: copies
	// when the decoder could not write in place; page faults on the
	// output count in Decode).
	Hash, Decode, Write time.Duration
	// Populate: allocating the output's pages, frame by frame.
	Populate time.Duration
	// Map is the time spent mapping both files before the workers start.
	Map time.Duration
	// OnHugeTmpfs says the payload was written to a huge-page tmpfs;
	// Note says why not when one was asked for.
	OnHugeTmpfs bool
	Note        string
}

// Unpack checks and decodes every frame and leaves the payload at
// initrdlayout.PayloadPath, mode 0755. It refuses to run when a file is
// already there, and when the guest has less than the payload's size plus
// Headroom of memory available. On error it removes what it wrote and
// names the frame.
//
// Both files are memory-mapped, their pages populated in bulk rather than
// one fault per page (the input with MAP_POPULATE, each frame's output
// pages by its worker before decoding): each frame is hashed where the
// kernel unpacked it and decoded straight into the output file's pages,
// with no copy through the Go heap. Under TCG this made the boot's init
// phase ~0.4 s shorter than read/hash/decode/pwrite through buffers
// (medians of 8 boots each, BENCHMARKS.md).
// A fault on a mapping (the guest out of memory for the file's pages) is
// turned into an error, never a crash.
func Unpack(o Options) (Report, error) {
	start := time.Now()
	h := o.Hash
	if h == nil {
		h = integrity.GoHasher{}
	}
	fr := o.Frames
	if len(fr.List) == 0 || fr.Size < 1 {
		return Report{}, errors.New("payload: the frame list has no frames")
	}
	src := filepath.Join(o.Root, initrdlayout.PackedPayloadPath)
	dst := filepath.Join(o.Root, initrdlayout.PayloadPath)
	if _, err := os.Lstat(dst); err == nil {
		return Report{}, fmt.Errorf("payload: %s is in the initrd beside %s: refusing an ambiguous payload", initrdlayout.PayloadPath, initrdlayout.PackedPayloadPath)
	}
	in, err := integrity.Open(src)
	if err != nil {
		return Report{}, fmt.Errorf("payload: %w (truncated initrd unpack? look for \"Initramfs unpacking failed\" above)", err)
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return Report{}, fmt.Errorf("payload: %w", err)
	} else if st.Size() != fr.Packed() {
		return Report{}, fmt.Errorf("payload: %s is %d bytes, the frame list says %d (truncated initrd unpack? look for \"Initramfs unpacking failed\" above): %w",
			initrdlayout.PackedPayloadPath, st.Size(), fr.Packed(), integrity.ErrMismatch)
	}
	if err := checkMemory(o.Meminfo, fr.Size); err != nil {
		return Report{}, err
	}
	mapStart := time.Now()
	packed, err := unix.Mmap(int(in.Fd()), 0, int(fr.Packed()), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return Report{}, fmt.Errorf("payload: mapping %s: %w", initrdlayout.PackedPayloadPath, err)
	}
	defer unix.Munmap(packed)
	dir := filepath.Dir(dst)
	var rep Report
	if o.HugeTmpfs {
		// One 2 MiB page instead of 512 small ones: under TCG allocating
		// the payload's 15,000 small pages cost more than decoding it, and
		// Katana's code then runs from huge pages.
		if err := os.Remove(src); err != nil {
			return Report{}, fmt.Errorf("payload: %w", err)
		}
		// Sized for the payload: tmpfs's default limit, half the memory,
		// would refuse a payload that fits but is larger than that.
		const huge = 2 << 20
		opts := fmt.Sprintf("mode=0755,huge=within_size,size=%d", (fr.Size+huge-1)/huge*huge+huge)
		if err := unix.Mount("katana", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			rep.Note = fmt.Sprintf("no huge-page tmpfs on %s (%v): payload written to the initramfs", dir, err)
		} else {
			rep.OnHugeTmpfs = true
		}
	}

	tmp := dst + ".partial"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return Report{}, fmt.Errorf("payload: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	if err := out.Truncate(fr.Size); err != nil {
		return Report{}, fmt.Errorf("payload: sizing %s: %w", tmp, err)
	}
	payload, err := unix.Mmap(int(out.Fd()), 0, int(fr.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return Report{}, fmt.Errorf("payload: mapping %s: %w", tmp, err)
	}
	mapped := true
	mapTook := time.Since(mapStart)
	defer func() {
		if mapped {
			unix.Munmap(payload)
		}
	}()

	workers := o.Workers
	if workers <= 0 {
		workers = min(runtime.NumCPU(), 4)
	}
	t, err := decodeFrames(h, fr, packed, payload, workers)
	rep.Populate, rep.Hash, rep.Decode, rep.Write = t.populate, t.hash, t.decode, t.write
	if err != nil {
		return Report{}, err
	}
	mapped = false
	if err := unix.Munmap(payload); err != nil {
		return Report{}, fmt.Errorf("payload: unmapping %s: %w", tmp, err)
	}
	if err := out.Chmod(0o755); err != nil {
		return Report{}, fmt.Errorf("payload: %w", err)
	}
	if err := out.Close(); err != nil {
		return Report{}, fmt.Errorf("payload: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Report{}, fmt.Errorf("payload: %w", err)
	}
	ok = true
	if rep.OnHugeTmpfs {
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return Report{}, fmt.Errorf("payload: making %s read-only: %w", dir, err)
		}
	} else if err := os.Remove(src); err != nil && !(o.HugeTmpfs && os.IsNotExist(err)) {
		return Report{}, fmt.Errorf("payload: removing %s after decoding it: %w", initrdlayout.PackedPayloadPath, err)
	}
	rep.Frames, rep.Packed, rep.Size, rep.Took, rep.Map = len(fr.List), fr.Packed(), fr.Size, time.Since(start), mapTook
	return rep, nil
}

// checkMemory refuses a payload of size bytes when the kernel reports less
// than size+Headroom available (MemAvailable in meminfo). A report that
// cannot be read or has no MemAvailable (kernels before 3.14) is not a
// reason to stop the boot: the check is then skipped.
func checkMemory(meminfo string, size int64) error {
	if meminfo == "" {
		meminfo = "/proc/meminfo"
	}
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return nil
	}
	avail, ok := memAvailable(b)
	if !ok {
		return nil
	}
	const mib = 1 << 20
	if need := size + Headroom; avail < need {
		return fmt.Errorf("payload: the guest has %d MiB of memory available, and %s needs %d MiB decoded plus %d MiB to start it: "+
			"give the VM more memory (hostbuild run --memory); short of it, the kernel would panic with nothing to kill",
			avail/mib, initrdlayout.PayloadPath, (size+mib-1)/mib, Headroom/mib)
	}
	return nil
}

// memAvailable returns the "MemAvailable:" line of /proc/meminfo in bytes.
func memAvailable(meminfo []byte) (int64, bool) {
	for line := range bytes.Lines(meminfo) {
		rest, ok := bytes.CutPrefix(line, []byte("MemAvailable:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > math.MaxInt64/1024 {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

// steps times the steps of one frame.
// decodeFrames checks and decodes every frame of fr from packed into
// payload, on workers goroutines (at most one a frame), each taking the
// next frame left: its output pages allocated (populate), its compressed
// bytes hashed against the frame list, then decoded in place. The first
// failure stops the others from taking more frames; the error returned is
// that of the first frame in the list that failed. total adds up each
// step's time over the workers.
func decodeFrames(h integrity.Hasher, fr initrdlayout.Frames, packed, payload []byte, workers int) (total steps, _ error) {
	workers = min(workers, len(fr.List))
	offs := make([]int64, len(fr.List)) // decoded offsets
	for i := 1; i < len(fr.List); i++ {
		offs[i] = offs[i-1] + fr.List[i-1].Size
	}
	var (
		mu   sync.Mutex
		next int
		errs = make([]error, len(fr.List))
		bad  bool
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// PID 1 must not die of a worker's panic: it becomes this
			// worker's error, and the boot error names it.
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					errs[0], bad = errors.Join(errs[0], fmt.Errorf("payload: worker panic: %v", r)), true
					mu.Unlock()
				}
			}()
			d, err := initrdlayout.NewFrameDecoder()
			if err != nil {
				mu.Lock()
				errs[0], bad = fmt.Errorf("payload: %w", err), true
				mu.Unlock()
				return
			}
			defer d.Close()
			for {
				mu.Lock()
				if next >= len(fr.List) || bad {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				var t steps
				f := fr.List[i]
				err := populate(payload, offs[i], f.Size, &t)
				if err == nil {
					err = frame(h, d, i, f, packed[f.Off:f.Off+f.Len:f.Off+f.Len], payload[offs[i]:offs[i]+f.Size:offs[i]+f.Size], &t)
				}
				mu.Lock()
				if err != nil {
					errs[i], bad = err, true
				}
				total.populate += t.populate
				total.hash += t.hash
				total.decode += t.decode
				total.write += t.write
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs { // the first frame that failed
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

type steps struct{ populate, hash, decode, write time.Duration }

// populate allocates the output pages of one frame in one call (Linux 5.14
// MADV_POPULATE_WRITE), on the worker's CPU, instead of one fault per page
// while decoding; older kernels fall back to faulting.
func populate(m []byte, off, n int64, t *steps) error {
	start := time.Now()
	lo := off &^ int64(os.Getpagesize()-1)
	err := unix.Madvise(m[lo:off+n], unix.MADV_POPULATE_WRITE)
	t.populate += time.Since(start)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("payload: allocating %s bytes %d-%d (is the guest short of memory for the payload?): %w", initrdlayout.PayloadPath, off, off+n, err)
	}
	return nil
}

// frame checks the compressed frame comp (frame i) and decodes it into out,
// exactly len(out) bytes. A memory fault on either mapping becomes an error.
func frame(h integrity.Hasher, d *initrdlayout.FrameDecoder, i int, f initrdlayout.Frame, comp, out []byte, t *steps) (err error) {
	where := fmt.Sprintf("%s frame %d (bytes %d-%d)", initrdlayout.PackedPayloadPath, i, f.Off, f.Off+f.Len)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("payload: %s: memory fault (is the guest short of memory for the payload?): %v", where, r)
		}
	}()
	mark := time.Now()
	lap := func(d *time.Duration) {
		now := time.Now()
		*d += now.Sub(mark)
		mark = now
	}
	sum, err := h.SumBytes(comp)
	lap(&t.hash)
	if err != nil {
		return fmt.Errorf("payload: hashing %s (%s): %w", where, h.Name(), err)
	}
	if sum != f.Sum {
		return fmt.Errorf("payload: %s (sha256 %s, want %s; truncated initrd unpack? look for \"Initramfs unpacking failed\" above): %w",
			where, hex.EncodeToString(sum[:8]), hex.EncodeToString(f.Sum[:8]), integrity.ErrMismatch)
	}
	b, err := d.Decode(comp, f.Size, out[:0])
	lap(&t.decode)
	if err != nil {
		return fmt.Errorf("payload: decoding %s: %w", where, err)
	}
	if &b[0] != &out[0] { // the decoder grew the buffer: copy into place
		copy(out, b)
		lap(&t.write)
	}
	return nil
}

package payload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// HugeTmpfs asked for but refused (the kernel or the caller's privileges):
// the packed file was unlinked before the mount, so removing it after the
// decode finds nothing, which is expected and no error. As root the mount
// works (TestUnpackHugeTmpfs); here Unpack runs on a thread of its own
// without CAP_SYS_ADMIN (capabilities are per thread), so that the mount
// fails as it does for an unprivileged caller.
func TestUnpackHugeTmpfsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("not root: TestUnpackHugeTmpfs covers the refused mount")
	}
	data := payloadBytes(1<<20 + 3)
	root, fr := pack(t, data, 512<<10)
	bin := filepath.Join(root, "bin")
	t.Cleanup(func() { unix.Unmount(bin, unix.MNT_DETACH) })
	type result struct {
		r   Report
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, without its capability, ends with
		// this goroutine instead of running others.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			ch <- result{err: err}
			return
		}
		data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			ch <- result{err: err}
			return
		}
		r, err := Unpack(Options{Root: root, Frames: fr, Workers: 2, HugeTmpfs: true})
		ch <- result{r, err}
	}()
	res := <-ch
	if res.err != nil {
		t.Fatalf("Unpack with the huge-page tmpfs refused: %v, want the payload written to the initramfs", res.err)
	}
	if res.r.OnHugeTmpfs || !strings.Contains(res.r.Note, "no huge-page tmpfs on") {
		t.Errorf("report OnHugeTmpfs=%v Note=%q, want no tmpfs and a note saying why", res.r.OnHugeTmpfs, res.r.Note)
	}
	got, err := os.ReadFile(filepath.Join(root, initrdlayout.PayloadPath))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("payload differs (%v)", err)
	}
}

// A frame list that decodes to no bytes at all is refused up front, as
// "no frames", before anything is mapped or written: it is no payload.
func TestUnpackRefusesZeroSize(t *testing.T) {
	root, fr := pack(t, payloadBytes(100), 100)
	fr.Size = 0
	fr.List[0].Size = 0
	_, err := Unpack(Options{Root: root, Frames: fr})
	if err == nil || !strings.Contains(err.Error(), "the frame list has no frames") {
		t.Errorf("Unpack of a 0-byte payload: %v, want the frame list refused as having no frames", err)
	}
	nothingLeft(t, root)
}

// EINVAL from MADV_POPULATE_WRITE means the kernel does not have it
// (before 5.14), or cannot do it for this mapping: populate falls back to
// faulting the pages in while decoding, with no error. A mapping that does
// not start on a page boundary gets EINVAL from any kernel.
func TestPopulateEINVALIsNoError(t *testing.T) {
	page := os.Getpagesize()
	m, err := unix.Mmap(-1, 0, 3*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	var st steps
	if err := populate(m[1:], 0, int64(page), &st); err != nil {
		t.Errorf("populate where madvise says EINVAL: %v, want nil (fall back to faulting)", err)
	}
}

// countingHasher is GoHasher counting the frames it hashes.
type countingHasher struct {
	integrity.GoHasher
	frames int
}

func (h *countingHasher) SumBytes(b []byte) ([32]byte, error) {
	h.frames++
	return h.GoHasher.SumBytes(b)
}

// The first bad frame ends the unpack: no worker takes another frame
// after it (the boot has failed; decoding the rest would only delay the
// power-off). With one worker the frames go in order, so a bad frame 0 is
// the only one hashed.
func TestUnpackStopsAtFirstBadFrame(t *testing.T) {
	root, fr := pack(t, payloadBytes(400<<10), 100<<10)
	p := filepath.Join(root, initrdlayout.PackedPayloadPath)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[fr.List[0].Off+3] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &countingHasher{}
	if _, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 1}); !errors.Is(err, integrity.ErrMismatch) {
		t.Fatalf("Unpack with frame 0 damaged: %v, want ErrMismatch", err)
	}
	if h.frames != 1 {
		t.Errorf("%d of %d frames hashed after frame 0 failed, want 1 (stop at the first failure)", h.frames, len(fr.List))
	}
	nothingLeft(t, root)
}

// hookHasher is GoHasher running hook before hashing the first frame.
type hookHasher struct {
	integrity.GoHasher
	hook func()
	done bool
}

func (h *hookHasher) SumBytes(b []byte) ([32]byte, error) {
	if !h.done {
		h.done = true
		h.hook()
	}
	return h.GoHasher.SumBytes(b)
}

// A fault on the packed file's mapping (here: the file truncated under it,
// so its pages are gone and reading them raises SIGBUS) is an error naming
// the frame, not a crash of PID 1.
func TestUnpackMappingFaultIsError(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	src := filepath.Join(root, initrdlayout.PackedPayloadPath)
	h := &hookHasher{hook: func() {
		if err := os.Truncate(src, 0); err != nil {
			t.Errorf("truncate: %v", err)
		}
	}}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("Unpack with the packed file truncated under its mapping: %v, want a memory fault error", err)
	}
	nothingLeft(t, root)
}

// A dangling symlink at /bin/katana is "a file already there": Unpack
// refuses (Lstat), rather than replacing what the initrd put there.
func TestUnpackRefusesDanglingSymlink(t *testing.T) {
	root, fr := pack(t, payloadBytes(10<<10), 4<<10)
	dst := filepath.Join(root, initrdlayout.PayloadPath)
	if err := os.Symlink("/nonexistent/katana", dst); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(Options{Root: root, Frames: fr}); err == nil || !strings.Contains(err.Error(), "ambiguous payload") {
		t.Fatalf("Unpack with a dangling symlink at %s: %v, want a refusal", initrdlayout.PayloadPath, err)
	}
	if l, err := os.Readlink(dst); err != nil || l != "/nonexistent/katana" {
		t.Errorf("the symlink was replaced: %q %v", l, err)
	}
}

// Without HugeTmpfs the packed file is removed after decoding, and a
// failure to remove it (here: it is already gone) is an error: only with
// HugeTmpfs, which removed it before decoding, is its absence expected.
func TestUnpackPackedGoneIsErrorWithoutHugeTmpfs(t *testing.T) {
	root, fr := pack(t, payloadBytes(10<<10), 4<<10)
	src := filepath.Join(root, initrdlayout.PackedPayloadPath)
	h := &hookHasher{hook: func() {
		if err := os.Remove(src); err != nil {
			t.Errorf("remove: %v", err)
		}
	}}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "removing "+initrdlayout.PackedPayloadPath) {
		t.Fatalf("Unpack whose packed file vanished: %v, want an error removing it", err)
	}
}

// A packed payload longer than its frame list says is refused like a short
// one: the file is not the one the list describes.
func TestUnpackRefusesLongerPacked(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	p := filepath.Join(root, initrdlayout.PackedPayloadPath)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	_, err = Unpack(Options{Root: root, Frames: fr, Workers: 2})
	if !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), "the frame list says") {
		t.Errorf("packed payload one byte longer: %v, want ErrMismatch naming the size", err)
	}
	nothingLeft(t, root)
}

// The temporary payload is created, never reused: a bin/katana.partial
// already in the initrd (here a symbolic link out of the folder) is an
// error, and nothing is written through it.
func TestUnpackRefusesExistingPartial(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, initrdlayout.PayloadPath+".partial")); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(Options{Root: root, Frames: fr, Workers: 2}); err == nil {
		t.Error("Unpack wrote the payload through an existing bin/katana.partial")
	}
	if b, _ := os.ReadFile(victim); !bytes.Equal(b, []byte("keep")) {
		t.Errorf("the link's target was overwritten: %d bytes", len(b))
	}
	if _, err := os.Lstat(filepath.Join(root, initrdlayout.PayloadPath)); !os.IsNotExist(err) {
		t.Errorf("%s exists after the refusal (%v)", initrdlayout.PayloadPath, err)
	}
}

// A worker's panic outside the frame check (here an inconsistent frame
// list whose frames decode past the payload's size) is an error, not the
// end of PID 1, and leaves nothing behind.
func TestUnpackWorkerPanic(t *testing.T) {
	root, fr := pack(t, payloadBytes(300<<10), 100<<10)
	fr.Size -= 1
	_, err := Unpack(Options{Root: root, Frames: fr, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "payload: worker panic") {
		t.Errorf("Unpack with frames past the payload's end: %v, want a worker panic error", err)
	}
	nothingLeft(t, root)
}

// barrierHasher answers every frame with a wrong sum, once n hashes are
// under way at once (or after a second), so that several workers fail.
type barrierHasher struct {
	integrity.GoHasher
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (h *barrierHasher) SumBytes([]byte) ([32]byte, error) {
	h.mu.Lock()
	if h.arrived++; h.arrived == h.n {
		close(h.all)
	}
	h.mu.Unlock()
	select {
	case <-h.all:
	case <-time.After(time.Second):
	}
	return [32]byte{}, nil
}

// When several frames fail at once, the error is the first failed frame's
// in the list (frame 0), whichever worker finished last.
func TestUnpackNamesTheFirstFailedFrame(t *testing.T) {
	root, fr := pack(t, payloadBytes(400<<10), 100<<10)
	h := &barrierHasher{n: 2, all: make(chan struct{})}
	_, err := Unpack(Options{Root: root, Frames: fr, Hash: h, Workers: 2})
	if !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), " frame 0 ") {
		t.Errorf("frames 0 and 1 failed together: %v, want frame 0's mismatch", err)
	}
	nothingLeft(t, root)
}

package payload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Tests added after a mutation-testing sample of the payload unpacker:
// each pins a decision that the rest of the suite let change unnoticed.

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

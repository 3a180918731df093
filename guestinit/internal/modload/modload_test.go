package modload

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/modzip"
)

// fakeKernel records what would be loaded and fails on request.
type fakeKernel struct {
	loaded []string // module images, as strings
	errs   map[string]error
	calls  []string // "finit" or "finit-compressed" or "init", in order
}

func (k *fakeKernel) FinitModule(fd int, params string, flags int) error {
	b := make([]byte, 1<<16)
	n, _ := unix.Pread(fd, b, 0)
	img := b[:n]
	if flags&unix.MODULE_INIT_COMPRESSED_FILE != 0 {
		k.calls = append(k.calls, "finit-compressed")
		ext := map[bool]string{true: ".xz", false: ".zst"}[bytes.HasPrefix(img, []byte("\xfd7zXZ"))]
		if bytes.HasPrefix(img, []byte{0x1f, 0x8b}) {
			ext = ".gz"
		}
		d, err := Decompress("m.ko"+ext, img)
		if err != nil {
			return unix.EINVAL
		}
		img = d
	} else {
		k.calls = append(k.calls, "finit")
	}
	return k.load(string(img))
}

func (k *fakeKernel) InitModule(image []byte, params string) error {
	k.calls = append(k.calls, "init")
	return k.load(string(image))
}

func (k *fakeKernel) load(img string) error {
	if err := k.errs[img]; err != nil {
		return err
	}
	k.loaded = append(k.loaded, img)
	return nil
}

func compress(t *testing.T, ext string, data []byte) []byte {
	var b bytes.Buffer
	switch ext {
	case ".xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".zst":
		w, _ := zstd.NewWriter(&b)
		w.Write(data)
		w.Close()
	case ".gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	default:
		return data
	}
	return b.Bytes()
}

// setup writes modules (name → extension) whose image is "image:<name>",
// the load list in the given order and the content list.
func setup(t *testing.T, names []string, exts []string) (string, initrdlayout.Contents, []initrdlayout.Module) {
	t.Helper()
	root := t.TempDir()
	contents := initrdlayout.Contents{}
	var mods []initrdlayout.Module
	for i, n := range names {
		rel := "lib/modules/6.1.0/kernel/" + n + ".ko" + exts[i]
		data := compress(t, exts[i], []byte("image:"+n))
		os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755)
		os.WriteFile(filepath.Join(root, rel), data, 0o644)
		contents[rel] = sha256.Sum256(data)
		mods = append(mods, initrdlayout.Module{Name: n, Path: rel})
	}
	list := initrdlayout.FormatModuleList(mods)
	os.MkdirAll(filepath.Join(root, "etc/guestinit"), 0o755)
	os.WriteFile(filepath.Join(root, initrdlayout.ModulesLoad), list, 0o644)
	contents[initrdlayout.ModulesLoad] = sha256.Sum256(list)
	return root, contents, mods
}

func TestLoadInOrderAllFormats(t *testing.T) {
	names := []string{"virtio_pci", "virtio_net", "vsock", "button"}
	root, contents, _ := setup(t, names, []string{"", ".xz", ".zst", ".gz"})
	mods, err := ReadList(root, contents)
	if err != nil {
		t.Fatalf("ReadList: %v", err)
	}
	k := &fakeKernel{errs: map[string]error{"image:vsock": unix.EEXIST}}
	res, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff([]string{"image:virtio_pci", "image:virtio_net", "image:button"}, k.loaded); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	var st []Status
	for _, r := range res {
		st = append(st, r.Status)
	}
	if diff := cmp.Diff([]Status{Loaded, Loaded, Present, Loaded}, st); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// A kernel with CONFIG_MODULE_DECOMPRESS (/sys/module/compression names
// its one format) gets modules of that format through
// finit_module(MODULE_INIT_COMPRESSED_FILE); other formats, and every
// format on a kernel without it, are decompressed here and go through
// init_module. A refusal of a module the kernel decompressed is its error,
// not retried (its init would run twice).
func TestLoadCompressedInKernel(t *testing.T) {
	names := []string{"virtio_pci", "virtio_net", "vsock", "button"}
	exts := []string{"", ".xz", ".zst", ".gz"}
	for _, tc := range []struct {
		compression string // /sys/module/compression; "" for none
		calls       []string
	}{
		{"", []string{"finit", "init", "init", "init"}},
		{"xz\n", []string{"finit", "finit-compressed", "init", "init"}},
		{"zstd\n", []string{"finit", "init", "finit-compressed", "init"}},
		{"gzip\n", []string{"finit", "init", "init", "finit-compressed"}},
		{"lz4\n", []string{"finit", "init", "init", "init"}},
	} {
		root, contents, mods := setup(t, names, exts)
		if tc.compression != "" {
			os.MkdirAll(filepath.Join(root, "sys/module"), 0o755)
			os.WriteFile(filepath.Join(root, "sys/module/compression"), []byte(tc.compression), 0o444)
		}
		k := &fakeKernel{}
		if _, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k}); err != nil {
			t.Fatalf("compression %q: Load: %v", tc.compression, err)
		}
		if diff := cmp.Diff([]string{"image:virtio_pci", "image:virtio_net", "image:vsock", "image:button"}, k.loaded); diff != "" {
			t.Errorf("compression %q: loaded (-want +got):\n%s", tc.compression, diff)
		}
		if diff := cmp.Diff(tc.calls, k.calls); diff != "" {
			t.Errorf("compression %q: system calls (-want +got):\n%s", tc.compression, diff)
		}
	}
	for _, refusal := range []error{unix.EINVAL, unix.ENOENT} {
		root, contents, mods := setup(t, []string{"a"}, []string{".xz"})
		os.MkdirAll(filepath.Join(root, "sys/module"), 0o755)
		os.WriteFile(filepath.Join(root, "sys/module/compression"), []byte("xz\n"), 0o444)
		k := &fakeKernel{errs: map[string]error{"image:a": refusal}}
		_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k})
		if !errors.Is(err, refusal) || len(k.calls) != 1 {
			t.Errorf("in-kernel refusal %v: err %v after calls %v, want it after one finit", refusal, err, k.calls)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(root string, contents initrdlayout.Contents, mods []initrdlayout.Module)
		kerr     map[string]error
		wantErr  error
		mentions []string
	}{
		{name: "kernel refuses", kerr: map[string]error{"image:b": unix.ENOENT}, wantErr: unix.ENOENT,
			mentions: []string{"loading module b", "unknown symbol"}},
		{name: "truncated file", mutate: func(root string, _ initrdlayout.Contents, mods []initrdlayout.Module) {
			os.WriteFile(filepath.Join(root, mods[1].Path), []byte("ima"), 0o644)
		}, wantErr: ErrMismatch, mentions: []string{"loading module b", "truncated"}},
		{name: "not listed", mutate: func(_ string, contents initrdlayout.Contents, mods []initrdlayout.Module) {
			delete(contents, mods[1].Path)
		}, wantErr: ErrNotListed, mentions: []string{"module b"}},
		{name: "missing file", mutate: func(root string, _ initrdlayout.Contents, mods []initrdlayout.Module) {
			os.Remove(filepath.Join(root, mods[1].Path))
		}, wantErr: os.ErrNotExist, mentions: []string{"module b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, contents, mods := setup(t, []string{"a", "b", "c"}, []string{"", "", ""})
			if tc.mutate != nil {
				tc.mutate(root, contents, mods)
			}
			k := &fakeKernel{errs: tc.kerr}
			res, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if len(res) != 1 || len(k.loaded) != 1 {
				t.Errorf("want to stop after the first module, got %d results, %d loaded", len(res), len(k.loaded))
			}
		})
	}
}

func TestNoDeviceIsSkipped(t *testing.T) {
	root, contents, mods := setup(t, []string{"sev-guest", "x"}, []string{"", ""})
	k := &fakeKernel{errs: map[string]error{"image:sev-guest": unix.ENODEV}}
	res, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if res[0].Status != Skipped || !errors.Is(res[0].Skipped, unix.ENODEV) || res[1].Status != Loaded {
		t.Errorf("results %+v, want sev-guest skipped with ENODEV, x loaded", res)
	}
	// A probe that failed is ENODEV too (platform_driver_probe): the
	// kernel's words go with the skip.
	kernelLog := func(m string) []string {
		if m == "sev-guest" {
			return []string{"sev-guest sev-guest: Invalid VMPCK0 communication key"}
		}
		return nil
	}
	res, err = Load(mods, Options{Root: root, Contents: contents, Kernel: &fakeKernel{errs: map[string]error{"image:sev-guest": unix.ENODEV}}, KernelLog: kernelLog})
	if err != nil || res[0].Skipped == nil || !strings.Contains(res[0].Skipped.Error(), "kernel: sev-guest sev-guest: Invalid VMPCK0 communication key") || !errors.Is(res[0].Skipped, unix.ENODEV) {
		t.Errorf("Load: %v, skipped %v; want the kernel's message with the skip", err, res[0].Skipped)
	}
}

func TestReadList(t *testing.T) {
	root, contents, _ := setup(t, []string{"a"}, []string{""})
	os.WriteFile(filepath.Join(root, initrdlayout.ModulesLoad), []byte("a lib/modules/x.ko\nb lib/modules/y.ko\n"), 0o644)
	if _, err := ReadList(root, contents); !errors.Is(err, ErrMismatch) {
		t.Errorf("changed list: err = %v, want ErrMismatch", err)
	}
	os.Remove(filepath.Join(root, initrdlayout.ModulesLoad))
	if _, err := ReadList(root, contents); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("listed but missing: err = %v, want not exist", err)
	}
	delete(contents, initrdlayout.ModulesLoad)
	if mods, err := ReadList(root, contents); err != nil || mods != nil {
		t.Errorf("no list at all: %v, %v; want no modules", mods, err)
	}
}

func TestDecompressRejects(t *testing.T) {
	if _, err := Decompress("x.ko.bz2", nil); !errors.Is(err, ErrFormat) {
		t.Errorf("bz2: err = %v, want ErrFormat", err)
	}
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if _, err := Decompress("x.ko"+ext, []byte("not compressed")); err == nil {
			t.Errorf("%s: garbage decompressed without error", ext)
		}
	}
}

func TestSplit(t *testing.T) {
	mods := []initrdlayout.Module{{Name: "virtio_pci"}, {Name: "af_alg"}, {Name: "sev-guest"}, {Name: "algif_hash"}, {Name: "button"}}
	pre, rest := Split(mods, "algif-hash", "af_alg", "sev_guest", "absent")
	names := func(ms []initrdlayout.Module) (out []string) {
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"af_alg", "sev-guest", "algif_hash"}, names(pre)); diff != "" {
		t.Errorf("pre (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"virtio_pci", "button"}, names(rest)); diff != "" {
		t.Errorf("rest (-want +got):\n%s", diff)
	}
}

func TestDrop(t *testing.T) {
	mods := []initrdlayout.Module{{Name: "af_alg", Path: "a.ko"}, {Name: "sha256-ssse3", Path: "s.ko"}, {Name: "button", Path: "b.ko"}}
	why := errors.New("no SSSE3")
	kept, res := Drop(mods, map[string]error{"sha256_ssse3": why, "absent": why})
	if diff := cmp.Diff([]initrdlayout.Module{{Name: "af_alg", Path: "a.ko"}, {Name: "button", Path: "b.ko"}}, kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if len(res) != 1 || res[0].Name != "sha256-ssse3" || res[0].Path != "s.ko" || res[0].Status != Skipped || res[0].Skipped != why {
		t.Errorf("results %+v, want one Skipped sha256-ssse3 with its reason", res)
	}
	if kept, res := Drop(mods, nil); len(kept) != 3 || len(res) != 0 {
		t.Errorf("Drop(nil) kept %d, skipped %d; want 3, 0", len(kept), len(res))
	}
}

func TestKernelLogInError(t *testing.T) {
	root, contents, mods := setup(t, []string{"virtio"}, []string{""})
	k := &fakeKernel{errs: map[string]error{"image:virtio": unix.ENOENT}}
	_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k, KernelLog: func(m string) []string {
		return MatchModule([]string{
			"4,610,2865000,-;virtio: Unknown symbol vring_del_virtqueue (err -2)\n",
			"6,611,2866000,-;virtio_net: something else\n SUBSYSTEM=x\n",
			"4,612,2867000,-;virtio: Unknown symbol vring_interrupt (err -2)\n",
		}, m, 3)
	}})
	want := "virtio: Unknown symbol vring_del_virtqueue (err -2); virtio: Unknown symbol vring_interrupt (err -2)"
	if err == nil || !strings.Contains(err.Error(), "; kernel: "+want) {
		t.Errorf("error %v does not carry the kernel's messages", err)
	}
}

func TestMatchModule(t *testing.T) {
	recs := []string{"garbage", "4,1,1,-;sev_guest: x\n", "4,2,2,-;sev-guest: y\n", "4,3,3,-;sev_guestx: z\n", "4,4,4,-;a: sev_guest: w\n"}
	got := MatchModule(recs, "sev-guest", 5)
	if diff := cmp.Diff([]string{"sev_guest: x", "sev-guest: y"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := MatchModule(recs, "sev_guest", 1); len(got) != 1 || got[0] != "sev-guest: y" {
		t.Errorf("max 1: %q", got)
	}
	if got := KernelMessages("/nonexistent/kmsg", "x", 3); got != nil {
		t.Errorf("unreadable log: %q", got)
	}
	// The driver core's messages name the driver, then the device.
	dev := []string{"3,100,5,-;sev-guest sev-guest: Invalid VMPCK0 communication key\n", "3,101,5,-;virtio_net virtio0: probe failed\n", "3,102,5,-;sev-guestx y\n"}
	if diff := cmp.Diff([]string{"sev-guest sev-guest: Invalid VMPCK0 communication key"}, MatchModule(dev, "sev_guest", 3)); diff != "" {
		t.Errorf("driver core message (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"virtio_net virtio0: probe failed"}, MatchModule(dev, "virtio_net", 3)); diff != "" {
		t.Errorf("driver core message (-want +got):\n%s", diff)
	}
}

// KernelMessages reads the log it is given (here a file holding one
// record, as one read of /dev/kmsg returns one) up to its end.
func TestKernelMessagesReadsLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(p, []byte("4,610,2865000,-;virtio: Unknown symbol vring_del_virtqueue (err -2)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"virtio: Unknown symbol vring_del_virtqueue (err -2)"}, KernelMessages(p, "virtio", 3)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := KernelMessages(p, "vsock", 3); got != nil {
		t.Errorf("other module: %q", got)
	}
}

// KernelMessages stops after kmsgReadLimit bytes of a log that does not
// end (a device logging without pause; here /dev/zero, which never does).
func TestKernelMessagesBounded(t *testing.T) {
	done := make(chan []string, 1)
	go func() { done <- KernelMessages("/dev/zero", "virtio", 3) }()
	select {
	case got := <-done:
		if got != nil {
			t.Errorf("matches in /dev/zero: %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("KernelMessages still reading a log without end after 20 s")
	}
}

// matchRecords keeps the last max matches of the records it reads, one
// per read, skips an overwritten record (EPIPE), and stops at the limit.
func TestMatchRecords(t *testing.T) {
	recs := []string{"4,1,1,-;virtio: a\n", "4,2,1,-;vsock: x\n", "EPIPE", "4,3,1,-;virtio: b\n", "4,4,1,-;virtio: c\n", "4,5,1,-;virtio: d\n"}
	reader := func() func([]byte) (int, error) {
		i := 0
		return func(b []byte) (int, error) {
			if i == len(recs) {
				return 0, unix.EAGAIN
			}
			r := recs[i]
			i++
			if r == "EPIPE" {
				return 0, unix.EPIPE
			}
			return copy(b, r), nil
		}
	}
	if diff := cmp.Diff([]string{"virtio: b", "virtio: c", "virtio: d"}, matchRecords(reader(), "virtio", 3, 1<<20)); diff != "" {
		t.Errorf("last three (-want +got):\n%s", diff)
	}
	// The limit counts bytes read: the first two records are 35 bytes.
	if diff := cmp.Diff([]string{"virtio: a"}, matchRecords(reader(), "virtio", 3, 35)); diff != "" {
		t.Errorf("limit (-want +got):\n%s", diff)
	}
	if got := matchRecords(reader(), "button", 3, 1<<20); got != nil {
		t.Errorf("no match: %q, want nil", got)
	}
	// A log overwritten faster than it is read (EPIPE on every read) ends
	// too.
	epipe := func([]byte) (int, error) { return 0, unix.EPIPE }
	if got := matchRecords(epipe, "virtio", 3, 1<<20); got != nil {
		t.Errorf("EPIPE only: %q, want nil", got)
	}
}

// The zero Status is no status: a Result nobody filled in must not read as
// loaded, present or skipped.
func TestStatusString(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string
	}{{0, "unknown"}, {Loaded, "loaded"}, {Present, "present"}, {Skipped, "skipped"}, {4, "unknown"}} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", int(tc.s), got, tc.want)
		}
	}
}

// A module, or the load list, that a damaged archive left as a FIFO is a
// boot error naming it, not an open that blocks for ever.
func TestLoadNotRegular(t *testing.T) {
	within := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running after 5 s on a FIFO: the boot would hang", what)
			return nil
		}
	}
	root, contents, mods := setup(t, []string{"virtio_net"}, []string{""})
	p := filepath.Join(root, mods[0].Path)
	os.Remove(p)
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	err := within("Load", func() error {
		_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: &fakeKernel{}})
		return err
	})
	if !errors.Is(err, integrity.ErrNotRegular) || !strings.Contains(err.Error(), "virtio_net") {
		t.Errorf("Load of a FIFO module: %v", err)
	}
	l := filepath.Join(root, initrdlayout.ModulesLoad)
	os.Remove(l)
	if err := unix.Mkfifo(l, 0o644); err != nil {
		t.Fatal(err)
	}
	err = within("ReadList", func() error { _, err := ReadList(root, contents); return err })
	if !errors.Is(err, integrity.ErrNotRegular) || !strings.Contains(err.Error(), initrdlayout.ModulesLoad) {
		t.Errorf("ReadList of a FIFO: %v", err)
	}
}

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

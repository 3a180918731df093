package initrd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// A payload cut by a single byte is refused too: its last segment reaches
// one byte past the end of the file (the bound is exact).
func TestELFCutByOneByte(t *testing.T) {
	full := testelf.Executable("", bytes.Repeat([]byte{0x90}, 1<<16))
	if err := CheckStaticELF(full); err != nil {
		t.Fatalf("full executable refused: %v", err)
	}
	if err := CheckStaticELF(full[:len(full)-1]); err == nil || !strings.Contains(err.Error(), "an ELF file cut short") {
		t.Errorf("executable cut by one byte: %v; want it refused as cut short", err)
	}
}

// CommonMTime reports no common mtime when two entries differ (the
// manifest's SOURCE_DATE_EPOCH check relies on it).
func TestCommonMTime(t *testing.T) {
	a := &Archive{Entries: []Entry{{Path: "a", MTime: 5}, {Path: "b", MTime: 5}}}
	if m, ok := a.CommonMTime(); !ok || m != 5 {
		t.Errorf("equal mtimes: %d %v", m, ok)
	}
	a.Entries = append(a.Entries, Entry{Path: "c", MTime: 6})
	if m, ok := a.CommonMTime(); ok {
		t.Errorf("mtimes 5, 5, 6: CommonMTime says %d, want none", m)
	}
}

// complete refuses a path given twice and a file whose parent is not a
// folder (a layout that makes it a link or a file), instead of writing an
// archive whose second entry silently replaces the first, or whose file the
// kernel would place through a symlink.
func TestCompleteRefuses(t *testing.T) {
	reg := uint32(newc.TypeReg | 0o644)
	if _, err := complete([]file{{path: "etc/a", mode: reg}, {path: "etc/a", mode: reg, data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("a path twice: %v", err)
	}
	if _, err := complete([]file{{path: "lib", mode: newc.TypeLink | 0o777, target: "usr/lib"}, {path: "lib/modules/x.ko", mode: reg}}); err == nil || !strings.Contains(err.Error(), "needs lib to be a folder") {
		t.Errorf("a file under a symlink: %v", err)
	}
	got, err := complete([]file{{path: "a/b/c", mode: reg}})
	if err != nil || len(got) != 3 {
		t.Errorf("parents added: %d files, %v", len(got), err)
	}
}

// Every folder pack writes has 2 links, everything else 1 (hostbuild pack
// writes no hard links); the zstd stream declares the 8 MiB window the
// packer pins (frame header: no single-segment flag, window descriptor
// 0x68, 2^23 bytes).
func TestPackedHeaderFields(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	// A payload large enough for a streamed frame (a small archive is
	// written as one single-segment frame, which declares no window).
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	o.Payload = filepath.Join(dir, "big-katana")
	if err := os.WriteFile(o.Payload, testelf.Executable("", body), 0o755); err != nil {
		t.Fatal(err)
	}
	o.PayloadEncoding = "inline"
	b := pack(t, o)
	if len(b) < 6 || !bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("not zstd: % x", b[:min(6, len(b))])
	}
	fhd := b[4]
	if fhd&0x20 != 0 {
		t.Fatalf("zstd frame header %#x: single segment, no window descriptor", fhd)
	}
	wd := b[5]
	window := uint64(1) << (10 + wd>>3)
	window += window / 8 * uint64(wd&7)
	if window != 8<<20 {
		t.Errorf("zstd window %d bytes (descriptor %#x), want 8 MiB", window, wd)
	}
	a, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range a.Entries {
		want := uint32(1)
		if e.Type == "dir" {
			want = 2
		}
		if e.NLink != want {
			t.Errorf("%s (%s): %d links, want %d", e.Path, e.Type, e.NLink, want)
		}
	}
}

// The packed bytes of fixed inputs, per compression: any change to them
// (an entry's field, the order, the padding, a compressor setting such as
// the gzip level) changes every launch measurement, so it must be made on
// purpose, here. The zstd and gzip digests also change when
// klauspost/compress changes its output.
func TestPackedBytesPinned(t *testing.T) {
	for comp, want := range map[string]string{
		"none": "b67e6bae0901b11bd127a3adc1ac8208da76b2043ac4e42dd09941b456bba7e4",
		"gzip": "c4ea813591ddfb482fd0c8ea939b9a90527a7442fe840b86fdb73c18761b1bbb",
		"zstd": "db21af07062586b518d46bf771f5a19c06cfdbe5bdb67cda9bc9a11866d83436",
	} {
		o := inputs(t, t.TempDir())
		o.Modules = []string{"virtio_net", "virtio_pci"}
		o.SourceDateEpoch = 1700000000
		o.Compression = comp
		o.PayloadEncoding = "inline"
		sum := sha256.Sum256(pack(t, o))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: packed sha256 %s, want %s", comp, got, want)
		}
	}
}

// A layout device node at its path with other device numbers (/dev/null,
// 0666, made /dev/mem 1:1 by an appended archive) is refused as the guest
// refuses it (integrity.Unvouched), not vouched for by inspect and
// manifest.
func TestDeviceNumbersVouched(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Compression = "none"
	base := pack(t, o)
	for _, tc := range []struct {
		major, minor uint32
		want         string
	}{
		{1, 3, ""}, // the layout's own: vouched for
		{1, 1, "/dev/null is a chardev the layout does not make"},
		{5, 3, "/dev/null is a chardev the layout does not make"},
	} {
		buf := bytes.NewBuffer(bytes.Clone(base))
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
		nw := newc.NewWriter(buf)
		if err := nw.WriteHeader(&newc.Header{Name: "dev/null", Mode: newc.TypeChar | 0o666, NLink: 1, RDevMajor: tc.major, RDevMinor: tc.minor}); err != nil {
			t.Fatal(err)
		}
		if err := nw.Close(); err != nil {
			t.Fatal(err)
		}
		a, err := Read(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.OperatorFiles()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("/dev/null as %d:%d: %v, want %q", tc.major, tc.minor, err, tc.want)
		}
	}
}

package initrdlayout

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
)

// Paths that are not inside the root, or carry DEL, are refused by every
// list: ".." alone (not only "../x") and 0x7f (not only C0 controls).
func TestListsRefuseDotDotAndDEL(t *testing.T) {
	h := strings.Repeat("ab", 32)
	full := ChunkSize
	for _, p := range []string{"..", "bin/ka\x7ftana"} {
		if _, err := ParseContents(strings.NewReader(h + "  " + p + "\n")); !errors.Is(err, ErrContents) {
			t.Errorf("content list with path %q: %v, want ErrContents", p, err)
		}
		src := fmt.Sprintf("%s  0 %d %s\n%s  %d 5 %s\n", h, full, p, h, full, p)
		if _, err := ParseChunks(strings.NewReader(src)); !errors.Is(err, ErrContents) {
			t.Errorf("chunk list with path %q: %v, want ErrContents", p, err)
		}
	}
}

// The frame list's header digest is exactly 64 lowercase hex digits: a
// shorter one must not decode into a zero-padded digest, nor a longer one
// panic.
func TestFramesHeaderDigestLength(t *testing.T) {
	h := strings.Repeat("ab", 32)
	frame := h + "  0 7 30\n"
	for _, d := range []string{h[:62], h + "ab", ""} {
		src := "payload 30 " + d + "\n" + frame
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("header digest of %d hex digits: panic %v", len(d), r)
				}
			}()
			if _, err := ParseFrames(strings.NewReader(src)); !errors.Is(err, ErrContents) {
				t.Errorf("header digest of %d hex digits: %v, want ErrContents", len(d), err)
			}
		}()
	}
	// The header keyword is "payload", nothing else.
	if _, err := ParseFrames(strings.NewReader("paylod 30 " + h + "\n" + frame)); !errors.Is(err, ErrContents) {
		t.Errorf("header keyword \"paylod\": %v, want ErrContents", err)
	}
}

// At most 1024 frames: 1024 parse, 1025 do not.
func TestFramesCountBound(t *testing.T) {
	build := func(n int) []byte {
		f := Frames{Size: int64(n)}
		for i := range n {
			f.List = append(f.List, Frame{Off: int64(i), Len: 1, Size: 1})
		}
		return f.Format()
	}
	if _, err := ParseFrames(bytes.NewReader(build(1024))); err != nil {
		t.Errorf("1024 frames: %v", err)
	}
	if _, err := ParseFrames(bytes.NewReader(build(1025))); !errors.Is(err, ErrContents) || !strings.Contains(err.Error(), "more than 1024 frames") {
		t.Errorf("1025 frames: %v, want ErrContents naming the bound", err)
	}
}

// Chunk list: no empty chunk after a full one, a single-chunk file is
// refused wherever it is in the list (not only last), and the separator
// is two spaces.
func TestParseChunksRejectsMore(t *testing.T) {
	h := strings.Repeat("ab", 32)
	full := ChunkSize
	line := func(off, n int, p string) string { return fmt.Sprintf("%s  %d %d %s\n", h, off, n, p) }
	for _, tc := range []struct{ name, src string }{
		{"empty last chunk", line(0, full, "a") + line(full, 0, "a")},
		{"single chunk, not last", line(0, 10, "a") + line(0, full, "b") + line(full, 5, "b")},
		{"one space", h + " 0 " + fmt.Sprint(full) + " a\n" + line(full, 5, "a")},
		{"other separator", h + "xy0 " + fmt.Sprint(full) + " a\n" + line(full, 5, "a")},
	} {
		if _, err := ParseChunks(strings.NewReader(tc.src)); !errors.Is(err, ErrContents) {
			t.Errorf("%s: got %v, want ErrContents", tc.name, err)
		}
	}
}

// Module paths are under lib/modules/, not a sibling whose name starts
// with "lib/modules".
func TestModuleListSiblingDir(t *testing.T) {
	if _, err := ParseModuleList(strings.NewReader("a lib/modules.evil/a.ko\n")); err == nil {
		t.Error("module under lib/modules.evil accepted")
	}
}

// The root itself is no layout entry.
func TestParseLayoutRefusesRoot(t *testing.T) {
	if es, err := parseLayout([]byte("dir / 0755\n"), fstest.MapFS{}); err == nil {
		t.Errorf("dir / accepted: %+v", es)
	}
}

// PermBits is the inverse of permToMode for every permission, setgid,
// setuid and sticky included (pack writes the layout's folders with it).
func TestPermBitsRoundTrip(t *testing.T) {
	for p := uint32(0); p <= 0o7777; p++ {
		if got := PermBits(permToMode(p)); got != p {
			t.Fatalf("PermBits(permToMode(%04o)) = %04o", p, got)
		}
	}
	if got := PermBits(0o755 | fs.ModeSetgid); got != 0o2755 {
		t.Errorf("PermBits(setgid 0755) = %04o, want 2755", got)
	}
}

// A layout folder keeps its declared mode even when a listed file lies
// under it: pack writes it in that mode.
func TestRulesLayoutModeWinsOverOnTheWay(t *testing.T) {
	layout := []Entry{{Path: "tmp", Kind: KindDir, Mode: permToMode(0o1777)}, {Path: "root", Kind: KindDir, Mode: 0o700}}
	r := NewRules(layout, Contents{"tmp/x": {}, "root/y/z": {}}, 0, 0)
	for _, tc := range []struct {
		rel  string
		perm uint32
	}{{"tmp", 0o1777}, {"root", 0o700}, {"root/y", 0o755}} {
		if got := r.Mode(tc.rel, KindDir, tc.perm); got != "" {
			t.Errorf("Mode(%s, %04o) = %q, want \"\"", tc.rel, tc.perm, got)
		}
	}
}

// The decoder's memory bound holds for the decoded bytes too: a frame with
// a small window whose content decodes past MaxFrameSize is refused, not
// decoded in full and then compared.
func TestFrameDecoderOutputBound(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(1<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	big := make([]byte, MaxFrameSize+1)
	frame := enc.EncodeAll(big, nil)
	big = nil
	d, err := NewFrameDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if out, err := d.Decode(frame, MaxFrameSize+1, nil); err == nil {
		t.Errorf("a frame decoding to %d bytes (MaxFrameSize+1) was decoded", len(out))
	}
}

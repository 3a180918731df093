package initrdlayout

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

func TestBase(t *testing.T) {
	es, err := Base()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range es {
		got[e.Path] = e
	}
	for _, tc := range []struct {
		path string
		kind Kind
		mode fs.FileMode
	}{
		{"tmp", KindDir, 0o777 | fs.ModeSticky},
		{"dev/console", KindCharDev, 0o600},
		{"etc/passwd", KindFile, 0o644},
		{"proc", KindDir, 0o555},
		{"var/run", KindSymlink, 0o777},
	} {
		e, ok := got[tc.path]
		if !ok || e.Kind != tc.kind || e.Mode != tc.mode {
			t.Errorf("%s: got %+v, want kind %v mode %v", tc.path, e, tc.kind, tc.mode)
		}
	}
	if c := got["dev/console"]; c.Major != 5 || c.Minor != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", c.Major, c.Minor)
	}
	if got["var/run"].Target != "/run" || !bytes.Contains(got["etc/passwd"].Data, []byte("root:x:0:0")) {
		t.Error("var/run target or etc/passwd content wrong")
	}
}

func TestParseLayoutErrors(t *testing.T) {
	data := fstest.MapFS{"f": {Data: []byte("x")}, "crlf": {Data: []byte("root:x:0:0\r\nkatana\r\n")}}
	for _, tc := range []struct{ src, want string }{
		{"dir /a 0755\r\ndir /b 0755\r\n", "layout.txt:1: carriage return: this checkout has CRLF line ends"},
		{"dir /a 0755\nfile /a/p 0644 crlf\n", "layout.txt:2: crlf:1: carriage return"},
		{"dir /a 0755\ndir /a 0755\n", "already declared on line 1"},
		{"dir a 0755\n", "not absolute"},
		{"dir /a/../b 0755\n", "not clean"},
		{"dir /a 0855\n", "not an octal permission"},
		{"dir /a 10000\n", "layout.txt:1: mode \"10000\" is not an octal permission"},
		{"dir /a 0755\ndir /b 0755\n\n# comment\nslink /c 0777\n", "layout.txt:5: slink takes 4 fields, got 3"},
		{"file /a 0644 missing\n", "reading missing"},
		{"nod /dev/x 0600 x 1 2\n", "device type"},
		{"pipe /p 0600\n", "unknown entry type"},
		{"dir /a\n", "takes 3 fields"},
	} {
		_, err := parseLayout([]byte(tc.src), data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestContentsRoundTrip(t *testing.T) {
	c := Contents{"bin/katana": sha256.Sum256([]byte("k")), "init": sha256.Sum256([]byte("i")), "a b/c": sha256.Sum256(nil)}
	got, err := ParseContents(bytes.NewReader(c.Format()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestParseContentsRejects(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, src string }{
		{"one space", h + " init\n"},
		{"upper hex", strings.ToUpper(h) + "  init\n"},
		{"short hex", h[:62] + "  init\n"},
		{"absolute", h + "  /init\n"},
		{"dotdot", h + "  ../init\n"},
		{"unclean", h + "  bin//katana\n"},
		{"unsorted", h + "  init\n" + h + "  bin/katana\n"},
		{"repeated", h + "  init\n" + h + "  init\n"},
		{"CRLF", h + "  init\r\n"},
		{"CR as the path", h + "  \r\r"},
		{"control character", h + "  bin/ka\ttana\n"},
	} {
		if _, err := ParseContents(strings.NewReader(tc.src)); !errors.Is(err, ErrContents) {
			t.Errorf("%s: got %v, want ErrContents", tc.name, err)
		}
	}
}

func TestModuleList(t *testing.T) {
	mods := []Module{{"virtio", "lib/modules/6.1/kernel/virtio.ko"}, {"virtio_net", "lib/modules/6.1/kernel/virtio_net.ko.xz"}}
	got, err := ParseModuleList(bytes.NewReader(FormatModuleList(mods)))
	if err != nil || !cmp.Equal(mods, got) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for src, want := range map[string]string{
		"virtio\n": `line 1: want "<name> <path>", got "virtio"`,
		"a lib/modules/a.ko\na lib/modules/b.ko\n": `line 2: module "a" listed twice`,
		"a /etc/passwd\n":                          `line 1: path "/etc/passwd" is not under lib/modules`,
		"a lib/modules/../x.ko\n":                  `line 1: path "lib/modules/../x.ko" is not under lib/modules`,
		"a  lib/modules/a.ko\n":                    `line 1: want "<name> <path>", got "a  lib/modules/a.ko"`,
		"a lib/modules/a.ko\r\n":                   `line 1: path "lib/modules/a.ko\r" is not under lib/modules`,
	} {
		if _, err := ParseModuleList(strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", src, err, want)
		}
	}
}

// The init parses both lists before it runs anything: never panic, and
// what parses formats back to the same bytes.
func FuzzParseContents(f *testing.F) {
	f.Add(Contents{"init": sha256.Sum256(nil)}.Format())
	f.Add([]byte(strings.Repeat("0", 64) + "  a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseContents(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := ParseContents(bytes.NewReader(c.Format()))
		if err != nil || !cmp.Equal(c, again) {
			t.Fatalf("formatted list does not parse back: %v", err)
		}
		// The parser is strict (lines' doc: a list that parses must
		// format back to the same bytes): one spelling per list.
		if out := c.Format(); !bytes.Equal(out, b) {
			t.Fatalf("ParseContents accepted %q, which formats back as %q", b, out)
		}
	})
}

func FuzzParseModuleList(f *testing.F) {
	f.Add([]byte("virtio lib/modules/6.1/kernel/virtio.ko\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModuleList(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := ParseModuleList(bytes.NewReader(FormatModuleList(m)))
		if err != nil || !cmp.Equal(m, again) {
			t.Fatalf("formatted list does not parse back: %v", err)
		}
		if out := FormatModuleList(m); !bytes.Equal(out, b) {
			t.Fatalf("ParseModuleList accepted %q, which formats back as %q", b, out)
		}
	})
}

func TestChunks(t *testing.T) {
	data := bytes.Repeat([]byte("katana!"), ChunkSize/3) // 2.33 chunks
	cs := Chunks("bin/katana", data)
	if len(cs) != 3 || cs[2].Off != 2*ChunkSize || cs[2].Len != int64(len(data)-2*ChunkSize) {
		t.Fatalf("chunks: %+v", cs)
	}
	for _, c := range cs {
		if c.Sum != sha256.Sum256(data[c.Off:c.Off+c.Len]) {
			t.Errorf("chunk at %d: wrong sum", c.Off)
		}
	}
	if Chunks("small", make([]byte, ChunkSize)) != nil {
		t.Error("a file of exactly ChunkSize bytes got chunks")
	}
	all := append(Chunks("z", make([]byte, ChunkSize+1)), cs...)
	got, err := ParseChunks(bytes.NewReader(FormatChunks(all)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(cs, Chunks("z", make([]byte, ChunkSize+1))...), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestParseChunksRejects(t *testing.T) {
	h := strings.Repeat("ab", 32)
	line := func(off, n int, p string) string { return fmt.Sprintf("%s  %d %d %s\n", h, off, n, p) }
	full := ChunkSize
	for _, tc := range []struct{ name, src string }{
		{"single chunk", line(0, 10, "a")},
		{"gap", line(0, full, "a") + line(full+1, 5, "a")},
		{"short middle chunk", line(0, 10, "a") + line(10, 5, "a")},
		{"not from zero", line(full, full, "a") + line(2*full, 5, "a")},
		{"too long", line(0, full+1, "a") + line(full+1, 5, "a")},
		{"unsorted", line(0, full, "b") + line(full, 5, "b") + line(0, full, "a") + line(full, 5, "a")},
		{"leading zero", fmt.Sprintf("%s  0 0%d a\n", h, full) + line(full, 5, "a")},
		{"absolute", line(0, full, "/a") + line(full, 5, "/a")},
		{"no path", fmt.Sprintf("%s  0 %d\n", h, full)},
	} {
		if _, err := ParseChunks(strings.NewReader(tc.src)); !errors.Is(err, ErrContents) {
			t.Errorf("%s: got %v, want ErrContents", tc.name, err)
		}
	}
}

func FuzzParseChunks(f *testing.F) {
	f.Add(FormatChunks(Chunks("bin/katana", make([]byte, 2*ChunkSize+7))))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseChunks(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := ParseChunks(bytes.NewReader(FormatChunks(cs)))
		if err != nil || !cmp.Equal(cs, again) {
			t.Fatalf("formatted list does not parse back: %v", err)
		}
		if out := FormatChunks(cs); !bytes.Equal(out, b) {
			t.Fatalf("ParseChunks accepted %q, which formats back as %q", b, out)
		}
		// Every accepted file is more than one chunk, its chunks full
		// but the last, contiguous from 0 (ParseChunks' doc).
		for i, c := range cs {
			last := i+1 == len(cs) || cs[i+1].Path != c.Path
			first := i == 0 || cs[i-1].Path != c.Path
			if first && (c.Off != 0 || last) || !first && c.Off != cs[i-1].Off+cs[i-1].Len ||
				!last && c.Len != ChunkSize || c.Len < 1 || c.Len > ChunkSize {
				t.Fatalf("accepted chunk %d %+v of %q", i, c, b)
			}
		}
	})
}

func sampleFrames() Frames {
	f := Frames{Size: 30, SHA256: sha256.Sum256([]byte("payload"))}
	for i, fr := range []struct{ len, size int64 }{{7, 10}, {9, 15}, {4, 5}} {
		off := int64(0)
		if i > 0 {
			off = f.List[i-1].Off + f.List[i-1].Len
		}
		f.List = append(f.List, Frame{Off: off, Len: fr.len, Size: fr.size, Sum: sha256.Sum256([]byte{byte(i)})})
	}
	return f
}

func TestFrames(t *testing.T) {
	f := sampleFrames()
	got, err := ParseFrames(bytes.NewReader(f.Format()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got.Packed() != 20 {
		t.Errorf("Packed() = %d, want 20", got.Packed())
	}
	if !strings.HasPrefix(string(f.Format()), "payload 30 "+fmt.Sprintf("%x", f.SHA256)+"\n") {
		t.Errorf("header line: %q", f.Format())
	}
}

func TestParseFramesRejects(t *testing.T) {
	h := strings.Repeat("ab", 32)
	head := "payload 30 " + h + "\n"
	line := func(off, n, size int) string { return fmt.Sprintf("%s  %d %d %d\n", h, off, n, size) }
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", "empty"},
		{"header only", head, "no frames"},
		{"no header", line(0, 7, 30), "want \"payload"},
		{"zero size", "payload 0 " + h + "\n" + line(0, 7, 30), "not a positive"},
		{"upper hex", head + strings.ToUpper(h) + "  0 7 30\n", "bad hex"},
		{"gap", head + line(0, 7, 10) + line(8, 7, 20), "frame at 8, want 7"},
		{"not from zero", head + line(1, 7, 30), "frame at 1, want 0"},
		{"sizes short", head + line(0, 7, 10) + line(7, 7, 10), "decode to 20 bytes, the payload is 30"},
		{"zero length", head + line(0, 0, 30), "length 0"},
		{"frame too large", "payload 67108865 " + h + "\n" + line(0, 7, MaxFrameSize+1), "out of range"},
		{"leading zero", head + h + "  0 07 30\n", "plain decimal"},
		{"negative", head + h + "  -0 7 30\n", "plain decimal"},
		{"missing field", head + h + "  0 7\n", "want offset, length and size"},
		{"one space", head + h + " 0 7 30\n", "want \"<sha256 hex>"},
	} {
		_, err := ParseFrames(strings.NewReader(tc.src))
		if !errors.Is(err, ErrContents) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrContents with %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseFrames(f *testing.F) {
	f.Add(sampleFrames().Format())
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrames(bytes.NewReader(b))
		if err != nil {
			return
		}
		var total int64
		for _, x := range fr.List {
			total += x.Size
			if x.Size < 1 || x.Size > MaxFrameSize || x.Len < 1 {
				t.Fatalf("accepted frame %+v", x)
			}
		}
		if total != fr.Size {
			t.Fatalf("accepted sizes adding to %d for a %d-byte payload", total, fr.Size)
		}
		again, err := ParseFrames(bytes.NewReader(fr.Format()))
		if err != nil || !cmp.Equal(fr, again) {
			t.Fatalf("formatted list does not parse back: %v", err)
		}
		if out := fr.Format(); !bytes.Equal(out, b) {
			t.Fatalf("ParseFrames accepted %q, which formats back as %q", b, out)
		}
		// Frames contiguous from 0, at least one and at most maxFrames.
		var next int64
		for _, x := range fr.List {
			if x.Off != next {
				t.Fatalf("accepted frame %+v at %d", x, next)
			}
			next += x.Len
		}
		if len(fr.List) < 1 || len(fr.List) > maxFrames || fr.Packed() != next {
			t.Fatalf("accepted %d frames, packed %d", len(fr.List), fr.Packed())
		}
	})
}

// The init and hostbuild inspect take the payload from the one of
// PayloadPath and FramesPath that the content list covers.
func TestPayloadFile(t *testing.T) {
	var z [32]byte
	for _, tc := range []struct {
		c           Contents
		path, cover string
		ok          bool
	}{
		{Contents{PayloadPath: z, "init": z}, PayloadPath, "", true},
		{Contents{FramesPath: z}, FramesPath, "", true},
		{Contents{PayloadPath: z, FramesPath: z}, "", "both", false},
		{Contents{"init": z}, "", "neither", false},
	} {
		path, cover, ok := tc.c.PayloadFile()
		if path != tc.path || cover != tc.cover || ok != tc.ok {
			t.Errorf("%v: got %q %q %v, want %q %q %v", tc.c, path, cover, ok, tc.path, tc.cover, tc.ok)
		}
	}
}

// The mode field takes every permission bit, setuid, setgid and sticky
// included, up to 07777.
func TestParseLayoutModes(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want fs.FileMode
	}{
		{"0", 0},
		{"0644", 0o644},
		{"4755", 0o755 | fs.ModeSetuid},
		{"2755", 0o755 | fs.ModeSetgid},
		{"1777", 0o777 | fs.ModeSticky},
		{"7777", 0o777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
	} {
		es, err := parseLayout([]byte("dir /a "+tc.mode+"\n"), fstest.MapFS{})
		if err != nil || len(es) != 1 || es[0].Mode != tc.want {
			t.Errorf("mode %s: got %+v, %v; want mode %v", tc.mode, es, err, tc.want)
		}
	}
}

// The zero Kind is no kind: an Entry whose kind was never set is not taken
// for a file or a directory.
func TestKindString(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		want string
	}{
		{0, "kind(0)"}, {KindDir, "dir"}, {KindFile, "file"}, {KindCharDev, "chardev"},
		{KindBlockDev, "blockdev"}, {KindSymlink, "symlink"}, {KindSymlink + 1, "kind(6)"},
	} {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tc.k), got, tc.want)
		}
	}
}

// The shortest lines are valid: a one-character path, a one-byte frame
// of a one-byte payload; the largest frame and compressed length too.
func TestListsBounds(t *testing.T) {
	c := Contents{"a": sha256.Sum256(nil)}
	if got, err := ParseContents(bytes.NewReader(c.Format())); err != nil || !cmp.Equal(c, got) {
		t.Errorf("content list with a one-character path: %v, %v", got, err)
	}
	for _, f := range []Frames{
		{Size: 1, List: []Frame{{Off: 0, Len: 1, Size: 1}}},
		{Size: MaxFrameSize + 1, List: []Frame{{Off: 0, Len: 1<<32 - 1, Size: MaxFrameSize}, {Off: 1<<32 - 1, Len: 1, Size: 1}}},
	} {
		got, err := ParseFrames(bytes.NewReader(f.Format()))
		if err != nil || !cmp.Equal(f, got) {
			t.Errorf("frame list %q: got %+v, %v", f.Format(), got, err)
		}
	}
	h := strings.Repeat("ab", 32)
	head := fmt.Sprintf("payload 10 %s\n", h)
	if _, err := ParseFrames(strings.NewReader(head + fmt.Sprintf("%s  0 %d 10\n", h, int64(1)<<32))); !errors.Is(err, ErrContents) || !strings.Contains(err.Error(), "line 2: length 4294967296 out of range") {
		t.Errorf("frame of 2^32 compressed bytes: got %v, want ErrContents naming line 2 and the length", err)
	}
	// No large file, no chunk: an empty chunk list is valid.
	if cs, err := ParseChunks(strings.NewReader("")); err != nil || len(cs) != 0 {
		t.Errorf("empty chunk list: %v, %v", cs, err)
	}
}

// Errors name the offending line.
func TestListErrorsNameTheLine(t *testing.T) {
	h := strings.Repeat("ab", 32)
	full := ChunkSize
	for _, tc := range []struct {
		name  string
		parse func(string) error
		src   string
		want  string
	}{
		{"contents", func(s string) error { _, err := ParseContents(strings.NewReader(s)); return err },
			h + "  a\n" + h + "  b\n" + h + "  B\n", "line 3: \"B\" out of order"},
		{"contents, blank line", func(s string) error { _, err := ParseContents(strings.NewReader(s)); return err },
			h + "  a\n\n" + h + "  b", "line 2: want"},
		{"modules", func(s string) error { _, err := ParseModuleList(strings.NewReader(s)); return err },
			"a lib/modules/a.ko\nb lib/modules/b.ko\nc /c.ko\n", "module list line 3: path \"/c.ko\""},
		{"modules, blank line", func(s string) error { _, err := ParseModuleList(strings.NewReader(s)); return err },
			"a lib/modules/a.ko\n\nb lib/modules/b.ko", "module list line 2: want"},
		{"chunks", func(s string) error { _, err := ParseChunks(strings.NewReader(s)); return err },
			fmt.Sprintf("%s  0 %d a\n%s  %d 5 a\n%s  0 %d b\n", h, full, h, full, h, full+1), "chunk list line 3: length 4194305 out of range"},
		{"frames", func(s string) error { _, err := ParseFrames(strings.NewReader(s)); return err },
			"payload 30 " + h + "\n" + h + "  0 7 10\n" + h + "  7 7 0\n", "frame list line 3: decoded size 0 out of range"},
	} {
		if err := tc.parse(tc.src); !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// Chunks of a file of whole chunks: no empty chunk at the end. The list is
// written sorted by path and offset whatever the order given.
func TestChunksOrder(t *testing.T) {
	data := make([]byte, 3*ChunkSize)
	cs := Chunks("bin/katana", data)
	if len(cs) != 3 || cs[2].Off != 2*ChunkSize || cs[2].Len != ChunkSize {
		t.Fatalf("chunks of a %d-byte file: %+v, want 3 full chunks", len(data), cs)
	}
	all := append(Chunks("a", make([]byte, ChunkSize+1)), cs...)
	want := FormatChunks(all)
	shuffled := slices.Clone(all)
	slices.Reverse(shuffled)
	if got := FormatChunks(shuffled); !bytes.Equal(got, want) {
		t.Errorf("FormatChunks of the reversed list:\n%s\nwant\n%s", got, want)
	}
	if _, err := ParseChunks(bytes.NewReader(want)); err != nil {
		t.Errorf("formatted list does not parse: %v", err)
	}
}

func TestFrameDecoder(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	data := bytes.Repeat([]byte("katana "), 1000)
	frame := enc.EncodeAll(data, nil)
	d, err := NewFrameDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.Decode(frame, int64(len(data)), nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decode: %d bytes, %v; want the %d bytes encoded", len(got), err, len(data))
	}
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1} {
		want := fmt.Sprintf("decodes to %d bytes, the frame list says %d", len(data), size)
		if _, err := d.Decode(frame, size, nil); err == nil || err.Error() != want {
			t.Errorf("Decode with size %d: %v, want %q", size, err, want)
		}
	}
	if _, err := d.Decode([]byte("garbage!"), 8, nil); err == nil || !strings.HasPrefix(err.Error(), "zstd: ") {
		t.Errorf("Decode of garbage: %v, want a zstd error", err)
	}
}

func TestModulesDep(t *testing.T) {
	mods := []ModuleDeps{
		{Path: "kernel/drivers/virt/coco/sev-guest/sev-guest.ko", Deps: []string{"kernel/crypto/gcm.ko", "kernel/crypto/gf128mul.ko"}},
		{Path: "kernel/crypto/gcm.ko", Deps: []string{"kernel/crypto/gf128mul.ko"}},
		{Path: "kernel/crypto/gf128mul.ko"},
	}
	b := FormatModulesDep(mods)
	want := "kernel/crypto/gcm.ko: kernel/crypto/gf128mul.ko\nkernel/crypto/gf128mul.ko:\nkernel/drivers/virt/coco/sev-guest/sev-guest.ko: kernel/crypto/gcm.ko kernel/crypto/gf128mul.ko\n"
	if string(b) != want {
		t.Fatalf("FormatModulesDep: %q, want %q", b, want)
	}
	got, err := ParseModulesDep(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got, []ModuleDeps{mods[1], mods[2], mods[0]}) {
		t.Errorf("ParseModulesDep: %+v", got)
	}
	if FormatModulesDep(nil) != nil {
		t.Error("no modules: want nothing written")
	}
	if got, err := ParseModulesDep(bytes.NewReader(nil)); err != nil || got != nil {
		t.Errorf("empty modules.dep: %v, %v", got, err)
	}
}

// Any other spelling of a modules.dep is refused, with the line and why.
func TestParseModulesDepRefuses(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"no colon", "a.ko\n", `line 1: want "<path>:"`},
		{"absolute path", "/a.ko:\n", "clean relative"},
		{"dot-dot path", "../a.ko:\n", "clean relative"},
		{"space in path", "a b.ko:\n", "clean relative"},
		{"no space after colon", "a.ko:b.ko\nb.ko:\n", `line 1: want "<path>:"`},
		{"two spaces", "a.ko:  b.ko\nb.ko:\n", `dependency "" of a.ko`},
		{"trailing space", "a.ko: b.ko \nb.ko:\n", `dependency "" of a.ko`},
		{"colon-ended dependency without a line", "a.ko: b.ko:\nb.ko:\n", "depends on b.ko:, which has no line of its own"},
		{"self", "a.ko: a.ko\n", "depends on itself"},
		{"dependency twice", "a.ko: b.ko b.ko\nb.ko:\n", "lists dependency b.ko twice"},
		{"unsorted", "b.ko:\na.ko:\n", `line 2: "a.ko:" is not after "b.ko:"`},
		{"same line twice", "a.ko:\na.ko:\n", "line 2"},
		{"module twice", "a.ko:\na.ko: b.ko\nb.ko:\n", `line 2: module "a.ko" listed twice`},
		{"dependency without a line", "a.ko: b.ko\n", "depends on b.ko, which has no line of its own"},
		{"no newline at the end", "a.ko:", "newline"},
		{"control character", "a\x01.ko:\n", "clean relative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseModulesDep(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseModulesDep(%q): %v, want an error with %q", c.in, err, c.want)
			}
		})
	}
}

// ParseModulesDep accepts exactly what FormatModulesDep writes: a list it
// accepts formats back to the same bytes, and every dependency it reports
// has a line of its own.
func FuzzParseModulesDep(f *testing.F) {
	f.Add([]byte("kernel/crypto/gcm.ko: kernel/crypto/gf128mul.ko\nkernel/crypto/gf128mul.ko:\n"))
	f.Add([]byte("a.ko: b.ko c.ko\nb.ko: c.ko\nc.ko:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModulesDep(bytes.NewReader(b))
		if err != nil {
			return
		}
		if out := FormatModulesDep(m); !bytes.Equal(out, b) {
			t.Fatalf("ParseModulesDep accepted %q, which formats back as %q", b, out)
		}
		have := map[string]bool{}
		for _, d := range m {
			have[d.Path] = true
		}
		for _, d := range m {
			for _, x := range d.Deps {
				if !have[x] || x == d.Path {
					t.Fatalf("%s's dependency %s: no line of its own, or itself", d.Path, x)
				}
			}
		}
	})
}

// A path may hold a colon (a module folder "extra:1", which hostbuild pack
// accepts): the path ends at the first ": ", or at the line's last ':'
// for a module that needs none.
func TestModulesDepColonInPath(t *testing.T) {
	mods := []ModuleDeps{
		{Path: "extra:1/a.ko", Deps: []string{"extra:1/b:c.ko", "kernel/d.ko"}},
		{Path: "extra:1/b:c.ko"},
		{Path: "kernel/d.ko", Deps: []string{"extra:1/b:c.ko"}},
	}
	b := FormatModulesDep(mods)
	got, err := ParseModulesDep(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ParseModulesDep(%q): %v", b, err)
	}
	if !cmp.Equal(got, mods) {
		t.Errorf("ParseModulesDep(%q): %+v, want %+v", b, got, mods)
	}
}

func TestModuleRoot(t *testing.T) {
	if r, ok := ModuleRoot("lib/modules/6.1.0-test/kernel/fs/configfs/configfs.ko"); !ok || r != "lib/modules/6.1.0-test" {
		t.Errorf("ModuleRoot: %q, %v", r, ok)
	}
	if r, ok := ModuleRoot("lib/modules/x.ko"); ok {
		t.Errorf("a path with three parts: %q, want not ok", r)
	}
}

// A module list line with an empty name (the line starts with its one
// space) is refused: the init matches modules by name (Split, Drop,
// OnlyFor) and names them in its errors.
func TestModuleListRefusesEmptyName(t *testing.T) {
	const src = " lib/modules/6.1/kernel/a.ko\n"
	_, err := ParseModuleList(strings.NewReader(src))
	if want := `line 1: want "<name> <path>"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: %v, want an error with %q", src, err, want)
	}
}

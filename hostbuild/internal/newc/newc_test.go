package newc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cavcpio "github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type entry struct {
	Hdr  Header
	Data string
}

func sample() []entry {
	return []entry{
		{Header{Name: "bin", Ino: 1, Mode: TypeDir | 0o755, NLink: 2}, ""},
		{Header{Name: "bin/katana", Ino: 2, Mode: TypeReg | 0o755, NLink: 1, MTime: 1700000000, Size: 5}, "hello"},
		{Header{Name: "dev", Ino: 3, Mode: TypeDir | 0o755, NLink: 2}, ""},
		{Header{Name: "dev/console", Ino: 4, Mode: TypeChar | 0o600, NLink: 1, RDevMajor: 5, RDevMinor: 1}, ""},
		{Header{Name: "etc/empty", Ino: 5, Mode: TypeReg | 0o644, NLink: 1}, ""},
		{Header{Name: "tmp", Ino: 6, Mode: TypeDir | 0o1777, NLink: 2}, ""},
		{Header{Name: "var/run", Ino: 7, Mode: TypeLink | 0o777, NLink: 1, Size: 4}, "/run"},
	}
}

func write(t testing.TB, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, e := range es {
		h := e.Hdr
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readAll(data []byte) ([]entry, error) {
	var out []entry
	r := NewReader(bytes.NewReader(data))
	for {
		h, err := r.Next()
		if err == ErrTrailer {
			continue
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		d, err := io.ReadAll(r)
		if err != nil {
			return out, err
		}
		out = append(out, entry{*h, string(d)})
	}
}

func TestRoundTrip(t *testing.T) {
	data := write(t, sample())
	if len(data)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(data))
	}
	got, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample(), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Two archives back to back, with zero padding between, read as one stream.
	two := append(append(append([]byte{}, data...), make([]byte, 8)...), data...)
	got, err = readAll(two)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*len(sample()) {
		t.Errorf("concatenated archives: got %d entries, want %d", len(got), 2*len(sample()))
	}
}

// cavaliergopher/cpio is an independent reader of the same format.
func TestCavaliergopherReadsOurOutput(t *testing.T) {
	r := cavcpio.NewReader(bytes.NewReader(write(t, sample())))
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "bin/katana" {
			b, _ := io.ReadAll(r)
			if string(b) != "hello" || h.Mode.Perm() != 0o755 || !h.Mode.IsRegular() {
				t.Errorf("bin/katana: data %q mode %v", b, h.Mode)
			}
		}
		if h.Name == "var/run" && h.Linkname != "/run" {
			t.Errorf("var/run: link %q, want /run", h.Linkname)
		}
	}
	want := []string{"bin", "bin/katana", "dev", "dev/console", "etc/empty", "tmp", "var/run"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

// GNU cpio is the reference implementation; it also shows device numbers.
func TestGNUCpioListsOurOutput(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed (apt-get install cpio; .ci/run installs it)")
	}
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(write(t, sample()))
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	for _, want := range []string{"crw-------   1 root     root       5,   1", "dev/console", "drwxrwxrwt", "var/run -> /run", "-rwxr-xr-x"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -itv output lacks %q:\n%s", want, out)
		}
	}
}

func TestMalformed(t *testing.T) {
	good := write(t, sample())
	set := func(off int, s string) []byte {
		b := append([]byte{}, good...)
		copy(b[off:], s)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", set(0, "070707"), "bad magic"},
		{"non-hex field", set(14, "0000zz00"), "not 8 hex digits"},
		{"name size zero", set(94, "00000000"), "name size 0 out of range"},
		{"name size huge", set(94, "00100000"), "out of range"},
		{"truncated header", good[:50], "truncated header"},
		{"truncated data", good[:200], "truncated"},
		{"no trailer", good[:len(good)-124], "truncated header"},
		{"garbage", bytes.Repeat([]byte("not a cpio archive "), 10), "bad magic"},
		{"dir with data", set(6+8*6, "00000010"), "has data size"},
		{"check without crc magic", set(102, "00000001"), "check field"},
		// The kernel reads a symlink named TRAILER!!! as a symlink: the
		// archive, and its hard links, go on.
		{"symlink trailer", set(len(good)-124+fieldOff(1), "0000a1ff"), "a symlink named TRAILER!!!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got error %v, want a *FormatError containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestWriterRefusesShortEntry(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteHeader(&Header{Name: "a", Mode: TypeReg | 0o644, Size: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a short entry succeeded; want an error")
	}
	if _, err := NewWriter(io.Discard).Write([]byte("x")); err == nil {
		t.Error("Write before any header succeeded; want an error")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(write(f, sample()))
	f.Add([]byte("070701"))
	seeds, _ := filepath.Glob("testdata/*.cpio")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := readAll(data)
		if err != nil {
			return
		}
		// Whatever parses must re-encode and parse back to the same entries.
		var b bytes.Buffer
		w := NewWriter(&b)
		for _, e := range es {
			h := e.Hdr
			h.Check = 0
			if err := w.WriteHeader(&h); err != nil {
				t.Fatalf("re-encoding %q: %v", h.Name, err)
			}
			io.WriteString(w, e.Data)
		}
		w.Close()
		again, err := readAll(b.Bytes())
		if err != nil {
			t.Fatalf("re-encoded archive does not parse: %v", err)
		}
		// The same entries, headers and data, not just as many (the
		// checksum and CRC fields are the writer's own).
		if diff := cmp.Diff(es, again, cmp.AllowUnexported(entry{}), cmpopts.IgnoreFields(Header{}, "Check", "CRC"), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("entries differ after re-encoding (-first +second):\n%s", diff)
		}
	})
}

// fieldOff is the offset of header field i (0 = c_ino ... 12 = c_check).
func fieldOff(i int) int { return 6 + 8*i }

func TestHexFields(t *testing.T) {
	good := write(t, sample())
	b := append([]byte{}, good...)
	copy(b[fieldOff(0):], "89abcdef") // ino: every lowercase digit and 8, 9
	copy(b[fieldOff(2):], "ABCDEF01") // uid: uppercase is accepted too
	copy(b[fieldOff(3):], "01234567") // gid
	es, err := readAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if h := es[0].Hdr; h.Ino != 0x89abcdef || h.UID != 0xabcdef01 || h.GID != 0x01234567 {
		t.Errorf("ino %#x uid %#x gid %#x, want 0x89abcdef 0xabcdef01 0x1234567", h.Ino, h.UID, h.GID)
	}
	// The characters just outside each digit range are refused, and the
	// error names the field and quotes it.
	for _, c := range []string{"/", ":", "@", "G", "`", "g", " "} {
		b := append([]byte{}, good...)
		copy(b[fieldOff(6):], "0000000"+c)
		_, err := readAll(b)
		want := `malformed cpio at offset 0: header field 6 is not 8 hex digits: "0000000` + c + `"`
		if err == nil || err.Error() != want {
			t.Errorf("size field %q: got error %v, want %s", "0000000"+c, err, want)
		}
	}
	// Bytes that are not printable ASCII are quoted as \x escapes (which %q
	// then escapes again).
	for c, q := range map[byte]string{0x7f: `\\x7f`, 0x1f: `\\x1f`, 0x80: `\\x80`, '~': `~`} {
		b := append([]byte{}, good...)
		copy(b[fieldOff(6):], "0000000")
		b[fieldOff(6)+7] = c
		_, err := readAll(b)
		want := `malformed cpio at offset 0: header field 6 is not 8 hex digits: "0000000` + q + `"`
		if err == nil || err.Error() != want {
			t.Errorf("size field ending in byte %#x: got error %v, want %s", c, err, want)
		}
	}
}

func TestNameBounds(t *testing.T) {
	long := strings.Repeat("n", maxNameLen-1) // with its NUL, exactly PATH_MAX
	es := []entry{
		{Header{Name: "a", Mode: TypeDir | 0o755, NLink: 2}, ""}, // name size 2, the least
		{Header{Name: long, Mode: TypeReg | 0o644, NLink: 1}, ""},
	}
	got, err := readAll(write(t, es))
	if err != nil {
		t.Fatalf("names of 1 and %d bytes: %v", len(long), err)
	}
	if diff := cmp.Diff(es, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	for _, name := range []string{"", strings.Repeat("n", maxNameLen), "\x00a", "a\x00", "a\x00b"} {
		err := NewWriter(io.Discard).WriteHeader(&Header{Name: name, Mode: TypeReg | 0o644})
		if err == nil || !strings.Contains(err.Error(), "invalid entry name") {
			t.Errorf("WriteHeader(name of %d bytes %.8q): got %v, want an invalid entry name error", len(name), name, err)
		}
	}

	// The reader refuses a name whose NUL is anywhere but at its end,
	// including at its start.
	data := write(t, []entry{{Header{Name: "xa", Mode: TypeDir | 0o755, NLink: 2}, ""}})
	for _, off := range []int{headerLen, headerLen + 1} {
		b := append([]byte{}, data...)
		b[off] = 0
		_, err := readAll(b)
		if err == nil || !strings.Contains(err.Error(), "name is not a single NUL-terminated string") {
			t.Errorf("NUL at name byte %d: got %v, want a NUL-terminated string error", off-headerLen, err)
		}
	}
	// Name size 4097 (one over PATH_MAX) is refused before it is read.
	b := append([]byte{}, data...)
	copy(b[fieldOff(11):], "00001001")
	if _, err := readAll(b); err == nil || !strings.Contains(err.Error(), "name size 4097 out of range [2, 4096]") {
		t.Errorf("name size 4097: got %v, want out of range", err)
	}
	copy(b[fieldOff(11):], "00000001")
	if _, err := readAll(b); err == nil || !strings.Contains(err.Error(), "name size 1 out of range [2, 4096]") {
		t.Errorf("name size 1: got %v, want out of range", err)
	}
}

func TestSymlinkTargetBounds(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{{0, false}, {1, true}, {maxNameLen - 1, true}, {maxNameLen, false}} {
		target := strings.Repeat("t", tc.size)
		data := write(t, []entry{{Header{Name: "l", Mode: TypeLink | 0o777, NLink: 1, Size: uint32(tc.size)}, target}})
		got, err := readAll(data)
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), "symlink target size") {
				t.Errorf("symlink target of %d bytes: got %v, want a target size error", tc.size, err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].Data != target {
			t.Errorf("symlink target of %d bytes: got %d entries, err %v; want it read back", tc.size, len(got), err)
		}
	}
}

// Next must skip whatever data the caller did not read, with its padding,
// whether the data length is a multiple of 4 or not.
func TestNextSkipsUnreadData(t *testing.T) {
	data := write(t, sample())
	for _, readN := range []int{0, 1, 2} {
		r := NewReader(bytes.NewReader(data))
		var names []string
		for {
			h, err := r.Next()
			if err == ErrTrailer {
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading %d bytes of each entry: %v", readN, err)
			}
			names = append(names, h.Name)
			if _, err := io.ReadFull(r, make([]byte, min(readN, int(h.Size)))); err != nil {
				t.Fatal(err)
			}
		}
		if len(names) != len(sample()) {
			t.Errorf("reading %d bytes of each entry: got entries %q, want %d", readN, names, len(sample()))
		}
		if r.Offset() != int64(len(data)) {
			t.Errorf("Offset at the end = %d, want %d", r.Offset(), len(data))
		}
	}
}

// Entry data read one byte at a time comes back whole, and the padding is
// only consumed after the last byte.
func TestReadInPieces(t *testing.T) {
	r := NewReader(bytes.NewReader(write(t, sample())))
	for {
		h, err := r.Next()
		if err == ErrTrailer || err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		var one [1]byte
		for {
			n, err := r.Read(one[:])
			got = append(got, one[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", h.Name, err)
			}
		}
		if len(got) != int(h.Size) {
			t.Errorf("%s: read %d bytes %q, want %d", h.Name, len(got), got, h.Size)
		}
	}
}

func TestBadPaddingAndTruncatedData(t *testing.T) {
	good := write(t, sample())
	dataOff := bytes.Index(good, []byte("hello"))
	padded := append([]byte{}, good...)
	padded[dataOff+5] = 'x' // first padding byte after "hello"
	cut := good[:dataOff+3]

	for _, tc := range []struct {
		name   string
		data   []byte
		read   bool // read the data of bin/katana before calling Next
		want   string
		offset int64
	}{
		{"non-zero padding after read data", padded, true, "non-zero padding bytes", int64(dataOff + 8)},
		{"non-zero padding after unread data", padded, false, "non-zero padding bytes", int64(dataOff + 8)},
		{"truncated read data", cut, true, "truncated data: 2 bytes missing", int64(dataOff + 3)},
		{"truncated unread data", cut, false, "truncated data: 2 bytes missing", int64(dataOff + 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.data))
			var err error
			for {
				var h *Header
				if h, err = r.Next(); err != nil {
					break
				}
				if h.Name == "bin/katana" && tc.read {
					// Read itself reports what is wrong with the data.
					if _, err = io.ReadAll(r); err == nil {
						t.Fatal("reading the data of bin/katana succeeded; want an error")
					}
					break
				}
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FormatError %q", err, tc.want)
			}
			if !strings.Contains(fe.Reason, tc.want) || fe.Entry != "bin/katana" || fe.Offset != tc.offset {
				t.Errorf("got %q (entry %q, offset %d), want %q in entry bin/katana at offset %d", fe.Reason, fe.Entry, fe.Offset, tc.want, tc.offset)
			}
		})
	}
}

// After the last trailer, up to 3 zero bytes (a partial padding step) end
// the stream cleanly; any non-zero byte there does not.
func TestTrailingBytes(t *testing.T) {
	good := write(t, sample())
	for _, tc := range []struct {
		tail []byte
		ok   bool
	}{
		{nil, true},
		{[]byte{0}, true},
		{[]byte{0, 0, 0}, true},
		{[]byte{0, 0, 0, 0, 0, 0}, true},
		{[]byte{0, 1}, false},
		{[]byte{0, 0, 0, 0, '0'}, false},
	} {
		_, err := readAll(append(append([]byte{}, good...), tc.tail...))
		if tc.ok && err != nil {
			t.Errorf("trailing bytes %q: %v, want a clean end", tc.tail, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("trailing bytes %q: no error, want one", tc.tail)
		}
	}
}

func TestFormatErrorSaysWhere(t *testing.T) {
	good := write(t, sample())
	second := bytes.Index(good[1:], []byte(magic)) + 1 // header of bin/katana
	b := append([]byte{}, good...)
	copy(b[second:], "07070X")
	_, err := readAll(b)
	want := `malformed cpio at offset ` + strconv.Itoa(second) + `: bad magic "07070X" (want "070701": newc cpio)`
	if err == nil || err.Error() != want {
		t.Errorf("bad magic in the second header: got %v, want %s", err, want)
	}
	// With the entry known, the message names it.
	b = append([]byte{}, good...)
	copy(b[fieldOff(6):], "00000010") // the directory "bin" gets data
	_, err = readAll(b)
	// (at the offset where its data would start: 110 + "bin\0" + 2 padding)
	want = `malformed cpio at offset 116 (entry "bin"): dir entry has data size 16`
	if err == nil || err.Error() != want {
		t.Errorf("dir with data: got %v, want %s", err, want)
	}
}

type errAfter struct {
	n   int // bytes accepted before failing once
	err error
}

func (w *errAfter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 1 << 30 // fail once only: later writes succeed
		return n, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

func (w *errAfter) Read(p []byte) (int, error) { return w.Write(p) }

// An I/O error of the underlying writer or reader is passed on, wherever it
// happens.
func TestIOErrors(t *testing.T) {
	boom := errors.New("boom")
	// Header (110) + "a\0" (2) + "x" (1): the error hits the padding.
	w := NewWriter(&errAfter{n: 113, err: boom})
	if err := w.WriteHeader(&Header{Name: "a", Mode: TypeReg | 0o644, NLink: 1, Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != boom {
		t.Errorf("Close with a failing writer: got %v, want %v", err, boom)
	}

	good := write(t, sample())
	src := &errAfter{n: 50, err: boom}
	r := NewReader(io.MultiReader(io.LimitReader(bytes.NewReader(good), 50), src))
	_, err := r.Next()
	if err == nil || !strings.Contains(err.Error(), "truncated header: boom") {
		t.Errorf("reader failing in a header: got %v, want it to say boom", err)
	}
}

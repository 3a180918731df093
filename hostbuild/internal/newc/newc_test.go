package newc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cavcpio "github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"
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
		if len(again) != len(es) {
			t.Fatalf("re-encoded archive has %d entries, want %d", len(again), len(es))
		}
	})
}

package newc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A name whose last byte (namesize-1) is not NUL is refused, as the kernel
// refuses it ("initramfs name without nulterm"): it must not be read as the
// name minus that byte.
func TestNameWithoutNULTerminator(t *testing.T) {
	data := write(t, []entry{{Header{Name: "xa", Mode: TypeDir | 0o755, NLink: 2}, ""}})
	b := bytes.Clone(data)
	b[headerLen+2] = 'b' // "xa\0" -> "xab"
	_, err := readAll(b)
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "name is not a single NUL-terminated string") {
		t.Errorf("name without its NUL: got %v, want a NUL-terminated string error", err)
	}
}

// A file type outside the seven stat(2) types is refused; a socket, one of
// them, is read.
func TestFileTypes(t *testing.T) {
	sock := write(t, []entry{{Header{Name: "s", Mode: TypeSocket | 0o755, NLink: 1}, ""}})
	got, err := readAll(sock)
	if err != nil || len(got) != 1 || got[0].Hdr.Type() != TypeSocket {
		t.Errorf("socket entry: got %+v, %v; want it read", got, err)
	}
	for _, mode := range []string{"00030755", "00000755", "000f0755"} {
		b := bytes.Clone(sock)
		copy(b[fieldOff(1):], mode)
		_, err := readAll(b)
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "unknown file type") {
			t.Errorf("mode %s: got %v, want an unknown file type error", mode, err)
		}
	}
}

// Close writes one trailer however often it is called, and nothing may be
// written after it.
func TestWriterAfterClose(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.WriteHeader(&Header{Name: "a", Mode: TypeDir | 0o755, NLink: 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	once := bytes.Clone(b.Bytes())
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !bytes.Equal(b.Bytes(), once) {
		t.Errorf("second Close wrote %d more bytes", b.Len()-len(once))
	}
	if err := w.WriteHeader(&Header{Name: "b", Mode: TypeDir | 0o755, NLink: 2}); err == nil || !strings.Contains(err.Error(), "write after close") {
		t.Errorf("WriteHeader after Close: %v, want write after close", err)
	}
	if !bytes.Equal(b.Bytes(), once) {
		t.Errorf("WriteHeader after Close wrote %d bytes", b.Len()-len(once))
	}
	if _, err := readAll(once); err != nil {
		t.Errorf("archive: %v", err)
	}
}

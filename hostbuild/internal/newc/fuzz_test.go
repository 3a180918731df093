package newc

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Whatever parses re-encodes to the same entries (headers and data), not
// just as many.
func FuzzReaderRoundTrip(f *testing.F) {
	f.Add(write(f, sample()))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := readAll(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		w := NewWriter(&b)
		for _, e := range es {
			h := e.Hdr
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
		if diff := cmp.Diff(es, again, cmp.AllowUnexported(entry{}), cmpopts.IgnoreFields(Header{}, "Check", "CRC"), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("entries differ after re-encoding (-first +second):\n%s", diff)
		}
	})
}

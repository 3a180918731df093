package initrd

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// Many regular files that claim one inode (two links each) are one link
// group to the kernel: reading them takes time linear in the entries. Each
// entry scanned the whole group for a payload path, so n entries took n²/2
// lookups: 250,000 of them, a 700 KB gzip file, kept hostbuild inspect
// busy for more than five minutes. Forty times the entries must take about
// forty times as long, not 1600 (CPU time, the fastest of a few
// interleaved runs, as TestReadDuplicatesLinear).
func TestReadHardLinkGroupLinear(t *testing.T) {
	img := func(n int) []byte {
		var buf bytes.Buffer
		nw := newc.NewWriter(&buf)
		for i := 0; i < n; i++ {
			if err := nw.WriteHeader(&newc.Header{Name: fmt.Sprintf("f%07d", i), Mode: newc.TypeReg | 0o644, NLink: 2, Ino: 7}); err != nil {
				t.Fatal(err)
			}
		}
		nw.Close()
		return buf.Bytes()
	}
	readLinear(t, "one inode", 3, img, func(n int, a *Archive) {
		if len(a.Entries) != n {
			t.Fatalf("%d entries; want %d", len(a.Entries), n)
		}
	})
}

// The group is still followed: a hard link of the payload, however many
// other links come between, leaves the payload unknown.
func TestReadHardLinkGroupPayload(t *testing.T) {
	ents := []entry{{"bin", dirMode, ""}, {"bin/katana", regExec, "katana"}}
	for i := 0; i < 100; i++ {
		ents = append(ents, entry{fmt.Sprintf("f%d", i), regExec, ""})
	}
	a, err := Read(bytes.NewReader(appendLinked(t, nil, 9, ents...)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Payload != nil || a.PayloadUnknown == "" {
		t.Errorf("payload %+v, unknown %q; want it unknown (bin/katana is linked to what follows)", a.Payload, a.PayloadUnknown)
	}
}

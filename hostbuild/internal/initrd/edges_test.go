package initrd

import (
	"bytes"
	"testing"
)

// The kernel forgets its hard links at each TRAILER!!!: an entry in a
// later archive with /init's inode number is not linked to /init, and is
// not reported as a link that rewrites it.
func TestReadLinksEndWithTheArchive(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	packed := pack(t, o)
	img := appendLinked(t, appendLinked(t, packed, 7, entry{"init", regExec, "good"}), 7, entry{"zzz", regExec, "other"})
	a, err := Read(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if a.PayloadUnknown != "" {
		t.Errorf("entries of one inode number in two archives taken for hard links: %s", a.PayloadUnknown)
	}
	// In one archive they are linked (the kernel's unpacker links them).
	img = appendLinked(t, packed, 7, entry{"init", regExec, "good"}, entry{"zzz", regExec, "other"})
	if a, err := Read(bytes.NewReader(img)); err != nil || a.PayloadUnknown == "" {
		t.Errorf("linked entries in one archive: unknown %q, %v; want a link reported", a.PayloadUnknown, err)
	}
}

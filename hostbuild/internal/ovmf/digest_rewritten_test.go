package ovmf

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// ParseFileDigest ('hostbuild ovmf': the image's structure and SHA-256)
// parsed the image, then read it again to hash it, with the size taken
// before both. A write into the file in between (cp of a new build over
// it) gave a report of no file: the old image's size and sections beside
// the SHA-256 of the first bytes of the new one. The structure and the
// SHA-256 must be of the same bytes.
func TestParseFileDigestOfSameBytes(t *testing.T) {
	suffix := sharedFixture(t, "ovmf_AmdSev_suffix.bin")
	large := append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...)
	p := filepath.Join(t.TempDir(), "OVMF.fd")
	if err := os.WriteFile(p, suffix, 0o644); err != nil {
		t.Fatal(err)
	}
	// Written in place (truncated, same file), as cp does.
	parsedForDigest = func() { os.WriteFile(p, large, 0o644) }
	defer func() { parsedForDigest = func() {} }()
	im, sum, err := ParseFileDigest(p)
	if err != nil {
		t.Logf("ParseFileDigest: %v", err) // refusing the change is fine too
		return
	}
	for _, b := range [][]byte{suffix, large} {
		if sum == sha256.Sum256(b) && im.Size == int64(len(b)) {
			return
		}
	}
	t.Errorf("image of %d bytes with SHA-256 %x: neither file's size and SHA-256", im.Size, sum)
}

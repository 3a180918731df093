package measure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// The OVMF image was parsed (its footer and SEV metadata: the sections
// measured, the kernel hashes page) and then read again, page by page, for
// the measurement and its SHA-256, through one descriptor but in two reads,
// with the size taken before both. A write into the file in between (cp
// of a new build over it) gave a measurement and a recorded SHA-256 of no
// file: the first 4096 bytes of the new image, measured with the old
// image's sections. What is recorded must be one file's: the measurement
// of the bytes whose SHA-256 is recorded.
func TestOVMFParsedAndMeasuredFromSameBytes(t *testing.T) {
	f := makeFiles(t)
	suffix, err := os.ReadFile(f.amdsev)
	if err != nil {
		t.Fatal(err)
	}
	// A 4 MiB image with the same footer: the fixture behind 0xff fill.
	large := append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...)
	ovmf := filepath.Join(f.dir, "OVMF.fd")
	if err := os.WriteFile(ovmf, suffix, 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{VCPUs: 1, VCPUType: "EPYC-v4", OVMF: ovmf, Kernel: f.kernel, Initrd: f.initrd, Append: "console=ttyS0"}
	want := map[string]string{} // SHA-256 of a whole image -> its measurement
	for _, b := range [][]byte{suffix, large} {
		p := filepath.Join(f.dir, "img")
		os.WriteFile(p, b, 0o644)
		c := o
		c.OVMF = p
		r, err := Compute(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		want[hex.EncodeToString(s[:])] = r.Hex()
	}

	// Written in place (truncated, same file), as cp does.
	ovmfParsed = func() { os.WriteFile(ovmf, large, 0o644) }
	defer func() { ovmfParsed = func() {} }()
	r, err := Compute(context.Background(), o)
	if err != nil {
		t.Logf("Compute: %v", err) // refusing the change is fine too
		return
	}
	if m, ok := want[r.Inputs.OVMF.SHA256]; !ok || m != r.Hex() {
		t.Errorf("OVMF recorded as SHA-256 %s (%d bytes), measurement %s: not the SHA-256 and measurement of either image (%v)",
			r.Inputs.OVMF.SHA256, r.Inputs.OVMF.Size, r.Hex(), want)
	}
}

package ovmf

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// CheckSNP refuses a SECRETS or a CPUID section of other than one page:
// sev-snp-measure measures one page for each, QEMU the whole section, so
// the digest computed here would not be the one the guest reports.
func TestCheckSNPOnePageSections(t *testing.T) {
	base := func(secs ...Section) *Image {
		return &Image{Size: 0x2000, ResetEIP: 0x80b004, HasResetEIP: true, HasMetadata: true, Metadata: secs}
	}
	tests := []struct {
		name string
		im   *Image
		want string // "" = accepted
	}{
		{"one page each", base(Section{0x80d000, 0x1000, SectionSNPSecrets}, Section{0x80e000, 0x1000, SectionCPUID}), ""},
		{"two-page secrets", base(Section{0x80d000, 0x2000, SectionSNPSecrets}, Section{0x80f000, 0x1000, SectionCPUID}),
			"SNP_SECRETS section at 0x80d000 is 0x2000 bytes, not one page"},
		{"two-page CPUID", base(Section{0x80d000, 0x1000, SectionSNPSecrets}, Section{0x80e000, 0x2000, SectionCPUID}),
			"CPUID section at 0x80e000 is 0x2000 bytes, not one page"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.im.CheckSNP()
			if tc.want == "" {
				if err != nil {
					t.Errorf("CheckSNP: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckSNP: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A footer entry one byte larger than what is left of the table is
// refused as malformed; one byte more must not make the parser slice
// before the table's start (a panic on untrusted input).
func TestParseFooterEntryOneByteTooLarge(t *testing.T) {
	// 4 data bytes + 18-byte header: 22 bytes in the table, size says 23.
	img := buildImage(0x2000, []testEntry{{guid: SEVESResetBlockGUID, data: u32(1), size: 23}}, nil)
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("ParseBytes panicked: %v", r)
			}
		}()
		_, err = ParseBytes(img)
	}()
	if want := "has size 23, more than the 22 bytes left"; !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseBytes: %v, want ErrMalformed containing %q", err, want)
	}
}

// SEV metadata may end exactly at the end of the image, and not one byte
// further: both checks (the 16-byte header, the block's declared length)
// are inclusive of the last byte.
func TestParseMetadataEndingAtImageEnd(t *testing.T) {
	const size = 0x2000
	withLen := func(mlen uint32) []byte {
		m := metadataBlock(1, amdSevSections)
		binary.LittleEndian.PutUint32(m[4:], mlen)
		return buildImage(size, goodEntries(0x810c00, 0x400), m)
	}
	headerOnly := func(off int) []byte {
		img := buildImage(size, []testEntry{{guid: SEVMetadataGUID, data: u32(uint32(off))}}, nil)
		copy(img[size-off:], metadataBlock(1, nil))
		return img
	}
	tests := []struct {
		name string
		img  []byte
		want string // "" = accepted
	}{
		{"block length reaching the end", withLen(testMetaOff), ""},
		{"block length one byte past the end", withLen(testMetaOff + 1), "runs past the end"},
		{"header in the last 16 bytes", headerOnly(metadataHeaderSize), ""},
		{"header in the last 15 bytes", headerOnly(metadataHeaderSize - 1), "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := ParseBytes(tc.img)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseBytes: %v, want it accepted", err)
				}
				if !im.HasMetadata {
					t.Errorf("HasMetadata = false, want true")
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseBytes: %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}
}

// The overlap check with the firmware image is exact to the byte, also
// for an image whose size is not a whole number of pages (Parse takes any
// size; only CheckSNP asks for pages): a section whose last byte is the
// image's first byte overlaps it.
func TestParseSectionOverlapsOddSizedImage(t *testing.T) {
	const size = 0x2001 // mapped at 0xffffdfff
	tests := []struct {
		name string
		sec  Section
		want string // "" = accepted
	}{
		{"ending a page below", Section{0xffffc000, 0x1000, SectionSNPSecMem}, ""},
		{"last byte on the image's first", Section{0xffffd000, 0x1000, SectionSNPSecMem}, "overlaps the firmware image itself (0xffffdfff-0x100000000)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBytes(buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{tc.sec})))
			if tc.want == "" {
				if err != nil {
					t.Errorf("ParseBytes: %v, want it accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseBytes: %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}
}

package ovmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parseNoPanic runs ParseBytes and turns a panic into a test failure.
func parseNoPanic(t *testing.T, img []byte) (im *Image, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("ParseBytes panicked on a hostile image: %v", r)
		}
	}()
	return ParseBytes(img)
}

func wantMalformed(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseBytes: %v, want ErrMalformed containing %q", err, want)
	}
}

// A footer table header one byte smaller than itself (17) is refused, not
// read as a table of -1 bytes (make([]byte, -1) panics).
func TestFooterSizeSeventeen(t *testing.T) {
	const size = 0x2000
	img := buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, amdSevSections))
	binary.LittleEndian.PutUint16(img[size-resetVectorSize-entryHeaderSize:], entryHeaderSize-1)
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "size 17, less than its own 18-byte header")
}

// A footer entry of 17 bytes (one less than its header) is refused, not
// sliced as table[end-17:end-18] (a panic).
func TestEntrySizeSeventeen(t *testing.T) {
	img := buildImage(0x2000, []testEntry{{guid: SEVESResetBlockGUID, data: u32(1), size: entryHeaderSize - 1}}, nil)
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "has size 17, less than its 18-byte header")
}

// A footer table starting exactly one byte before the file is refused as
// malformed (not left to the reader's negative-offset error).
func TestTableOneByteBeforeStart(t *testing.T) {
	const size = 0x1000
	img := buildImage(size, nil, nil)
	footerOff := size - resetVectorSize - entryHeaderSize
	binary.LittleEndian.PutUint16(img[footerOff:], uint16(footerOff+1+entryHeaderSize))
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "starts before the beginning")
	// One byte less (the table starts at offset 0) is read.
	binary.LittleEndian.PutUint16(img[footerOff:], uint16(footerOff+entryHeaderSize))
	if _, err := parseNoPanic(t, img); errors.Is(err, ErrMalformed) && strings.Contains(err.Error(), "starts before") {
		t.Errorf("table starting at offset 0 refused: %v", err)
	}
}

// An SEV_ES_RESET_BLOCK with 3 data bytes is refused: the EIP is 4 bytes
// (a 3-byte slice still has capacity for Data[0:4], so it would read junk).
func TestShortResetBlockThreeBytes(t *testing.T) {
	img := buildImage(0x2000, []testEntry{{guid: SEVESResetBlockGUID, data: []byte{4, 0xb0, 0x80}}}, nil)
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "has 3 data bytes, need 4")
}

// The entry at the very start of the table may have no data: it is an
// 18-byte entry, not 18 stray bytes.
func TestFirstEntryWithoutData(t *testing.T) {
	img := buildImage(0x2000, []testEntry{{guid: GUID{1, 2, 3}}, {guid: SEVESResetBlockGUID, data: u32(0x80b004)}}, nil)
	im, err := parseNoPanic(t, img)
	if err != nil {
		t.Fatalf("ParseBytes: %v", err)
	}
	if len(im.Entries) != 2 || im.Entries[0].GUID != (GUID{1, 2, 3}) || len(im.Entries[0].Data) != 0 {
		t.Errorf("entries %+v, want the empty entry then the reset block", im.Entries)
	}
}

// An image of exactly 50 bytes (header + reset vector) has room for the
// footer, and its footer is read.
func TestSmallestImageWithFooter(t *testing.T) {
	img := make([]byte, entryHeaderSize+resetVectorSize)
	binary.LittleEndian.PutUint16(img, entryHeaderSize)
	copy(img[2:], FooterGUID[:])
	im, err := parseNoPanic(t, img)
	if err != nil || !im.FooterFound {
		t.Errorf("ParseBytes(50-byte image with footer) = %+v, %v: want FooterFound", im, err)
	}
}

// A metadata section whose size is not whole pages is refused (the
// measurement counts sz/4096 pages; QEMU would launch-update the bytes).
func TestSectionSizeNotPageAligned(t *testing.T) {
	img := buildImage(0x2000, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0x800000, 0x1800, SectionSNPSecMem}}))
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "not page aligned")
}

type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// An image larger than 4 GiB is refused (its GPA, 4 GiB - size, would
// wrap); one of exactly 4 GiB is not.
func TestImageOverFourGiB(t *testing.T) {
	if _, err := Parse(zeroReader{}, FourGiB+PageSize); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than the 4 GiB") {
		t.Errorf("Parse(4 GiB + 4 KiB) = %v, want the refusal", err)
	}
	if im, err := Parse(zeroReader{}, FourGiB); err != nil || im.GPA() != 0 {
		t.Errorf("Parse(4 GiB) = %+v, %v: want it accepted at GPA 0", im, err)
	}
}

// CheckSNP refuses a size that is not whole pages and a zero reset EIP.
func TestCheckSNPSizeAndEIP(t *testing.T) {
	if err := (&Image{Size: 0x2001, ResetEIP: 0x80b004, HasResetEIP: true}).CheckSNP(); err == nil || !strings.Contains(err.Error(), "not a multiple of 4096") {
		t.Errorf("CheckSNP(0x2001 bytes) = %v, want the refusal", err)
	}
	if err := (&Image{Size: 0x2000, ResetEIP: 0, HasResetEIP: true}).CheckSNP(); err == nil || !strings.Contains(err.Error(), "reset EIP is 0") {
		t.Errorf("CheckSNP(EIP 0) = %v, want the refusal", err)
	}
	if err := (&Image{Size: 0x2000, ResetEIP: 0x80b004, HasResetEIP: true}).CheckSNP(); err != nil {
		t.Errorf("CheckSNP(good) = %v", err)
	}
}

// CheckLaunch refuses a 64 KiB-multiple image without SEV metadata.
func TestCheckLaunchNoMetadata(t *testing.T) {
	if err := (&Image{Size: 64 << 10}).CheckLaunch(); err == nil || !strings.Contains(err.Error(), "no SEV metadata") {
		t.Errorf("CheckLaunch(no metadata) = %v, want the refusal", err)
	}
	if err := (&Image{Size: 64 << 10, HasMetadata: true}).CheckLaunch(); err != nil {
		t.Errorf("CheckLaunch(good) = %v", err)
	}
}

// An overlap with a section that is not the first (the earliest start)
// is found too: the furthest end seen moves on.
func TestParseOverlapPastTheFirst(t *testing.T) {
	const size = 0x2000
	img := buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
		{0x800000, 0x1000, SectionSNPSecrets}, {0x802000, 0x4000, SectionSNPSecMem}, {0x804000, 0x1000, SectionCPUID},
	}))
	_, err := ParseBytes(img)
	if want := "descriptor 2 (CPUID 0x804000-0x805000) overlaps descriptor 1 (SNP_SEC_MEM 0x802000-0x806000)"; !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseBytes: %v, want %q", err, want)
	}
}

// maxSections descriptors are read, one more is refused before any is.
func TestParseSectionCountBound(t *testing.T) {
	const size, metaOff = 64 << 10, 0xe000
	for _, n := range []int{maxSections, maxSections + 1} {
		secs := make([]Section, n) // one page each, side by side
		for i := range secs {
			secs[i] = Section{uint32(0x100000 + i*PageSize), PageSize, SectionSNPSecMem}
		}
		img := buildImage(size, []testEntry{
			{guid: SEVMetadataGUID, data: u32(metaOff)},
			{guid: SEVESResetBlockGUID, data: u32(0x80b004)},
		}, nil)
		copy(img[size-metaOff:], metadataBlock(1, secs))
		_, err := ParseBytes(img)
		if n <= maxSections {
			if err != nil {
				t.Errorf("%d sections: %v", n, err)
			}
			continue
		}
		if want := fmt.Sprintf("claims %d sections, more than the %d", n, maxSections); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d sections: %v, want %q", n, err, want)
		}
	}
}

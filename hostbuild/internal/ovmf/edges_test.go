package ovmf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

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

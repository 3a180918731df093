package ovmf

import "testing"

// SEV metadata of version 0 (a zeroed or older header) is refused like any
// version but 1: its layout is not the one this parser (and
// sev-snp-measure) reads, so sections read from it could be measured
// wrongly.
func TestParseRefusesMetadataVersionZero(t *testing.T) {
	const size = 0x2000
	img := buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(0, amdSevSections))
	_, err := parseNoPanic(t, img)
	wantMalformed(t, err, "version 0, want 1")
}

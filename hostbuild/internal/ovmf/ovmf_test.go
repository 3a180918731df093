package ovmf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testEntry is one footer entry for buildImage, in ascending file order.
type testEntry struct {
	guid GUID
	data []byte
	size int // 0: len(data)+18
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// metadataBlock encodes an "ASEV" block.
func metadataBlock(version uint32, secs []Section) []byte {
	b := []byte("ASEV")
	b = append(b, u32(uint32(metadataHeaderSize+metadataDescSize*len(secs)), version, uint32(len(secs)))...)
	for _, s := range secs {
		b = append(b, u32(s.GPA, s.Size, uint32(s.Type))...)
	}
	return b
}

const testMetaOff = 0x800 // metadata block placed this far from the end

// buildImage makes a size-byte image (0xff filled) with a footer table of
// entries and, when meta != nil, a metadata block at size-testMetaOff.
func buildImage(size int, entries []testEntry, meta []byte) []byte {
	img := bytes.Repeat([]byte{0xff}, size)
	var table []byte
	for _, e := range entries {
		table = append(table, e.data...)
		sz := e.size
		if sz == 0 {
			sz = len(e.data) + entryHeaderSize
		}
		table = binary.LittleEndian.AppendUint16(table, uint16(sz))
		table = append(table, e.guid[:]...)
	}
	footer := binary.LittleEndian.AppendUint16(nil, uint16(len(table)+entryHeaderSize))
	footer = append(footer, FooterGUID[:]...)
	end := size - resetVectorSize
	copy(img[end-entryHeaderSize:], footer)
	copy(img[end-entryHeaderSize-len(table):], table)
	if meta != nil {
		copy(img[size-testMetaOff:], meta)
	}
	return img
}

var amdSevSections = []Section{
	{0x800000, 0x9000, SectionSNPSecMem},
	{0x80a000, 0x3000, SectionSNPSecMem},
	{0x80d000, 0x1000, SectionSNPSecrets},
	{0x80e000, 0x1000, SectionCPUID},
	{0x80f000, 0x1000, SectionSVSMCAA},
	{0x810000, 0x1000, SectionSNPKernelHashes},
	{0x811000, 0xf000, SectionSNPSecMem},
}

func goodEntries(hashBase, hashSize uint32) []testEntry {
	return []testEntry{
		{guid: SEVMetadataGUID, data: u32(testMetaOff)},
		{guid: SEVHashTableGUID, data: u32(hashBase, hashSize)},
		{guid: SEVESResetBlockGUID, data: u32(0x80b004)},
	}
}

func TestGUIDRoundTrip(t *testing.T) {
	for _, s := range []string{"96b582de-1fb2-45f7-baea-a366c55a082d", "00f771de-1a7e-4fcb-890e-68c77e2fb44e"} {
		g := MustParseGUID(s)
		if got := g.String(); got != s {
			t.Errorf("String(ParseGUID(%s)) = %s", s, got)
		}
	}
	// EFI mixed-endian byte order, as in the spec.
	if got, want := FooterGUID[:], []byte{0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d}; !bytes.Equal(got, want) {
		t.Errorf("FooterGUID bytes = %x, want %x", got, want)
	}
	for _, bad := range []string{"", "96b582de1fb245f7baeaa366c55a082d", "96b582de-1fb2-45f7-baea-a366c55a082z"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
}

func TestParse(t *testing.T) {
	const size = 0x4000
	tests := []struct {
		name string
		img  []byte
		want *Image
	}{
		{
			name: "amdsev layout",
			img:  buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, amdSevSections)),
			want: &Image{
				Size: size, FooterFound: true,
				ResetEIP: 0x80b004, HasResetEIP: true,
				HashTable:      &HashTableArea{Base: 0x810c00, Size: 0x400},
				MetadataOffset: testMetaOff, HasMetadata: true,
				Metadata: amdSevSections,
			},
		},
		{
			// Touching is not overlapping; file order is kept.
			name: "sections touch each other and the firmware",
			img: buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
				{0x800000, 0x1000, SectionSNPSecrets}, {0xffff0000, 0xc000, SectionSNPSecMem}, {0x7ff000, 0x1000, SectionCPUID},
			})),
			want: &Image{
				Size: size, FooterFound: true,
				ResetEIP: 0x80b004, HasResetEIP: true,
				HashTable:      &HashTableArea{Base: 0x810c00, Size: 0x400},
				MetadataOffset: testMetaOff, HasMetadata: true,
				Metadata: []Section{{0x800000, 0x1000, SectionSNPSecrets}, {0xffff0000, 0xc000, SectionSNPSecMem}, {0x7ff000, 0x1000, SectionCPUID}},
			},
		},
		{
			name: "no footer guid is an empty table",
			img:  bytes.Repeat([]byte{0}, size),
			want: &Image{Size: size},
		},
		{
			name: "tiny file has no footer",
			img:  []byte{1, 2, 3},
			want: &Image{Size: 3},
		},
		{
			name: "empty table",
			img:  buildImage(size, nil, nil),
			want: &Image{Size: size, FooterFound: true},
		},
		{
			name: "unknown entries are kept, not interpreted",
			img:  buildImage(size, []testEntry{{guid: TDXMetadataGUID, data: u32(7)}, {guid: SEVESResetBlockGUID, data: u32(0x808004)}}, nil),
			want: &Image{Size: size, FooterFound: true, ResetEIP: 0x808004, HasResetEIP: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBytes(tc.img)
			if err != nil {
				t.Fatalf("ParseBytes: %v", err)
			}
			got.Entries = nil // checked in TestParseEntries
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Image (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEntries(t *testing.T) {
	const size = 0x2000
	img := buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, amdSevSections))
	im, err := ParseBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		GUID   string
		Offset int64
		Data   []byte
	}
	var got []ent
	for _, e := range im.Entries {
		got = append(got, ent{e.GUID.String(), e.Offset, e.Data})
	}
	end := int64(size - resetVectorSize - entryHeaderSize)
	want := []ent{
		{SEVMetadataGUID.String(), end - 3*entryHeaderSize - 4 - 8 - 4, u32(testMetaOff)},
		{SEVHashTableGUID.String(), end - 2*entryHeaderSize - 8 - 4, u32(0x810c00, 0x400)},
		{SEVESResetBlockGUID.String(), end - entryHeaderSize - 4, u32(0x80b004)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if _, ok := im.Entry(TDXMetadataGUID); ok {
		t.Error("Entry(TDX) found in an image without it")
	}
}

func TestParseErrors(t *testing.T) {
	const size = 0x2000
	meta := metadataBlock(1, amdSevSections)
	withFooterSize := func(n uint16) []byte {
		img := buildImage(size, goodEntries(0x810c00, 0x400), meta)
		binary.LittleEndian.PutUint16(img[size-resetVectorSize-entryHeaderSize:], n)
		return img
	}
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"footer smaller than its header", withFooterSize(3), "less than its own 18-byte header"},
		{"table before file start", func() []byte {
			img := buildImage(0x1000, nil, nil)
			binary.LittleEndian.PutUint16(img[0x1000-50:], 0xffff)
			return img
		}(), "starts before the beginning"},
		{"entry smaller than header", buildImage(size, []testEntry{{guid: SEVESResetBlockGUID, data: u32(1), size: 5}}, nil), "less than its 18-byte header"},
		{"entry larger than table", buildImage(size, []testEntry{{guid: SEVESResetBlockGUID, data: u32(1), size: 200}}, nil), "more than the 22 bytes left"},
		{"stray bytes", withFooterSize(uint16(entryHeaderSize + 3*entryHeaderSize + 16 + 5)), "stray bytes"},
		{"duplicate entry", buildImage(size, []testEntry{{guid: SEVESResetBlockGUID, data: u32(1)}, {guid: SEVESResetBlockGUID, data: u32(2)}}, nil), "appears twice"},
		{"short reset block", buildImage(size, []testEntry{{guid: SEVESResetBlockGUID, data: []byte{1, 2}}}, nil), "need 4"},
		{"short hash table entry", buildImage(size, []testEntry{{guid: SEVHashTableGUID, data: u32(1)}}, nil), "need 8"},
		{"short metadata entry", buildImage(size, []testEntry{{guid: SEVMetadataGUID, data: []byte{1}}}, nil), "need 4"},
		{"metadata offset outside image", buildImage(size, []testEntry{{guid: SEVMetadataGUID, data: u32(size + 1)}}, nil), "outside"},
		{"metadata offset at the very end", buildImage(size, []testEntry{{guid: SEVMetadataGUID, data: u32(4)}}, nil), "outside"},
		{"bad signature", buildImage(size, goodEntries(0x810c00, 0x400), append([]byte("XSEV"), meta[4:]...)), "signature"},
		{"bad version", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(2, amdSevSections)), "version 2"},
		// QEMU's SNP_LAUNCH_UPDATE refuses a zero length and exits.
		{"empty section inside another", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x4000, SectionSNPSecMem}, {0x802000, 0, SectionSNPSecMem},
		})), "descriptor 1 (SNP_SEC_MEM at 0x802000) is empty"},
		{"empty SVSM CAA", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x1000, SectionSNPSecrets}, {0x801000, 0x1000, SectionCPUID}, {0x811000, 0, SectionSVSMCAA},
		})), "descriptor 2 (SVSM_CAA at 0x811000) is empty"},
		{"too many descriptors", func() []byte {
			m := metadataBlock(1, amdSevSections)
			binary.LittleEndian.PutUint32(m[12:], 1000)
			return buildImage(size, goodEntries(0x810c00, 0x400), m)
		}(), "too small for 1000 descriptors"},
		{"absurd descriptor count", func() []byte {
			m := metadataBlock(1, amdSevSections)
			binary.LittleEndian.PutUint32(m[12:], 1<<30)
			return buildImage(size, goodEntries(0x810c00, 0x400), m)
		}(), "more than the 4096"},
		{"metadata runs off the end", func() []byte {
			m := metadataBlock(1, amdSevSections)
			binary.LittleEndian.PutUint32(m[4:], testMetaOff+1)
			return buildImage(size, goodEntries(0x810c00, 0x400), m)
		}(), "runs past the end"},
		{"unknown section type", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0x800000, 0x1000, 7}})), "unknown section type 0x7"},
		{"section above 4 GiB", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0xfffff000, 0x2000, SectionSNPSecMem}})), "above 4 GiB"},
		{"unaligned section", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0x800800, 0x1000, SectionSNPSecMem}})), "not page aligned"},
		{"sections overlap", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x1000, SectionSNPSecrets}, {0x900000, 0x1000, SectionCPUID}, {0x7ff000, 0x3000, SectionSNPSecMem},
		})), "descriptor 2 (SNP_SEC_MEM 0x7ff000-0x802000) overlaps descriptor 0 (SNP_SECRETS 0x800000-0x801000)"},
		{"section inside a longer earlier one", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x10000, SectionSNPSecMem}, {0x802000, 0x1000, SectionSVSMCAA}, {0x80f000, 0x1000, SectionCPUID},
		})), "descriptor 1 (SVSM_CAA 0x802000-0x803000) overlaps descriptor 0 (SNP_SEC_MEM 0x800000-0x810000)"},
		{"section overlaps the firmware", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x1000, SectionSNPSecMem}, {0xffffd000, 0x2000, SectionSNPSecMem},
		})), "descriptor 1 (SNP_SEC_MEM 0xffffd000-0xfffff000) overlaps the firmware image itself (0xffffe000-0x100000000)"},
		{"section ends at 4 GiB", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0x0, 0xfffff000, SectionSNPSecMem}})), "overlaps the firmware image itself"},
		// A 64 KiB image listing the most sections the parser accepts,
		// each nearly 4 GiB: measuring it used to take over an hour.
		{"thousands of huge sections", func() []byte {
			const size, metaOff = 64 << 10, 0xe000
			secs := make([]Section, maxSections)
			for i := range secs {
				secs[i] = Section{0, 0xfffff000, SectionSNPSecMem}
			}
			img := buildImage(size, []testEntry{
				{guid: SEVMetadataGUID, data: u32(metaOff)},
				{guid: SEVESResetBlockGUID, data: u32(0x80b004)},
			}, nil)
			copy(img[size-metaOff:], metadataBlock(1, secs))
			return img
		}(), "descriptor 0 (SNP_SEC_MEM 0x0-0xfffff000) overlaps the firmware image itself (0xffff0000-0x100000000)"},
		{"empty image", []byte{}, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := ParseBytes(tc.img)
			if err == nil {
				t.Fatalf("ParseBytes succeeded: %+v", im)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Firmware at the parser's bounds is accepted: sections that touch but do
// not share a page, a section ending where the firmware image starts, a
// footer entry with no data.
func TestParseBounds(t *testing.T) {
	const size = 0x2000
	imageGPA := uint32(FourGiB - size)
	tests := []struct {
		name string
		img  []byte
	}{
		{"adjacent sections", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{0x800000, 0x1000, SectionSNPSecMem}, {0x801000, 0x1000, SectionCPUID}, {0x7ff000, 0x1000, SectionSNPSecrets},
		}))},
		{"section ending at the firmware", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{
			{imageGPA - 0x1000, 0x1000, SectionSNPSecMem},
		}))},
		{"footer entry without data", buildImage(size, append(goodEntries(0x810c00, 0x400), testEntry{guid: GUID{1, 2, 3}}), metadataBlock(1, amdSevSections))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if im, err := ParseBytes(tc.img); err != nil {
				t.Fatalf("ParseBytes: %v", err)
			} else if len(im.Entries) == 0 {
				t.Fatal("no footer entries parsed")
			}
		})
	}
}

func TestCheckDirectBoot(t *testing.T) {
	const size = 0x2000
	noHashes := []Section{{0x800000, 0x9000, SectionSNPSecMem}, {0x810000, 0x10000, SectionSNPSecMem}}
	tests := []struct {
		name string
		img  []byte
		want string // "" = supported
	}{
		{"amdsev", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, amdSevSections)), ""},
		{"table at page start", buildImage(size, goodEntries(0x810000, 0x400), metadataBlock(1, amdSevSections)), ""},
		{"no kernel hashes section", buildImage(size, goodEntries(0, 0), metadataBlock(1, noHashes)), "doesn't include SNP_KERNEL_HASHES"},
		{"no metadata at all", buildImage(size, []testEntry{{guid: SEVESResetBlockGUID, data: u32(0x80b004)}}, nil), "doesn't include SNP_KERNEL_HASHES"},
		{"no hash table entry", buildImage(size, []testEntry{{guid: SEVMetadataGUID, data: u32(testMetaOff)}}, metadataBlock(1, amdSevSections)), "no SEV_HASH_TABLE_RV"},
		{"hash table base 0", buildImage(size, goodEntries(0, 0x400), metadataBlock(1, amdSevSections)), "base=0x0"},
		{"hash table of exactly 176 bytes", buildImage(size, goodEntries(0x810c00, HashTableSize), metadataBlock(1, amdSevSections)), ""},
		{"hash table ending at the page end", buildImage(size, goodEntries(0x811000-HashTableSize, HashTableSize), metadataBlock(1, amdSevSections)), ""},
		{"hash table one byte over the page end", buildImage(size, goodEntries(0x811000-HashTableSize+1, HashTableSize), metadataBlock(1, amdSevSections)), "crosses a page"},
		{"hash table too small", buildImage(size, goodEntries(0x810c00, 175), metadataBlock(1, amdSevSections)), "size=0xaf"},
		{"hash table outside section", buildImage(size, goodEntries(0x811c00, 0x400), metadataBlock(1, amdSevSections)), "not in the first page"},
		{"hash table crosses page", buildImage(size, goodEntries(0x810f80, 0x400), metadataBlock(1, amdSevSections)), "crosses a page"},
		{"two-page hashes section", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, []Section{{0x810000, 0x2000, SectionSNPKernelHashes}})), "not one page"},
		{"second hashes section", buildImage(size, goodEntries(0x810c00, 0x400), metadataBlock(1, append(slices.Clone(amdSevSections), Section{0x820000, 0x2000, SectionSNPKernelHashes}))),
			"second SNP_KERNEL_HASHES section (at 0x820000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := ParseBytes(tc.img)
			if err != nil {
				t.Fatal(err)
			}
			err = im.CheckDirectBoot()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckDirectBoot: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckDirectBoot succeeded, want %q", tc.want)
			}
			if !errors.Is(err, ErrNoKernelHashes) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "unmeasured") {
				t.Errorf("error %q: want ErrNoKernelHashes containing %q and the explanation", err, tc.want)
			}
		})
	}
}

func sharedFixture(t testing.TB, name string) []byte {
	t.Helper()
	dir := os.Getenv("SHARED_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	b, err := os.ReadFile(filepath.Join(dir, "measure", "fixtures", name))
	if err != nil {
		t.Skipf("skipping: fixture %s not readable (%v); set SHARED_DIR to the shared folder (make test does)", name, err)
	}
	return b
}

func TestUpstreamFixtures(t *testing.T) {
	for _, tc := range []struct {
		file       string
		sections   int
		hashTable  HashTableArea
		directBoot bool
	}{
		{"ovmf_AmdSev_suffix.bin", 7, HashTableArea{0x810c00, 0x400}, true},
		{"ovmf_OvmfX64_suffix.bin", 6, HashTableArea{0, 0}, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			im, err := ParseBytes(sharedFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if im.GPA() != 0xfffff000 || im.ResetEIP != 0x80b004 || len(im.Metadata) != tc.sections || *im.HashTable != tc.hashTable {
				t.Errorf("got gpa 0x%x eip 0x%x %d sections hash table %+v", im.GPA(), im.ResetEIP, len(im.Metadata), *im.HashTable)
			}
			if err := im.CheckDirectBoot(); (err == nil) != tc.directBoot {
				t.Errorf("CheckDirectBoot = %v, want supported=%v", err, tc.directBoot)
			}
			if len(im.Entries) != 5 {
				t.Errorf("%d footer entries, want 5", len(im.Entries))
			}
		})
	}
}

// debianFirmware lists the firmware files of Debian's ovmf package.
func debianFirmware(t *testing.T) []string {
	var files []string
	for _, pat := range []string{"/usr/share/OVMF/*.fd", "/usr/share/ovmf/*.fd"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("skipping: no /usr/share/OVMF/*.fd or /usr/share/ovmf/*.fd; install Debian's firmware with 'apt-get install -y ovmf' (.ci/run does)")
	}
	return files
}

func TestDebianFirmware(t *testing.T) {
	for _, path := range debianFirmware(t) {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			im, err := ParseFile(path)
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			isVars := strings.Contains(filepath.Base(path), "VARS")
			if isVars {
				if im.FooterFound || im.HasResetEIP {
					t.Errorf("variable store %s has a footer table", path)
				}
				return
			}
			if !im.FooterFound || !im.HasResetEIP || im.HashTable == nil {
				t.Fatalf("code image %s: footer %v, reset EIP %v, hash table %v", path, im.FooterFound, im.HasResetEIP, im.HashTable)
			}
			amdsev := strings.Contains(strings.ToLower(path), "amdsev")
			err = im.CheckDirectBoot()
			if amdsev && err != nil {
				t.Errorf("AmdSev build %s: %v", path, err)
			}
			if !amdsev {
				if !errors.Is(err, ErrNoKernelHashes) {
					t.Errorf("plain build %s: CheckDirectBoot = %v, want ErrNoKernelHashes", path, err)
				}
				if _, ok := im.KernelHashesSection(); ok {
					t.Errorf("plain build %s has an SNP_KERNEL_HASHES section", path)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(buildImage(0x2000, goodEntries(0x810c00, 0x400), metadataBlock(1, amdSevSections)))
	f.Add(buildImage(0x1000, nil, nil))
	f.Add(buildImage(0x1000, []testEntry{{guid: SEVMetadataGUID, data: u32(0x100)}}, nil))
	for _, name := range []string{"ovmf_AmdSev_suffix.bin", "ovmf_OvmfX64_suffix.bin"} {
		dir := os.Getenv("SHARED_DIR")
		if dir == "" {
			dir = filepath.Join("..", "..", "..", "..", "shared")
		}
		if b, err := os.ReadFile(filepath.Join(dir, "measure", "fixtures", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ParseBytes(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if im.Size != int64(len(b)) {
			t.Fatalf("Size %d, want %d", im.Size, len(b))
		}
		for _, e := range im.Entries {
			if e.Offset < 0 || e.Offset+int64(len(e.Data)) > int64(len(b)) {
				t.Fatalf("entry %s at %d+%d outside the %d-byte image", e.GUID, e.Offset, len(e.Data), len(b))
			}
			if !bytes.Equal(b[e.Offset:e.Offset+int64(len(e.Data))], e.Data) {
				t.Fatalf("entry %s data does not match the image bytes", e.GUID)
			}
		}
		if len(im.Metadata) > len(b)/metadataDescSize {
			t.Fatalf("%d metadata sections from %d bytes", len(im.Metadata), len(b))
		}
		for _, s := range im.Metadata {
			if !s.Type.known() || uint64(s.GPA)+uint64(s.Size) > FourGiB {
				t.Fatalf("invalid section accepted: %+v", s)
			}
		}
		_ = im.CheckDirectBoot() // must not panic
		again, err := ParseBytes(b)
		if err != nil || !cmp.Equal(im, again) {
			t.Fatalf("parse is not deterministic: %v", err)
		}
	})
}

// ParseFileDigest gives ParseFile's image and the SHA-256 of the whole
// file, read through the same open file; ParseFile's refusals stay.
func TestParseFileDigest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "OVMF.fd")
	b := bytes.Repeat([]byte{0x5a}, 3*PageSize)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	im, sum, err := ParseFileDigest(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(b); sum != want {
		t.Errorf("digest %x, want %x", sum, want)
	}
	plain, err := ParseFile(path)
	if err != nil || !reflect.DeepEqual(im, plain) {
		t.Errorf("ParseFileDigest's image %+v, ParseFile's %+v (%v): want the same", im, plain, err)
	}
	if _, _, err := ParseFileDigest(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ParseFileDigest(a folder) = %v, want the refusal", err)
	}
}

// Package ovmf reads the parts of an OVMF firmware image that the SEV-SNP
// launch measurement depends on: the GUIDed footer table just before the
// reset vector, the SEV-ES AP reset block, the kernel-hashes table area and
// the SEV metadata sections that QEMU pre-validates (and measures) at launch.
//
// The image is untrusted input from the operator's disk, so every offset is
// bounds-checked and every malformed structure is an error that says what
// and where. The layout follows edk2's OvmfPkg/ResetVector and QEMU's
// target/i386/sev.c; the parsing rules match virtee/sev-snp-measure, except
// that this package refuses malformed tables that the reference would
// misread silently (duplicate entries, tables that run off the image,
// metadata sections that overlap each other or the image).
package ovmf

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
)

// FourGiB is the address the firmware image ends at: QEMU maps the flash so
// that its last byte sits just below 4 GiB.
const FourGiB = 1 << 32

// PageSize is the SEV-SNP page granule.
const PageSize = 4096

// GUID is a GUID in EFI (mixed-endian) on-disk byte order.
type GUID [16]byte

// String formats g in canonical text form (8-4-4-4-12 hex).
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// MustParseGUID converts canonical text form to EFI byte order. It panics on
// malformed input and is meant for constants.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// ParseGUID converts canonical text form to EFI byte order.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("parsing GUID %q: want 8-4-4-4-12 hex digits", s)
	}
	raw, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return g, fmt.Errorf("parsing GUID %q: %w", s, err)
	}
	// The first three fields are stored little-endian.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

// Well-known footer table GUIDs (edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm).
var (
	FooterGUID          = MustParseGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
	SEVESResetBlockGUID = MustParseGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
	SEVHashTableGUID    = MustParseGUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
	SEVMetadataGUID     = MustParseGUID("dc886566-984a-4798-a75e-5585a7bf67cc")
	SEVSecretBlockGUID  = MustParseGUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
	TDXMetadataGUID     = MustParseGUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
)

var guidNames = map[GUID]string{
	SEVESResetBlockGUID: "SEV_ES_RESET_BLOCK",
	SEVHashTableGUID:    "SEV_HASH_TABLE_RV",
	SEVMetadataGUID:     "OVMF_SEV_METADATA",
	SEVSecretBlockGUID:  "SEV_SECRET_BLOCK",
	TDXMetadataGUID:     "TDX_METADATA",
}

// GUIDName returns the edk2 name of a known footer GUID, or "".
func GUIDName(g GUID) string { return guidNames[g] }

// SectionType is the type of one SEV metadata section.
type SectionType uint32

// Section types (edk2 OvmfPkg/Include/WorkArea.h, QEMU sev.c).
const (
	SectionSNPSecMem       SectionType = 1
	SectionSNPSecrets      SectionType = 2
	SectionCPUID           SectionType = 3
	SectionSVSMCAA         SectionType = 4
	SectionSNPKernelHashes SectionType = 0x10
)

func (t SectionType) String() string {
	switch t {
	case SectionSNPSecMem:
		return "SNP_SEC_MEM"
	case SectionSNPSecrets:
		return "SNP_SECRETS"
	case SectionCPUID:
		return "CPUID"
	case SectionSVSMCAA:
		return "SVSM_CAA"
	case SectionSNPKernelHashes:
		return "SNP_KERNEL_HASHES"
	}
	return fmt.Sprintf("unknown(0x%x)", uint32(t))
}

func (t SectionType) known() bool {
	switch t {
	case SectionSNPSecMem, SectionSNPSecrets, SectionCPUID, SectionSVSMCAA, SectionSNPKernelHashes:
		return true
	}
	return false
}

// Section is one SEV metadata descriptor. Descriptors are measured in file
// order, never sorted.
type Section struct {
	GPA  uint32
	Size uint32
	Type SectionType
}

// Entry is one footer table entry.
type Entry struct {
	GUID   GUID
	Offset int64  // file offset of Data
	Data   []byte // the entry's payload (the entry minus its 18-byte header)
}

// HashTableArea is the SEV_HASH_TABLE_RV entry: where QEMU writes the
// kernel/initrd/cmdline hashes table.
type HashTableArea struct {
	Base uint32
	Size uint32
}

// Image is the parsed measurement-relevant layout of a firmware image.
type Image struct {
	Size int64 // file size in bytes

	// Entries are the footer table entries in ascending file offset. Empty
	// when the image has no footer table (the reference tool treats a
	// missing footer GUID as an empty table).
	Entries []Entry
	// FooterFound reports whether the footer GUID was present.
	FooterFound bool

	ResetEIP    uint32 // SEV-ES AP reset EIP; valid when HasResetEIP
	HasResetEIP bool

	HashTable *HashTableArea // nil when there is no SEV_HASH_TABLE_RV entry

	// MetadataOffset is the SEV metadata's offset from the end of the file;
	// valid when HasMetadata.
	MetadataOffset uint32
	HasMetadata    bool
	Metadata       []Section
}

// GPA is the guest physical address the image is mapped at (4 GiB − size).
func (im *Image) GPA() uint64 { return uint64(FourGiB - im.Size) }

// Entry returns the footer entry with GUID g.
func (im *Image) Entry(g GUID) (Entry, bool) {
	for _, e := range im.Entries {
		if e.GUID == g {
			return e, true
		}
	}
	return Entry{}, false
}

// KernelHashesSection returns the SNP_KERNEL_HASHES metadata section.
func (im *Image) KernelHashesSection() (Section, bool) {
	for _, s := range im.Metadata {
		if s.Type == SectionSNPKernelHashes {
			return s, true
		}
	}
	return Section{}, false
}

// Sentinel errors for callers that branch on the kind of problem.
var (
	// ErrMalformed marks a footer table or metadata block that cannot be parsed.
	ErrMalformed = errors.New("malformed OVMF image")
	// ErrNoKernelHashes: the firmware cannot measure a directly booted
	// kernel (no SNP_KERNEL_HASHES section or no usable hashes-table area).
	ErrNoKernelHashes = errors.New("firmware does not support measured direct kernel boot")
)

// DirectBootError explains why measured direct kernel boot is impossible
// with a firmware image. It wraps ErrNoKernelHashes.
type DirectBootError struct {
	Reason string
}

func (e *DirectBootError) Error() string {
	return e.Reason + ": QEMU would boot the kernel, initrd and cmdline unmeasured (the launch digest would cover only the firmware); use an OVMF built from edk2 OvmfPkg/AmdSev (AmdSevX64) and start QEMU with kernel-hashes=on"
}

func (e *DirectBootError) Unwrap() error { return ErrNoKernelHashes }

// HashTableSize is sizeof(PaddedSevHashTable): the 168-byte table padded to 176.
const HashTableSize = 176

// CheckSNP returns nil when the image can be measured for an SEV-SNP
// launch, as QEMU loads it and sev-snp-measure measures it: whole pages, an
// SEV-ES reset vector for the APs, and secrets and CPUID sections of one
// page each (sev-snp-measure measures one page, QEMU the whole section).
func (im *Image) CheckSNP() error {
	if im.Size%PageSize != 0 {
		return fmt.Errorf("%d bytes, not a multiple of 4096: it cannot be mapped as flash pages", im.Size)
	}
	for _, s := range im.Metadata {
		if (s.Type == SectionSNPSecrets || s.Type == SectionCPUID) && s.Size != PageSize {
			return fmt.Errorf("%s section at 0x%x is 0x%x bytes, not one page: QEMU and sev-snp-measure would disagree on its measurement", s.Type, s.GPA, s.Size)
		}
	}
	if !im.HasResetEIP {
		return errors.New("can't find SEV_ES_RESET_BLOCK entry in the footer table (is this an SEV-capable OVMF build, and the code image rather than the variable store?)")
	}
	if im.ResetEIP == 0 {
		return errors.New("SEV-ES reset EIP is 0")
	}
	return nil
}

// CheckLaunch returns nil when QEMU can start an SEV-SNP guest on the
// image, which a measurement alone does not need: -bios takes only a
// multiple of 64 KiB (x86_bios_rom_init), and QEMU finds the CPUID and
// secrets pages it must fill through the SEV metadata, exiting at
// SNP_LAUNCH_FINISH without it.
func (im *Image) CheckLaunch() error {
	if !im.HasMetadata {
		return errors.New("no SEV metadata: QEMU stops an SEV-SNP launch without it (an OvmfX64 build? use OvmfPkg/AmdSev's AmdSevX64)")
	}
	if im.Size%(64<<10) != 0 {
		return fmt.Errorf("%d bytes, not a multiple of 64 KiB: QEMU's -bios, which gives an SEV-SNP guest its firmware, refuses it", im.Size)
	}
	return nil
}

// CheckDirectBoot returns nil when QEMU can put the kernel, initrd and
// cmdline hashes into the measurement with this firmware, else a
// *DirectBootError. The first check is the reference tool's; the others are
// QEMU's preconditions for kernel-hashes=on (target/i386/sev.c) and the
// assumption both make that the table lies in the section's first page.
func (im *Image) CheckDirectBoot() error {
	sec, ok := im.KernelHashesSection()
	if !ok {
		return &DirectBootError{Reason: "OVMF metadata doesn't include SNP_KERNEL_HASHES section"}
	}
	// The measurement gives every SNP_KERNEL_HASHES section one page with
	// the table, as sev-snp-measure does (which asserts each is one page);
	// QEMU copies the table into each and measures each whole. Only one
	// such section, checked below, makes the three agree.
	for _, s := range im.Metadata {
		if s.Type == SectionSNPKernelHashes && s != sec {
			return &DirectBootError{Reason: fmt.Sprintf("OVMF metadata has a second SNP_KERNEL_HASHES section (at 0x%x, after the one at 0x%x): QEMU and sev-snp-measure would measure it differently", s.GPA, sec.GPA)}
		}
	}
	if im.HashTable == nil {
		return &DirectBootError{Reason: "OVMF footer table has no SEV_HASH_TABLE_RV entry (QEMU: guest firmware has no hashes table GUID)"}
	}
	ht := *im.HashTable
	if ht.Base == 0 || ht.Size < HashTableSize {
		return &DirectBootError{Reason: fmt.Sprintf("OVMF hashes table area is invalid (base=0x%x size=0x%x, need base != 0 and size >= %d)", ht.Base, ht.Size, HashTableSize)}
	}
	if uint64(ht.Base)&^(PageSize-1) != uint64(sec.GPA) {
		return &DirectBootError{Reason: fmt.Sprintf("OVMF hashes table at 0x%x is not in the first page of the SNP_KERNEL_HASHES section at 0x%x", ht.Base, sec.GPA)}
	}
	if ht.Base&(PageSize-1)+HashTableSize > PageSize {
		return &DirectBootError{Reason: fmt.Sprintf("OVMF hashes table at 0x%x crosses a page boundary", ht.Base)}
	}
	if sec.Size != PageSize {
		// QEMU measures the whole section, sev-snp-measure exactly one page.
		return &DirectBootError{Reason: fmt.Sprintf("SNP_KERNEL_HASHES section at 0x%x is 0x%x bytes, not one page (QEMU and sev-snp-measure would disagree on its measurement)", sec.GPA, sec.Size)}
	}
	return nil
}

const (
	entryHeaderSize    = 18 // u16 size + GUID
	resetVectorSize    = 32 // the image's last 32 bytes
	metadataHeaderSize = 16 // "ASEV", u32 size, u32 version, u32 count
	metadataDescSize   = 12 // u32 gpa, u32 size, u32 type
	maxImageSize       = FourGiB
	maxSections        = 4096 // real firmware has fewer than 16
)

// ParseFile opens and parses the image at path.
func ParseFile(path string) (*Image, error) {
	im, _, err := parseFile(path, false)
	return im, err
}

// ParseFileDigest is ParseFile that also returns the SHA-256 of the file,
// both from one reading of it (held in memory): a report of both names one
// file even if the path is replaced, or the file written into, meanwhile.
func ParseFileDigest(path string) (*Image, [sha256.Size]byte, error) {
	return parseFile(path, true)
}

func parseFile(path string, digest bool) (*Image, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	// infile.Open refuses anything but a regular file, a FIFO at once (a
	// plain open would wait for a writer for ever). Parse reads at the
	// offsets the image's footer gives, and refuses one over 4 GiB.
	f, err := infile.Open("OVMF image", path)
	if err != nil {
		return nil, sum, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, sum, fmt.Errorf("reading OVMF image %s: %w", path, err)
	}
	im, err := Parse(f, st.Size())
	if err != nil {
		return nil, sum, fmt.Errorf("parsing OVMF image %s: %w", path, err)
	}
	if digest {
		// Read once, whole, and parsed again from those bytes: the
		// structure and the SHA-256 are of the same bytes even if the
		// file is written into meanwhile. (Parsed from the file first: one
		// larger than any image, or malformed, is refused unread.)
		parsedForDigest()
		b, err := io.ReadAll(io.NewSectionReader(f, 0, maxImageSize+1))
		if err != nil {
			return nil, sum, fmt.Errorf("reading OVMF image %s: %w", path, err)
		}
		if im, err = ParseBytes(b); err != nil {
			return nil, sum, fmt.Errorf("parsing OVMF image %s: %w", path, err)
		}
		sum = sha256.Sum256(b)
	}
	return im, sum, nil
}

// ParseBytes parses an image held in memory.
func ParseBytes(b []byte) (*Image, error) {
	return Parse(byteReaderAt(b), int64(len(b)))
}

type byteReaderAt []byte

func (b byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse reads the footer table and SEV metadata of an image of the given
// size through r. It reads only those structures, not the whole image.
func Parse(r io.ReaderAt, size int64) (*Image, error) {
	if size <= 0 {
		return nil, malformed("image is empty")
	}
	if size > maxImageSize {
		return nil, malformed("image is %d bytes, larger than the 4 GiB it must fit below", size)
	}
	im := &Image{Size: size}
	if size < entryHeaderSize+resetVectorSize {
		// Too small for a footer: no table, like a missing footer GUID.
		return im, nil
	}
	if err := im.parseFooter(r); err != nil {
		return nil, err
	}
	if err := im.interpretEntries(); err != nil {
		return nil, err
	}
	if im.HasMetadata {
		if err := im.parseMetadata(r); err != nil {
			return nil, err
		}
	}
	return im, nil
}

func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at offset %d: %w", n, off, err)
	}
	return buf, nil
}

func (im *Image) parseFooter(r io.ReaderAt) error {
	footerOff := im.Size - resetVectorSize - entryHeaderSize
	hdr, err := readAt(r, footerOff, entryHeaderSize)
	if err != nil {
		return err
	}
	if GUID(hdr[2:18]) != FooterGUID {
		return nil
	}
	im.FooterFound = true
	full := int64(binary.LittleEndian.Uint16(hdr[0:2]))
	if full < entryHeaderSize {
		return malformed("footer table header at offset 0x%x has size %d, less than its own %d-byte header", footerOff, full, entryHeaderSize)
	}
	tableSize := full - entryHeaderSize
	tableOff := footerOff - tableSize
	if tableOff < 0 {
		return malformed("footer table of %d bytes starts before the beginning of the %d-byte image", tableSize, im.Size)
	}
	table, err := readAt(r, tableOff, int(tableSize))
	if err != nil {
		return err
	}
	// Walk backwards: each entry's header is at its end.
	var rev []Entry
	end := int64(len(table))
	for end >= entryHeaderSize {
		h := table[end-entryHeaderSize : end]
		esize := int64(binary.LittleEndian.Uint16(h[0:2]))
		g := GUID(h[2:18])
		if esize < entryHeaderSize {
			return malformed("footer entry %s at offset 0x%x has size %d, less than its %d-byte header", g, tableOff+end-entryHeaderSize, esize, entryHeaderSize)
		}
		if esize > end {
			return malformed("footer entry %s at offset 0x%x has size %d, more than the %d bytes left in the table", g, tableOff+end-entryHeaderSize, esize, end)
		}
		start := end - esize
		data := append([]byte(nil), table[start:end-entryHeaderSize]...)
		for _, e := range rev {
			if e.GUID == g {
				return malformed("footer entry %s appears twice (offsets 0x%x and 0x%x)", g, tableOff+start, e.Offset)
			}
		}
		rev = append(rev, Entry{GUID: g, Offset: tableOff + start, Data: data})
		end = start
	}
	if end != 0 {
		return malformed("footer table has %d stray bytes at offset 0x%x", end, tableOff)
	}
	for i := len(rev) - 1; i >= 0; i-- {
		im.Entries = append(im.Entries, rev[i])
	}
	return nil
}

func (im *Image) interpretEntries() error {
	if e, ok := im.Entry(SEVESResetBlockGUID); ok {
		if len(e.Data) < 4 {
			return malformed("SEV_ES_RESET_BLOCK entry at offset 0x%x has %d data bytes, need 4", e.Offset, len(e.Data))
		}
		im.ResetEIP = binary.LittleEndian.Uint32(e.Data[0:4])
		im.HasResetEIP = true
	}
	if e, ok := im.Entry(SEVHashTableGUID); ok {
		if len(e.Data) < 8 {
			return malformed("SEV_HASH_TABLE_RV entry at offset 0x%x has %d data bytes, need 8", e.Offset, len(e.Data))
		}
		im.HashTable = &HashTableArea{
			Base: binary.LittleEndian.Uint32(e.Data[0:4]),
			Size: binary.LittleEndian.Uint32(e.Data[4:8]),
		}
	}
	if e, ok := im.Entry(SEVMetadataGUID); ok {
		if len(e.Data) < 4 {
			return malformed("OVMF_SEV_METADATA entry at offset 0x%x has %d data bytes, need 4", e.Offset, len(e.Data))
		}
		im.MetadataOffset = binary.LittleEndian.Uint32(e.Data[0:4])
		im.HasMetadata = true
	}
	return nil
}

func (im *Image) parseMetadata(r io.ReaderAt) error {
	start := im.Size - int64(im.MetadataOffset)
	if start < 0 || start+metadataHeaderSize > im.Size {
		return malformed("SEV metadata offset 0x%x (from the end) is outside the %d-byte image", im.MetadataOffset, im.Size)
	}
	hdr, err := readAt(r, start, metadataHeaderSize)
	if err != nil {
		return err
	}
	if string(hdr[0:4]) != "ASEV" {
		return malformed("SEV metadata at offset 0x%x has signature %q, want \"ASEV\"", start, hdr[0:4])
	}
	mlen := int64(binary.LittleEndian.Uint32(hdr[4:8]))
	version := binary.LittleEndian.Uint32(hdr[8:12])
	count := int64(binary.LittleEndian.Uint32(hdr[12:16]))
	if version != 1 {
		return malformed("SEV metadata at offset 0x%x has version %d, want 1", start, version)
	}
	if count > maxSections {
		return malformed("SEV metadata at offset 0x%x claims %d sections, more than the %d this parser accepts", start, count, maxSections)
	}
	if mlen < metadataHeaderSize+count*metadataDescSize {
		return malformed("SEV metadata at offset 0x%x is %d bytes, too small for %d descriptors", start, mlen, count)
	}
	if start+mlen > im.Size {
		return malformed("SEV metadata at offset 0x%x (%d bytes) runs past the end of the image", start, mlen)
	}
	descs, err := readAt(r, start+metadataHeaderSize, int(count*metadataDescSize))
	if err != nil {
		return err
	}
	im.Metadata = make([]Section, 0, count)
	for i := range count {
		d := descs[i*metadataDescSize:]
		s := Section{
			GPA:  binary.LittleEndian.Uint32(d[0:4]),
			Size: binary.LittleEndian.Uint32(d[4:8]),
			Type: SectionType(binary.LittleEndian.Uint32(d[8:12])),
		}
		if !s.Type.known() {
			return malformed("SEV metadata descriptor %d at offset 0x%x has unknown section type 0x%x", i, start+metadataHeaderSize+i*metadataDescSize, uint32(s.Type))
		}
		if uint64(s.GPA)+uint64(s.Size) > FourGiB {
			return malformed("SEV metadata descriptor %d (%s at 0x%x, 0x%x bytes) ends above 4 GiB", i, s.Type, s.GPA, s.Size)
		}
		if s.GPA%PageSize != 0 || s.Size%PageSize != 0 {
			return malformed("SEV metadata descriptor %d (%s at 0x%x, 0x%x bytes) is not page aligned", i, s.Type, s.GPA, s.Size)
		}
		// QEMU hands every section to SNP_LAUNCH_UPDATE, which it refuses
		// for a zero length ("invalid address / length") and then exits:
		// no SEV-SNP guest starts on such firmware, so no digest for it.
		if s.Size == 0 {
			return malformed("SEV metadata descriptor %d (%s at 0x%x) is empty: QEMU refuses a zero-length SNP_LAUNCH_UPDATE, so no SEV-SNP guest starts on this firmware", i, s.Type, s.GPA)
		}
		// The flash is already launched as NORMAL pages, so QEMU could not
		// pre-validate a section inside it. Refusing that (and overlaps,
		// below) also bounds the measurement: the sections then fit,
		// disjoint, below the image, a million pages at most, where a
		// hostile 64 KiB image could otherwise list 4096 sections of 4 GiB.
		if s.end() > im.GPA() {
			return malformed("SEV metadata descriptor %d (%s 0x%x-0x%x) overlaps the firmware image itself (0x%x-0x%x)", i, s.Type, s.GPA, s.end(), im.GPA(), uint64(FourGiB))
		}
		im.Metadata = append(im.Metadata, s)
	}
	return checkOverlaps(im.Metadata)
}

// checkOverlaps refuses two sections that share a page. sev-snp-measure
// would measure the page twice, but KVM does not launch-update a private
// page twice, so such firmware never boots with the digest computed here.
func checkOverlaps(secs []Section) error {
	order := make([]int, 0, len(secs))
	for i := range secs {
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(secs[a].GPA, secs[b].GPA) })
	// Sorted by start, a section overlaps an earlier one exactly when it
	// starts before the furthest end seen so far.
	far := -1
	for _, j := range order {
		if far >= 0 && uint64(secs[j].GPA) < secs[far].end() {
			// Name the pair in file order: the later descriptor overlaps
			// the earlier one.
			lo, hi := min(far, j), max(far, j)
			a, b := secs[lo], secs[hi]
			return malformed("SEV metadata descriptor %d (%s 0x%x-0x%x) overlaps descriptor %d (%s 0x%x-0x%x)", hi, b.Type, b.GPA, b.end(), lo, a.Type, a.GPA, a.end())
		}
		if far < 0 || secs[j].end() > secs[far].end() {
			far = j
		}
	}
	return nil
}

func (s Section) end() uint64 { return uint64(s.GPA) + uint64(s.Size) }

// parsedForDigest runs in ParseFileDigest once the file is parsed, before
// it is read whole: a test seam (the file written there).
var parsedForDigest = func() {}

// Package measure computes the AMD SEV-SNP launch digest of a QEMU direct
// kernel boot: the OVMF image as NORMAL pages, the SEV metadata sections in
// firmware order (with the kernel/initrd/cmdline hashes page when a kernel
// is given), then one VMSA per vCPU. The result equals the MEASUREMENT field
// of the guest's attestation report and matches virtee/sev-snp-measure
// (modes snp and snp:ovmf-hash; VMM types QEMU, ec2 and gce).
//
// Kernel and initrd are streamed through SHA-256 concurrently with the
// OVMF page hashing; nothing is loaded whole.
package measure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

// Modes.
const (
	ModeSNP      = "snp"
	ModeOVMFHash = "snp:ovmf-hash"
)

// DefaultGuestFeatures is SEV_FEATURES with only SNPActive set, what QEMU
// with KVM_SEV_INIT2 passes for a plain SNP guest.
const DefaultGuestFeatures = 0x1

// MaxVCPUs bounds the vCPU count (QEMU's q35 maximum).
const MaxVCPUs = 4096

// Options describe one launch.
type Options struct {
	Mode     string // "snp" (default) or "snp:ovmf-hash"
	VCPUs    int
	VCPUType string // e.g. "EPYC-v4", "EPYC-Genoa"; see VCPUTypes
	// VCPUSig overrides the type's signature when non-zero or when
	// VCPUSigSet is true (so that an explicit signature 0 is expressible).
	VCPUSig    uint32
	VCPUSigSet bool
	VMMType    string // "QEMU" (default), "ec2", "gce"
	OVMF       string // path of the firmware image given to QEMU as -bios
	Kernel     string // optional path
	Initrd     string // optional path; needs Kernel
	// Append is the exact kernel cmdline, hashed byte for byte plus a NUL,
	// never trimmed. Needs Kernel when non-empty.
	Append        string
	GuestFeatures uint64 // SEV_FEATURES of the VMSAs; 0 means DefaultGuestFeatures
	SnpOVMFHash   string // hex digest replacing the OVMF pages (mode snp only)
}

// Input is the SHA-256 of one input file as read.
type Input struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Inputs are what the measurement covers, for debugging and the manifest.
type Inputs struct {
	OVMF          Input  `json:"ovmf"`
	Kernel        *Input `json:"kernel,omitempty"`
	Initrd        *Input `json:"initrd,omitempty"`
	CmdlineSHA256 string `json:"cmdline_sha256,omitempty"` // SHA-256(append ‖ NUL), with a kernel

	// What a caller checks of the files measured, read from the bytes
	// hashed (a check that opened the path again could read another
	// file, renamed over it meanwhile):
	// OVMFImage is the firmware image as parsed for the measurement;
	// KernelHead is the kernel's first KernelHeadSize bytes (all of a
	// shorter one), nil for the null device.
	OVMFImage  *ovmf.Image `json:"-"`
	KernelHead []byte      `json:"-"`
}

// KernelHeadSize is how much of the kernel Inputs.KernelHead holds: the
// bzImage boot header (in the first 0x210 bytes) and the version string
// its kernel_version field points to (at most 0x200 + 0xffff, plus
// room for the string).
const KernelHeadSize = 0x200 + 0x10000 + 0x100

// Step is the digest after one stage of the measurement.
type Step struct {
	Name     string `json:"name"`
	PageType string `json:"page_type"`
	GPA      string `json:"gpa"` // hex
	Pages    int    `json:"pages"`
	Digest   string `json:"digest"` // hex, after this step
}

// Result is a computed launch digest.
type Result struct {
	Digest   [48]byte
	Mode     string
	VMMType  string
	VCPUs    int
	VCPUType string
	VCPUSig  uint32
	Steps    []Step
	Inputs   Inputs
}

// Hex returns the digest as 96 lowercase hex characters.
func (r Result) Hex() string { return hex.EncodeToString(r.Digest[:]) }

// ErrUsage marks invalid options (as opposed to bad input files).
var ErrUsage = errors.New("invalid measurement options")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Compute computes the launch digest for o.
func Compute(ctx context.Context, o Options) (Result, error) {
	mode := o.Mode
	if mode == "" {
		mode = ModeSNP
	}
	if mode == ModeSNP {
		if o.VCPUs < 1 || o.VCPUs > MaxVCPUs {
			return Result{}, usageErr("vCPU count %d out of range 1..%d", o.VCPUs, MaxVCPUs)
		}
	}
	sig, err := resolveSig(o)
	if err != nil {
		return Result{}, err
	}
	p, err := prepare(ctx, o)
	if err != nil {
		return Result{}, err
	}
	if mode == ModeOVMFHash {
		return p.result(), nil
	}
	return p.finish(o.VCPUs, o.VCPUType, sig), nil
}

// MatrixEntry is the digest of one (vCPU count, vCPU type) combination.
type MatrixEntry struct {
	VCPUs    int
	VCPUType string
	VCPUSig  uint32
	Digest   [48]byte
}

// Matrix computes the digest for every combination of vcpus and vcpuTypes
// (o.VCPUs, o.VCPUType and o.VCPUSig are ignored), reading the inputs once.
// Entries come in the order types × counts as given.
func Matrix(ctx context.Context, o Options, vcpus []int, vcpuTypes []string) ([]MatrixEntry, Inputs, error) {
	sigs, err := matrixSigs(o, vcpus, vcpuTypes)
	if err != nil {
		return nil, Inputs{}, err
	}
	o.Mode = ModeSNP
	p, err := prepare(ctx, o)
	if err != nil {
		return nil, Inputs{}, err
	}
	var out []MatrixEntry
	for i, t := range vcpuTypes {
		if err := ctx.Err(); err != nil {
			return nil, Inputs{}, err
		}
		digests := p.digestsByCount(vcpus, sigs[i])
		for _, n := range vcpus {
			out = append(out, MatrixEntry{VCPUs: n, VCPUType: t, VCPUSig: sigs[i], Digest: digests[n]})
		}
	}
	return out, p.inputs, nil
}

// digestsByCount returns the digests finish gives for each of the counts
// and the signature sig, in one pass: the digest of n vCPUs is that of n-1
// with one more AP VMSA, so the time is linear in the largest count, not
// in the counts' sum (counts 1..4096, one type, took 80 s measured apart).
func (p *prepared) digestsByCount(counts []int, sig uint32) map[int][48]byte {
	sorted := slices.Sorted(slices.Values(counts))
	out := make(map[int][48]byte, len(sorted))
	g := p.g
	g.vmsaPage(vmsaPage(p.vmm, bspEIP, sig, p.features))
	ap := sha512.Sum384(vmsaPage(p.vmm, p.img.ResetEIP, sig, p.features)[:])
	have := 1
	for _, n := range sorted {
		for ; have < n; have++ {
			g.update(PageVMSA, VMSAGPA, &ap)
		}
		out[n] = g.ld
	}
	return out
}

// CheckMatrix runs the checks of Matrix that need neither the kernel nor
// the initrd: the options, the vCPU counts and types, and the OVMF image
// (parsed, and with a kernel, checked for the kernel hashes table QEMU's
// direct boot needs). A command that writes several outputs runs it before
// it touches any of them; Matrix repeats it.
func CheckMatrix(o Options, vcpus []int, vcpuTypes []string) error {
	if _, err := matrixSigs(o, vcpus, vcpuTypes); err != nil {
		return err
	}
	o.Mode = ModeSNP
	p, _, err := checkOptions(o)
	if err != nil {
		return err
	}
	f, err := infile.Open("OVMF image", o.OVMF)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading OVMF image %s: %w", o.OVMF, err)
	}
	_, err = checkOVMF(o, p.mode, f, st.Size())
	return err
}

// matrixSigs validates the vCPU counts and types of a matrix and returns
// the types' signatures.
func matrixSigs(o Options, vcpus []int, vcpuTypes []string) ([]uint32, error) {
	if o.Mode != "" && o.Mode != ModeSNP {
		return nil, usageErr("a measurement matrix needs mode %q, not %q", ModeSNP, o.Mode)
	}
	if len(vcpus) == 0 || len(vcpuTypes) == 0 {
		return nil, usageErr("a measurement matrix needs at least one vCPU count and one vCPU type")
	}
	sigs := make([]uint32, len(vcpuTypes))
	for i, t := range vcpuTypes {
		s, err := VCPUSigOf(t)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		sigs[i] = s
	}
	for _, n := range vcpus {
		if n < 1 || n > MaxVCPUs {
			return nil, usageErr("vCPU count %d out of range 1..%d", n, MaxVCPUs)
		}
	}
	return sigs, nil
}

func resolveSig(o Options) (uint32, error) {
	if o.VCPUSigSet || o.VCPUSig != 0 {
		if o.VCPUType != "" {
			if _, err := VCPUSigOf(o.VCPUType); err != nil {
				return 0, fmt.Errorf("%w: %w", ErrUsage, err)
			}
		}
		return o.VCPUSig, nil
	}
	if o.VCPUType != "" {
		s, err := VCPUSigOf(o.VCPUType)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		return s, nil
	}
	vmm, err := ParseVMMType(o.VMMType)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if vmm == VMMQEMU && (o.Mode == "" || o.Mode == ModeSNP) {
		return 0, usageErr("missing vCPU type or signature (QEMU puts the signature in RDX of every VMSA)")
	}
	return 0, nil
}

// prepared is the digest after the OVMF pages and metadata sections, which
// do not depend on the vCPU count or type.
type prepared struct {
	mode     string
	vmm      VMMType
	img      *ovmf.Image
	features uint64
	g        gctx
	steps    []Step
	inputs   Inputs
}

func (p *prepared) step(name string, t PageType, gpa uint64, pages int) {
	p.steps = append(p.steps, Step{
		Name:     name,
		PageType: t.String(),
		GPA:      fmt.Sprintf("0x%x", gpa),
		Pages:    pages,
		Digest:   hex.EncodeToString(p.g.ld[:]),
	})
}

func (p *prepared) result() Result {
	return Result{
		Digest:  p.g.ld,
		Mode:    p.mode,
		VMMType: string(p.vmm),
		Steps:   append([]Step(nil), p.steps...),
		Inputs:  p.inputs,
	}
}

// finish adds the VMSAs of n vCPUs to a copy of the prepared state.
func (p *prepared) finish(n int, vcpuType string, sig uint32) Result {
	q := *p
	q.steps = append([]Step(nil), p.steps...)
	bsp := vmsaPage(p.vmm, bspEIP, sig, p.features)
	q.g.vmsaPage(bsp)
	q.step("VMSA vCPU 0 (BSP)", PageVMSA, VMSAGPA, 1)
	if n > 1 {
		ap := sha512.Sum384(vmsaPage(p.vmm, p.img.ResetEIP, sig, p.features)[:])
		for range n - 1 {
			q.g.update(PageVMSA, VMSAGPA, &ap) // the page hashed once
		}
		q.step(fmt.Sprintf("VMSA vCPU 1..%d (AP)", n-1), PageVMSA, VMSAGPA, n-1)
	}
	r := q.result()
	r.VCPUs, r.VCPUType, r.VCPUSig = n, vcpuType, sig
	return r
}

type fileHash struct {
	in   Input
	sum  [32]byte
	head []byte // the first bytes hashed, up to the bound hashFile was given
	err  error
}

// hashFile streams path through SHA-256.
// infile.Open refuses anything but a regular file, a FIFO at once (a plain
// open would wait for a writer for ever), except the null device: it is an
// empty file here, as in sev-snp-measure (whose tests measure --kernel
// /dev/null --initrd /dev/null). Any size is fine, as the file is streamed.
// The first head bytes hashed are kept (fileHash.head; nil for the null
// device).
func hashFile(ctx context.Context, what, path string, head int) fileHash {
	f, err := infile.Open(what, path)
	if err != nil {
		var nr *infile.NotRegularError
		if errors.As(err, &nr) && nr.IsNullDevice() {
			sum := sha256.Sum256(nil)
			return fileHash{in: Input{Path: path, Size: 0, SHA256: hex.EncodeToString(sum[:])}, sum: sum}
		}
		return fileHash{err: err}
	}
	defer f.Close()
	h := sha256.New()
	kept := &headWriter{b: make([]byte, 0, head)}
	n, err := copyCtx(ctx, io.MultiWriter(h, kept), f)
	if err != nil {
		return fileHash{err: fmt.Errorf("reading %s %s: %w", what, path, err)}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return fileHash{in: Input{Path: path, Size: n, SHA256: hex.EncodeToString(sum[:])}, sum: sum, head: kept.b}
}

// headWriter keeps the first cap(b) bytes written to it.
type headWriter struct{ b []byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := cap(w.b) - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

const chunkSize = 1 << 20

func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, chunkSize)
	var total int64
	for {
		if ctx.Err() != nil {
			return total, context.Cause(ctx)
		}
		n, err := io.ReadFull(r, buf)
		w.Write(buf[:n])
		total += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// checkOptions validates o without reading any file and returns the
// prepared state to fill and the precomputed OVMF hash, if any.
func checkOptions(o Options) (*prepared, []byte, error) {
	p := &prepared{mode: o.Mode, features: o.GuestFeatures}
	if p.mode == "" {
		p.mode = ModeSNP
	}
	if p.mode != ModeSNP && p.mode != ModeOVMFHash {
		return nil, nil, usageErr("unknown mode %q (want %q or %q)", o.Mode, ModeSNP, ModeOVMFHash)
	}
	vmm, err := ParseVMMType(o.VMMType)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	p.vmm = vmm
	if p.features == 0 {
		p.features = DefaultGuestFeatures
	}
	if p.features&1 == 0 {
		return nil, nil, usageErr("guest features 0x%x lack bit 0 (SNPActive), which every SEV-SNP VMSA has", p.features)
	}
	if o.OVMF == "" {
		return nil, nil, usageErr("missing OVMF path")
	}
	if o.Kernel == "" && o.Initrd != "" {
		return nil, nil, usageErr("an initrd needs a kernel")
	}
	if o.Kernel == "" && o.Append != "" {
		return nil, nil, usageErr("a cmdline needs a kernel")
	}
	var seed []byte
	if o.SnpOVMFHash != "" {
		if p.mode != ModeSNP {
			return nil, nil, usageErr("a precomputed OVMF hash only applies to mode %q", ModeSNP)
		}
		seed, err = hex.DecodeString(o.SnpOVMFHash)
		if err != nil || len(seed) != 48 {
			return nil, nil, usageErr("OVMF hash %q is not 96 hex characters", o.SnpOVMFHash)
		}
	}
	if p.mode == ModeOVMFHash && o.Kernel != "" {
		return nil, nil, usageErr("mode %q measures the firmware only; drop the kernel, initrd and cmdline", ModeOVMFHash)
	}
	return p, seed, nil
}

// readOVMF reads the OVMF image once, whole (QEMU's -bios maps it whole:
// a few MiB), parses it from those bytes and checks that it can be
// measured for o in mode: the sections measured, the pages measured and
// the SHA-256 recorded are of the same bytes, whatever is written into the
// file meanwhile. The file is parsed and checked first, so that one that
// cannot be measured (a large file that is no firmware) is refused before
// it is read whole.
func readOVMF(ctx context.Context, o Options, mode string) ([]byte, *ovmf.Image, error) {
	// A FIFO is refused at once (infile.Open), not waited on for ever.
	f, err := infile.Open("OVMF image", o.OVMF)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading OVMF image %s: %w", o.OVMF, err)
	}
	if _, err := checkOVMF(o, mode, f, st.Size()); err != nil {
		return nil, nil, err
	}
	// ovmf.Parse refuses an image larger than 4 GiB: a file grown past
	// that is read no further.
	b, err := io.ReadAll(infile.ContextReader(ctx, io.NewSectionReader(f, 0, 1<<32+1)))
	if ctx.Err() != nil {
		return nil, nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading OVMF image %s: %w", o.OVMF, err)
	}
	img, err := checkOVMF(o, mode, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	return b, img, nil
}

// checkOVMF parses the OVMF image of size bytes that r reads and checks
// that it can be measured for o in mode.
func checkOVMF(o Options, mode string, r io.ReaderAt, size int64) (*ovmf.Image, error) {
	img, err := ovmf.Parse(r, size)
	if err != nil {
		return nil, fmt.Errorf("parsing OVMF image %s: %w", o.OVMF, err)
	}
	if size%pageSize != 0 {
		return nil, fmt.Errorf("OVMF image %s is %d bytes, not a multiple of 4096: it cannot be mapped as flash pages", o.OVMF, size)
	}
	if mode == ModeSNP {
		if err := img.CheckSNP(); err != nil {
			return nil, fmt.Errorf("OVMF image %s: %w", o.OVMF, err)
		}
		if o.Kernel != "" {
			if err := img.CheckDirectBoot(); err != nil {
				return nil, fmt.Errorf("OVMF image %s: kernel specified but %w", o.OVMF, err)
			}
		}
	}
	return img, nil
}

func prepare(ctx context.Context, o Options) (*prepared, error) {
	p, seed, err := checkOptions(o)
	if err != nil {
		return nil, err
	}
	image, img, err := readOVMF(ctx, o, p.mode)
	if err != nil {
		return nil, err
	}
	size := int64(len(image))
	p.img, p.inputs.OVMFImage = img, img
	ovmfParsed()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var kernelC, initrdC chan fileHash
	if o.Kernel != "" {
		kernelC = make(chan fileHash, 1)
		go func() { kernelC <- hashFile(ctx, "kernel", o.Kernel, KernelHeadSize) }()
		if o.Initrd != "" {
			initrdC = make(chan fileHash, 1)
			go func() { initrdC <- hashFile(ctx, "initrd", o.Initrd, 0) }()
		}
	}

	// Stream the OVMF image: SHA-256 for the record, and (unless seeded)
	// every page as NORMAL from its GPA.
	if seed != nil {
		copy(p.g.ld[:], seed)
	}
	fh := sha256.New()
	gpa := img.GPA()
	var read int64
	for read < size {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		chunk := image[read:min(read+chunkSize, size)]
		fh.Write(chunk)
		if seed == nil {
			p.g.normalPages(gpa+uint64(read), chunk)
		}
		read += int64(len(chunk))
	}
	var ovmfSum [32]byte
	fh.Sum(ovmfSum[:0])
	p.inputs.OVMF = Input{Path: o.OVMF, Size: size, SHA256: hex.EncodeToString(ovmfSum[:])}
	if seed != nil {
		p.step("OVMF pages (precomputed hash)", PageNormal, gpa, int(size/pageSize))
	} else {
		p.step("OVMF pages", PageNormal, gpa, int(size/pageSize))
	}
	if p.mode == ModeOVMFHash {
		return p, nil
	}

	var hashes *[pageSize]byte
	if kernelC != nil {
		k := <-kernelC
		if k.err != nil {
			return nil, k.err
		}
		p.inputs.Kernel, p.inputs.KernelHead = &k.in, k.head
		initrdSum := sha256.Sum256(nil)
		if initrdC != nil {
			i := <-initrdC
			if i.err != nil {
				return nil, i.err
			}
			p.inputs.Initrd = &i.in
			initrdSum = i.sum
		}
		cmdlineSum := sha256.Sum256(append([]byte(o.Append), 0))
		p.inputs.CmdlineSHA256 = hex.EncodeToString(cmdlineSum[:])
		page, err := hashesPage(img.HashTable.Base, hashesTable(k.sum, initrdSum, cmdlineSum))
		if err != nil {
			return nil, fmt.Errorf("OVMF image %s: %w", o.OVMF, err)
		}
		hashes = &page
	}

	for _, s := range img.Metadata {
		gpa, sz := uint64(s.GPA), uint64(s.Size)
		name := fmt.Sprintf("%s 0x%x+0x%x", s.Type, s.GPA, s.Size)
		switch s.Type {
		case ovmf.SectionSNPSecMem:
			t := PageZero
			if p.vmm == VMMGCE {
				t = PageUnmeasured
			}
			if err := p.g.emptyPages(ctx, t, gpa, sz); err != nil {
				return nil, err
			}
			p.step(name, t, gpa, int(sz/pageSize))
		case ovmf.SectionSNPSecrets:
			p.g.update(PageSecrets, gpa, nil)
			p.step(name, PageSecrets, gpa, 1)
		case ovmf.SectionCPUID:
			if p.vmm == VMMEC2 {
				continue // ec2 measures CPUID pages last
			}
			p.g.update(PageCPUID, gpa, nil)
			p.step(name, PageCPUID, gpa, 1)
		case ovmf.SectionSNPKernelHashes:
			if hashes != nil {
				// A one-page section (CheckDirectBoot): the table at its
				// offset in that page, measured as a NORMAL page.
				p.g.normalPages(gpa, hashes[:])
				p.step(name+" (kernel hashes)", PageNormal, gpa, 1)
			} else {
				if err := p.g.emptyPages(ctx, PageZero, gpa, sz); err != nil {
					return nil, err
				}
				p.step(name+" (no kernel)", PageZero, gpa, int(sz/pageSize))
			}
		default: // SVSM_CAA; QEMU maps every other type to ZERO
			if err := p.g.emptyPages(ctx, PageZero, gpa, sz); err != nil {
				return nil, err
			}
			p.step(name, PageZero, gpa, int(sz/pageSize))
		}
	}
	if p.vmm == VMMEC2 {
		for _, s := range img.Metadata {
			if s.Type == ovmf.SectionCPUID {
				p.g.update(PageCPUID, uint64(s.GPA), nil)
				p.step(fmt.Sprintf("%s 0x%x+0x%x (ec2: last)", s.Type, s.GPA, s.Size), PageCPUID, uint64(s.GPA), 1)
			}
		}
	}
	return p, nil
}

// ovmfParsed runs once the OVMF image is read and parsed, before its
// pages are measured: a test seam (the file written there).
var ovmfParsed = func() {}

package measure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

func TestCPUSig(t *testing.T) {
	tests := []struct {
		vcpuType string
		want     uint32
	}{
		{"EPYC", 0x800f12}, {"EPYC-v4", 0x800f12}, {"EPYC-IBPB", 0x800f12},
		{"EPYC-Rome", 0x830f10}, {"EPYC-Rome-v3", 0x830f10},
		{"EPYC-Milan", 0xa00f11}, {"EPYC-Milan-v2", 0xa00f11},
		{"EPYC-Genoa", 0xa10f10}, {"EPYC-Genoa-v1", 0xa10f10},
		{"EPYC-Turin", 0xb00f00},
	}
	for _, tc := range tests {
		got, err := VCPUSigOf(tc.vcpuType)
		if err != nil || got != tc.want {
			t.Errorf("VCPUSigOf(%s) = 0x%x, %v; want 0x%x", tc.vcpuType, got, err, tc.want)
		}
	}
	if got := CPUSig(25, 17, 0); got != 0xa10f10 {
		t.Errorf("CPUSig(25,17,0) = 0x%x", got)
	}
	if _, err := VCPUSigOf("EPYC-Zen9"); err == nil || !strings.Contains(err.Error(), "EPYC-Genoa") {
		t.Errorf("VCPUSigOf(EPYC-Zen9) = %v, want an error listing the known types", err)
	}
	if n := len(VCPUTypes()); n != 16 {
		t.Errorf("%d vCPU types, want the 16 sev-snp-measure knows", n)
	}
}

// The example of the research notes: k.bin, i.bin, "console=ttyS0 loglevel=7".
func TestHashesTable(t *testing.T) {
	k := sha256.Sum256(bytes.Repeat([]byte{'k'}, 1_000_000))
	i := sha256.Sum256(bytes.Repeat([]byte{'i'}, 2_000_000))
	c := sha256.Sum256([]byte("console=ttyS0 loglevel=7\x00"))
	table := hashesTable(k, i, c)
	wantPrefix := "06d63894224fc94cb479a793d411fd21" + "a800" + "d82dd09720bd944caa78e7714d36ab2a" + "3200" + "321c8eec"
	if got := hex.EncodeToString(table[:]); !strings.HasPrefix(got, wantPrefix) {
		t.Errorf("table = %s, want prefix %s", got, wantPrefix)
	}
	if !bytes.Equal(table[168:], make([]byte, 8)) {
		t.Errorf("padding %x is not zero", table[168:])
	}
	// Entries in the order cmdline, initrd, kernel.
	for n, want := range [][32]byte{c, i, k} {
		off := 18 + n*50 + 18
		if !bytes.Equal(table[off:off+32], want[:]) {
			t.Errorf("entry %d hash = %x, want %x", n, table[off:off+32], want)
		}
	}
	page, err := hashesPage(0x810c00, table)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum384(page[:])
	if got := hex.EncodeToString(sum[:]); !strings.HasPrefix(got, "b4fe6e52") || !strings.HasSuffix(got, "29dd") {
		t.Errorf("page SHA-384 = %s, want b4fe6e52…29dd", got)
	}
	if _, err := hashesPage(0x810fa0, table); err == nil {
		t.Error("hashesPage accepted a table crossing the page end")
	}
	// A table ending exactly at the page end fits.
	end := uint32(0x811000 - len(table))
	page, err = hashesPage(end, table)
	if err != nil {
		t.Errorf("hashesPage(0x%x), a table ending at the page end: %v", end, err)
	}
	if !bytes.Equal(page[pageSize-len(table):], table[:]) || !bytes.Equal(page[:pageSize-len(table)], make([]byte, pageSize-len(table))) {
		t.Errorf("hashesPage(0x%x) did not place the table in the last %d bytes of a zero page", end, len(table))
	}
	if _, err := hashesPage(end+1, table); err == nil {
		t.Errorf("hashesPage(0x%x) accepted a table one byte past the page end", end+1)
	}
}

func TestVMSAPage(t *testing.T) {
	type word struct {
		off  int
		size int
		want uint64
	}
	common := []word{
		{0x000, 8, 0x0000ffff00930000}, // es: sel 0, attr 0x93, limit 0xffff
		{0x060, 8, 0x0000ffff00000000}, // gdtr
		{0x070, 8, 0x0000ffff00820000}, // ldtr
		{0x0d0, 8, 0x1000}, {0x148, 8, 0x40}, {0x158, 8, 0x10}, {0x160, 8, 0x400},
		{0x168, 8, 0xffff0ff0}, {0x170, 8, 2}, {0x3b0, 8, 0x21}, {0x3e8, 8, 1},
	}
	tests := []struct {
		name  string
		vmm   VMMType
		eip   uint32
		words []word
	}{
		{"QEMU BSP", VMMQEMU, bspEIP, []word{
			{0x010, 8, 0x0000ffff009bf000}, {0x018, 8, 0xffff0000}, {0x178, 8, 0xfff0},
			{0x020, 8, 0x0000ffff00930000}, {0x090, 8, 0x0000ffff008b0000},
			{0x268, 8, 0x0007040600070406}, {0x310, 8, 0xa10f10}, {0x408, 4, 0x1f80}, {0x410, 2, 0x37f},
		}},
		{"QEMU AP", VMMQEMU, 0x80b004, []word{
			{0x018, 8, 0x800000}, {0x178, 8, 0xb004}, {0x310, 8, 0xa10f10},
		}},
		{"ec2 BSP", VMMEC2, bspEIP, []word{
			{0x010, 8, 0x0000ffff009af000}, {0x020, 8, 0x0000ffff00920000}, {0x090, 8, 0x0000ffff00830000},
			{0x310, 8, 0x600}, {0x408, 4, 0}, {0x410, 2, 0},
		}},
		{"ec2 AP", VMMEC2, 0x80b004, []word{{0x010, 8, 0x0000ffff009bf000}}},
		{"gce BSP", VMMGCE, bspEIP, []word{
			{0x010, 8, 0x0000ffff009bf000}, {0x268, 8, 0x00070106}, {0x310, 8, 0x600}, {0x408, 4, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := vmsaPage(tc.vmm, tc.eip, 0xa10f10, 0x21)
			for _, w := range append(common, tc.words...) {
				var got uint64
				switch w.size {
				case 8:
					got = binary.LittleEndian.Uint64(p[w.off:])
				case 4:
					got = uint64(binary.LittleEndian.Uint32(p[w.off:]))
				case 2:
					got = uint64(binary.LittleEndian.Uint16(p[w.off:]))
				}
				if got != w.want {
					t.Errorf("offset 0x%03x = 0x%x, want 0x%x", w.off, got, w.want)
				}
			}
			if !bytes.Equal(p[0x420:], make([]byte, pageSize-0x420)) {
				t.Error("bytes past x87_fcw are not zero")
			}
		})
	}
}

func TestGCTXFirstPage(t *testing.T) {
	// The research notes' check value: zero seed, one NORMAL page (the
	// AmdSev suffix fixture) at 0xfffff000 gives the fixture's ovmf-hash.
	_, dir := loadVectors(t)
	page, err := os.ReadFile(filepath.Join(dir, "fixtures", "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var g gctx
	g.normalPages(0xfffff000, page)
	const want = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"
	if got := hex.EncodeToString(g.ld[:]); got != want {
		t.Errorf("ld = %s, want %s", got, want)
	}
	// Another GPA or page type gives another digest.
	for _, f := range []func(*gctx){
		func(g *gctx) { g.normalPages(0xffffe000, page) },
		func(g *gctx) { h := sha512.Sum384(page); g.update(PageVMSA, 0xfffff000, &h) },
	} {
		var h gctx
		f(&h)
		if hex.EncodeToString(h.ld[:]) == want {
			t.Error("GPA or page type does not enter the digest")
		}
	}
}

// testFiles writes an AmdSev-like firmware, a kernel and an initrd.
type testFiles struct {
	dir, amdsev, x64, kernel, initrd string
}

func makeFiles(t *testing.T) testFiles {
	t.Helper()
	vs, dir := loadVectors(t)
	_ = vs
	tmp := t.TempDir()
	f := testFiles{
		dir:    tmp,
		amdsev: filepath.Join(dir, "fixtures", "ovmf_AmdSev_suffix.bin"),
		x64:    filepath.Join(dir, "fixtures", "ovmf_OvmfX64_suffix.bin"),
		kernel: filepath.Join(tmp, "kernel"),
		initrd: filepath.Join(tmp, "initrd"),
	}
	if err := os.WriteFile(f.kernel, bytes.Repeat([]byte{'k'}, 1_000_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.initrd, bytes.Repeat([]byte{'i'}, 2_000_000), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestComputeErrors(t *testing.T) {
	f := makeFiles(t)
	odd := filepath.Join(f.dir, "odd.fd")
	suffix, err := os.ReadFile(f.amdsev)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, append([]byte{0}, suffix...), 0o644); err != nil {
		t.Fatal(err)
	}
	// The AmdSev fixture with its SECRETS section (descriptor 2) two pages
	// long, moved to the free space after the last SEC_MEM so that it
	// overlaps no other section.
	bigSecrets := filepath.Join(f.dir, "secrets.fd")
	patched := append([]byte(nil), suffix...)
	binary.LittleEndian.PutUint32(patched[len(patched)-0x554+16+2*12:], 0x820000)
	binary.LittleEndian.PutUint32(patched[len(patched)-0x554+16+2*12+4:], 0x2000)
	if err := os.WriteFile(bigSecrets, patched, 0o644); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(f.dir, "vars.fd")
	if err := os.WriteFile(vars, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	base := Options{VCPUs: 2, VCPUType: "EPYC-v4", OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd, Append: "x"}
	tests := []struct {
		name    string
		mod     func(o *Options)
		usage   bool
		kernelH bool
		want    string
	}{
		{"zero vcpus", func(o *Options) { o.VCPUs = 0 }, true, false, "vCPU count 0"},
		{"too many vcpus", func(o *Options) { o.VCPUs = MaxVCPUs + 1 }, true, false, "out of range"},
		{"unknown type", func(o *Options) { o.VCPUType = "EPYC-Zen9" }, true, false, "unknown vCPU type"},
		{"type in another case", func(o *Options) { o.VCPUType = "epyc-v4" }, true, false, `unknown vCPU type "epyc-v4": did you mean "EPYC-v4"?`},
		{"no type for QEMU", func(o *Options) { o.VCPUType = "" }, true, false, "missing vCPU type"},
		{"unknown vmm", func(o *Options) { o.VMMType = "qemu" }, true, false, "unknown VMM type"},
		{"unknown mode", func(o *Options) { o.Mode = "sev" }, true, false, "unknown mode"},
		{"features without SNPActive", func(o *Options) { o.GuestFeatures = 0x20 }, true, false, "bit 0"},
		{"initrd without kernel", func(o *Options) { o.Kernel, o.Append = "", "" }, true, false, "initrd needs a kernel"},
		{"cmdline without kernel", func(o *Options) { o.Kernel, o.Initrd = "", "" }, true, false, "cmdline needs a kernel"},
		{"bad seed", func(o *Options) { o.SnpOVMFHash = "abcd" }, true, false, "not 96 hex"},
		{"seed in ovmf-hash mode", func(o *Options) {
			o.Mode, o.SnpOVMFHash = ModeOVMFHash, strings.Repeat("00", 48)
		}, true, false, "only applies"},
		{"kernel in ovmf-hash mode", func(o *Options) { o.Mode = ModeOVMFHash }, true, false, "firmware only"},
		{"no ovmf", func(o *Options) { o.OVMF = "" }, true, false, "missing OVMF"},
		{"plain OVMF with kernel", func(o *Options) { o.OVMF = f.x64 }, false, true, "doesn't include SNP_KERNEL_HASHES section: QEMU would boot the kernel, initrd and cmdline unmeasured"},
		{"ovmf not page multiple", func(o *Options) { o.OVMF = odd }, false, false, "not a multiple of 4096"},
		{"variable store as ovmf", func(o *Options) { o.OVMF = vars }, false, false, "SEV_ES_RESET_BLOCK"},
		{"two-page secrets section", func(o *Options) { o.OVMF = bigSecrets }, false, false, "SNP_SECRETS section at 0x820000 is 0x2000 bytes, not one page"},
		{"signature with unknown type", func(o *Options) { o.VCPUSig, o.VCPUType = 0xa00f11, "EPYC-Zen9" }, true, false, "unknown vCPU type \"EPYC-Zen9\""},
		{"explicit signature 0 with unknown type", func(o *Options) { o.VCPUSigSet, o.VCPUType = true, "EPYC-Zen9" }, true, false, "unknown vCPU type \"EPYC-Zen9\""},
		{"missing ovmf", func(o *Options) { o.OVMF = filepath.Join(f.dir, "nope") }, false, false, "no such file"},
		{"missing kernel", func(o *Options) { o.Kernel = filepath.Join(f.dir, "nope") }, false, false, "opening kernel"},
		{"missing initrd", func(o *Options) { o.Initrd = filepath.Join(f.dir, "nope") }, false, false, "opening initrd"},
		{"ovmf is a folder", func(o *Options) { o.OVMF = f.dir }, false, false, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			res, err := Compute(context.Background(), o)
			if err == nil {
				t.Fatalf("Compute succeeded: %s", res.Hex())
			}
			checkRefusal(t, err, tc.usage, tc.kernelH, tc.want)
		})
	}
}

func TestComputeCmdlineByteForByte(t *testing.T) {
	f := makeFiles(t)
	seen := map[string]string{}
	for _, c := range []string{"", " ", "a", "a ", " a", "a\n", "a\t", "a  b", "a b"} {
		r, err := Compute(context.Background(), Options{VCPUs: 1, VCPUType: "EPYC-v4", OVMF: f.amdsev, Kernel: f.kernel, Append: c})
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(append([]byte(c), 0))
		if r.Inputs.CmdlineSHA256 != hex.EncodeToString(want[:]) {
			t.Errorf("cmdline %q hashed as %s, want SHA-256 of the bytes plus NUL", c, r.Inputs.CmdlineSHA256)
		}
		if prev, dup := seen[r.Hex()]; dup {
			t.Errorf("cmdlines %q and %q give the same digest: something trims", prev, c)
		}
		seen[r.Hex()] = c
	}
}

func TestComputeResult(t *testing.T) {
	f := makeFiles(t)
	o := Options{VCPUs: 4, VCPUType: "EPYC-Milan", OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd, Append: "console=ttyS0 loglevel=7"}
	r, err := Compute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// vectors.json D-seeded-selfhash-k_i_cmd / A-QEMU-4-EPYC-Milan-0x1-k_i_cmd.
	const want = "f7f48a520a2d6b3fd5778e9e6fdcbb173c496256d3a312f8b86c3b5dc6ec7dd22e30f8331e517dd976189d379ba205bd"
	if r.Hex() != want {
		t.Errorf("digest %s, want %s", r.Hex(), want)
	}
	// What the checks of the measured files read: the image as parsed
	// and the kernel's start, from the measurement's own reading.
	gotInputs := r.Inputs
	if gotInputs.OVMFImage == nil || gotInputs.OVMFImage.Size != 4096 || gotInputs.OVMFImage.HashTable == nil {
		t.Errorf("OVMFImage %+v, want the fixture's image as parsed", gotInputs.OVMFImage)
	}
	if !bytes.Equal(gotInputs.KernelHead, bytes.Repeat([]byte{'k'}, KernelHeadSize)) {
		t.Errorf("KernelHead: %d bytes, want the kernel's first %d", len(gotInputs.KernelHead), KernelHeadSize)
	}
	gotInputs.OVMFImage, gotInputs.KernelHead = nil, nil
	wantInputs := Inputs{
		OVMF:          Input{Path: f.amdsev, Size: 4096, SHA256: "8f765dfabc127fc0a938a0744a3103ec15864d7d794eb4c398aa976b6d6ab16c"},
		Kernel:        &Input{Path: f.kernel, Size: 1_000_000, SHA256: "7eab2f295cd4dce0cc490ca925b6ea40e4e63a0d1dc9e89ba92c111f8ff3ea0f"},
		Initrd:        &Input{Path: f.initrd, Size: 2_000_000, SHA256: "4167d90c3ba1ef34498197249ca740826094960050f7e031e77b94ca229fa9b8"},
		CmdlineSHA256: "321c8eec6a77bad179511397f913a083067ad8cb737bb260aacbfe8df70fc50a",
	}
	if diff := cmp.Diff(wantInputs, gotInputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	wantNames := []string{
		"OVMF pages",
		"SNP_SEC_MEM 0x800000+0x9000", "SNP_SEC_MEM 0x80a000+0x3000", "SNP_SECRETS 0x80d000+0x1000",
		"CPUID 0x80e000+0x1000", "SVSM_CAA 0x80f000+0x1000", "SNP_KERNEL_HASHES 0x810000+0x1000 (kernel hashes)",
		"SNP_SEC_MEM 0x811000+0xf000", "VMSA vCPU 0 (BSP)", "VMSA vCPU 1..3 (AP)",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if r.Steps[0].Digest != "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74" {
		t.Errorf("digest after the OVMF pages = %s, want the fixture's ovmf-hash", r.Steps[0].Digest)
	}
	if last := r.Steps[len(r.Steps)-1].Digest; last != r.Hex() {
		t.Errorf("last step %s != result %s", last, r.Hex())
	}
}

func TestMatrixMatchesCompute(t *testing.T) {
	f := makeFiles(t)
	base := Options{OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd, Append: "a=b", GuestFeatures: 0x21}
	counts, types := []int{1, 2, 4}, []string{"EPYC-v4", "EPYC-Genoa"}
	for _, vmm := range []string{"QEMU", "ec2", "gce"} {
		base.VMMType = vmm
		got, in, err := Matrix(context.Background(), base, counts, types)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 6 || in.Kernel == nil || in.Initrd == nil {
			t.Fatalf("%s: %d entries, inputs %+v", vmm, len(got), in)
		}
		for _, e := range got {
			o := base
			o.VCPUs, o.VCPUType = e.VCPUs, e.VCPUType
			r, err := Compute(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Digest != e.Digest {
				t.Errorf("%s %d×%s: Matrix %x, Compute %s", vmm, e.VCPUs, e.VCPUType, e.Digest, r.Hex())
			}
		}
	}
	if _, _, err := Matrix(context.Background(), base, nil, types); !errors.Is(err, ErrUsage) {
		t.Errorf("Matrix without counts: %v, want ErrUsage", err)
	}
	if _, _, err := Matrix(context.Background(), base, counts, []string{"nope"}); !errors.Is(err, ErrUsage) {
		t.Errorf("Matrix with unknown type: %v, want ErrUsage", err)
	}
}

func TestComputeCanceled(t *testing.T) {
	f := makeFiles(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Compute(ctx, Options{VCPUs: 1, VCPUType: "EPYC-v4", OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Compute with a canceled context: %v, want context.Canceled", err)
	}
}

// A hostile firmware can list sections of nearly 4 GiB (a million pages);
// measuring them stops soon after the context is done, not seconds later.
func TestComputeCanceledInHugeSection(t *testing.T) {
	f := makeFiles(t)
	suffix, err := os.ReadFile(f.amdsev)
	if err != nil {
		t.Fatal(err)
	}
	// The AmdSev fixture with its last SEC_MEM (descriptor 6) moved to
	// 16 MiB and made 3.5 GiB long: 917504 ZERO pages.
	huge := filepath.Join(f.dir, "huge.fd")
	patched := append([]byte(nil), suffix...)
	binary.LittleEndian.PutUint32(patched[len(patched)-0x554+16+6*12:], 0x1000000)
	binary.LittleEndian.PutUint32(patched[len(patched)-0x554+16+6*12+4:], 0xe0000000)
	if err := os.WriteFile(huge, patched, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Compute(ctx, Options{VCPUs: 1, VCPUType: "EPYC-v4", OVMF: huge})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Compute with a context that times out during a 3.5 GiB section: %v (digest %s after %v), want context.DeadlineExceeded", err, res.Hex(), time.Since(start))
	}
	t.Logf("stopped after %v", time.Since(start))
}

// Debian's ovmf package ships only plain OvmfPkgX64 builds: they measure
// without a kernel, and measuring them with a kernel is refused.
func TestDebianFirmwareRefusesKernel(t *testing.T) {
	var files []string
	for _, pat := range []string{"/usr/share/OVMF/OVMF_CODE*.fd", "/usr/share/ovmf/OVMF*.fd"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("skipping: no Debian OVMF code images; install them with 'apt-get install -y ovmf' (.ci/run does)")
	}
	f := makeFiles(t)
	for _, fw := range files {
		t.Run(fw, func(t *testing.T) {
			amdsev := strings.Contains(strings.ToLower(fw), "amdsev")
			o := Options{VCPUs: 2, VCPUType: "EPYC-v4", OVMF: fw}
			r, err := Compute(context.Background(), o)
			if err != nil {
				t.Fatalf("firmware-only measurement: %v", err)
			}
			st, _ := os.Stat(fw)
			if r.Steps[0].Pages != int(st.Size()/pageSize) {
				t.Errorf("measured %d OVMF pages, file has %d", r.Steps[0].Pages, st.Size()/pageSize)
			}
			o.Kernel, o.Initrd, o.Append = f.kernel, f.initrd, "console=ttyS0"
			_, err = Compute(context.Background(), o)
			if amdsev {
				if err != nil {
					t.Errorf("AmdSev build with a kernel: %v", err)
				}
				return
			}
			if !errors.Is(err, ovmf.ErrNoKernelHashes) || !strings.Contains(err.Error(), "unmeasured") {
				t.Errorf("plain build with a kernel: %v, want the refusal with its explanation", err)
			}
		})
	}
}

// Steps (hostbuild measure --json) say what each stage measured: every
// metadata section's type, GPA and page count, one VMSA step for the BSP and
// one for the APs (none with a single vCPU).
func TestComputeSteps(t *testing.T) {
	f := makeFiles(t)
	type step struct {
		Name, PageType, GPA string
		Pages               int
	}
	sections := func(hashes step) []step {
		return []step{
			{"SNP_SEC_MEM 0x800000+0x9000", "ZERO", "0x800000", 9},
			{"SNP_SEC_MEM 0x80a000+0x3000", "ZERO", "0x80a000", 3},
			{"SNP_SECRETS 0x80d000+0x1000", "SECRETS", "0x80d000", 1},
			{"CPUID 0x80e000+0x1000", "CPUID", "0x80e000", 1},
			{"SVSM_CAA 0x80f000+0x1000", "ZERO", "0x80f000", 1},
			hashes,
			{"SNP_SEC_MEM 0x811000+0xf000", "ZERO", "0x811000", 15},
		}
	}
	ovmfPages := step{"OVMF pages", "NORMAL", "0xfffff000", 1}
	kernelHashes := step{"SNP_KERNEL_HASHES 0x810000+0x1000 (kernel hashes)", "NORMAL", "0x810000", 1}
	noKernel := step{"SNP_KERNEL_HASHES 0x810000+0x1000 (no kernel)", "ZERO", "0x810000", 1}
	bsp := step{"VMSA vCPU 0 (BSP)", "VMSA", "0xfffffffff000", 1}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	const seed = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"
	ec2Sections := sections(noKernel)
	ec2Sections = append(ec2Sections[:3:3], ec2Sections[4:]...)
	tests := []struct {
		name string
		o    Options
		want []step
	}{
		{"4 vCPUs with a kernel", Options{VCPUs: 4, Kernel: f.kernel, Initrd: f.initrd},
			cat([]step{ovmfPages}, sections(kernelHashes), []step{bsp, {"VMSA vCPU 1..3 (AP)", "VMSA", "0xfffffffff000", 3}})},
		{"1 vCPU, firmware only", Options{VCPUs: 1},
			cat([]step{ovmfPages}, sections(noKernel), []step{bsp})},
		{"2 vCPUs", Options{VCPUs: 2},
			cat([]step{ovmfPages}, sections(noKernel), []step{bsp, {"VMSA vCPU 1..1 (AP)", "VMSA", "0xfffffffff000", 1}})},
		{"ec2, precomputed OVMF hash", Options{VCPUs: 1, VMMType: "ec2", SnpOVMFHash: seed},
			cat([]step{{"OVMF pages (precomputed hash)", "NORMAL", "0xfffff000", 1}}, ec2Sections,
				[]step{{"CPUID 0x80e000+0x1000 (ec2: last)", "CPUID", "0x80e000", 1}, bsp})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.VCPUType, o.OVMF = "EPYC-Milan", f.amdsev
			r, err := Compute(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			var got []step
			for _, s := range r.Steps {
				got = append(got, step{s.Name, s.PageType, s.GPA, s.Pages})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

// The vCPU count bounds are inclusive: 1 and MaxVCPUs are measured, 0 and
// MaxVCPUs+1 refused, by Compute, Matrix and CheckMatrix alike.
func TestVCPUBounds(t *testing.T) {
	f := makeFiles(t)
	base := Options{VCPUType: "EPYC-v4", OVMF: f.amdsev}
	for _, n := range []int{1, MaxVCPUs} {
		o := base
		o.VCPUs = n
		r, err := Compute(context.Background(), o)
		if err != nil {
			t.Errorf("Compute with %d vCPUs: %v", n, err)
		} else if r.VCPUs != n {
			t.Errorf("Compute with %d vCPUs: result says %d", n, r.VCPUs)
		}
		if err := CheckMatrix(base, []int{n}, []string{"EPYC-v4"}); err != nil {
			t.Errorf("CheckMatrix with %d vCPUs: %v", n, err)
		}
		m, _, err := Matrix(context.Background(), base, []int{n}, []string{"EPYC-v4"})
		if err != nil {
			t.Errorf("Matrix with %d vCPUs: %v", n, err)
		} else if len(m) != 1 || m[0].Digest != r.Digest {
			t.Errorf("Matrix with %d vCPUs: %+v, want Compute's digest %s", n, m, r.Hex())
		}
	}
	for _, n := range []int{0, MaxVCPUs + 1} {
		want := fmt.Sprintf("vCPU count %d out of range 1..%d", n, MaxVCPUs)
		o := base
		o.VCPUs = n
		if _, err := Compute(context.Background(), o); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("Compute with %d vCPUs: %v, want ErrUsage saying %q", n, err, want)
		}
		if err := CheckMatrix(base, []int{1, n}, []string{"EPYC-v4"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckMatrix with %d vCPUs: %v, want ErrUsage saying %q", n, err, want)
		}
		if _, _, err := Matrix(context.Background(), base, []int{1, n}, []string{"EPYC-v4"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("Matrix with %d vCPUs: %v, want ErrUsage saying %q", n, err, want)
		}
	}
}

// CheckMatrix runs Matrix's checks without reading the kernel or the
// initrd (they need not exist yet) and refuses what Matrix would.
func TestCheckMatrix(t *testing.T) {
	f := makeFiles(t)
	absent := filepath.Join(f.dir, "not-built-yet")
	base := Options{OVMF: f.amdsev, Kernel: absent, Initrd: absent, Append: "console=ttyS0"}
	counts, types := []int{1, 4}, []string{"EPYC-v4", "EPYC-Genoa"}
	for _, mode := range []string{"", ModeSNP} {
		o := base
		o.Mode = mode
		if err := CheckMatrix(o, counts, types); err != nil {
			t.Errorf("mode %q: CheckMatrix: %v", mode, err)
		}
	}
	tests := []struct {
		name    string
		mod     func(o *Options)
		counts  []int
		types   []string
		usage   bool
		kernelH bool
		want    string
	}{
		{"ovmf-hash mode", func(o *Options) { o.Mode = ModeOVMFHash }, counts, types, true, false, `needs mode "snp", not "snp:ovmf-hash"`},
		{"unknown mode", func(o *Options) { o.Mode = "sev" }, counts, types, true, false, `needs mode "snp", not "sev"`},
		{"no counts", nil, nil, types, true, false, "at least one vCPU count"},
		{"no types", nil, counts, nil, true, false, "at least one vCPU count and one vCPU type"},
		{"unknown type", nil, counts, []string{"EPYC-v4", "EPYC-Zen9"}, true, false, `unknown vCPU type "EPYC-Zen9"`},
		{"unknown vmm", func(o *Options) { o.VMMType = "qemu" }, counts, types, true, false, `unknown VMM type "qemu"`},
		{"initrd without kernel", func(o *Options) { o.Kernel, o.Append = "", "" }, counts, types, true, false, "initrd needs a kernel"},
		{"no ovmf", func(o *Options) { o.OVMF = "" }, counts, types, true, false, "missing OVMF"},
		{"missing ovmf", func(o *Options) { o.OVMF = absent }, counts, types, false, false, "no such file"},
		{"plain OVMF with kernel", func(o *Options) { o.OVMF = f.x64 }, counts, types, false, true, "doesn't include SNP_KERNEL_HASHES"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.mod != nil {
				tc.mod(&o)
			}
			err := CheckMatrix(o, tc.counts, tc.types)
			if err == nil {
				t.Fatal("CheckMatrix accepted")
			}
			checkRefusal(t, err, tc.usage, tc.kernelH, tc.want)
			// Matrix refuses the same way (it reads the inputs only after
			// the checks).
			if _, _, merr := Matrix(context.Background(), o, tc.counts, tc.types); merr == nil || merr.Error() != err.Error() {
				t.Errorf("Matrix: %v, want CheckMatrix's %v", merr, err)
			}
		})
	}
}

// Measuring empty pages looks at the context before the first page: a done
// context stops even a one-page section, which then is not measured.
func TestEmptyPagesCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, pages := range []uint64{1, 2, ctxCheckPages + 1} {
		var g gctx
		if err := g.emptyPages(ctx, PageZero, 0x800000, pages*pageSize); !errors.Is(err, context.Canceled) {
			t.Errorf("%d pages with a canceled context: %v, want context.Canceled", pages, err)
		}
		if g.ld != ([48]byte{}) {
			t.Errorf("%d pages with a canceled context: digest moved to %x", pages, g.ld)
		}
	}
}

// checkRefusal checks a refusal's class (ErrUsage, ErrNoKernelHashes) and
// that its message contains want.
func checkRefusal(t *testing.T, err error, usage, kernelHashes bool, want string) {
	t.Helper()
	if got := errors.Is(err, ErrUsage); got != usage {
		t.Errorf("errors.Is(ErrUsage) = %v, want %v (%v)", got, usage, err)
	}
	if got := errors.Is(err, ovmf.ErrNoKernelHashes); got != kernelHashes {
		t.Errorf("errors.Is(ErrNoKernelHashes) = %v, want %v (%v)", got, kernelHashes, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// Alike: QEMU measures a vCPU type by its signature only, so the types
// sharing it give one digest (checked here by measuring them); ec2 and gce
// measure none.
func TestAlike(t *testing.T) {
	if got, want := Alike(VMMQEMU, "EPYC-v4"), []string{"EPYC", "EPYC-IBPB", "EPYC-v1", "EPYC-v2", "EPYC-v3", "EPYC-v4"}; !slices.Equal(got, want) {
		t.Errorf("Alike(QEMU, EPYC-v4) = %q, want %q", got, want)
	}
	if got := Alike(VMMQEMU, "EPYC-Turin"); !slices.Equal(got, []string{"EPYC-Turin"}) {
		t.Errorf("Alike(QEMU, EPYC-Turin) = %q", got)
	}
	if got := Alike(VMMGCE, "EPYC-v4"); got != nil {
		t.Errorf("Alike(gce, EPYC-v4) = %q, want nil (not measured)", got)
	}
	for _, vmm := range []VMMType{VMMQEMU, VMMGCE} {
		digests := map[string][]string{}
		for _, typ := range VCPUTypes() {
			v := vmsaPage(vmm, bspEIP, vcpuSigs[typ], DefaultGuestFeatures)
			k := string(v[:])
			digests[k] = append(digests[k], typ)
		}
		for _, types := range digests {
			for _, typ := range types {
				want := Alike(vmm, typ)
				if want == nil {
					want = VCPUTypes()
				}
				if !slices.Equal(types, want) {
					t.Errorf("%s: %s's VMSA equals those of %q, Alike says %q", vmm, typ, types, want)
				}
			}
		}
	}
}

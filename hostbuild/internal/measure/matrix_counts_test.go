package measure

import (
	"context"
	"testing"
	"time"
)

// A matrix over many vCPU counts takes time linear in the largest count,
// not in their sum: the digest of n vCPUs is that of n-1 with one more AP
// VMSA. Each count was measured from scratch, the AP page hashed again for
// every vCPU: counts 1..4096 for one type took about 80 s, a manifest
// listing them for all 16 types 20 minutes to reproduce, and attest
// --explain (every type, a dozen variants) hours. All counts up to 2048
// must take at most 20 times as long as the count 2048 alone.
func TestMatrixManyCountsLinear(t *testing.T) {
	f := makeFiles(t)
	base := Options{OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd, Append: "a=b", GuestFeatures: 0x1}
	const top = 2048
	var all []int
	for n := top; n >= 1; n-- { // any order
		all = append(all, n)
	}
	timed := func(counts []int) time.Duration {
		best := time.Duration(1 << 62)
		for range 2 {
			start := time.Now()
			got, _, err := Matrix(context.Background(), base, counts, []string{"EPYC-v4"})
			best = min(best, time.Since(start))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(counts) {
				t.Fatalf("%d entries for %d counts", len(got), len(counts))
			}
		}
		return best
	}
	one, many := timed([]int{top}), timed(all)
	t.Logf("count %d alone %v, counts 1..%d %v", top, one, top, many)
	if many > 20*one+100*time.Millisecond {
		t.Errorf("counts 1..%d took %v, %.0f times as long as the count %d alone (%v): more than linear in the largest count",
			top, many.Round(time.Millisecond), float64(many)/float64(one), top, one.Round(time.Millisecond))
	}
}

// Counts in any order, repeated, give each the digest Compute gives it,
// in the order asked.
func TestMatrixCountsAnyOrder(t *testing.T) {
	f := makeFiles(t)
	base := Options{OVMF: f.amdsev, Kernel: f.kernel, Initrd: f.initrd, Append: "a=b", GuestFeatures: 0x1}
	counts, types := []int{5, 1, 3, 5, 2, 64}, []string{"EPYC-Genoa", "EPYC-v4"}
	got, _, err := Matrix(context.Background(), base, counts, types)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(counts)*len(types) {
		t.Fatalf("%d entries; want %d", len(got), len(counts)*len(types))
	}
	for i, e := range got {
		if want := (MatrixEntry{VCPUs: counts[i%len(counts)], VCPUType: types[i/len(counts)]}); e.VCPUs != want.VCPUs || e.VCPUType != want.VCPUType {
			t.Fatalf("entry %d is %d×%s; want %d×%s", i, e.VCPUs, e.VCPUType, want.VCPUs, want.VCPUType)
		}
		o := base
		o.VCPUs, o.VCPUType = e.VCPUs, e.VCPUType
		r, err := Compute(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest != e.Digest {
			t.Errorf("%d×%s: Matrix %x, Compute %s", e.VCPUs, e.VCPUType, e.Digest, r.Hex())
		}
	}
}

package modload

import (
	"slices"
	"strings"
	"testing"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

const testRoot = "lib/modules/6.1.0-test"

// depSet builds a load list (in the order given) and its modules.dep from
// "name: dep dep" lines, names standing for kernel/<name>.ko.
func depSet(lines ...string) ([]initrdlayout.Module, []initrdlayout.ModuleDeps) {
	var mods []initrdlayout.Module
	var deps []initrdlayout.ModuleDeps
	for _, l := range lines {
		name, rest, _ := strings.Cut(l, ":")
		d := initrdlayout.ModuleDeps{Path: "kernel/" + name + ".ko"}
		for _, n := range strings.Fields(rest) {
			d.Deps = append(d.Deps, "kernel/"+n+".ko")
		}
		mods = append(mods, initrdlayout.Module{Name: name, Path: testRoot + "/" + d.Path})
		deps = append(deps, d)
	}
	return mods, deps
}

func names(mods []initrdlayout.Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

// hostbuild pack's default set on Debian 12's 6.1, in its load order, with
// the modules.dep it writes (sev_guest's load-time crypto needs count as
// dependencies; cryptd and crypto_simd come with aesni_intel).
var debian61 = []string{
	"af_alg:", "algif_hash: af_alg",
	"failover:", "net_failover: failover", "virtio_ring:", "virtio: virtio_ring",
	"virtio_net: net_failover failover virtio virtio_ring",
	"virtio_pci_legacy_dev:", "virtio_pci_modern_dev:",
	"virtio_pci: virtio_pci_legacy_dev virtio_pci_modern_dev virtio virtio_ring",
	"button:", "configfs:",
	"cryptd:", "crypto_simd: cryptd", "aesni_intel: crypto_simd cryptd",
	"ctr:", "gf128mul:", "gcm: gf128mul", "ghash_generic: gf128mul",
	"sev_guest: aesni_intel crypto_simd cryptd gcm gf128mul ctr ghash_generic",
	"vsock:", "vmw_vsock_virtio_transport_common: vsock",
	"vmw_vsock_virtio_transport: vmw_vsock_virtio_transport_common vsock virtio virtio_ring",
}

func TestOnlyFor(t *testing.T) {
	for _, c := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"Debian 12's default set", debian61,
			[]string{"cryptd", "crypto_simd", "aesni_intel", "ctr", "gf128mul", "gcm", "ghash_generic", "sev_guest"}},
		// Another module asked for that needs one of them keeps it (and
		// what that one needs).
		{"another module needs gcm", append(slices.Clone(debian61), "macsec_like: gcm gf128mul"),
			[]string{"cryptd", "crypto_simd", "aesni_intel", "ctr", "ghash_generic", "sev_guest"}},
		{"another module needs a shared dependency", append(slices.Clone(debian61), "lrw_like: gf128mul"),
			[]string{"cryptd", "crypto_simd", "aesni_intel", "ctr", "gcm", "ghash_generic", "sev_guest"}},
		// A module that needs the named one keeps it and all it needs.
		{"another module needs it", append(slices.Clone(debian61), "tsm_user: sev_guest gcm gf128mul"), nil},
		{"not listed", debian61[:12], nil},
		{"needs nothing", []string{"a:", "sev_guest:"}, []string{"sev_guest"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mods, deps := depSet(c.lines...)
			got, err := OnlyFor(mods, deps, "sev-guest")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), c.want) {
				t.Errorf("OnlyFor: %q, want %q", names(got), c.want)
			}
			// Whatever is left out, what still loads needs none of it.
			out := map[string]bool{}
			for _, m := range got {
				out[m.Path] = true
			}
			for _, d := range deps {
				if out[testRoot+"/"+d.Path] {
					continue
				}
				for _, x := range d.Deps {
					if out[testRoot+"/"+x] {
						t.Errorf("%s still loads but needs %s, left out", d.Path, x)
					}
				}
			}
		})
	}
}

// A dependency cycle (which the kernel would refuse to load anyway) leaves
// nothing out rather than a module whose dependency is gone.
func TestOnlyForCycle(t *testing.T) {
	mods, deps := depSet("x: y sev_guest", "y: x", "sev_guest:")
	got, err := OnlyFor(mods, deps, "sev_guest")
	if err != nil || got != nil {
		t.Errorf("OnlyFor with a cycle: %q, %v; want nothing left out", names(got), err)
	}
	mods, deps = depSet("x: y gcm", "y: x", "gcm:", "sev_guest: gcm")
	got, err = OnlyFor(mods, deps, "sev_guest")
	if err != nil || got != nil {
		t.Errorf("OnlyFor with a cycle needing gcm: %q, %v; want nothing left out", names(got), err)
	}
}

// The load list and modules.dep must agree: a listed module without its
// line, or under another folder, is an error naming it.
func TestOnlyForDisagreement(t *testing.T) {
	mods, deps := depSet("a:", "sev_guest: a")
	_, err := OnlyFor(mods, deps[1:], "sev_guest")
	if err == nil || !strings.Contains(err.Error(), "module a ("+testRoot+"/kernel/a.ko) has no line in "+testRoot+"/modules.dep") {
		t.Errorf("a listed module without its line: %v", err)
	}
	mods[0].Path = "lib/modules/other/kernel/a.ko"
	if _, err := OnlyFor(mods, deps, "sev_guest"); err == nil || !strings.Contains(err.Error(), "module a (lib/modules/other/kernel/a.ko)") {
		t.Errorf("a listed module of another release: %v", err)
	}
	mods[1].Path = "lib/sev_guest.ko"
	if _, err := OnlyFor(mods, deps, "sev_guest"); err == nil || !strings.Contains(err.Error(), "not under lib/modules/<release>/") {
		t.Errorf("the named module outside lib/modules/<release>: %v", err)
	}
}

// Whatever the graph (modules.dep is measured input, read by PID 1), what
// OnlyFor leaves out is the named module and only what it needs, and no
// module that still loads needs any of it.
func FuzzOnlyFor(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x01, 0x80})
	f.Add([]byte{0xff, 0x10, 0x22, 0x04, 0x81, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := min(len(b), 8)
		var lines []string
		for i := range n {
			l := "m" + string(rune('0'+i)) + ":"
			for j := range n {
				if j != i && b[i]&(1<<j) != 0 {
					l += " m" + string(rune('0'+j))
				}
			}
			lines = append(lines, l)
		}
		if n == 0 {
			return
		}
		mods, deps := depSet(lines...)
		target := mods[n-1].Name
		got, err := OnlyFor(mods, deps, target)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return
		}
		needs := map[string][]string{}
		for _, d := range deps {
			needs[testRoot+"/"+d.Path] = d.Deps
		}
		out := map[string]bool{}
		for _, m := range got {
			out[m.Path] = true
		}
		if !out[mods[n-1].Path] {
			t.Fatalf("left out %q but not %s itself", names(got), target)
		}
		for _, d := range deps {
			p := testRoot + "/" + d.Path
			if out[p] {
				// Left out: the target, or something it needs.
				if p != mods[n-1].Path && !slices.Contains(needs[mods[n-1].Path], d.Path) && !reaches(needs, mods[n-1].Path, p) {
					t.Fatalf("left out %s, which %s does not need", p, target)
				}
				continue
			}
			for _, x := range d.Deps {
				if out[testRoot+"/"+x] {
					t.Fatalf("%s still loads but needs %s, left out", p, x)
				}
			}
		}
	})
}

// reaches says whether from needs to, through needs (paths under testRoot).
func reaches(needs map[string][]string, from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p == to {
			return true
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		for _, d := range needs[p] {
			stack = append(stack, testRoot+"/"+d)
		}
	}
	return false
}

// "None when another module of mods needs it": that holds when the module
// needing the named one is itself needed only by it (a cycle through the
// named module), where no other module is a root that keeps it.
func TestOnlyForNamedModuleNeededInACycle(t *testing.T) {
	mods, deps := depSet("sev_guest: x", "x: sev_guest")
	got, err := OnlyFor(mods, deps, "sev_guest")
	if err != nil || got != nil {
		t.Errorf("OnlyFor(sev_guest) where x needs it: %q, %v; want nothing left out", names(got), err)
	}
}

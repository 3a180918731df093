package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// A regular file beside the release folder in lib/modules (a README, a
// stray modules.* file) is no release: the package root still opens.
func TestOpenIgnoresStrayFileInLibModules(t *testing.T) {
	root := fakeTree(t)
	if err := os.WriteFile(filepath.Join(root, "lib", "modules", "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(root)
	if err != nil {
		t.Fatalf("Open with a stray file in lib/modules: %v", err)
	}
	if tree.Release != "6.9.0-test" {
		t.Errorf("release %q", tree.Release)
	}
}

// A file given as the tree is refused as not a folder.
func TestOpenRefusesAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "6.9.0-test")
	os.WriteFile(p, []byte("x"), 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "is not a folder") {
		t.Errorf("Open(a file) = %v, want \"is not a folder\"", err)
	}
}

// A kernel/ folder without a single module is refused, not a tree that
// then names every module missing.
func TestOpenRefusesTreeWithoutModules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "6.9.0-test")
	os.MkdirAll(filepath.Join(dir, "kernel", "drivers"), 0o755)
	os.WriteFile(filepath.Join(dir, "kernel", "drivers", "README"), []byte("x"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "no kernel modules") {
		t.Errorf("Open(tree without modules) = %v, want \"no kernel modules\"", err)
	}
}

// Two files for one module name: the first WalkDir meets is kept (the
// choice is stable), not the last.
func TestOpenKeepsFirstFileForAName(t *testing.T) {
	const vm = "vermagic=6.9.0-test SMP"
	tree := treeOf(t, map[string][]byte{
		"a/dup.ko": testelf.Module("name=dup", vm),
		"b/dup.ko": testelf.Module("name=dup", vm, "license=GPL"),
	})
	ms, err := tree.Closure([]string{"dup"})
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].RelPath != "kernel/a/dup.ko" {
		t.Errorf("RelPath %q, want kernel/a/dup.ko (the first met)", ms[0].RelPath)
	}
}

// A pre: soft dependency named by an alias that has a dash (the crypto
// API's "crypto-..." names, kept as written in .modinfo) orders its
// provider first.
func TestClosureSoftPreDashedAlias(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"aaa.ko": testelf.Module("name=aaa", "softdep=pre: crypto-zz"),
		"zzz.ko": testelf.Module("name=zzz", "alias=crypto-zz"),
	})
	ms, err := tree.Closure([]string{"aaa", "zzz"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ms); !slices.Equal(got, []string{"zzz", "aaa"}) {
		t.Errorf("order %q, want [zzz aaa] (zzz provides aaa's pre: crypto-zz)", got)
	}
}

// A soft dependency named with a dash is met by the packed module whose
// canonical name it is.
func TestUnmetDashedModuleName(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"m.ko":   testelf.Module("name=m", "softdep=pre: x-y"),
		"x-y.ko": testelf.Module("name=x_y"),
	})
	ms, err := tree.Closure([]string{"m", "x_y"})
	if err != nil {
		t.Fatal(err)
	}
	if u := tree.Unmet(ms); len(u) != 0 {
		t.Errorf("Unmet = %v, want none (x-y is x_y)", u)
	}
}

// A .modinfo name spelled with '-' is the same module as the file's.
func TestClosureModinfoNameWithDash(t *testing.T) {
	tree := treeOf(t, map[string][]byte{"foo_bar.ko": testelf.Module("name=foo-bar")})
	if _, err := tree.Closure([]string{"foo_bar"}); err != nil {
		t.Errorf("Closure: %v", err)
	}
}

// A load-time need one of whose alternatives is built in adds no module,
// even when the tree has another alternative as a file.
func TestClosureLoadTimeNeedBuiltinAlternative(t *testing.T) {
	const vm = "vermagic=6.9.0-test SMP"
	mod := func(name string) []byte { return testelf.Module("name="+name, "depends=", vm) }
	tree := treeOf(t, map[string][]byte{
		"crypto/gcm.ko":               mod("gcm"),
		"crypto/ctr.ko":               mod("ctr"),
		"arch/ghash-clmulni-intel.ko": mod("ghash_clmulni_intel"),
		"virt/sev-guest.ko":           testelf.ModuleImporting([]string{"crypto_alloc_aead"}, "name=sev_guest", "depends=", vm),
		"../modules.builtin":          []byte("kernel/crypto/aes_generic.ko\nkernel/crypto/ghash-generic.ko\n"),
	})
	tree, err := Open(tree.Dir) // re-read modules.builtin
	if err != nil {
		t.Fatal(err)
	}
	ms, err := tree.Closure([]string{"sev-guest"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(ms), " "); got != "ctr gcm sev_guest" {
		t.Errorf("load order %q, want \"ctr gcm sev_guest\" (ghash_generic is built in)", got)
	}
}

// A module that defines the symbol (rather than importing it) has no
// load-time need.
func TestImportsSymbolIgnoresDefinedSymbol(t *testing.T) {
	mod := testelf.ModuleImporting([]string{"crypto_alloc_aead"}, "name=sev_guest", "vermagic=6.9.0-test SMP")
	f, err := elf.NewFile(bytes.NewReader(mod))
	if err != nil {
		t.Fatal(err)
	}
	off := f.Section(".symtab").Offset + 24 + 6 // symbol 1's st_shndx
	binary.LittleEndian.PutUint16(mod[off:], 1) // defined in section 1
	if ok, err := importsSymbol("m.ko", mod, "crypto_alloc_aead"); ok || err != nil {
		t.Errorf("importsSymbol of a module defining it = %v, %v; want false", ok, err)
	}
}

// Several pre: soft dependencies load in name order, whatever their
// order in .modinfo.
func TestClosureSoftPreSorted(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"m.ko":  testelf.Module("name=m", "softdep=pre: zz yy"),
		"yy.ko": testelf.Module("name=yy"),
		"zz.ko": testelf.Module("name=zz"),
	})
	ms, err := tree.Closure([]string{"m", "yy", "zz"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ms); !slices.Equal(got, []string{"yy", "zz", "m"}) {
		t.Errorf("order %q, want [yy zz m]", got)
	}
}

// When soft edges would put a module before a dependency, the
// dependencies-only order is used, and it too lists a module's
// dependencies in name order whatever their order in .modinfo.
func TestClosureFallbackOrderSorted(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"a.ko": testelf.Module("name=a", "depends=d,c", "softdep=pre: b"),
		"b.ko": testelf.Module("name=b", "depends=a"),
		"c.ko": testelf.Module("name=c"),
		"d.ko": testelf.Module("name=d"),
	})
	ms, err := tree.Closure([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ms); !slices.Equal(got, []string{"c", "d", "a", "b"}) {
		t.Errorf("order %q, want [c d a b]", got)
	}
}

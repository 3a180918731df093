package kmod

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Modinfo(Module(kvs)) gives back kvs, whatever the compression.
func FuzzModinfoRoundTrip(f *testing.F) {
	f.Add(uint8(0), "license=GPL\x00depends=virtio\x00name=virtio_pci\x00alias=pci:v*")
	f.Add(uint8(2), "a=1\x00a=2\x00=x\x00noeq")
	f.Fuzz(func(t *testing.T, which uint8, joined string) {
		suffix := suffixes[int(which)%len(suffixes)]
		kvs := strings.Split(joined, "\x00")
		want := map[string][]string{}
		for _, kv := range kvs {
			if k, v, ok := strings.Cut(kv, "="); ok {
				want[k] = append(want[k], v)
			}
		}
		got, err := Modinfo("m"+suffix, compressed(t, suffix, testelf.Module(kvs...)))
		if err != nil {
			t.Fatalf("Modinfo of a well-formed %s module: %v", suffix, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("modinfo %q (-want +got):\n%s", kvs, diff)
		}
	})
}

// A tree whose modules' .modinfo and modules.builtin(.modinfo) are
// anything: Open and Closure either refuse or give a closure whose
// dependencies come first and a modules.dep with a line per module.
func FuzzTreeModinfo(f *testing.F) {
	f.Add("b,c", "pre: c post: x", "crypto-a", "kernel/lib/c.ko\n", "c.alias=crc\x00")
	f.Add("a", "", "", "", "")
	f.Add(" b , ", "pre: pre: post:", "b", "\n\n../x.ko", "b.alias=a")
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, depends, softdep, alias, builtin, builtinModinfo string) {
		dir, err := os.MkdirTemp(root, "6.9.0-t")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		files := map[string][]byte{
			"kernel/a.ko":             testelf.Module("name=a", "depends="+depends, "softdep="+softdep, "alias="+alias),
			"kernel/b.ko":             testelf.Module("name=b", "depends=c"),
			"kernel/c.ko":             testelf.Module("name=c"),
			"modules.builtin":         []byte(builtin),
			"modules.builtin.modinfo": []byte(builtinModinfo),
		}
		for rel, b := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
			os.WriteFile(filepath.Join(dir, rel), b, 0o644)
		}
		tree, err := Open(dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		mods, err := tree.Closure([]string{"a", "b"})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		pos := map[string]int{}
		for i, m := range mods {
			pos[m.Name] = i
		}
		for i, m := range mods {
			for _, d := range m.Depends {
				if j, ok := pos[d]; ok && j >= i {
					t.Fatalf("%s at %d before its dependency %s at %d", m.Name, i, d, j)
				} else if !ok && !tree.Builtin(d) {
					t.Fatalf("%s's dependency %q neither packed nor built in", m.Name, d)
				}
			}
		}
		dep := ModulesDep(mods)
		if n := bytes.Count(dep, []byte("\n")); n != len(mods) {
			t.Fatalf("modules.dep has %d lines for %d modules", n, len(mods))
		}
		// The guest reads it (to leave out what only an absent device's
		// driver needs): whatever the packer writes, it must accept.
		if _, err := initrdlayout.ParseModulesDep(bytes.NewReader(dep)); err != nil {
			t.Fatalf("the guest refuses the modules.dep the packer wrote: %v\n%s", err, dep)
		}
		_ = tree.Unmet(mods)
	})
}

// A module importing the symbols given (any names, any compression) is
// read as importing exactly those: importsSymbol finds one of them, and
// no name it does not import.
func FuzzImportsSymbolRoundTrip(f *testing.F) {
	f.Add(uint8(0), "crypto_alloc_aead\x00aes_encrypt", "crypto_alloc_aead")
	f.Add(uint8(1), "crypto_alloc_aead_x", "crypto_alloc_aead")
	f.Add(uint8(3), "", "crypto_alloc_aead")
	f.Fuzz(func(t *testing.T, which uint8, joined, sym string) {
		if sym == "" || strings.IndexByte(sym, 0) >= 0 {
			return
		}
		var imports []string
		for _, n := range strings.Split(joined, "\x00") {
			if n != "" {
				imports = append(imports, n)
			}
		}
		suffix := suffixes[int(which)%len(suffixes)]
		mod := compressed(t, suffix, testelf.ModuleImporting(imports, "name=m", "vermagic=6.9.0-test SMP"))
		got, err := importsSymbol("m"+suffix, mod, sym)
		if err != nil {
			t.Fatalf("importsSymbol of a well-formed %s module importing %q: %v", suffix, imports, err)
		}
		if want := slices.Contains(imports, sym); got != want {
			t.Fatalf("module importing %q: importsSymbol(%q) = %v, want %v", imports, sym, got, want)
		}
	})
}

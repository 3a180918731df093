package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/modzip"
	"github.com/katana-tee/snpboot/shared/xzguard"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeTree writes a module tree under root/lib/modules/6.9.0-test:
//
//	a -> b, c   b -> c   c   x-y (file name with a dash)   zx (.ko.xz) -> c
//	zs (.ko.zst) -> zx   needs_ghost -> ghost (absent)   bi (built in)   usesbi -> bi
func fakeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib", "modules", "6.9.0-test")
	mods := []struct{ rel, name, deps string }{
		{"kernel/drivers/a.ko", "a", "b,c"},
		{"kernel/drivers/b.ko", "b", "c"},
		{"kernel/lib/c.ko", "c", ""},
		{"kernel/net/x-y.ko", "x_y", ""},
		{"kernel/fs/zx.ko.xz", "zx", "c"},
		{"kernel/fs/zs.ko.zst", "zs", "zx"},
		{"kernel/misc/needs_ghost.ko", "needs_ghost", "ghost"},
		{"kernel/misc/usesbi.ko", "usesbi", "bi"},
	}
	for _, m := range mods {
		data := testelf.Module("license=GPL", "depends="+m.deps, "name="+m.name, "vermagic=6.9.0-test SMP mod_unload")
		switch {
		case strings.HasSuffix(m.rel, ".xz"):
			var b bytes.Buffer
			w, _ := xz.NewWriter(&b)
			w.Write(data)
			w.Close()
			data = b.Bytes()
		case strings.HasSuffix(m.rel, ".zst"):
			enc, _ := zstd.NewWriter(nil)
			data = enc.EncodeAll(data, nil)
		}
		p := filepath.Join(dir, m.rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/lib/bi.ko\n"), 0o644)
	return root
}

func names(ms []Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestClosure(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	if tree.Release != "6.9.0-test" {
		t.Errorf("release %q", tree.Release)
	}
	tests := []struct {
		name string
		req  []string
		want []string
	}{
		{"deps first", []string{"a"}, []string{"c", "b", "a"}},
		{"order of request does not matter", []string{"x-y", "a"}, []string{"c", "b", "a", "x_y"}},
		{"same set reversed", []string{"a", "x_y"}, []string{"c", "b", "a", "x_y"}},
		{"compressed chain", []string{"zs"}, []string{"c", "zx", "zs"}},
		{"built-in dependency skipped", []string{"usesbi"}, []string{"usesbi"}},
		{"built-in requested", []string{"bi"}, nil},
		{"duplicates", []string{"c", "c"}, []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := tree.Closure(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, names(ms)); diff != "" {
				t.Errorf("load order (-want +got):\n%s", diff)
			}
		})
	}
	// Compressed modules are packed as they are.
	ms, _ := tree.Closure([]string{"zx"})
	raw, _ := os.ReadFile(filepath.Join(tree.Dir, "kernel/fs/zx.ko.xz"))
	if !bytes.Equal(ms[1].Data, raw) || ms[1].RelPath != "kernel/fs/zx.ko.xz" {
		t.Errorf("zx: got %s with %d bytes, want the .ko.xz file unchanged", ms[1].RelPath, len(ms[1].Data))
	}
}

func TestClosureErrors(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tree.Closure([]string{"needs_ghost"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"ghost" (a dependency of needs_ghost)`) {
		t.Errorf("missing dependency: got %v", err)
	}
	_, err = tree.Closure([]string{"x_z"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "closest names: x_y") {
		t.Errorf("unknown module: got %v, want a suggestion of x_y", err)
	}
}

// treeOf writes a release folder 6.9.0-test whose kernel/ holds files
// (path under kernel/ -> contents) and opens it.
func treeOf(t *testing.T, files map[string][]byte) *Tree {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.9.0-test")
	for rel, data := range files {
		p := filepath.Join(dir, "kernel", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// Suggest lists the closest names by edit distance, then by name, up to
// n, and none further than max(3, half the name's length).
func TestSuggest(t *testing.T) {
	files := map[string][]byte{}
	for _, n := range []string{"virtio_net", "virtio_pci", "virtio_ring", "vsock", "af_alg", "algif_hash", "button", "tsm", "configfs"} {
		files[n+".ko"] = nil
	}
	tree := treeOf(t, files)
	tests := []struct {
		name string
		n    int
		want []string
	}{
		{"tsm", 3, []string{"tsm"}},
		// 1 (the last letter), then virtio_net and virtio_pci at 3.
		{"virtio_rin", 3, []string{"virtio_ring", "virtio_net", "virtio_pci"}},
		{"virtio_rin", 2, []string{"virtio_ring", "virtio_net"}},
		// tsm at 3, the least limit, is in; vsock at 4 is not.
		{"abc", 3, []string{"tsm"}},
		// A long name: virtio_net at 7 is within 17/2; virtio_pci at 10 is not.
		{"zzz_virtio_net_zz", 3, []string{"virtio_net"}},
		{"sev-guest", 3, nil}, // the nearest are 8 away
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tree.Suggest(tc.name, tc.n)); diff != "" {
			t.Errorf("Suggest(%q, %d) (-want +got):\n%s", tc.name, tc.n, diff)
		}
	}
	// With no close name, the error offers none.
	_, err := tree.Closure([]string{"sev-guest"})
	if want := `module not found: module "sev-guest" is not in ` + tree.Dir; err == nil || err.Error() != want {
		t.Errorf("Closure of an unknown name with no close one: got %v, want %q", err, want)
	}
}

// What Closure takes from a module's .modinfo: a name= that differs from
// the file's is refused; vermagic= and depends= may be absent.
func TestClosureModinfo(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"a.ko":       testelf.Module("license=GPL", "name=b", "vermagic=6.9.0-test SMP"),
		"bare.ko":    testelf.Module("license=GPL"),
		"spaced.ko":  testelf.Module("depends= bare ,, x-y", "name=spaced", "vermagic=6.9.0-test SMP"),
		"net/x-y.ko": testelf.Module("depends=", "name=x_y", "vermagic=6.9.0-test SMP"),
	})
	_, err := tree.Closure([]string{"a"})
	if want := `module file ` + filepath.Join(tree.Dir, "kernel/a.ko") + ` calls itself "b", not "a"`; err == nil || err.Error() != want {
		t.Errorf("module named otherwise: got %v, want %q", err, want)
	}
	ms, err := tree.Closure([]string{"bare", "spaced"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range ms {
		got[m.Name] = m.Depends
	}
	want := map[string][]string{"bare": nil, "x_y": nil, "spaced": {"bare", "x_y"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dependencies (-want +got):\n%s", diff)
	}
}

func TestModulesDep(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := tree.Closure([]string{"a", "zs", "x_y"})
	if err != nil {
		t.Fatal(err)
	}
	want := `kernel/drivers/a.ko: kernel/drivers/b.ko kernel/lib/c.ko
kernel/drivers/b.ko: kernel/lib/c.ko
kernel/fs/zs.ko.zst: kernel/fs/zx.ko.xz kernel/lib/c.ko
kernel/fs/zx.ko.xz: kernel/lib/c.ko
kernel/lib/c.ko:
kernel/net/x-y.ko:
`
	if diff := cmp.Diff(want, string(ModulesDep(ms))); diff != "" {
		t.Errorf("modules.dep (-want +got):\n%s", diff)
	}
	// What the guest reads back: each module's needs, nearest first.
	got, err := initrdlayout.ParseModulesDep(strings.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	wantDeps := []initrdlayout.ModuleDeps{
		{Path: "kernel/drivers/a.ko", Deps: []string{"kernel/drivers/b.ko", "kernel/lib/c.ko"}},
		{Path: "kernel/drivers/b.ko", Deps: []string{"kernel/lib/c.ko"}},
		{Path: "kernel/fs/zs.ko.zst", Deps: []string{"kernel/fs/zx.ko.xz", "kernel/lib/c.ko"}},
		{Path: "kernel/fs/zx.ko.xz", Deps: []string{"kernel/lib/c.ko"}},
		{Path: "kernel/lib/c.ko"},
		{Path: "kernel/net/x-y.ko"},
	}
	if diff := cmp.Diff(wantDeps, got); diff != "" {
		t.Errorf("modules.dep read back (-want +got):\n%s", diff)
	}
	// No module (every one asked for built in): empty, as depmod writes
	// it, not a blank line (a fuzz input found that).
	if b := ModulesDep(nil); len(b) != 0 {
		t.Errorf("modules.dep for no modules: %q, want empty", b)
	}
}

func TestOpen(t *testing.T) {
	root := fakeTree(t)
	for _, dir := range []string{root, filepath.Join(root, "lib/modules/6.9.0-test")} {
		if _, err := Open(dir); err != nil {
			t.Errorf("Open(%s): %v", dir, err)
		}
	}
	os.MkdirAll(filepath.Join(root, "lib/modules/6.10.0-other"), 0o755)
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), "several kernel releases") {
		t.Errorf("two releases: got %v", err)
	}
	if _, err := Open(filepath.Join(root, "nope")); err == nil || !strings.Contains(err.Error(), "--kernel-modules") {
		t.Errorf("missing dir: got %v", err)
	}
}

// A release folder that is not printable text is refused, quoted: it is
// printed (pack's log and warnings) and packed, and no kernel package has
// such a name.
func TestOpenRefusesUnprintableRelease(t *testing.T) {
	root := fakeTree(t)
	rel := filepath.Join(root, "lib/modules/6.9.0-test")
	bad := filepath.Join(root, "lib/modules/6.9.0\x1b[2K")
	if err := os.Rename(rel, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), `its name "6.9.0\x1b[2K" is not a kernel release`) || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("release with ESC: got %v", err)
	}
	if err := os.Rename(bad, filepath.Join(root, "lib/modules/6.9.0 test")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(root, "lib/modules/6.9.0 test")); err == nil || !strings.Contains(err.Error(), "not a kernel release") {
		t.Errorf("release with a space: got %v", err)
	}
}

// A FIFO in the tree, as modules.builtin or as a module, is refused at
// once: the reads once waited in open(2) for a writer for ever. A tree
// without modules.builtin has no built-ins, and is fine.
func TestOpenRefusesFIFOs(t *testing.T) {
	root := fakeTree(t)
	dir := filepath.Join(root, "lib/modules/6.9.0-test")
	if err := os.Remove(filepath.Join(dir, "modules.builtin")); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(root)
	if err != nil || tree.Builtin("bi") {
		t.Fatalf("no modules.builtin: Open = %v, built-in bi %v; want a tree without built-ins", err, tree != nil && tree.Builtin("bi"))
	}

	if err := syscall.Mkfifo(filepath.Join(dir, "modules.builtin"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(root); done <- err }()
	select {
	case err := <-done:
		if want := "modules.builtin " + filepath.Join(dir, "modules.builtin") + " is not a regular file (p"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("modules.builtin a FIFO: Open = %v, want %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("modules.builtin a FIFO: Open still blocked after 10s")
	}
	os.Remove(filepath.Join(dir, "modules.builtin"))

	mod := filepath.Join(dir, "kernel/lib/c.ko")
	if err := os.Remove(mod); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(mod, 0o600); err != nil {
		t.Fatal(err)
	}
	if tree, err = Open(root); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := tree.Closure([]string{"c"}); done <- err }()
	select {
	case err := <-done:
		if want := "module file " + mod + " is not a regular file (p"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("module a FIFO: Closure = %v, want %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("module a FIFO: Closure still blocked after 10s")
	}
}

// The release is the real name of the folder, however the path to it is
// spelled: it names /lib/modules/<release>/ in the initrd.
func TestOpenReleaseIgnoresPathSpelling(t *testing.T) {
	root := fakeTree(t)
	rel := filepath.Join(root, "lib/modules/6.9.0-test")
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(rel, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cwd, dir string }{
		{"", rel},
		{"", rel + "/"},
		{"", link},
		{rel, "."},
		{filepath.Join(rel, "kernel"), ".."},
		{filepath.Join(rel, "kernel/fs"), "../.."},
		{root, "."},
	} {
		if tc.cwd != "" {
			t.Chdir(tc.cwd)
		}
		tree, err := Open(tc.dir)
		if err != nil {
			t.Errorf("Open(%s) in %s: %v", tc.dir, tc.cwd, err)
			continue
		}
		if tree.Release != "6.9.0-test" {
			t.Errorf("Open(%s) in %s: release %q", tc.dir, tc.cwd, tree.Release)
		}
	}
}

// Modules whose vermagic names another release than their folder are
// refused: the kernel would not load them, nor modprobe find them.
func TestClosureRefusesOtherRelease(t *testing.T) {
	root := fakeTree(t)
	other := filepath.Join(root, "lib/modules/6.9.0-other")
	if err := os.Rename(filepath.Join(root, "lib/modules/6.9.0-test"), other); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tree.Closure([]string{"c"})
	if err == nil || !strings.Contains(err.Error(), `c.ko is built for kernel release "6.9.0-test" (vermagic), but its folder `+other+` names release "6.9.0-other"`) {
		t.Errorf("got %v", err)
	}
}

// compressed returns data compressed as a module file named with suffix
// (".ko", ".ko.gz", ".ko.xz" or ".ko.zst") would be.
func compressed(t testing.TB, suffix string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch suffix {
	case ".ko":
		return data
	case ".ko.gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	case ".ko.xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".ko.zst":
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(data, nil)
	default:
		t.Fatalf("suffix %s", suffix)
	}
	return b.Bytes()
}

// A module that decompresses to more than the limit is refused by name,
// not cut short; one of exactly the limit is read whole.
func TestModinfoDecompressionLimit(t *testing.T) {
	defer func(n int) { maxDecompressed = n }(maxDecompressed)
	maxDecompressed = 1 << 20
	mod := testelf.Module("name=big", "vermagic=6.9.0-test SMP")
	exact := append(slices.Clone(mod), make([]byte, maxDecompressed-len(mod))...)
	for _, suffix := range []string{".ko.gz", ".ko.xz", ".ko.zst"} {
		name := "kernel/big" + suffix
		info, err := Modinfo(name, compressed(t, suffix, exact))
		if err != nil || info["name"][0] != "big" {
			t.Errorf("%s of exactly the limit: %v, %v", suffix, info, err)
		}
		_, err = Modinfo(name, compressed(t, suffix, append(exact, 0)))
		if want := "module " + name + " decompresses to more than the limit of 1048576 bytes"; err == nil || err.Error() != want || !errors.Is(err, modzip.ErrTooBig) {
			t.Errorf("%s one byte over the limit: got %v, want %q", suffix, err, want)
		}
	}
}

// A zstd frame header may declare a window of hundreds of MiB; a 10-byte
// module file must not make Modinfo allocate it.
func TestModinfoZstdWindowNotAllocated(t *testing.T) {
	// Magic, no content size, window 2^(10+18) = 256 MiB, one raw block of 1 byte.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3, 0x09, 0x00, 0x00, 'x'}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Modinfo("m.ko.zst", frame); err == nil {
		t.Error("Modinfo accepted a 1-byte module")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("Modinfo allocated %d MiB for a %d-byte module", grew>>20, len(frame))
	}
}

// xzDict returns mod compressed by xz with a block header that declares
// the LZMA2 dictionary of the given code (lzma.DecodeDictCap: 28 is
// 64 MiB, 40 is 4 GiB) and, if sizes are given, the block's compressed
// and uncompressed sizes, as a crafted module file could.
func xzDict(t testing.TB, mod []byte, code byte, sizes ...uint64) []byte {
	t.Helper()
	return xzDictID(t, mod, []byte{0x21}, code, sizes...)
}

// xzDictID is xzDict with the LZMA2 filter ID encoded as id.
func xzDictID(t testing.TB, mod, id []byte, code byte, sizes ...uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.CRC32}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(mod)
	w.Close()
	out, err := xzguard.WithDict(b.Bytes(), id, code, sizes...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The xz decoder allocates a block's whole dictionary when it reads the
// block header: a module file of a few bytes that declares a dictionary
// over 64 MiB (xz's largest preset) is refused before it is decoded,
// wherever the header is.
func TestModinfoXZDictionaryLimit(t *testing.T) {
	mod := testelf.Module("name=m", "vermagic=6.9.0-test SMP")
	plain := compressed(t, ".ko.xz", mod)
	tests := []struct {
		name string
		data []byte
		want string // error; "" for a module that is read
	}{
		{"64 MiB", xzDict(t, mod, 28), ""},
		{"96 MiB", xzDict(t, mod, 29), "module m.ko.xz: xz dictionary of 100663296 bytes, more than 67108864"},
		{"4 GiB", xzDict(t, mod, 40), "module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
		// 2 + 1 + 2 + 3 bytes: the filter ends the header, no padding.
		{"4 GiB, sizes in the header", xzDict(t, mod, 40, 100, 300),
			"module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
		// The decoder allocates the dictionary before it finds no data.
		{"4 GiB, the file ends with the header", xzDict(t, mod, 40)[:24],
			"module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
		{"4 GiB in a second stream", slices.Concat(plain, xzDict(t, mod, 40)),
			"module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
		// The filter ID is a multibyte integer, and the decoder takes an
		// encoding longer than needed.
		{"4 GiB, filter ID in two bytes", xzDictID(t, mod, []byte{0xa1, 0x00}, 40),
			"module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
		{"4 GiB, filter ID in ten bytes", xzDictID(t, mod, []byte{0xa1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 40),
			"module m.ko.xz: xz dictionary of 4294967295 bytes, more than 67108864"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			info, err := Modinfo("m.ko.xz", tc.data)
			runtime.ReadMemStats(&after)
			if tc.want == "" {
				if err != nil || info["name"][0] != "m" {
					t.Errorf("got %v, %v, want the module's .modinfo", info, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("Modinfo allocated %d MiB for a %d-byte module", grew>>20, len(tc.data))
			}
		})
	}
}

// Module files come from the input tree: Modinfo must return an error,
// never panic, whatever the bytes and the suffix.
func FuzzModinfo(f *testing.F) {
	mods := [][]byte{testelf.Module("license=GPL", "depends=virtio", "name=virtio_pci", "vermagic=6.9.0-test SMP")}
	if dir := os.Getenv("KERNEL_DIR"); dir != "" {
		// A small real module, when the Makefile has fetched the kernel.
		if m, _ := filepath.Glob(filepath.Join(dir, "lib/modules/*/kernel/net/6lowpan/nhc_ipv6.ko")); len(m) > 0 {
			if b, err := os.ReadFile(m[0]); err == nil {
				mods = append(mods, b)
			}
		}
	}
	for _, mod := range mods {
		for _, suffix := range suffixes {
			f.Add("m"+suffix, compressed(f, suffix, mod))
		}
	}
	f.Add("m.ko.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x09, 0x00, 0x00, 'x'}) // declares a 2 GiB window
	f.Add("m.ko.xz", xzDict(f, mods[0], 40))                                                // declares a 4 GiB dictionary
	f.Add("m.ko.xz", []byte{1, 0x40, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})                   // a block header's size field runs past its end
	f.Add("m.ko.gz", []byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		info, err := Modinfo(name, data)
		if err != nil {
			return
		}
		// "key=value" strings separated by NULs: no key holds '=' or
		// NUL, no value NUL.
		for k, vs := range info {
			if strings.ContainsAny(k, "=\x00") {
				t.Fatalf("key %q", k)
			}
			for _, v := range vs {
				if strings.ContainsRune(v, 0) {
					t.Fatalf("value %q of %s", v, k)
				}
			}
		}
		// The name decides the compression, the ELF the answer: the
		// same module stored plain or gzip-compressed says the same.
		raw, err := decompress(name, data)
		if err != nil {
			t.Fatalf("Modinfo read %q, which does not decompress: %v", name, err)
		}
		for _, suffix := range []string{".ko", ".ko.gz"} {
			if again, err := Modinfo("m"+suffix, compressed(t, suffix, raw)); err != nil || !cmp.Equal(info, again) {
				t.Fatalf("%s's modinfo %q, the same ELF as m%s: %q, %v", name, info, suffix, again, err)
			}
		}
	})
}

// The real Debian kernel, when the Makefile has fetched it.
func TestDebianKernel(t *testing.T) {
	dir := os.Getenv("KERNEL_DIR")
	if dir == "" {
		t.Skip("KERNEL_DIR not set: run `make kernel` and set KERNEL_DIR=.cache/kernel (make test does)")
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := tree.Closure([]string{"virtio_net", "virtio_pci", "vmw_vsock_virtio_transport"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(ms), " ")
	for _, w := range []string{"virtio_ring virtio", "failover net_failover", "vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport"} {
		if !strings.Contains(got, w) {
			t.Errorf("load order %q lacks %q", got, w)
		}
	}
	// Debian 12's sev-guest builds gcm(aes) as it probes, and its kernel
	// has gcm, ctr and ghash as modules: loaded first, with aesni_intel
	// and its dependencies for the constant-time implementation (the boot
	// tests build the same algorithm in a guest, and check which).
	ms, err = tree.Closure([]string{"sev-guest"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(ms), " "), "cryptd crypto_simd aesni_intel ctr gcm gf128mul ghash_generic sev_guest"; got != want {
		t.Errorf("sev-guest's load order %q, want %q", got, want)
	}
}

// ReadsFile names the files of a tree that Open and Closure read, which
// an output must not replace.
func TestReadsFile(t *testing.T) {
	for name, want := range map[string]bool{
		"virtio_net.ko": true, "virtio_net.ko.xz": true, "virtio_net.ko.zst": true, "virtio_net.ko.gz": true,
		"modules.builtin": true,
		"initrd.img":      false, "modules.order": false, "virtio_net.ko.bak": false, "ko": false, "modules.builtin.modinfo": true,
	} {
		if got := ReadsFile(name); got != want {
			t.Errorf("ReadsFile(%q) = %v, want %v", name, got, want)
		}
	}
}

// Soft dependencies (.modinfo softdep=, pre: and post:) are met by a
// module of the closure with that name or alias, or by a built-in; the
// others are reported, with the modules whose names hold them.
func TestUnmetSoftDeps(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"libcrc32c.ko":      testelf.Module("name=libcrc32c", "softdep=pre: crc32c", "vermagic=6.9.0-test SMP"),
		"crc32c_generic.ko": testelf.Module("name=crc32c_generic", "alias=crc32c", "alias=crypto-crc32c", "vermagic=6.9.0-test SMP"),
		"crc32c-intel.ko":   testelf.Module("name=crc32c_intel", "alias=crc32c", "vermagic=6.9.0-test SMP"),
		"both.ko":           testelf.Module("name=both", "softdep=pre: libcrc32c post: gone", "vermagic=6.9.0-test SMP"),
	})
	mods, err := tree.Closure([]string{"libcrc32c", "both"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"libcrc32c": {"crc32c"}, "both": {"gone"}}
	if diff := cmp.Diff(want, tree.Unmet(mods)); diff != "" {
		t.Errorf("Unmet (-want +got):\n%s", diff)
	}
	if got := tree.Providers("crc32c", 3); !slices.Equal(got, []string{"crc32c_generic", "crc32c_intel", "libcrc32c"}) {
		t.Errorf("Providers(crc32c) = %q", got)
	}
	if got := tree.Providers("crypto-crc32c", 2); !slices.Equal(got, []string{"crc32c_generic", "crc32c_intel"}) {
		t.Errorf("Providers(crypto-crc32c) = %q", got)
	}
	if got := tree.Providers("blake2b-256", 3); got != nil {
		t.Errorf("Providers(blake2b-256) = %q, want none (no name holds it)", got)
	}
	// With a module that has the alias, crc32c is met.
	mods, err = tree.Closure([]string{"libcrc32c", "crc32c_generic"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Unmet(mods); len(got) != 0 {
		t.Errorf("Unmet with crc32c_generic packed = %v, want none", got)
	}
}

// A packed provider of a pre: soft dependency loads before the module
// that names it, whatever the names' order (modprobe loads it first; the
// guest has none for the module's load to call): btrfs needs libcrc32c,
// which asks for crc32c as it loads. A soft edge that would put a module
// before one of its dependencies is dropped.
func TestClosureSoftPreOrder(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"btrfs.ko":          testelf.Module("name=btrfs", "depends=libcrc32c"),
		"libcrc32c.ko":      testelf.Module("name=libcrc32c", "softdep=pre: crc32c post: later"),
		"crc32c_generic.ko": testelf.Module("name=crc32c_generic", "alias=crc32c"),
		"a.ko":              testelf.Module("name=a", "softdep=pre: b"),
		"b.ko":              testelf.Module("name=b", "depends=a"),
	})
	names := func(mods []Module) []string {
		var n []string
		for _, m := range mods {
			n = append(n, m.Name)
		}
		return n
	}
	mods, err := tree.Closure([]string{"btrfs", "crc32c_generic"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(mods), []string{"crc32c_generic", "libcrc32c", "btrfs"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if m := mods[1]; !slices.Equal(m.SoftPre, []string{"crc32c"}) || !slices.Equal(m.SoftDeps, []string{"crc32c", "later"}) {
		t.Errorf("libcrc32c: SoftPre %q, SoftDeps %q", m.SoftPre, m.SoftDeps)
	}
	mods, err = tree.Closure([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(mods), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q (b depends on a; a's soft pre: b is dropped)", got, want)
	}
}

// A soft dependency a built-in module provides by alias (modules.builtin.
// modinfo) is met: btrfs's sha256 is Debian's built-in sha256_generic.
func TestUnmetSoftDepBuiltinAlias(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"btrfs.ko": testelf.Module("name=btrfs", "softdep=pre: sha256 crypto-sha256 blake2b-256"),
	})
	os.WriteFile(filepath.Join(tree.Dir, "modules.builtin"), []byte("kernel/crypto/sha256_generic.ko\n"), 0o644)
	os.WriteFile(filepath.Join(tree.Dir, "modules.builtin.modinfo"), []byte("sha256_generic.alias=sha256\x00sha256_generic.alias=crypto-sha256\x00other.alias=blake2b-256\x00"), 0o644)
	tree, err := Open(tree.Dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.Closure([]string{"btrfs"})
	if err != nil {
		t.Fatal(err)
	}
	// blake2b-256's provider "other" is not built in: still unmet.
	if diff := cmp.Diff(map[string][]string{"btrfs": {"blake2b-256"}}, tree.Unmet(mods)); diff != "" {
		t.Errorf("Unmet (-want +got):\n%s", diff)
	}
}

// A package root whose lib/modules/RELEASE is a symlink to a folder, and a
// release folder whose kernel/ is one, are read like folders: they were
// refused ("holds no kernel release", "no kernel modules").
// Symlinked layouts name the modules they hold: a package root whose
// lib/modules/<release> is a symlink to the release folder, and a release
// folder whose kernel/ is a symlink, both open.
func TestOpenSymlinkedLayouts(t *testing.T) {
	rel := filepath.Join(fakeTree(t), "lib/modules/6.9.0-test")

	pkg := t.TempDir()
	os.MkdirAll(filepath.Join(pkg, "lib/modules"), 0o755)
	if err := os.Symlink(rel, filepath.Join(pkg, "lib/modules/6.9.0-test")); err != nil {
		t.Fatal(err)
	}
	if tree, err := Open(pkg); err != nil || tree.Release != "6.9.0-test" {
		t.Errorf("package root with a symlinked release folder: %v", err)
	}

	linked := filepath.Join(t.TempDir(), "6.9.0-test")
	os.MkdirAll(linked, 0o755)
	if err := os.Symlink(filepath.Join(rel, "kernel"), filepath.Join(linked, "kernel")); err != nil {
		t.Fatal(err)
	}
	if tree, err := Open(linked); err != nil || !tree.Has("a") {
		t.Errorf("release folder with a symlinked kernel/: %v", err)
	}
}

// A module that builds a crypto algorithm by name as it loads (Linux 6.1's
// sev-guest: crypto_alloc_aead("gcm(aes)")) gets the modules providing it
// loaded first, as the guest has no modprobe for the crypto API to ask:
// only when it imports that call, only those the tree has as modules
// (not built in), an alternative when the first choice is missing.
func TestClosureLoadTimeNeeds(t *testing.T) {
	const vm = "vermagic=6.9.0-test SMP"
	sevGuest := func(imports ...string) []byte {
		return testelf.ModuleImporting(imports, "name=sev_guest", "depends=", vm)
	}
	mod := func(name, deps string) []byte { return testelf.Module("name="+name, "depends="+deps, vm) }
	crypto := map[string][]byte{
		"crypto/gcm.ko":           mod("gcm", ""),
		"crypto/ctr.ko":           mod("ctr", ""),
		"crypto/ghash-generic.ko": mod("ghash_generic", "gf128mul"),
		"crypto/gf128mul.ko":      mod("gf128mul", ""),
		"../modules.builtin":      []byte("kernel/crypto/aes_generic.ko\n"),
	}
	with := func(m map[string][]byte, edit func(map[string][]byte)) map[string][]byte {
		out := maps.Clone(m)
		edit(out)
		return out
	}
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"6.1's sev-guest", with(crypto, func(m map[string][]byte) {
			m["virt/sev-guest.ko"] = sevGuest("misc_register", "crypto_alloc_aead")
		}), "ctr gcm gf128mul ghash_generic sev_guest"},
		{"compressed (xz)", with(crypto, func(m map[string][]byte) {
			m["virt/sev-guest.ko.xz"] = compressed(t, ".ko.xz", sevGuest("crypto_alloc_aead"))
		}), "ctr gcm gf128mul ghash_generic sev_guest"},
		{"a newer sev-guest (the AES-GCM library)", with(crypto, func(m map[string][]byte) {
			m["virt/sev-guest.ko"] = sevGuest("aesgcm_encrypt")
		}), "sev_guest"},
		{"no symbol table", with(crypto, func(m map[string][]byte) {
			m["virt/sev-guest.ko"] = sevGuest()
		}), "sev_guest"},
		{"ghash from the CLMUL module", with(crypto, func(m map[string][]byte) {
			delete(m, "crypto/ghash-generic.ko")
			m["arch/ghash-clmulni-intel.ko"] = mod("ghash_clmulni_intel", "cryptd")
			m["crypto/cryptd.ko"] = mod("cryptd", "")
			m["virt/sev-guest.ko"] = sevGuest("crypto_alloc_aead")
		}), "ctr gcm cryptd ghash_clmulni_intel sev_guest"},
		{"aesni_intel preferred", with(crypto, func(m map[string][]byte) {
			m["arch/aesni-intel.ko"] = mod("aesni_intel", "crypto_simd")
			m["crypto/crypto_simd.ko"] = mod("crypto_simd", "cryptd")
			m["crypto/cryptd.ko"] = mod("cryptd", "")
			m["virt/sev-guest.ko"] = sevGuest("crypto_alloc_aead")
		}), "cryptd crypto_simd aesni_intel ctr gcm gf128mul ghash_generic sev_guest"},
		{"aesni_intel built in", with(crypto, func(m map[string][]byte) {
			m["../modules.builtin"] = []byte("kernel/crypto/aes_generic.ko\nkernel/arch/x86/crypto/aesni-intel.ko\n")
			m["virt/sev-guest.ko"] = sevGuest("crypto_alloc_aead")
		}), "ctr gcm gf128mul ghash_generic sev_guest"},
		{"aesni_intel without the AES-GCM call", with(crypto, func(m map[string][]byte) {
			m["arch/aesni-intel.ko"] = mod("aesni_intel", "")
			m["virt/sev-guest.ko"] = sevGuest("aesgcm_encrypt")
		}), "sev_guest"},
		{"gcm built in, ctr missing", with(crypto, func(m map[string][]byte) {
			delete(m, "crypto/gcm.ko")
			delete(m, "crypto/ctr.ko")
			m["../modules.builtin"] = []byte("kernel/crypto/aes_generic.ko\nkernel/crypto/gcm.ko\n")
			m["virt/sev-guest.ko"] = sevGuest("crypto_alloc_aead")
		}), "gf128mul ghash_generic sev_guest"},
	} {
		tree := treeOf(t, tc.files)
		ms, err := tree.Closure([]string{"sev-guest"})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := strings.Join(names(ms), " "); got != tc.want {
			t.Errorf("%s: load order %q, want %q", tc.name, got, tc.want)
		}
	}
}

// importsSymbol reads the symbol table of a module file given to the
// builder: an error, never a panic, whatever the bytes; a module built
// with the import is found.
func FuzzImportsSymbol(f *testing.F) {
	mod := testelf.ModuleImporting([]string{"crypto_alloc_aead"}, "name=sev_guest", "vermagic=6.9.0-test SMP")
	if ok, err := importsSymbol("m.ko", mod, "crypto_alloc_aead"); !ok || err != nil {
		f.Fatalf("importsSymbol of a module importing it: %v, %v", ok, err)
	}
	for _, suffix := range suffixes {
		f.Add("m"+suffix, compressed(f, suffix, mod))
	}
	f.Add("m.ko", testelf.Module("name=bare"))
	f.Add("m.ko", mod[:len(mod)/2])
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		got, err := importsSymbol(name, data, "crypto_alloc_aead")
		if err != nil {
			return
		}
		// The name decides the compression, the ELF the answer.
		raw, err := decompress(name, data)
		if err != nil {
			t.Fatalf("importsSymbol read %q, which does not decompress: %v", name, err)
		}
		for _, suffix := range []string{".ko", ".ko.gz"} {
			if again, err := importsSymbol("m"+suffix, compressed(t, suffix, raw), "crypto_alloc_aead"); err != nil || again != got {
				t.Fatalf("%s imports it: %v; the same ELF as m%s: %v, %v", name, got, suffix, again, err)
			}
		}
	})
}

// Package kmod resolves a set of kernel modules and their dependency closure
// from a kernel's module tree, without modules.dep: Debian's kernel packages
// ship none (depmod runs at install time), so dependencies are read from each
// module's own .modinfo ELF section (depends=, name=), as depmod does.
//
// Module names follow the kernel's rule: '-' and '_' are the same, the file
// name (without .ko and a compression suffix) is the lookup key. Modules built
// into the kernel (modules.builtin) need no loading and are skipped.
package kmod

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/modzip"
)

// DefaultModules is the module set for a QEMU SEV-SNP guest: virtio PCI and
// net (virtio_net does not depend on virtio_pci, the bus driver, so it is
// named explicitly), vsock with its virtio transport, the SEV guest driver
// and configfs-tsm where the kernel has them, configfs, the ACPI button
// driver (QEMU system_powerdown), and AF_ALG hashing (af_alg,
// algif_hash: the init checks the payload with the kernel's sha256, 2.3x
// faster than Go's under TCG; sha256_ssse3, the kernel's SHA-NI, AVX2,
// AVX and SSSE3 code, without which AF_ALG hashes with the generic C code,
// about 3x slower than Go's on SEV-SNP hardware; on a CPU with none of
// those it would refuse to load, ENODEV, and the init leaves it out). Names the tree lacks are skipped. What
// sev-guest asks the crypto API for as it probes comes with it, and
// aesni_intel before it for a constant-time AES-GCM (loadTimeNeeds).
//
// qemu_fw_cfg is not in the set: the init reads nothing from fw_cfg (the
// arguments come from the measured command line), and the driver would
// expose host-chosen, unmeasured blobs under /sys/firmware to the guest.
// To add it, pass --module qemu_fw_cfg with a --module for each default
// (the names given replace this list).
var DefaultModules = []string{
	"virtio_pci", "virtio_net",
	"vsock", "vmw_vsock_virtio_transport",
	"sev-guest", "tsm", "configfs",
	"button",
	"af_alg", "algif_hash", "sha256_ssse3",
}

// ReadsFile reports whether a file of this name is read from a module tree
// (by Open or Closure): a module (.ko, .ko.xz, .ko.zst, .ko.gz) or
// modules.builtin.
func ReadsFile(name string) bool {
	_, ok := moduleName(name)
	return ok || name == "modules.builtin" || name == "modules.builtin.modinfo"
}

// Tree is one kernel release's module directory.
type Tree struct {
	Dir     string // .../lib/modules/<release>, absolute, symlinks resolved
	Release string
	files   map[string]string // canonical name -> path relative to Dir
	builtin map[string]bool
}

// Module is one resolved module, ready to be packed.
type Module struct {
	Name    string   // canonical (underscores)
	RelPath string   // relative to the release directory, e.g. kernel/drivers/net/virtio_net.ko
	Depends []string // direct dependencies (canonical names) from .modinfo
	// SoftDeps are the names .modinfo's softdep= lines give (pre: and
	// post:), module names or aliases, which modprobe loads around the
	// module, SoftPre those it loads before; Aliases the module's own
	// alias= names.
	SoftDeps []string
	SoftPre  []string
	Aliases  []string
	Data     []byte // the file as it is on disk (compressed modules stay compressed)
}

// ErrNotFound is wrapped by errors for module names the tree does not have.
var ErrNotFound = errors.New("module not found")

// Canonical returns the kernel's canonical module name ('-' becomes '_').
func Canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

var suffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

func moduleName(file string) (string, bool) {
	for _, s := range suffixes {
		if strings.HasSuffix(file, s) {
			return Canonical(strings.TrimSuffix(file, s)), true
		}
	}
	return "", false
}

// Open finds the module tree under dir, which is either a
// lib/modules/<release> directory or the root of an extracted kernel package
// (holding lib/modules/<release>, exactly one release).
func Open(dir string) (*Tree, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("opening kernel modules %s (give --kernel-modules a lib/modules/<release> folder or the root of an extracted kernel package): %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("kernel modules %s is not a folder", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel")); err != nil {
		base := filepath.Join(dir, "lib", "modules")
		ents, err := os.ReadDir(base)
		if err != nil {
			return nil, fmt.Errorf("%s has neither kernel/ nor lib/modules/<release>/ (give --kernel-modules a lib/modules/<release> folder or the root of an extracted kernel package)", dir)
		}
		var rels []string
		for _, e := range ents {
			// A symlink to a folder is a release too (os.Stat follows it).
			if st, err := os.Stat(filepath.Join(base, e.Name())); err == nil && st.IsDir() {
				rels = append(rels, e.Name())
			}
		}
		switch len(rels) {
		case 1:
			dir = filepath.Join(base, rels[0])
		case 0:
			return nil, fmt.Errorf("%s holds no kernel release", base)
		default:
			return nil, fmt.Errorf("%s holds several kernel releases (%s): give --kernel-modules one of %s/<release>", base, strings.Join(printable.QuoteAll(rels), ", "), base)
		}
	}
	// The release is the folder's real name: "." or "..", a trailing
	// slash or a symlink must not change it (it names /lib/modules/<release>
	// in the initrd, so it changes the bytes and what modprobe finds).
	resolved, err := filepath.Abs(dir)
	if err == nil {
		resolved, err = filepath.EvalSymlinks(resolved)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving kernel modules folder %s: %w", dir, err)
	}
	t := &Tree{Dir: resolved, Release: filepath.Base(resolved), files: map[string]string{}, builtin: map[string]bool{}}
	// The release is printed and packed: text that is not printable (a
	// terminal's control sequences) is no kernel's. (A packed module's
	// path is checked by the packer.)
	if !printable.Is(t.Release) || strings.Contains(t.Release, " ") {
		return nil, fmt.Errorf("kernel modules folder %s: its name %s is not a kernel release (printable, no spaces): give the lib/modules/<release> folder of a kernel package", printable.Escape(resolved), printable.Quote(t.Release))
	}
	dir = resolved
	// The trailing separator makes WalkDir follow a kernel/ that is a
	// symlink (it does not follow its root otherwise).
	err = filepath.WalkDir(filepath.Join(dir, "kernel")+string(filepath.Separator), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, ok := moduleName(d.Name())
		if !ok {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		// Two files for one name (e.g. .ko and .ko.xz): keep the first
		// WalkDir meets (depth first, names sorted in each folder; not
		// bytewise path order: kernel/a/ comes before kernel/a-b/), so the
		// choice is stable.
		if _, dup := t.files[name]; !dup {
			t.files[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", dir, err)
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("no kernel modules (*.ko, *.ko.xz, *.ko.zst, *.ko.gz) under %s/kernel", dir)
	}
	// modules.builtin is optional; one that is there but not a regular
	// file (a FIFO would block the open for ever), unreadable or over
	// maxBuiltinList is an error, not a tree without built-ins.
	b, err := infile.ReadFile("modules.builtin", filepath.Join(dir, "modules.builtin"), maxBuiltinList)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	default:
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if name, ok := moduleName(path.Base(strings.TrimSpace(sc.Text()))); ok {
				t.builtin[name] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading %s/modules.builtin: %w", dir, err)
		}
	}
	// modules.builtin.modinfo ("name.key=value", NUL-separated) gives the
	// built-ins' aliases: a soft dependency one of them provides (sha256,
	// by sha256_generic) is met. Optional, and only read for that.
	b, err = infile.ReadFile("modules.builtin.modinfo", filepath.Join(dir, "modules.builtin.modinfo"), 4*maxBuiltinList)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	default:
		for _, kv := range bytes.Split(b, []byte{0}) {
			if key, alias, ok := strings.Cut(string(kv), "="); ok {
				if mod, k, ok := strings.Cut(key, "."); ok && k == "alias" && t.builtin[Canonical(mod)] {
					t.builtin[Canonical(alias)] = true
				}
			}
		}
	}
	return t, nil
}

// maxBuiltinList bounds modules.builtin, one path per line: a distro
// kernel's lists a few hundred (tens of KiB), an allyesconfig one some
// thousands (hundreds of KiB).
const maxBuiltinList = 16 << 20

// Has reports whether the tree has a loadable module or a built-in of that name.
func (t *Tree) Has(name string) bool {
	n := Canonical(name)
	_, ok := t.files[n]
	return ok || t.builtin[n]
}

// Builtin reports whether the module is built into the kernel.
func (t *Tree) Builtin(name string) bool { return t.builtin[Canonical(name)] }

// Closure resolves names and every dependency they need, and returns the
// loadable modules in load order (dependencies first). The order depends
// only on the set of names, not on their order. Built-in modules are skipped.
func (t *Tree) Closure(names []string) ([]Module, error) {
	req := make([]string, 0, len(names))
	for _, n := range names {
		c := Canonical(n)
		if !t.Has(c) {
			return nil, t.notFound(n, "")
		}
		req = append(req, c)
	}
	slices.Sort(req)
	req = slices.Compact(req)

	mods := map[string]*Module{}
	var order []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string, stack []string) error
	visit = func(name, from string, stack []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(printable.QuoteAll(stack), " -> "), printable.Quote(name))
		}
		if t.builtin[name] {
			state[name] = 2
			return nil
		}
		rel, ok := t.files[name]
		if !ok {
			return t.notFound(name, from)
		}
		state[name] = 1
		m, err := t.load(name, rel)
		if err != nil {
			return err
		}
		mods[name] = m
		deps := slices.Clone(m.Depends)
		slices.Sort(deps)
		for _, d := range deps {
			if err := visit(d, name, append(stack, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, *m)
		return nil
	}
	for _, n := range req {
		if err := visit(n, "", nil); err != nil {
			return nil, err
		}
	}
	return softOrder(req, mods, order), nil
}

// softOrder orders the modules of a closure as Closure does, dependencies
// first, and also after the modules of the closure that provide (by name
// or alias) their pre: soft dependencies: modprobe loads those first, and
// the guest has no modprobe for a module's load to call (libcrc32c asks
// for crc32c as it loads). A soft dependency that would close a cycle is
// dropped; one that would put a module before a dependency gives back
// order, the dependencies-only order.
func softOrder(req []string, mods map[string]*Module, order []Module) []Module {
	prov := map[string][]string{}
	names := slices.Sorted(maps.Keys(mods))
	for _, n := range names {
		prov[n] = append(prov[n], n)
		for _, a := range mods[n].Aliases {
			prov[a] = append(prov[a], n)
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var out []Module
	broken := false
	var visit func(n string, hard bool)
	visit = func(n string, hard bool) {
		switch state[n] {
		case 2:
			return
		case 1:
			// A cycle: through a soft edge it is dropped; a hard one
			// here means soft edges put a module before a dependency.
			broken = broken || hard
			return
		}
		m := mods[n]
		if m == nil { // built in
			state[n] = 2
			return
		}
		state[n] = 1
		deps := slices.Clone(m.Depends)
		slices.Sort(deps)
		for _, d := range deps {
			visit(d, true)
		}
		pre := slices.Clone(m.SoftPre)
		slices.Sort(pre)
		for _, s := range pre {
			for _, p := range prov[Canonical(s)] {
				if p != n {
					visit(p, false)
				}
			}
			if Canonical(s) != s {
				for _, p := range prov[s] {
					if p != n {
						visit(p, false)
					}
				}
			}
		}
		state[n] = 2
		out = append(out, *m)
	}
	for _, n := range req {
		visit(n, true)
	}
	if broken || len(out) != len(order) {
		return order
	}
	return out
}

// Unmet returns, for each module of mods (a Closure) that names a soft
// dependency no module of mods provides (by name or alias) and the kernel
// does not have built in, those names: the guest has no modprobe to load
// them, and a module that needs one fails (libcrc32c without a crc32c
// implementation).
func (t *Tree) Unmet(mods []Module) map[string][]string {
	have := map[string]bool{}
	for _, m := range mods {
		have[m.Name] = true
		for _, a := range m.Aliases {
			have[a] = true
		}
	}
	unmet := map[string][]string{}
	for _, m := range mods {
		for _, d := range m.SoftDeps {
			if !have[d] && !have[Canonical(d)] && !t.Builtin(d) {
				unmet[m.Name] = append(unmet[m.Name], d)
			}
		}
	}
	return unmet
}

func (t *Tree) notFound(name, from string) error {
	msg := fmt.Sprintf("module %q", name)
	if from != "" {
		msg = fmt.Sprintf("module %q (a dependency of %s)", name, printable.Quote(from))
	}
	if s := t.Suggest(name, 3); len(s) > 0 {
		return fmt.Errorf("%w: %s is not in %s; closest names: %s", ErrNotFound, msg, t.Dir, strings.Join(printable.QuoteAll(s), ", "))
	}
	return fmt.Errorf("%w: %s is not in %s", ErrNotFound, msg, t.Dir)
}

func (t *Tree) load(name, rel string) (*Module, error) {
	p := filepath.Join(t.Dir, filepath.FromSlash(rel))
	// The file's name is the tree's text: printed quoted (qn) or escaped
	// (qp), as a terminal would run its control sequences.
	qn, qp := printable.Quote(name), printable.Escape(p)
	// A module holds at most maxDecompressed bytes of ELF, and compressing
	// it does not make it larger (bar a few bytes of framing): no larger
	// file is read.
	data, err := infile.ReadFile("module file", p, int64(maxDecompressed))
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", qn, err)
	}
	info, err := Modinfo(rel, data)
	if err != nil {
		return nil, fmt.Errorf("module %s (%s): %w", qn, qp, err)
	}
	if n, ok := info["name"]; ok && len(n) > 0 && Canonical(n[0]) != name {
		return nil, fmt.Errorf("module file %s calls itself %q, not %q", qp, n[0], name)
	}
	// The kernel refuses a module built for another release (vermagic), and
	// modprobe looks in /lib/modules/$(uname -r): a folder named otherwise
	// would give an initrd whose modules never load.
	if v := info["vermagic"]; len(v) > 0 {
		if release, _, _ := strings.Cut(v[0], " "); release != t.Release {
			return nil, fmt.Errorf("module file %s is built for kernel release %q (vermagic), but its folder %s names release %q: give --kernel-modules the lib/modules/<release> folder of that kernel", qp, release, t.Dir, t.Release)
		}
	}
	m := &Module{Name: name, RelPath: rel, Data: data, Aliases: info["alias"]}
	for _, sd := range info["softdep"] {
		// "pre: a b post: c"
		pre := false
		for _, w := range strings.Fields(sd) {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				m.SoftDeps = append(m.SoftDeps, w)
				if pre {
					m.SoftPre = append(m.SoftPre, w)
				}
			}
		}
	}
	if d := info["depends"]; len(d) > 0 && d[0] != "" {
		for _, dep := range strings.Split(d[0], ",") {
			if dep = strings.TrimSpace(dep); dep != "" {
				m.Depends = append(m.Depends, Canonical(dep))
			}
		}
	}
	if need, ok := loadTimeNeeds[name]; ok {
		imports, err := importsSymbol(rel, data, need.symbol)
		if err != nil {
			return nil, fmt.Errorf("module %s (%s): %w", qn, qp, err)
		}
		if imports {
			m.Depends = append(m.Depends, t.providers(need.modules)...)
			m.Depends = append(m.Depends, t.providers(need.prefer)...)
		}
	}
	return m, nil
}

// loadTimeNeeds are, for modules that build a kernel crypto algorithm by
// name as they load, the modules that provide its parts (each a list of
// alternatives). The crypto API asks modprobe for them
// (request_module("crypto-gcm")), the guest has no modprobe, and the
// module's .modinfo does not name them (they are not symbol
// dependencies), so Closure loads them first, as dependencies. A need
// applies only when the module imports symbol: Linux 6.1's sev-guest
// calls crypto_alloc_aead("gcm(aes)") in its probe, and without gcm, ctr
// and ghash (modules in Debian 12's kernel) the probe fails (-EIO, which
// the driver core reports as "no such device"): no /dev/sev-guest, so no
// attestation on SEV-SNP hardware. Debian's 6.12 does the same; a
// sev-guest built on the kernel's AES-GCM library instead (a symbol
// dependency) imports no crypto_alloc_aead and gets none of them.
//
// prefer are the modules of a better implementation of the same
// algorithm, loaded first too where the tree has them so that the crypto
// API, which takes the highest priority among the algorithms registered,
// builds that one: for sev-guest, aesni_intel's AES-GCM (AES-NI and
// PCLMULQDQ, in constant time) instead of the gcm template over the
// table-based aes-generic and ghash-generic, whose lookups a host that
// watches the guest's cache could time to learn VMPCK0, the key of the
// guest's messages to the AMD-SP. On a CPU without AES-NI the module
// refuses to load (ENODEV, a skip), and the template serves as before.
var loadTimeNeeds = map[string]struct {
	symbol  string
	modules [][]string
	prefer  [][]string
}{
	"sev_guest": {"crypto_alloc_aead", [][]string{{"aes_generic"}, {"gcm"}, {"ctr"}, {"ghash_generic", "ghash_clmulni_intel"}}, [][]string{{"aesni_intel"}}},
}

// providers returns, for each list of alternatives, the first the tree has
// as a module file, or none when one of them is built in or none is
// there (a tree without it cannot do better: the module's own Kconfig
// selects it, so it is at worst built in).
func (t *Tree) providers(alts [][]string) []string {
	var out []string
	for _, a := range alts {
		if slices.ContainsFunc(a, t.Builtin) {
			continue
		}
		for _, n := range a {
			if _, ok := t.files[n]; ok {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// importsSymbol reports whether the module file (name decides its
// compression) imports sym: an undefined symbol of its symbol table.
func importsSymbol(name string, data []byte, sym string) (bool, error) {
	f, err := openELF(name, data)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return false, nil // the kernel would not load it: no need to add
	}
	if err != nil {
		return false, fmt.Errorf("reading its symbol table: %w", err)
	}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && s.Name == sym {
			return true, nil
		}
	}
	return false, nil
}

// openELF decompresses the module file (name decides the compression) and
// opens its ELF.
func openELF(name string, data []byte) (*elf.File, error) {
	raw, err := decompress(name, data)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	return f, nil
}

// Modinfo decodes a module's .modinfo section ("key=value" strings separated
// by NULs). The file name decides the compression, as kmod does.
func Modinfo(name string, data []byte) (map[string][]string, error) {
	f, err := openELF(name, data)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .modinfo: %w", err)
	}
	out := map[string][]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		out[string(k)] = append(out[string(k)], string(v))
	}
	return out, nil
}

// maxDecompressed bounds a decompressed module (the largest in a distro
// kernel are tens of MiB), so a small crafted file cannot exhaust memory.
// A variable for the tests.
var maxDecompressed = modzip.MaxDecompressed

// decompress returns the module file's ELF bytes (modzip.Decompress,
// within maxDecompressed); name (the file's path) decides the compression
// and names the module in errors.
func decompress(name string, data []byte) ([]byte, error) {
	return modzip.Decompress(name, data, maxDecompressed)
}

// ModulesDep formats a modules.dep for just mods, in depmod's format: one
// line per module, "path:" or "path: dep dep ...", with every transitive
// dependency listed nearest first (modprobe loads the list back to front).
// Paths are relative to the release directory. Lines are sorted by path.
func ModulesDep(mods []Module) []byte {
	byName := map[string]*Module{}
	for i := range mods {
		byName[mods[i].Name] = &mods[i]
	}
	lines := make([]initrdlayout.ModuleDeps, 0, len(mods))
	for _, m := range mods {
		// Post-order over the dependency graph gives a load order; depmod
		// lists it reversed (modprobe walks the list from its end).
		var post []string
		seen := map[string]bool{}
		var walk func(name string)
		walk = func(name string) {
			dm, ok := byName[name]
			if seen[name] || !ok { // built-ins are not listed
				return
			}
			seen[name] = true
			next := slices.Clone(dm.Depends)
			slices.Sort(next)
			for _, d := range next {
				walk(d)
			}
			post = append(post, dm.RelPath)
		}
		seen[m.Name] = true
		ds := slices.Clone(m.Depends)
		slices.Sort(ds)
		for _, d := range ds {
			walk(d)
		}
		slices.Reverse(post)
		lines = append(lines, initrdlayout.ModuleDeps{Path: m.RelPath, Deps: post})
	}
	// Empty for no modules, as depmod writes it: not a blank line.
	return initrdlayout.FormatModulesDep(lines)
}

// Suggest returns up to n known module names closest to name (edit
// distance), for "did you mean" messages.
// Providers returns up to n module names of the tree that may provide a
// soft dependency name (a module name or an alias, such as "crc32c" or
// "crypto-crc32c"): the names that hold it, the crypto API's "crypto-"
// prefix aside (crc32c_generic, crc32c_intel). A guess by name, without
// reading every module's aliases: none when no name holds it.
func (t *Tree) Providers(name string, n int) []string {
	c := Canonical(strings.TrimPrefix(name, "crypto-"))
	var out []string
	for k := range t.files {
		if strings.Contains(k, c) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out[:min(n, len(out))]
}

func (t *Tree) Suggest(name string, n int) []string {
	c := Canonical(name)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for k := range t.files {
		cs = append(cs, cand{k, distance(c, k)})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for _, x := range cs {
		if len(out) == n || x.d > max(3, len(c)/2) {
			break
		}
		out = append(out, x.name)
	}
	return out
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

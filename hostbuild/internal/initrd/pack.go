// Package initrd builds, reads and compares the measured initrd.
//
// Pack lays out the init, the payload (Katana at /bin/katana), the kernel
// modules it needs (with a modules.dep for just that subset and an ordered
// load list), the declarative layout of initrd-layout/ and a content list
// with the SHA-256 of every file, as one newc cpio archive in one compressed
// stream. By default (PayloadEncoding "frames") the payload is not in that
// stream: it follows as an uncompressed archive holding bin/katana.zst, the
// payload in independent zstd frames that the init checks and decodes on
// every CPU (see frames.go). The bytes depend only on the inputs' contents and the options:
// never on umask, time zone, locale, file mtimes, directory order,
// GOMAXPROCS or the working directory.
//
// Read parses any newc initrd (gzip, zstd, xz or uncompressed; several
// concatenated archives) strictly, for inspect and diff.
package initrd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/kmod"
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Options are the inputs of Pack.
type Options struct {
	Init          string   // the guest init (static ELF), packed at /init
	Payload       string   // Katana (static ELF), packed at /bin/katana
	KernelModules string   // lib/modules/<release> or an extracted kernel package root; "" packs no modules
	Modules       []string // module names; nil means kmod.DefaultModules (those the tree has)
	CABundle      string   // optional PEM bundle, packed at /etc/ssl/certs/ca-certificates.crt
	// Files are the operator's own files (Katana's chain configuration,
	// genesis, ...), packed under /etc/katana/ with mode 0644, and
	// executables (Katana's sidecars) in /usr/local/bin/ with mode 0755,
	// checked by the init like every other file.
	Files       []File
	Compression string // "zstd", "gzip" or "none"; "" means DefaultCompression
	// PayloadEncoding is "frames" (the payload in zstd frames in its own
	// uncompressed archive, decoded by the init) or "inline" (at
	// /bin/katana in the main archive, unpacked by the kernel); "" means
	// DefaultPayloadEncoding.
	PayloadEncoding string
	// SourceDateEpoch is every entry's mtime (seconds since 1970, < 2^32).
	SourceDateEpoch int64
	Output          string    // written atomically
	Log             io.Writer // progress lines; nil discards
}

// File is one of the operator's files: Source on the host, packed at Dest,
// an absolute path under /etc/katana/ (mode 0644), or, with Exec, an
// executable: a static x86-64 ELF packed as /usr/local/bin/NAME (mode
// 0755), which Katana finds on PATH (its sidecars).
type File struct {
	Source string
	Dest   string
	Exec   bool
}

// Flag is the hostbuild flag that gives f.
func (f File) Flag() string {
	if f.Exec {
		return "--exec"
	}
	return "--file"
}

// dir is the folder f is packed under, relative to the initrd's root.
func (f File) dir() string {
	if f.Exec {
		return initrdlayout.OperatorBinDir
	}
	return initrdlayout.OperatorDir
}

// Linux's limits on a path (with its NUL) and on one name in it: the
// kernel's initramfs unpacker skips an entry past them without an error,
// and the init would then find the listed file missing on every boot.
const (
	pathMax = 4096
	nameMax = 255
)

// ParseFile reads a --file value: SOURCE:DEST, split at the last colon
// (DEST has none). The DEST rules are CheckFiles'.
func ParseFile(s string) (File, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return File{}, fmt.Errorf("--file %q: want SOURCE:DEST, DEST an absolute path under /%s/ (e.g. chain/config.toml:/%s/chain/config.toml)", s, initrdlayout.OperatorDir, initrdlayout.OperatorDir)
	}
	return File{Source: s[:i], Dest: s[i+1:]}, nil
}

// ParseExec reads an --exec value: SOURCE:DEST as ParseFile splits it,
// DEST /usr/local/bin/NAME, or SOURCE alone for DEST /usr/local/bin/ and
// SOURCE's base name. The DEST rules are CheckFiles'.
func ParseExec(s string) (File, error) {
	i := strings.LastIndexByte(s, ':')
	switch {
	case s == "" || i == 0 || i == len(s)-1:
		return File{}, fmt.Errorf("--exec %q: want SOURCE or SOURCE:DEST, DEST /%s/NAME (e.g. target/release/paymaster-service:/%s/paymaster-service)", s, initrdlayout.OperatorBinDir, initrdlayout.OperatorBinDir)
	case i < 0:
		return File{Source: s, Dest: "/" + initrdlayout.OperatorBinDir + "/" + path.Base(filepath.ToSlash(s)), Exec: true}, nil
	}
	return File{Source: s[:i], Dest: s[i+1:], Exec: true}, nil
}

// CheckFiles checks the destinations of files: each an absolute, clean path
// under its folder (/etc/katana/ for --file, one name in /usr/local/bin/
// for --exec) that the content list can carry, none twice, none inside
// another's. The messages name the flag.
func CheckFiles(files []File) error {
	dests := map[string]bool{}
	for _, f := range files {
		fl, dir := f.Flag(), f.dir()
		rel, ok := strings.CutPrefix(f.Dest, "/"+dir+"/")
		switch {
		case f.Source == "":
			return fmt.Errorf("%s :%s: no SOURCE", fl, f.Dest)
		case !ok || rel == "":
			if f.Exec {
				return fmt.Errorf("%s %s:%s: DEST must be /%s/NAME (Katana's sidecars have their own folder, on its PATH)", fl, f.Source, f.Dest, dir)
			}
			return fmt.Errorf("%s %s:%s: DEST must be a file under /%s/ (Katana's files have their own folder, apart from the init's and the kernel's)", fl, f.Source, f.Dest, dir)
		case path.Clean(f.Dest) != f.Dest:
			// The clean form is suggested only where it would be taken:
			// /etc/katana/../passwd is /etc/passwd, outside the folder.
			say := ""
			if c := path.Clean(f.Dest); strings.HasPrefix(c, "/"+dir+"/") && (!f.Exec || !strings.Contains(strings.TrimPrefix(c, "/"+dir+"/"), "/")) {
				say = "; say " + c
			}
			return fmt.Errorf("%s %s:%s: DEST is not a clean path (no \"..\", \".\", \"//\" or trailing slash)%s", fl, f.Source, f.Dest, say)
		case f.Exec && strings.Contains(rel, "/"):
			return fmt.Errorf("%s %s:%s: DEST must be one name in /%s/, not a path under it (PATH lists the folder, not its subfolders)", fl, f.Source, f.Dest, dir)
		case !inContentList(dir+"/"+rel) || !utf8.ValidString(f.Dest) || strings.ContainsFunc(f.Dest, unicode.IsControl):
			return fmt.Errorf("%s %s:%q: DEST holds a character the init's content list or the manifest cannot carry (a newline, a backslash, a control character, a byte that is not UTF-8 or the like): rename it", fl, f.Source, f.Dest)
		case len(f.Dest) >= pathMax:
			return fmt.Errorf("%s %s:%s: DEST is %d bytes; the guest's kernel unpacks no path of %d bytes or more", fl, f.Source, f.Dest, len(f.Dest), pathMax)
		case slices.ContainsFunc(strings.Split(rel, "/"), func(c string) bool { return len(c) > nameMax }):
			return fmt.Errorf("%s %s:%s: DEST has a name over %d bytes, which the guest's kernel cannot create", fl, f.Source, f.Dest, nameMax)
		case dests[f.Dest]:
			return fmt.Errorf("%s ...:%s given twice", fl, f.Dest)
		}
		dests[f.Dest] = true
	}
	// Only --file's folder has subfolders (an --exec DEST is one name).
	for d := range dests {
		if !strings.HasPrefix(d, "/"+initrdlayout.OperatorDir+"/") {
			continue
		}
		for p := path.Dir(d); p != "/"+initrdlayout.OperatorDir; p = path.Dir(p) {
			if dests[p] {
				return fmt.Errorf("--file ...:%s is inside --file ...:%s, a file", d, p)
			}
		}
	}
	return nil
}

// Result describes a packed initrd.
type Result struct {
	Output      string
	Size        int64
	SHA256      [32]byte
	Compression string
	// PayloadEncoding is "frames" or "inline"; Frames the payload's frame
	// list when "frames".
	PayloadEncoding string
	Frames          *initrdlayout.Frames
	Entries         int
	Release         string   // kernel release of the packed modules
	Modules         []string // load order
	Skipped         []string // default modules the tree does not have, or built-ins
	NamedAbsent     []string // of those, the ones Options.Modules named
	// Dropped are the default modules the tree has (not built in) that
	// are not packed: Options.Modules replaces the default list.
	Dropped []string
	// NoSEVGuest: the tree has no sev-guest driver, as a module or built
	// in, so the guest has no attestation device (the agent answers
	// no_snp_device).
	NoSEVGuest bool
	// SoftDeps are, by packed module, the soft dependencies (.modinfo
	// softdep=) that nothing packed provides, with candidate modules.
	SoftDeps []UnmetSoftDep
	Contents initrdlayout.Contents
}

// UnmetSoftDep is a soft dependency of a packed module that nothing packed
// provides: Name as .modinfo gives it (a module name or an alias), and the
// tree's modules that may provide it (kmod.Tree.Providers).
type UnmetSoftDep struct {
	Module, Name string
	Candidates   []string
}

// ErrInput marks a problem with an input file (missing, unreadable, not a
// static x86-64 ELF, unknown module); test with errors.Is.
var ErrInput = errors.New("bad input")

// inputError carries ErrInput without repeating it in the message, which
// names the file and the fix.
type inputError struct{ err error }

func (e inputError) Error() string           { return e.err.Error() }
func (e inputError) Unwrap() []error         { return []error{ErrInput, e.err} }
func badInput(format string, a ...any) error { return inputError{fmt.Errorf(format, a...)} }

// file is one entry of the archive being built.
type file struct {
	path   string // relative, no leading slash
	mode   uint32 // newc type | permission bits
	data   []byte
	target string
	rmaj   uint32
	rmin   uint32
}

// CheckSettings checks what in o needs no file to be read: the
// compression, the payload encoding, the epoch's range, and that Modules
// come with KernelModules. The messages name the hostbuild flags. Pack
// checks them first; a caller checks them itself to tell a wrong setting
// (a usage error) from an input that cannot be used, before reading any.
func (o Options) CheckSettings() error {
	if o.Compression != "" && !slices.Contains(Compressions, o.Compression) {
		return fmt.Errorf("--compress %q: want %s", o.Compression, strings.Join(Compressions, ", "))
	}
	if o.PayloadEncoding != "" && !slices.Contains(PayloadEncodings, o.PayloadEncoding) {
		return fmt.Errorf("--payload-encoding %q: want %s", o.PayloadEncoding, strings.Join(PayloadEncodings, " or "))
	}
	if o.SourceDateEpoch < 0 || o.SourceDateEpoch > math.MaxUint32 {
		return fmt.Errorf("SOURCE_DATE_EPOCH %d is out of range: cpio mtimes are 32-bit unsigned seconds, 0 to %d", o.SourceDateEpoch, uint32(math.MaxUint32))
	}
	if len(o.Modules) > 0 && o.KernelModules == "" {
		return fmt.Errorf("--module %s needs --kernel-modules DIR: say where the modules are", o.Modules[0])
	}
	return CheckFiles(o.Files)
}

// Pack builds the initrd described by o and writes it atomically to o.Output.
func Pack(ctx context.Context, o Options) (*Result, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	if o.Output == "" {
		return nil, errors.New("no output file given (-o FILE)")
	}
	if err := o.CheckSettings(); err != nil {
		return nil, err
	}
	comp := o.Compression
	if comp == "" {
		comp = DefaultCompression
	}
	enc := o.PayloadEncoding
	if enc == "" {
		enc = DefaultPayloadEncoding
	}
	// Every input and the output folder are checked before the payload is
	// encoded, which takes seconds for a real Katana: a typo must not cost
	// them.
	if err := atomicfile.CheckFolder(o.Output); err != nil {
		return nil, fmt.Errorf("-o %s: %w", o.Output, err)
	}
	if err := atomicfile.CheckPath(o.Output); err != nil {
		return nil, err
	}

	files, err := layoutFiles()
	if err != nil {
		return nil, err
	}
	res := &Result{Output: o.Output, Compression: comp, PayloadEncoding: enc}

	initData, err := readStaticELF("init", o.Init)
	if err != nil {
		return nil, err
	}
	payload, err := readStaticELF("payload", o.Payload)
	if err != nil {
		return nil, err
	}
	var ca []byte
	if o.CABundle != "" {
		if ca, err = readInput("CA bundle", o.CABundle); err != nil {
			return nil, err
		}
		if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
			return nil, badInput("CA bundle %s holds no PEM certificate (want a file like /etc/ssl/certs/ca-certificates.crt)", o.CABundle)
		}
	}
	var opFiles []file
	for _, f := range o.Files {
		read, mode, what := readInput, initrdlayout.DataMode, "file"
		if f.Exec {
			read, mode, what = readStaticELF, initrdlayout.ExecMode, "exec"
		}
		b, err := read(f.Flag()+" "+f.Dest, f.Source)
		if err != nil {
			return nil, err
		}
		opFiles = append(opFiles, file{path: strings.TrimPrefix(f.Dest, "/"), mode: newc.TypeReg | uint32(mode), data: b})
		logf("%s: %s (%d bytes, from %s)", what, f.Dest, len(b), f.Source)
	}
	var modFiles []file
	if o.KernelModules != "" {
		if modFiles, err = moduleFiles(o, res, logf); err != nil {
			return nil, err
		}
	}

	files = append(files, file{path: initrdlayout.InitPath, mode: newc.TypeReg | uint32(initrdlayout.ExecMode), data: initData})
	// The payload's own archive (frames), written after the main one.
	var tail []file
	if enc == "frames" {
		logf("payload: encoding %d bytes in zstd frames", len(payload))
		blob, frames, err := encodeFrames(ctx, payload)
		if err != nil {
			return nil, err
		}
		res.Frames = &frames
		logf("payload: %d frames, %d bytes (the init checks and decodes them)", len(frames.List), len(blob))
		files = append(files, file{path: initrdlayout.FramesPath, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: frames.Format()})
		tail = []file{{path: initrdlayout.PackedPayloadPath, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: blob}}
	} else {
		files = append(files, file{path: initrdlayout.PayloadPath, mode: newc.TypeReg | uint32(initrdlayout.ExecMode), data: payload})
	}
	if o.CABundle != "" {
		files = append(files, file{path: initrdlayout.CABundlePath, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: ca})
	}
	files = append(files, opFiles...)
	files = append(files, modFiles...)

	files, err = complete(files)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}

	// The chunk list: large files also hashed in pieces, so the init can
	// check them on every CPU at once. Itself covered by the content list.
	var chunks []initrdlayout.Chunk
	for _, f := range files {
		if f.mode&newc.TypeMask == newc.TypeReg {
			chunks = append(chunks, initrdlayout.Chunks(f.path, f.data)...)
		}
	}
	if len(chunks) > 0 {
		files = append(files, file{path: initrdlayout.ChunksPath, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: initrdlayout.FormatChunks(chunks)})
	}

	// The content list: SHA-256 of every regular file but itself, in
	// either archive.
	res.Contents = initrdlayout.Contents{}
	for _, f := range append(slices.Clone(files), tail...) {
		if f.mode&newc.TypeMask == newc.TypeReg {
			res.Contents[f.path] = sha256.Sum256(f.data)
		}
	}
	files = append(files, file{path: initrdlayout.ContentsPath, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: res.Contents.Format()})
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	// The kernel unpacks in this order into a rootfs that holds at most
	// half the guest's memory: in a guest too small for the inline
	// payload, what follows it is lost. Last, it leaves /init and its
	// lists whole, and the init reports the short payload; sorted, it came
	// before them and the kernel panicked (no /init to run).
	if i := slices.IndexFunc(files, func(f file) bool { return f.path == initrdlayout.PayloadPath }); i >= 0 {
		p := files[i]
		files = append(slices.Delete(files, i, i+1), p)
	}
	res.Entries = len(files) + len(tail)

	logf("writing %d entries (%s) to %s", res.Entries, comp, o.Output)
	err = writeAtomic(ctx, o.Output, func(w io.Writer) error {
		cw := &countWriter{w: w}
		if err := writeArchive(ctx, cw, files, 1, uint32(o.SourceDateEpoch), comp); err != nil {
			return err
		}
		if len(tail) == 0 {
			return nil
		}
		// The kernel takes an uncompressed archive after a compressed
		// one only at a 4-byte offset (init/initramfs.c: this_header & 3);
		// the NULs before it are skipped.
		if _, err := cw.Write(make([]byte, (4-cw.n%4)%4)); err != nil {
			return err
		}
		return writeArchive(ctx, cw, tail, uint32(len(files)+1), uint32(o.SourceDateEpoch), "none")
	}, res)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func layoutFiles() ([]file, error) {
	base, err := initrdlayout.Base()
	if err != nil {
		return nil, err
	}
	out := make([]file, 0, len(base))
	for _, e := range base {
		perm := initrdlayout.PermBits(e.Mode)
		f := file{path: e.Path}
		switch e.Kind {
		case initrdlayout.KindDir:
			f.mode = newc.TypeDir | perm
		case initrdlayout.KindFile:
			f.mode, f.data = newc.TypeReg|perm, e.Data
		case initrdlayout.KindCharDev:
			f.mode, f.rmaj, f.rmin = newc.TypeChar|perm, e.Major, e.Minor
		case initrdlayout.KindBlockDev:
			f.mode, f.rmaj, f.rmin = newc.TypeBlock|perm, e.Major, e.Minor
		case initrdlayout.KindSymlink:
			f.mode, f.target = newc.TypeLink|perm, e.Target
		default:
			return nil, fmt.Errorf("layout entry %s: unknown kind %v", e.Path, e.Kind)
		}
		out = append(out, f)
	}
	return out, nil
}

func moduleFiles(o Options, res *Result, logf func(string, ...any)) ([]file, error) {
	tree, err := kmod.Open(o.KernelModules)
	if err != nil {
		return nil, inputError{err}
	}
	names := o.Modules
	if names == nil {
		for _, n := range kmod.DefaultModules {
			if tree.Has(n) && !tree.Builtin(n) {
				names = append(names, n)
			} else {
				res.Skipped = append(res.Skipped, n)
			}
		}
	} else {
		// A default the tree lacks is skipped when named too, as it is
		// in the default list: "repeat the defaults to add to them"
		// must work on a kernel without one of them (6.1 has no tsm).
		names = nil
		for _, n := range o.Modules {
			isDefault := slices.ContainsFunc(kmod.DefaultModules, func(d string) bool { return kmod.Canonical(d) == kmod.Canonical(n) })
			switch {
			case tree.Builtin(n):
				res.Skipped = append(res.Skipped, n)
			case isDefault && !tree.Has(n):
				res.Skipped = append(res.Skipped, n)
				res.NamedAbsent = append(res.NamedAbsent, n)
				continue
			}
			names = append(names, n)
		}
	}
	mods, err := tree.Closure(names)
	if err != nil {
		return nil, inputError{err}
	}
	unmet := tree.Unmet(mods)
	for _, m := range mods {
		for _, d := range unmet[m.Name] {
			cands := slices.DeleteFunc(tree.Providers(d, 4), func(c string) bool { return c == m.Name })
			res.SoftDeps = append(res.SoftDeps, UnmetSoftDep{Module: m.Name, Name: d, Candidates: cands[:min(3, len(cands))]})
		}
	}
	if o.Modules != nil {
		packed := map[string]bool{}
		for _, m := range mods {
			packed[m.Name] = true
		}
		for _, n := range kmod.DefaultModules {
			if tree.Has(n) && !tree.Builtin(n) && !packed[kmod.Canonical(n)] {
				res.Dropped = append(res.Dropped, n)
			}
		}
	}
	res.NoSEVGuest = !tree.Has("sev-guest")
	res.Release = tree.Release
	root := initrdlayout.ModulesRoot(tree.Release)
	var out []file
	var list []initrdlayout.Module
	for _, m := range mods {
		p := path.Join(root, m.RelPath)
		if !listable(m.Name, p) {
			return nil, badInput("module %s: its path %s/%s has a character the initrd's lists cannot hold (a space, a newline or another control or format character; the init reads them line by line, fields split at spaces): rename that folder or file in --kernel-modules",
				m.Name, tree.Dir, strconv.Quote(m.RelPath))
		}
		out = append(out, file{path: p, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: m.Data})
		list = append(list, initrdlayout.Module{Name: m.Name, Path: p})
		res.Modules = append(res.Modules, m.Name)
	}
	// A modules.dep only beside modules: with none (every one asked for
	// built in), no lib/modules/<release>, as without --kernel-modules,
	// and nothing there that inspect could not vouch for.
	if len(mods) > 0 {
		out = append(out, file{path: path.Join(root, initrdlayout.ModulesDepName), mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: kmod.ModulesDep(mods)})
	}
	out = append(out, file{path: initrdlayout.ModulesLoad, mode: newc.TypeReg | uint32(initrdlayout.DataMode), data: initrdlayout.FormatModuleList(list)})
	logf("kernel %s: %d modules (%s)", tree.Release, len(mods), strings.Join(res.Modules, " "))
	if len(res.Skipped) > 0 {
		logf("kernel %s: skipped (built in or absent): %s", tree.Release, strings.Join(res.Skipped, " "))
	}
	return out, nil
}

// listable reports whether the init reads a module at path p back from
// both lists the initrd names it in, the module list and the content list,
// with the init's own parsers: a path they would refuse or split must be
// refused here, not on every boot.
func listable(name, p string) bool {
	// Printed too (pack's log of the modules): nothing a terminal runs.
	if !printable.Is(p) {
		return false
	}
	back, err := initrdlayout.ParseModuleList(bytes.NewReader(initrdlayout.FormatModuleList([]initrdlayout.Module{{Name: name, Path: p}})))
	if err != nil || len(back) != 1 || back[0].Path != p {
		return false
	}
	return inContentList(p)
}

// inContentList reports whether the init's content list parser reads p back
// from the list the packer writes.
func inContentList(p string) bool {
	c, err := initrdlayout.ParseContents(bytes.NewReader(initrdlayout.Contents{p: {}}.Format()))
	_, ok := c[p]
	return err == nil && ok
}

// complete adds missing parent directories (0755) and refuses duplicates.
func complete(files []file) ([]file, error) {
	have := map[string]uint32{}
	for _, f := range files {
		if _, dup := have[f.path]; dup {
			return nil, fmt.Errorf("initrd path %s declared twice", f.path)
		}
		have[f.path] = f.mode
	}
	for _, f := range slices.Clone(files) {
		for d := path.Dir(f.path); d != "."; d = path.Dir(d) {
			m, ok := have[d]
			if ok && m&newc.TypeMask != newc.TypeDir {
				return nil, fmt.Errorf("initrd path %s needs %s to be a folder, but the layout makes it a %s", f.path, d, newc.TypeString(m))
			}
			if !ok {
				have[d] = newc.TypeDir | 0o755
				files = append(files, file{path: d, mode: newc.TypeDir | 0o755})
			}
		}
	}
	return files, nil
}

// unwrapPath drops the *fs.PathError's path, which the caller's message
// names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readInput(what, p string) ([]byte, error) {
	if p == "" {
		return nil, badInput("no %s given", what)
	}
	// One open, checked and read: a path swapped for a FIFO after a stat
	// cannot make the read wait for a writer (infile.Open refuses it at
	// once), nor one swapped for a larger file exceed the bound.
	f, err := infile.Open(what, p)
	if err != nil {
		var nr *infile.NotRegularError
		if errors.As(err, &nr) {
			return nil, badInput("%w", err)
		}
		return nil, badInput("%s %s: %w (check the path)", what, p, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, badInput("reading %s %s: %w", what, p, unwrapPath(err))
	}
	if st.Size() > math.MaxUint32 {
		return nil, badInput("%s %s is %d bytes; a newc cpio entry holds at most 4294967295 bytes (4 GiB less one byte)", what, p, st.Size())
	}
	// Sized as os.ReadFile sizes it; the limit holds if the file grows.
	buf := bytes.NewBuffer(make([]byte, 0, st.Size()+512))
	if _, err := buf.ReadFrom(io.LimitReader(f, math.MaxUint32+1)); err != nil {
		return nil, badInput("reading %s %s: %w", what, p, unwrapPath(err))
	}
	if buf.Len() > math.MaxUint32 {
		return nil, badInput("%s %s grew to 4 GiB or more while read; a newc cpio entry holds at most 4294967295 bytes (4 GiB less one byte)", what, p)
	}
	return buf.Bytes(), nil
}

// readStaticELF reads an executable that must run with no libc: x86-64,
// ELF64, executable or static-PIE, no program interpreter.
func readStaticELF(what, p string) ([]byte, error) {
	b, err := readInput(what, p)
	if err != nil {
		return nil, err
	}
	if err := CheckStaticELF(b); err != nil {
		return nil, badInput("%s %s: %w", what, p, err)
	}
	return b, nil
}

// CheckStaticELF says why b is not a static x86-64 executable, or nil.
func CheckStaticELF(b []byte) error {
	// A script would run only through an interpreter the initrd does not
	// have (and never through a shell: the init execs Katana directly).
	if bytes.HasPrefix(b, []byte("#!")) {
		line, _, _ := bytes.Cut(b[:min(len(b), 80)], []byte("\n"))
		return fmt.Errorf("a script (%s), not an ELF executable; the initrd has no interpreter and needs a static x86-64 Linux binary", printable.Quote(string(line)))
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		if bytes.HasPrefix(b, []byte(elf.ELFMAG)) && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
			return fmt.Errorf("an ELF file cut short (%v): its headers reach past its %d bytes (an interrupted copy or download?); the initrd needs the whole static x86-64 Linux binary", err, len(b))
		}
		return fmt.Errorf("not an ELF executable (%v); the initrd needs a static x86-64 Linux binary", err)
	}
	defer f.Close()
	// A file cut short whose section headers are gone too (stripped with
	// sstrip, or never written) parses: its segments reach past its end,
	// which the guest's execve refuses, after the initrd was measured.
	for _, p := range f.Progs {
		if p.Filesz > 0 && (p.Off > uint64(len(b)) || p.Filesz > uint64(len(b))-p.Off) {
			return fmt.Errorf("an ELF file cut short: its %v segment at offset %d needs %d bytes, past its %d (an interrupted copy or download?); the initrd needs the whole static x86-64 Linux binary", p.Type, p.Off, p.Filesz, len(b))
		}
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("built for %v %v, not x86-64: the guest is x86-64", f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	// Linux runs any x86-64 ELF, another system's too, whose system
	// calls then go wrong: such a binary says so in its OS ABI byte
	// (FreeBSD) or in a note (NetBSD, OpenBSD).
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("built for %v (its ELF OS ABI), not Linux: the guest is Linux; build it for linux (Go: GOOS=linux)", f.OSABI)
	}
	if owner := otherOSNote(f); owner != "" {
		return fmt.Errorf("built for %s (its ELF notes say so), not Linux: the guest is Linux; build it for linux (Go: GOOS=linux)", owner)
	}
	// A Go program says its GOOS in its build info (DragonFly's
	// binaries have neither an OS ABI nor a note of their own).
	if bi, err := buildinfo.Read(bytes.NewReader(b)); err == nil {
		for _, st := range bi.Settings {
			if st.Key == "GOOS" && st.Value != "linux" {
				return fmt.Errorf("a Go program built for GOOS=%s, not linux: the guest is Linux; build it with GOOS=linux", printable.Quote(st.Value))
			}
		}
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			return fmt.Errorf("dynamically linked (interpreter %s): the initrd carries no libc; build it static (Go: CGO_ENABLED=0; Rust: --target x86_64-unknown-linux-musl)", printable.Quote(strings.TrimRight(string(interp), "\x00")))
		}
	}
	if f.Type == elf.ET_DYN && f.Entry == 0 {
		return errors.New("a shared library (no entry point), not an executable")
	}
	return nil
}

// otherOSNote returns the owner of an ELF note that tags f as another
// system's binary (the BSDs' linkers write one), or "".
func otherOSNote(f *elf.File) string {
	le := binary.LittleEndian
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<16 {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), int64(p.Filesz)))
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz, descsz := int(le.Uint32(b)), int(le.Uint32(b[4:]))
			if namesz < 0 || descsz < 0 || namesz > len(b)-12 {
				break
			}
			name := strings.TrimRight(string(b[12:12+namesz]), "\x00")
			switch name {
			case "FreeBSD", "NetBSD", "OpenBSD", "DragonFly", "Solaris":
				return name
			}
			next := 12 + (namesz+3)&^3 + (descsz+3)&^3
			if next <= 0 || next > len(b) {
				break
			}
			b = b[next:]
		}
	}
	return ""
}

// writeArchive writes files as one newc archive, inode numbers from ino, in
// one stream of compression comp.
func writeArchive(ctx context.Context, w io.Writer, files []file, ino, mtime uint32, comp string) error {
	cw, err := compressorFor(comp, w)
	if err != nil {
		return err
	}
	nw := newc.NewWriter(cw)
	for i, f := range files {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		h := &newc.Header{
			Name: f.path, Ino: ino + uint32(i), Mode: f.mode, NLink: 1, MTime: mtime,
			RDevMajor: f.rmaj, RDevMinor: f.rmin,
		}
		body := f.data
		switch f.mode & newc.TypeMask {
		case newc.TypeDir:
			h.NLink = 2
		case newc.TypeLink:
			body = []byte(f.target)
		}
		h.Size = uint32(len(body))
		if err := nw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		if _, err := nw.Write(body); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	if err := nw.Close(); err != nil {
		return err
	}
	return cw.Close()
}

// writeAtomic writes through fill into a file that appears at out only when
// complete (internal/atomicfile): on any error nothing is left at out or
// beside it, nor, where the file system has O_TMPFILE, if the process is
// killed mid-write (an initrd is large: a named temporary file would stay).
func writeAtomic(ctx context.Context, out string, fill func(io.Writer) error, res *Result) error {
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort() // no-op after Commit
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := newBufWriter(cw)
	if err := fill(bw); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	res.Size = cw.n
	copy(res.SHA256[:], h.Sum(nil))
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

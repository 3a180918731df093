// Package modload loads the initrd's kernel modules from the ordered load
// list (initrdlayout.ModulesLoad, dependencies first, written by hostbuild
// pack). Plain .ko files go to finit_module(2) through the descriptor whose
// bytes were just checked against the content list. .ko.xz, .ko.zst and
// .ko.gz are checked too, and go to finit_module(2) with
// MODULE_INIT_COMPRESSED_FILE when the kernel decompresses that format
// itself (CONFIG_MODULE_DECOMPRESS, which names its one format in
// /sys/module/compression: Debian's 6.12 and xz); otherwise they are
// decompressed here and given to init_module(2) (Debian's 6.1 has no
// in-kernel decompression, and plain .ko files).
//
// A module the kernel already has (EEXIST) counts as loaded. A module whose
// init finds no device (ENODEV, e.g. sev-guest outside an SEV-SNP guest) is
// reported as skipped and does not fail the boot. Every other failure is an
// error naming the module and the kernel's reason.
package modload

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/modzip"
)

// Errors for errors.Is.
var (
	ErrNotListed = errors.New("module not in the content list")
	ErrMismatch  = errors.New("module SHA-256 does not match the content list")
	ErrFormat    = modzip.ErrFormat
)

// Kernel is the module-loading system call interface; tests replace it.
type Kernel interface {
	FinitModule(fd int, params string, flags int) error
	InitModule(image []byte, params string) error
}

type sysKernel struct{}

func (sysKernel) FinitModule(fd int, params string, flags int) error {
	return unix.FinitModule(fd, params, flags)
}
func (sysKernel) InitModule(image []byte, params string) error { return unix.InitModule(image, params) }

// Options configure Load.
type Options struct {
	Root     string                // initrd root ("/" in the guest)
	Contents initrdlayout.Contents // every module file must be listed here
	Kernel   Kernel                // nil: the real system calls
	// KernelLog, when set, returns the kernel's own messages about a module
	// that failed (see KernelMessages); they are added to the error.
	KernelLog func(module string) []string
}

// Result is the outcome of one module.
type Result struct {
	Name    string
	Path    string
	Status  Status
	Took    time.Duration
	Skipped error // the kernel's reason when Status is Skipped
}

// Status of a module after Load.
type Status int

const (
	Loaded  Status = iota + 1 // loaded now
	Present                   // already in the kernel (EEXIST)
	Skipped                   // no device (ENODEV); not an error
)

func (s Status) String() string {
	switch s {
	case Loaded:
		return "loaded"
	case Present:
		return "present"
	case Skipped:
		return "skipped"
	}
	return "unknown"
}

// ReadList reads the ordered load list under root. A missing list means no
// modules (nil, nil); the content list check covers its presence.
func ReadList(root string, contents initrdlayout.Contents) ([]initrdlayout.Module, error) {
	p := filepath.Join(root, initrdlayout.ModulesLoad)
	b, err := integrity.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		if _, listed := contents[initrdlayout.ModulesLoad]; listed {
			return nil, fmt.Errorf("module list %s is in the content list but missing (truncated initrd unpack?): %w", p, err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading module list: %w", err)
	}
	want, listed := contents[initrdlayout.ModulesLoad]
	if !listed {
		return nil, fmt.Errorf("module list %s: %w", initrdlayout.ModulesLoad, ErrNotListed)
	}
	if sha256.Sum256(b) != want {
		return nil, fmt.Errorf("module list %s: %w", initrdlayout.ModulesLoad, ErrMismatch)
	}
	mods, err := initrdlayout.ParseModuleList(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return mods, nil
}

// Load loads mods in order and stops at the first failure.
func Load(mods []initrdlayout.Module, o Options) ([]Result, error) {
	k := o.Kernel
	if k == nil {
		k = sysKernel{}
	}
	inKernel := kernelDecompresses(o.Root)
	var out []Result
	for _, m := range mods {
		start := time.Now()
		err := loadOne(m, o, k, inKernel)
		r := Result{Name: m.Name, Path: m.Path, Status: Loaded}
		switch {
		case err == nil:
		case errors.Is(err, unix.EEXIST):
			r.Status = Present
		case errors.Is(err, unix.ENODEV):
			// No device, or a probe that failed (platform_driver_probe
			// makes any probe error ENODEV: sev-guest with a bad VMPCK
			// key): the kernel's own words say which.
			if o.KernelLog != nil {
				if msgs := o.KernelLog(m.Name); len(msgs) > 0 {
					err = fmt.Errorf("%w; kernel: %s", err, strings.Join(msgs, "; "))
				}
			}
			r.Status, r.Skipped = Skipped, err
		default:
			err = fmt.Errorf("loading module %s (%s): %w", m.Name, m.Path, explain(err))
			if o.KernelLog != nil {
				if msgs := o.KernelLog(m.Name); len(msgs) > 0 {
					err = fmt.Errorf("%w; kernel: %s", err, strings.Join(msgs, "; "))
				}
			}
			return out, err
		}
		r.Took = time.Since(start)
		out = append(out, r)
	}
	return out, nil
}

// compressedSuffixes maps a compressed module's suffix to the name the
// kernel gives that format in /sys/module/compression.
var compressedSuffixes = map[string]string{".ko.xz": "xz", ".ko.zst": "zstd", ".ko.gz": "gzip"}

// kernelDecompresses returns the suffix of the compressed modules the
// running kernel decompresses itself, from /sys/module/compression under
// root (present only with CONFIG_MODULE_DECOMPRESS), or "".
func kernelDecompresses(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "sys/module/compression"))
	if err != nil {
		return ""
	}
	name := strings.TrimSpace(string(b))
	for suffix, n := range compressedSuffixes {
		if n == name {
			return suffix
		}
	}
	return ""
}

func loadOne(m initrdlayout.Module, o Options, k Kernel, inKernel string) error {
	want, ok := o.Contents[m.Path]
	if !ok {
		return ErrNotListed
	}
	p := filepath.Join(o.Root, m.Path)
	f, err := integrity.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if sha256.Sum256(b) != want {
		return fmt.Errorf("%w (%d bytes; truncated initrd unpack?)", ErrMismatch, len(b))
	}
	switch {
	case strings.HasSuffix(m.Path, ".ko"):
		// The fd still refers to the bytes just hashed: the initrd is a
		// private in-memory file system that nothing else writes.
		return k.FinitModule(int(f.Fd()), "", 0)
	case inKernel != "" && strings.HasSuffix(m.Path, inKernel):
		// The kernel decompresses this format from the descriptor just
		// hashed, in C rather than with Go's slower xz. Its error is the
		// module's: a retry in user space would run a failed init twice.
		return k.FinitModule(int(f.Fd()), "", unix.MODULE_INIT_COMPRESSED_FILE)
	case strings.HasSuffix(m.Path, ".ko.xz"), strings.HasSuffix(m.Path, ".ko.zst"), strings.HasSuffix(m.Path, ".ko.gz"):
		img, err := Decompress(m.Path, b)
		if err != nil {
			return err
		}
		return k.InitModule(img, "")
	}
	return ErrFormat
}

// Decompress decompresses a module image chosen by the extension of name,
// within modzip.MaxDecompressed: the packed modules are vouched for by the
// content list, but a crafted one (a few bytes of zstd declaring a 512 MiB
// window) must give a boot error naming it, not an out-of-memory that no
// recover catches and that ends PID 1.
func Decompress(name string, b []byte) ([]byte, error) {
	img, err := modzip.Decompress(name, b, modzip.MaxDecompressed)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return img, nil
}

// explain adds what an errno from the module system calls usually means.
func explain(err error) error {
	var hint string
	switch {
	case errors.Is(err, unix.ENOENT):
		hint = "unknown symbol: a dependency is missing or listed after it; see the kernel log"
	case errors.Is(err, unix.ENOEXEC):
		hint = "invalid module format: built for another kernel release?"
	case errors.Is(err, unix.EKEYREJECTED), errors.Is(err, unix.EBADMSG):
		hint = "module signature rejected"
	case errors.Is(err, unix.EPERM):
		hint = "module loading not permitted (modules disabled or lockdown)"
	case errors.Is(err, unix.EINVAL):
		hint = "invalid parameters or module; see the kernel log"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// Split returns the modules of mods named in first (in list order) and the
// others (in list order). The init loads a few modules early this way (the
// AF_ALG hash modules the integrity check uses); a failure there is retried
// in the normal pass, where it is reported.
func Split(mods []initrdlayout.Module, first ...string) (pre, rest []initrdlayout.Module) {
	want := map[string]bool{}
	for _, n := range first {
		want[canonical(n)] = true
	}
	for _, m := range mods {
		if want[canonical(m.Name)] {
			pre = append(pre, m)
		} else {
			rest = append(rest, m)
		}
	}
	return pre, rest
}

// OnlyFor returns, in mods' order, the module named and those of its
// dependencies that are in mods only for it: that no other module of mods
// needs, directly or through others. deps is the modules.dep of the named
// module's release (initrdlayout.ModulesRoot), whose paths are relative to
// that folder. None when mods lacks the module, or when another module of
// mods needs it. A module of mods that deps does not describe is an error:
// the load list and modules.dep disagree, and what a module needs cannot
// be told.
func OnlyFor(mods []initrdlayout.Module, deps []initrdlayout.ModuleDeps, name string) ([]initrdlayout.Module, error) {
	t := slices.IndexFunc(mods, func(m initrdlayout.Module) bool { return canonical(m.Name) == canonical(name) })
	if t < 0 {
		return nil, nil
	}
	root, ok := initrdlayout.ModuleRoot(mods[t].Path)
	if !ok {
		return nil, fmt.Errorf("module %s: path %s is not under %s/<release>/", mods[t].Name, mods[t].Path, initrdlayout.ModulesDir)
	}
	needs := map[string][]string{}
	for _, d := range deps {
		needs[d.Path] = d.Deps
	}
	rel := make([]string, len(mods))
	for i, m := range mods {
		r, ok := strings.CutPrefix(m.Path, root+"/")
		if _, described := needs[r]; !ok || !described {
			return nil, fmt.Errorf("module %s (%s) has no line in %s/%s: the module list and modules.dep disagree", m.Name, m.Path, root, initrdlayout.ModulesDepName)
		}
		rel[i] = r
	}
	// closure adds p and all it needs, through modules.dep's lines.
	closure := func(into map[string]bool, p string) {
		stack := []string{p}
		for len(stack) > 0 {
			q := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if into[q] {
				continue
			}
			into[q] = true
			stack = append(stack, needs[q]...)
		}
	}
	// A module no other module needs was asked for in its own right (the
	// roots of the graph): each but the named one stays, with what it
	// needs. Of the named one's closure, the rest is there only for it.
	needed := map[string]bool{}
	for _, r := range rel {
		for _, d := range needs[r] {
			needed[d] = true
		}
	}
	if needed[rel[t]] {
		return nil, nil
	}
	keep := map[string]bool{}
	for i, r := range rel {
		if i != t && !needed[r] {
			closure(keep, r)
		}
	}
	only := map[string]bool{}
	closure(only, rel[t])
	var out []initrdlayout.Module
	for i, r := range rel {
		if only[r] && !keep[r] {
			out = append(out, mods[i])
		}
	}
	// A module that still loads never needs one left out (modules.dep
	// without a cycle guarantees it; with one, nothing is left out).
	for _, r := range rel {
		if only[r] && !keep[r] {
			continue
		}
		for _, d := range needs[r] {
			if only[d] && !keep[d] {
				return nil, nil
			}
		}
	}
	return out, nil
}

// Drop removes from mods the modules named in refused (the kernel would
// refuse them with ENODEV, known before reading them) and returns a Skipped
// result for each, with its reason; the others keep their order.
func Drop(mods []initrdlayout.Module, refused map[string]error) (kept []initrdlayout.Module, res []Result) {
	for _, m := range mods {
		why, ok := refused[canonical(m.Name)]
		if !ok {
			kept = append(kept, m)
			continue
		}
		res = append(res, Result{Name: m.Name, Path: m.Path, Status: Skipped, Skipped: why})
	}
	return kept, res
}

// canonical spells a module name as the kernel does (dashes are underscores).
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

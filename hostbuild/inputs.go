package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/kmod"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// input is a file or folder named by a flag.
type input struct {
	flag, path string
	folder     bool   // a folder (--kernel-modules), not a file
	modTree    bool   // a kernel module tree: the module files in it are inputs too
	hint       string // optional, appended to the fix, e.g. for a default path
}

// checkInputs checks, before any work, that each input given exists and is
// a file (or a folder), so that a wrong path is reported with the flag that
// named it and the fix, rather than as "opening kernel: open X: ..." after
// other inputs were read. Empty paths are skipped: whether a flag is
// required is the caller's check.
func checkInputs(ins ...input) error {
	for _, in := range ins {
		if in.path == "" {
			continue
		}
		fix := "check the path"
		if in.hint != "" {
			fix += "; " + in.hint
		}
		st, err := os.Stat(in.path)
		if err != nil {
			return fmt.Errorf("%s %s: %v (%s)", in.flag, in.path, withoutPath(err), fix)
		}
		switch {
		case in.folder && !st.IsDir():
			return fmt.Errorf("%s %s: not a folder (%s)", in.flag, in.path, fix)
		case !in.folder && st.IsDir():
			return fmt.Errorf("%s %s: a folder, not a file (%s)", in.flag, in.path, fix)
		}
	}
	return nil
}

// kernelHead is the start of a kernel as one read of it gave it (at most
// measure.KernelHeadSize bytes: the boot header and the version string it
// points to) and the size of that kernel, for the checks of its boot
// header. A check of the kernel whose SHA-256 a manifest records (or
// that run launches) looks at the bytes that were hashed
// (measure.Inputs.KernelHead, the launch's sealed copy): read again by
// its path, it could be another file, renamed over the path meanwhile.
type kernelHead struct {
	path string // for messages
	head []byte // nil: no kernel (or the null device), nothing to check
	size int64
}

// readKernelHead reads the start of the kernel at path (a check before any
// work, or of a launch refused: the bytes hashed are checked again).
func readKernelHead(path string) (kernelHead, error) {
	f, err := infile.Open("kernel", path)
	if err != nil {
		return kernelHead{}, err
	}
	defer f.Close()
	return readKernelHeadFile(path, f)
}

// readKernelHeadFile reads the start of the open kernel f from its
// beginning; path names it in messages.
func readKernelHeadFile(path string, f *os.File) (kernelHead, error) {
	head, err := io.ReadAll(io.NewSectionReader(f, 0, measure.KernelHeadSize))
	if err != nil {
		return kernelHead{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return kernelHead{}, err
	}
	return kernelHead{path: path, head: head, size: fi.Size()}, nil
}

// measuredKernel is the kernel a measurement read (in.Kernel).
func measuredKernel(in measure.Inputs) kernelHead {
	if in.Kernel == nil {
		return kernelHead{}
	}
	return kernelHead{path: in.Kernel.Path, head: in.KernelHead, size: in.Kernel.Size}
}

// warnNotBzImage warns, for cmd, of a --kernel that is a regular file but
// not a bzImage (checkBzImage), saying what follows (then); a missing or
// unreadable file is left to the command's own input checks.
func warnNotBzImage(stderr io.Writer, cmd, path, then string) {
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return
	}
	if k, err := readKernelHead(path); err == nil {
		k.warnNotBzImage(stderr, cmd, then)
	}
}

// warnNotBzImage is warnNotBzImage of the kernel k was read from.
func (k kernelHead) warnNotBzImage(stderr io.Writer, cmd, then string) {
	if k.head == nil {
		return
	}
	if err := k.checkBzImage(); err != nil {
		fmt.Fprintf(stderr, "hostbuild %s: warning: --kernel %s: %v; %s\n", cmd, k.path, err, then)
	}
}

// checkBzImage refuses a kernel that is not a bzImage (the Linux boot
// protocol's "HdrS" header at 0x202). QEMU builds the SEV hashes table
// that kernel-hashes=on measures only for one; given anything else (an
// ELF vmlinux, a multiboot image, the wrong file), it would boot no such
// launch, or none that the manifest's measurement matches, and that would
// show only at attestation, as a measurement failure.
func checkBzImage(path string) error {
	k, err := readKernelHead(path)
	if err != nil {
		return err
	}
	return k.checkBzImage()
}

// checkBzImage is checkBzImage of the kernel k was read from.
func (k kernelHead) checkBzImage() error {
	h := k.head
	const fix = "give the kernel's compressed image, the vmlinuz that /boot or the kernel package holds"
	switch {
	case len(h) < 0x208:
		return fmt.Errorf("%d bytes, too short for a Linux kernel's boot header: not a bzImage (%s)", len(h), fix)
	case bytes.Equal(h[:4], []byte("\x7fELF")):
		return fmt.Errorf("an ELF file (an uncompressed vmlinux?), not a bzImage: QEMU's measured direct boot (kernel-hashes=on) needs a bzImage (%s)", fix)
	case string(h[0x202:0x206]) != "HdrS":
		return fmt.Errorf("not a Linux bzImage (no \"HdrS\" boot header at 0x202): QEMU's measured direct boot (kernel-hashes=on) needs one (%s)", fix)
	}
	// From boot protocol 2.04 the header gives the image's size: the
	// setup sectors (0 meaning 4) and the boot sector, then syssize
	// 16-byte paragraphs of the protected-mode kernel. A file cut short
	// (a copy that failed) would boot no kernel.
	if binary.LittleEndian.Uint16(h[0x206:]) >= 0x204 {
		setup := int64(h[0x1f1])
		if setup == 0 {
			setup = 4
		}
		want := (setup+1)*512 + int64(binary.LittleEndian.Uint32(h[0x1f4:]))*16
		if k.size < want {
			return fmt.Errorf("%d bytes, but its boot header says %d: a truncated bzImage (%s)", k.size, want, fix)
		}
	}
	return nil
}

// bzImageRelease returns the kernel release a bzImage names in its boot
// header (the first word of the version string kernel_version points to,
// e.g. "6.1.0-57-amd64"), or "" when it names none (boot protocol before
// 2.00, no pointer, no string where it points).
func bzImageRelease(path string) (string, error) {
	k, err := readKernelHead(path)
	if err != nil {
		return "", err
	}
	return k.release(), nil
}

// release is bzImageRelease of the kernel k was read from.
func (k kernelHead) release() string {
	h := k.head
	if len(h) < 0x210 || string(h[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(h[0x206:]) < 0x200 {
		return ""
	}
	off := binary.LittleEndian.Uint16(h[0x20e:])
	if off == 0 {
		return ""
	}
	var v []byte
	if at := int(off) + 0x200; at < len(h) {
		v = h[at:min(at+256, len(h))]
	}
	s, _, _ := strings.Cut(string(v), "\x00")
	rel, _, _ := strings.Cut(s, " ")
	// The image's own bytes, printed in messages: quoted when not
	// printable (a terminal would run their control sequences); no
	// module tree's release is, so a comparison still fails.
	return printable.Quote(rel)
}

// checkKernelRelease refuses kernel modules of another release than the
// kernel's: the kernel refuses to load them (their vermagic, or with
// module versioning, as Debian's kernels have, their symbol versions
// once the ABI changed), and the guest would stop with a boot error at
// the first one. what names the modules (a flag, or the initrd), releases
// are theirs (none: nothing to check).
func checkKernelRelease(kernelPath, what string, releases ...string) error {
	if len(releases) == 0 {
		return nil
	}
	k, err := readKernelHead(kernelPath)
	if err != nil {
		return err
	}
	return k.checkRelease(what, releases...)
}

// checkRelease is checkKernelRelease of the kernel k was read from.
func (k kernelHead) checkRelease(what string, releases ...string) error {
	rel := k.release()
	if rel == "" {
		return nil // a kernel that names no release: nothing to compare
	}
	for _, r := range releases {
		if r != rel {
			return fmt.Errorf("--kernel %s is kernel release %s (its boot header), but %s holds modules built for release %s: modules of another release do not load, so the guest would stop at the first one; give the modules from the same kernel package as the kernel", k.path, rel, what, printable.Quote(r))
		}
	}
	return nil
}

// withoutPath drops the path of an *fs.PathError (the reason alone: "no
// such file or directory"), for messages that name the path themselves.
// Other errors are returned as they are.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkOutput refuses an output path that is one of the input files, by
// its own name or another (a symlink to it, a hard link). Written there,
// the output would replace that input: "pack -o out/guestinit" (the
// default --init) once overwrote the init with the initrd, "manifest -o
// initrd.img" the initrd with the manifest, with exit 0. Checked before
// any work; an output that does not exist yet is fine. The output is
// looked at with Lstat: an atomic write renames over a symlink, leaving
// the file it points to alone.
func checkOutput(outFlag, out string, ins ...input) error {
	return sameFileAsInput(os.Lstat, outFlag, out, ins)
}

// checkOutputFolder refuses, before any work, an output whose folder does
// not exist, is not a folder or cannot be written to: the atomic write
// would fail only at the end, with the temporary file's name.
func checkOutputFolder(outFlag, out string) error {
	if out == "" {
		return nil
	}
	if out == "-" {
		// Written atomically by name: "-" would be a file called "-".
		return fmt.Errorf("%s -: this output is a file, not standard output; give a file name (./- for a file named -)", outFlag)
	}
	// The path itself too: a folder or device node there would be found
	// only at the final rename, after all the work.
	if err := atomicfile.CheckPath(out); err != nil {
		return fmt.Errorf("%s %w", outFlag, err)
	}
	if err := atomicfile.CheckFolder(out); err != nil {
		return fmt.Errorf("%s %s: %w", outFlag, out, err)
	}
	dir := atomicfile.Dir(out)
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("%s %s: its folder %s cannot be written to (%v): write elsewhere", outFlag, out, dir, err)
	}
	return nil
}

// checkOpenedOutput is checkOutput for an output that is opened and
// truncated at its path, following a symlink (QEMU's serial log): "run
// --serial-log vmlinuz" once truncated the kernel it had just checked.
func checkOpenedOutput(outFlag, out string, ins ...input) error {
	return sameFileAsInput(os.Stat, outFlag, out, ins)
}

func sameFileAsInput(stat func(string) (os.FileInfo, error), outFlag, out string, ins []input) error {
	if out == "" {
		return nil
	}
	ost, err := stat(out)
	if err != nil {
		return nil // not there yet (or unreachable: writing it says so)
	}
	for _, in := range ins {
		if in.path == "" {
			continue
		}
		if in.folder {
			if in.modTree && readFromTree(out, in.path) {
				return fmt.Errorf("%s %s is a file of the %s folder %s that pack reads (a kernel module, modules.builtin or modules.builtin.modinfo): writing it would replace that input; give another output path", outFlag, out, in.flag, in.path)
			}
			continue
		}
		if ist, err := os.Stat(in.path); err == nil && os.SameFile(ost, ist) {
			what := "is also the " + in.flag + " file"
			if filepath.Clean(in.path) != filepath.Clean(out) {
				what = "is the same file as " + in.flag + " " + in.path
			}
			return fmt.Errorf("%s %s %s: writing it would replace that input; give another output path", outFlag, out, what)
		}
	}
	return nil
}

// readFromTree reports whether the existing file out lies in the folder
// tree and has the name of a file a module tree is read for: "pack -o
// .../kernel/drivers/net/virtio_net.ko" would replace a module it packs.
// Symlinks are resolved in out's folder, not in out itself: the atomic
// write replaces a symlink, not what it points to.
func readFromTree(out, tree string) bool {
	o, err := filepath.EvalSymlinks(atomicfile.Dir(out))
	if err == nil {
		o, err = filepath.Abs(filepath.Join(o, filepath.Base(out)))
	}
	t, terr := filepath.EvalSymlinks(tree)
	if terr == nil {
		t, terr = filepath.Abs(t)
	}
	if err != nil || terr != nil {
		return false
	}
	// The folders kmod.Open reads too: a release folder or a kernel/ that
	// is a symlink leads outside the tree as given.
	roots := []string{t}
	if tr, err := kmod.Open(tree); err == nil {
		roots = append(roots, tr.Dir)
		if k, err := filepath.EvalSymlinks(filepath.Join(tr.Dir, "kernel")); err == nil {
			roots = append(roots, k)
		}
	}
	for _, r := range roots {
		if rel, err := filepath.Rel(r, o); err == nil && filepath.IsLocal(rel) {
			return kmod.ReadsFile(filepath.Base(o))
		}
	}
	return false // outside the tree
}

// removeStaleTemporaries removes the temporary files (.NAME.N.tmp) that
// runs killed while they wrote out left beside it (atomicfile.RemoveStale:
// not those of a run still writing it), and says so.
func removeStaleTemporaries(stderr io.Writer, cmd, out string) {
	for _, p := range atomicfile.RemoveStale(out) {
		fmt.Fprintf(stderr, "hostbuild %s: removed %s beside %s, left by a run that was killed while writing it\n", cmd, filepath.Base(p), out)
	}
}

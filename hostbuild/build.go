package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
	"github.com/katana-tee/snpboot/hostbuild/internal/kmod"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/shared/filekind"
)

func init() {
	register(command{name: "build", summary: "pack the initrd, format the cmdline and write the manifest in one step", run: runBuild})
}

// Names of the files build writes into its output folder.
const (
	buildInitrd   = "initrd.img"
	buildCmdline  = "cmdline"
	buildManifest = "manifest.json"
)

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pf := addPackFlags(fs)
	cf := addCmdlineFlags(fs)
	kernel := fs.String("kernel", "", "the kernel `file` QEMU boots (-kernel), measured (required)")
	ovmf := fs.String("ovmf", "", "the OVMF `firmware` (AmdSevX64 build with SNP_KERNEL_HASHES), measured (required)")
	vcpus := fs.String("vcpus", "1", "comma-separated vCPU `counts` the manifest allows")
	vcpuTypes := fs.String("vcpu-type", "EPYC-v4", "comma-separated vCPU `types` the manifest allows")
	features := fs.String("guest-features", "0x1", "SEV_FEATURES `value` of the VMSAs")
	policy := fs.String("policy", "0x30000", "SEV-SNP guest `policy` recorded in the manifest")
	vmm := fs.String("vmm-type", "QEMU", "`VMM` type: QEMU, ec2 or gce")
	outDir := fs.String("o", "", "output `folder`: gets "+buildInitrd+", "+buildCmdline+" and "+buildManifest+" (required)")
	quiet := fs.Bool("q", false, "no progress output (warnings are still printed)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild build --payload KATANA [--kernel-modules DIR] --kernel VMLINUZ --ovmf OVMF.fd
         [--args WORDS] [--env NAME=VALUE]... [--file SRC:DEST]... [--exec SRC[:DEST]]... [--net ...] [--agent ...]
         [--vcpus 1,2] [--vcpu-type EPYC-v4] -o OUTDIR

Does pack, cmdline and manifest in one step, so that the three always agree:
  OUTDIR/`+buildInitrd+`    the initrd (as hostbuild pack)
  OUTDIR/`+buildCmdline+`       the exact measured cmdline (no trailing newline), formatted by
                      the same code the init parses it with (as hostbuild cmdline)
  OUTDIR/`+buildManifest+` component hashes, cmdline and expected measurements (as
                      hostbuild manifest), with the payload's, init's, --file and --exec files' hashes
The three files are written to a temporary folder in OUTDIR and renamed into
place only when all exist and the payload and init the manifest records are
the ones packed, old manifest removed first and new manifest last: a failed
build leaves the previous files as they were; one killed during those
renames (a few system calls) can leave OUTDIR without a manifest, never with
one that does not match the others. One build at a time writes to an
OUTDIR: a second is refused while the first runs.

Exit status: 0 written; 1 an input cannot be used (missing, unreadable, not
a static x86-64 ELF, an init that is not a Go program, an OVMF without
SNP_KERNEL_HASHES, a kernel of another release than the modules) or a step
failed, the previous files kept; 2 usage error
(flags, settings the init would refuse).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageFail := usageErrorf(stderr, "build")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q (Katana's arguments go in --args)", fs.Arg(0))
	}
	if m := missingFlags([]string{"--payload", "--kernel", "--ovmf", "-o"}, pf.o.Payload, *kernel, *ovmf, *outDir); m != "" {
		return usageFail("%s", m)
	}
	if *outDir == "-" {
		fmt.Fprintln(stderr, "hostbuild build: -o -: build writes three files into a folder, not to standard output; give a folder (./- for one named -)")
		return exitFail
	}
	*outDir = outFolder(*outDir)
	line, err := cf.format()
	if err != nil {
		return usageFail("%v", err)
	}
	// Shown with -q too: -q silences progress, not warnings.
	warnMissingDefaults(stderr, "build", line)
	pf.warnNoModules(stderr, "build")
	po, err := pf.options()
	if err != nil {
		return usageFail("%v", err)
	}
	pf.noteEnvEpoch(stderr, "build", po)
	ins := append(pf.inputs(), input{flag: "--kernel", path: *kernel}, input{flag: "--ovmf", path: *ovmf})
	if err := checkInputs(ins...); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	if err := checkBuildTargets(*outDir, *kernel, po.KernelModules, ins); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	g := manifest.GenerateOptions{OVMF: *ovmf, Kernel: *kernel, Cmdline: line, Payload: po.Payload, Init: po.Init,
		VMMType: *vmm, SourceDateEpoch: po.SourceDateEpoch, ToolVersion: version}
	if g.VCPUs, g.VCPUTypes, err = parseMatrix(*vcpus, *vcpuTypes); err != nil {
		return usageFail("%v", err)
	}
	warnUnverifiable(stderr, "build", g.VCPUTypes)
	warnAlike(stderr, "build", g.VMMType, g.VCPUTypes)
	if g.GuestFeatures, err = parseGuestFeatures(*features); err != nil {
		return usageFail("%v", err)
	}
	if g.GuestPolicy, err = parsePolicy(*policy); err != nil {
		return usageFail("%v", err)
	}
	warnDebugPolicy(stderr, "build", g.GuestPolicy)
	// Everything Generate checks without the new initrd, the OVMF image
	// included, is checked before the output folder is touched: a usage
	// error must not cost the previous build.
	g.Initrd = filepath.Join(*outDir, buildInitrd) // not read by Check
	if err := g.Check(); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return generateExit(err)
	}
	// The manifest records the init's Go build info: an init without it
	// (not a Go program) would fail only after packing and measuring.
	if _, err := manifest.ReadBuildInfo(po.Init); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: --init: %v\n", err)
		return exitFail
	}
	logf := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(stderr, "hostbuild build: "+format+"\n", a...)
		}
	}
	made := missingFolders(*outDir)
	if err := makeOutFolder(*outDir); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	// The new files are written into a temporary folder beside the old ones
	// and renamed over them only when all three exist, manifest last, so a
	// failure at any step leaves the previous build as it was.
	// A build killed (SIGKILL, OOM) before it renames leaves its folder.
	// Each build holds a lock on its folder while it runs; the folders
	// whose lock nobody holds are removed here, not those of a build
	// running beside this one (in another container or on another host
	// sharing the folder too: the lock is the kernel's, not a PID).
	unlockOut, err := lockOutDir(*outDir)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	defer unlockOut()
	// A failed build leaves nothing: not the folders it made for -o
	// (removed while the lock is held: a build refused by it leaves
	// them to the one that holds it).
	defer func() {
		if code != exitOK {
			for _, d := range made {
				if os.Remove(d) != nil { // not empty, or gone
					break
				}
			}
		}
	}()
	removeStaleBuildDirs(*outDir, logf)
	tmp, err := os.MkdirTemp(*outDir, buildTmpPrefix+"*.tmp")
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(tmp)
	unlock, err := lockBuildDir(tmp)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	defer unlock()

	m, code := buildInto(ctx, tmp, *outDir, *kernel, po, line, g, *quiet, logf, stderr)
	if code != exitOK {
		return code
	}

	// The last moment to stop: an interruption that came while the
	// initrd was checked is not ignored.
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v; the files in %s are as they were\n", context.Cause(ctx), *outDir)
		return exitFail
	}
	mpath := filepath.Join(*outDir, buildManifest)
	if err := moveOutputs(tmp, *outDir); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return exitFail
	}
	atomicfile.SyncDir(*outDir)
	// A folder made for -o is durable once the folder holding it is
	// synced too (deepest first, as made lists them).
	for _, d := range made {
		atomicfile.SyncDir(atomicfile.Dir(d))
	}
	for _, e := range m.Measurements {
		fmt.Fprintf(stdout, "%s  vcpus=%d vcpu-type=%s\n", e.Measurement, e.VCPUs, e.VCPUType)
	}
	logf("wrote %s, %s, %s", filepath.Join(*outDir, buildInitrd), filepath.Join(*outDir, buildCmdline), mpath)
	return exitOK
}

// checkBuildTargets checks, before any work, the three output paths in
// outDir (none of them an input, a folder or otherwise unwritable) and the
// kernel: a bzImage, of the modules' release when modules are packed.
func checkBuildTargets(outDir, kernel, modules string, ins []input) error {
	for _, name := range []string{buildInitrd, buildCmdline, buildManifest} {
		err := checkOutput("output", filepath.Join(outDir, name), ins...)
		if err == nil {
			err = atomicfile.CheckPath(filepath.Join(outDir, name))
		}
		if err != nil {
			return err
		}
	}
	if err := checkBzImage(kernel); err != nil {
		return fmt.Errorf("--kernel %s: %w", kernel, err)
	}
	if modules != "" {
		// The folder's name is the modules' release: pack refuses a
		// module whose vermagic names another.
		tree, err := kmod.Open(modules)
		if err == nil {
			err = checkKernelRelease(kernel, "--kernel-modules "+modules, tree.Release)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// makeOutFolder makes -o's folder (and those above it) and checks that it
// can be written to, before any work: the temporary folder in it would
// fail only after the checks, naming itself.
func makeOutFolder(outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		if st, serr := os.Stat(outDir); serr == nil && !st.IsDir() {
			return fmt.Errorf("-o %s is %s: give a folder (build writes %s, %s and %s into it)", outDir, filekind.Describe(st.Mode()), buildInitrd, buildCmdline, buildManifest)
		}
		return fmt.Errorf("-o %s: cannot create the output folder (%v): give a folder you can write to", outDir, withoutPath(err))
	}
	if err := unix.Access(outDir, unix.W_OK); err != nil {
		return fmt.Errorf("-o %s: the output folder cannot be written to (%w): give a folder you can write to", outDir, err)
	}
	return nil
}

// buildInto writes the build's three files into tmp, a temporary folder
// in outDir: the initrd packed, the cmdline, and the manifest measured
// from the packed initrd, once the kernel it records is checked again (a
// bzImage, from the bytes measured) and the payload and init it records
// to be the ones packed (the OVMF it records is only warned of). It
// reports a failure on stderr and returns its exit status.
func buildInto(ctx context.Context, tmp, outDir, kernel string, po initrd.Options, line string, g manifest.GenerateOptions, quiet bool, logf func(string, ...any), stderr io.Writer) (*manifest.Manifest, int) {
	po.Output = filepath.Join(tmp, buildInitrd)
	if !quiet {
		po.Log = prefixWriter{stderr, "hostbuild build: pack: "}
	}
	res, err := initrd.Pack(ctx, po)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v%s\n", err, ifInterrupted(err, "the files in "+outDir+" are as they were"))
		return nil, exitFail
	}
	warnDroppedModules(stderr, "build", res)
	logf("initrd: %d bytes, sha256 %s", res.Size, hex.EncodeToString(res.SHA256[:]))
	buildPacked()

	if err := atomicfile.WriteFile(filepath.Join(tmp, buildCmdline), []byte(line), 0o644); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return nil, exitFail
	}
	logf("cmdline: %s", line)

	g.Initrd = po.Output
	logf("measuring %d vCPU count(s) x %d vCPU type(s)", len(g.VCPUs), len(g.VCPUTypes))
	m, in, err := manifest.GenerateInputs(ctx, g)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v%s\n", err, ifInterrupted(err, "the files in "+outDir+" are as they were"))
		return nil, generateExit(err)
	}
	manifestGenerated()
	// The kernel and the OVMF the manifest records are the ones the
	// measurement read, not necessarily those checked before packing (a
	// file renamed over a path meanwhile): checked, and warned of, again
	// from those bytes.
	k := measuredKernel(in)
	if err := k.checkBzImage(); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: --kernel %s: %v (did it change while the build read it? the files in %s are as they were)\n", kernel, err, outDir)
		return nil, exitFail
	}
	warnOVMFImage(stderr, "build", g.OVMF, in.OVMFImage)
	k.warnDebugSwap(stderr, "build", g.GuestFeatures)
	// The manifest hashed --payload and --init by their paths, after
	// packing: if either changed in between (a compiler writing it), it
	// would name a payload the guest does not run.
	if err := checkContents(ctx, po.Output, po.Payload, po.Init, k, m, func(w string) { fmt.Fprintf(stderr, "hostbuild build: warning: %s\n", w) }); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "hostbuild build: %v; the files in %s are as they were\n", err, outDir)
		} else {
			fmt.Fprintf(stderr, "hostbuild build: %v (did an input change while the build read it? the files in %s are as they were)\n", err, outDir)
		}
		return nil, exitFail
	}
	if err := manifest.WriteFile(filepath.Join(tmp, buildManifest), m); err != nil {
		fmt.Fprintf(stderr, "hostbuild build: %v\n", err)
		return nil, exitFail
	}
	return m, exitOK
}

// outFolder is -o spelled so that filepath.Join, which build uses for
// every path in it, means what the kernel (and os.MkdirAll) does. They
// differ only at a ".." after a folder name ("a/../launch"): the kernel
// goes through a, so MkdirAll made a folder a that no cleanup knew of, and
// a symlink's ".." is its target's parent, not the folder that holds it.
// The part of such a path that exists is resolved (filepath.EvalSymlinks
// reads ".." as the kernel does); the rest is folders build makes, real
// ones, whose ".." is the lexical one. Other paths are left as given.
func outFolder(dir string) string {
	elems := strings.Split(dir, "/")
	inner, named := false, false
	for _, e := range elems {
		switch e {
		case "", ".":
		case "..":
			inner = inner || named
		default:
			named = true
		}
	}
	if !inner {
		return dir
	}
	exist := 0
	for i := 1; i <= len(elems); i++ {
		if p := strings.Join(elems[:i], "/"); p != "" {
			if _, err := os.Stat(p); err != nil {
				break
			}
		}
		exist = i
	}
	head := strings.Join(elems[:exist], "/")
	switch {
	case head == "" && strings.HasPrefix(dir, "/"):
		head = "/"
	case head == "":
		head = "."
	}
	r, err := filepath.EvalSymlinks(head)
	if err != nil {
		return dir // MkdirAll says what is wrong with it
	}
	return filepath.Join(append([]string{r}, elems[exist:]...)...)
}

// missingFolders returns dir and its parents that do not exist yet, the
// deepest first: the folders os.MkdirAll(dir) makes.
func missingFolders(dir string) []string {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			return out
		}
		out = append(out, d)
		if filepath.Dir(d) == d {
			return out
		}
	}
}

// buildRename is os.Rename for moveOutputs (a test seam: a rename that
// fails half-way).
var buildRename = os.Rename

// moveOutputs moves the new initrd, cmdline and manifest from tmp into
// outDir, keeping the previous ones until all three are in: should a
// rename fail, the previous files are put back. The old manifest leaves
// first and the new one comes in last, so that a build killed half-way
// leaves no manifest that does not match the other files (only a killed
// build can leave a folder without its manifest: build again).
func moveOutputs(tmp, outDir string) (err error) {
	names := []string{buildInitrd, buildCmdline, buildManifest}
	// A folder (or another non-file) where an output goes is refused
	// before anything moves: it would not be replaced, or would be.
	for _, name := range names {
		p := filepath.Join(outDir, name)
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
			kind := "folder"
			if !fi.IsDir() {
				kind = fmt.Sprintf("special file (%v)", fi.Mode().Type())
			}
			return fmt.Errorf("%s is a %s, not a file: move it away, and build again (nothing was changed)", p, kind)
		}
	}
	var undo []func() error
	restoreManifest := func() error { return nil }
	defer func() {
		if err == nil {
			return
		}
		var failed []string
		for i := len(undo) - 1; i >= 0; i-- {
			if e := undo[i](); e != nil {
				failed = append(failed, e.Error())
			}
		}
		// The previous manifest goes back only beside the files it
		// describes.
		if len(failed) == 0 {
			if e := restoreManifest(); e != nil {
				failed = append(failed, e.Error())
			}
		}
		if len(failed) > 0 {
			err = fmt.Errorf("%w; putting the previous files back failed too (%s): %s is not as it was and has no manifest, build again", err, strings.Join(failed, "; "), outDir)
		} else {
			err = fmt.Errorf("%w (the previous files in %s are as they were)", err, outDir)
		}
	}()
	// The old manifest leaves first (renamed aside into tmp, the same
	// file system) and the new one comes in last.
	mpath, oldManifest := filepath.Join(outDir, buildManifest), filepath.Join(tmp, buildManifest+".previous")
	if err := buildRename(mpath, oldManifest); err == nil {
		restoreManifest = func() error { return buildRename(oldManifest, mpath) }
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("moving the previous manifest aside: %w", err)
	}
	for _, name := range names {
		src, dst, prev := filepath.Join(tmp, name), filepath.Join(outDir, name), filepath.Join(tmp, name+".previous")
		_, statErr := os.Lstat(dst)
		existed := statErr == nil && name != buildManifest
		// A previous file is kept as a hard link, so the new one
		// replaces it at once; where that cannot be (no hard links, or
		// fs.protected_hardlinks refusing another user's file), it is
		// renamed aside first (a kill between the two renames leaves
		// the folder without it: build again).
		if existed && os.Link(dst, prev) != nil {
			if err := buildRename(dst, prev); err != nil {
				return fmt.Errorf("moving the previous %s aside: %w", name, err)
			}
		}
		if err := buildRename(src, dst); err != nil {
			if existed {
				undo = append(undo, func() error { return buildRename(prev, dst) })
			}
			return err
		}
		if existed {
			undo = append(undo, func() error { return buildRename(prev, dst) })
		} else {
			undo = append(undo, func() error { return os.Remove(dst) })
		}
	}
	return nil
}

// buildPacked runs once the initrd is packed, before the manifest hashes
// the inputs: a test seam (an input rewritten in between).
var buildPacked = func() {}

// buildTmpPrefix starts the name of a build's temporary folder in OUTDIR.
const buildTmpPrefix = ".build-"

// buildLockMarker is created in a build's temporary folder once the build
// holds the lock on the folder: a folder without it is one being set up (or
// one of an older version), and is left alone.
const buildLockMarker = ".locked"

// flockDir takes an exclusive lock on the folder dir itself (flock,
// dropped by the kernel when the process dies) without waiting; closing
// the returned folder releases it. Held by another process, the error
// wraps syscall.EWOULDBLOCK.
func flockDir(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return d, nil
}

// lockBuildDir locks a build's temporary folder (flockDir) and then marks
// it as locked. unlock releases it.
func lockBuildDir(dir string) (unlock func(), err error) {
	d, err := flockDir(dir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, buildLockMarker), nil, 0o644); err != nil {
		d.Close()
		return nil, err
	}
	return func() { d.Close() }, nil
}

// lockOutDir locks the output folder itself for the whole build
// (flockDir): two builds renaming their files into one folder at once
// could leave one's manifest beside the other's initrd, both exiting 0.
func lockOutDir(dir string) (unlock func(), err error) {
	d, err := flockDir(dir)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("another hostbuild build is writing to %s: wait for it to end, or give another -o", dir)
	}
	if err != nil {
		return nil, err
	}
	return func() { d.Close() }, nil
}

// removeStaleBuildDirs removes the temporary folders in dir of builds that
// no longer run: marked as locked, and nobody holds the lock. It runs with
// dir's own lock held (lockOutDir), which every build holds before it makes
// its folder, so an unmarked folder is no build of this version setting up:
// it is that of a build killed before marking it, empty, removed too when
// nobody holds its lock and it is still empty (a build of an older version,
// which did not lock dir, setting one up then fails, as it would have had
// the folder never been there: it cannot lock or mark it).
func removeStaleBuildDirs(dir string, logf func(string, ...any)) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, buildTmpPrefix) || !strings.HasSuffix(name, ".tmp") {
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(filepath.Join(p, buildLockMarker)); err != nil {
			// os.Remove removes only an empty folder.
			if d, err := flockDir(p); err == nil {
				if os.Remove(p) == nil {
					logf("removed %s, left empty by a build that was killed as it started", name)
				}
				d.Close()
			}
			continue
		}
		if d, err := flockDir(p); err == nil {
			if err := os.RemoveAll(p); err == nil {
				logf("removed %s, left by a build that was killed", name)
			}
			d.Close()
		}
	}
}

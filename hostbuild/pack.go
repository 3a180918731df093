package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
	"github.com/katana-tee/snpboot/hostbuild/internal/kmod"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

func init() {
	register(command{name: "pack", summary: "build the reproducible, measured initrd (init + Katana + modules)", run: runPack})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// fileList is --file, parsed as given.
type fileList []initrd.File

func (l *fileList) String() string { return l.join(false) }

// join writes the --file (or, with exec, the --exec) values of l.
func (l *fileList) join(exec bool) string {
	var s []string
	for _, f := range *l {
		if f.Exec == exec {
			s = append(s, f.Source+":"+f.Dest)
		}
	}
	return strings.Join(s, ",")
}

func (l *fileList) Set(v string) error {
	f, err := initrd.ParseFile(v)
	if err != nil {
		return err
	}
	*l = append(*l, f)
	return nil
}

// execList is --exec, parsed as given, into the same list as --file.
type execList struct{ l *fileList }

func (e execList) String() string {
	if e.l == nil {
		return ""
	}
	return e.l.join(true)
}

func (e execList) Set(v string) error {
	f, err := initrd.ParseExec(v)
	if err != nil {
		return err
	}
	*e.l = append(*e.l, f)
	return nil
}

func runPack(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pf := addPackFlags(fs)
	fs.StringVar(&pf.o.Output, "o", "", "output `file`, written atomically (required)")
	quiet := fs.Bool("q", false, "no progress output (warnings are still printed)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild pack --payload KATANA [--kernel-modules DIR] [--module NAME]...
         [--file SRC:DEST]... [--exec SRC[:DEST]]... -o INITRD

Builds the initrd as a newc cpio in one compressed stream: /init, the kernel
modules and their dependencies (resolved from each module's .modinfo; with a
modules.dep for the subset and an ordered load list), the layout of
initrd-layout/, and a content list with the SHA-256 of every file that the init
checks before it runs anything. The payload follows in its own uncompressed
archive as /bin/katana.zst, cut into zstd frames listed with their SHA-256 in
etc/guestinit/payload.frames: the init checks each frame, decodes it and writes
/bin/katana, on every CPU (--payload-encoding inline puts /bin/katana in the
main archive instead, for the kernel to unpack). The same inputs give the same
bytes on any machine. The payload must be a static x86-64 ELF: the initrd has
no libc. The operator's own files for Katana (chain configuration, genesis)
go under /etc/katana/ with --file, and its sidecars (static executables it
finds on PATH) in /usr/local/bin/ with --exec, in the content list like the
rest.

Exit status: 0 written; 1 an input cannot be used (missing, not a static
x86-64 ELF, unknown module) or the initrd cannot be written; 2 usage error.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hostbuild pack: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if m := missingFlags([]string{"--payload", "-o"}, pf.o.Payload, pf.o.Output); m != "" {
		return usageErrorf(stderr, "pack")("%s", m)
	}
	o, err := pf.options()
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild pack: %v\n", err)
		return exitUsage
	}
	if err := checkInputs(pf.inputs()...); err != nil {
		fmt.Fprintf(stderr, "hostbuild pack: %v\n", err)
		return exitFail
	}
	// The output's folder is checked before the payload is read and
	// encoded, which takes seconds.
	err = checkOutput("-o", pf.o.Output, pf.inputs()...)
	if err == nil {
		err = checkOutputFolder("-o", pf.o.Output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild pack: %v\n", err)
		return exitFail
	}
	// Shown with -q too: -q silences progress, not warnings.
	pf.warnNoModules(stderr, "pack")
	pf.noteEnvEpoch(stderr, "pack", o)
	if !*quiet {
		o.Log = prefixWriter{stderr, "hostbuild pack: "}
	}
	removeStaleTemporaries(stderr, "pack", o.Output)
	res, err := initrd.Pack(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild pack: %v%s\n", err, ifInterrupted(err, o.Output+" was not written (left as it was)"))
		return exitFail
	}
	warnDroppedModules(stderr, "pack", res)
	fmt.Fprintf(stdout, "%s  %s\n", hex.EncodeToString(res.SHA256[:]), res.Output)
	if !*quiet {
		fmt.Fprintf(stderr, "hostbuild pack: wrote %s: %d bytes, %d entries, %s, payload %s\n", res.Output, res.Size, res.Entries, res.Compression, res.PayloadEncoding)
	}
	return exitOK
}

// defaultInit is where 'make build' puts the init.
const defaultInit = "out/guestinit"

// initDefault says whether --init is the default path.
func (p *packFlags) initDefault() bool { return p.o.Init == defaultInit }

// packFlags are the flags of pack, shared with build.
type packFlags struct {
	o       initrd.Options
	modules stringList
	files   fileList
	epoch   string
	// epochFromEnv: options took the epoch from $SOURCE_DATE_EPOCH.
	epochFromEnv bool
}

func addPackFlags(fs *flag.FlagSet) *packFlags {
	p := &packFlags{}
	fs.StringVar(&p.o.Init, "init", defaultInit, "the guest `init` binary (static x86-64 ELF), packed at /init")
	fs.StringVar(&p.o.Payload, "payload", "", "the Katana `binary` (static x86-64 ELF), packed at /bin/katana (required)")
	fs.StringVar(&p.o.KernelModules, "kernel-modules", "", "a lib/modules/<release> `folder`, or the root of an extracted kernel package; without it no module is packed (a warning says what the guest then lacks)")
	fs.Var(&p.modules, "module", "kernel module `name` to pack with its dependencies, from --kernel-modules (repeatable; default with --kernel-modules: "+strings.Join(kmod.DefaultModules, ", ")+", where the kernel has them as modules; the names given replace that list: repeat the defaults to add to it)")
	fs.StringVar(&p.o.CABundle, "ca-bundle", "", "optional PEM CA bundle `file`, packed at /etc/ssl/certs/ca-certificates.crt")
	fs.Var(&p.files, "file", "an operator's file for Katana, `SOURCE:DEST` with DEST an absolute path under /etc/katana/ (e.g. chain/config.toml:/etc/katana/chain/config.toml, then katana.args=\"--chain /etc/katana/chain\"); packed with mode 0644, measured and checked by the init like every file, and readable by anyone who can read the initrd: never a secret (repeatable)")
	fs.Var(execList{&p.files}, "exec", "an executable for Katana to run (its sidecars, which it looks for on PATH: paymaster-service, vrf-server), `SOURCE[:DEST]`, a static x86-64 ELF packed as DEST /usr/local/bin/NAME (default NAME: SOURCE's base name) with mode 0755, on Katana's PATH, measured and checked by the init like every file (repeatable)")
	fs.StringVar(&p.o.Compression, "compress", initrd.DefaultCompression, "compression of the main archive: "+strings.Join(initrd.Compressions, ", "))
	fs.StringVar(&p.o.PayloadEncoding, "payload-encoding", initrd.DefaultPayloadEncoding,
		"`how` the payload is stored: frames (independent zstd frames after the main archive, checked and decoded by the init on every CPU: fastest boot) or inline (at /bin/katana in the main archive, unpacked by the kernel)")
	fs.StringVar(&p.epoch, "source-date-epoch", "", "mtime of every entry, in `seconds` since 1970 (default: $SOURCE_DATE_EPOCH, else 0)")
	return p
}

func (p *packFlags) options() (initrd.Options, error) {
	o := p.o
	if len(p.modules) > 0 {
		o.Modules = p.modules
	}
	o.Files = p.files
	epoch, what := p.epoch, "--source-date-epoch"
	if epoch == "" {
		epoch, what = os.Getenv("SOURCE_DATE_EPOCH"), "$SOURCE_DATE_EPOCH"
		p.epochFromEnv = epoch != ""
	}
	if epoch != "" {
		// Range-checked here, with the syntax, so that both are usage
		// errors: cpio mtimes are 32-bit unsigned seconds.
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return o, fmt.Errorf("%s %q is not a whole number of seconds", what, epoch)
		}
		if n < 0 || n > math.MaxUint32 {
			return o, fmt.Errorf("%s %d is out of range: cpio mtimes are 32-bit unsigned seconds, 0 to %d", what, n, uint32(math.MaxUint32))
		}
		o.SourceDateEpoch = n
	}
	// The settings Pack would refuse are usage errors (exit 2, as -h
	// says), found before any input is read.
	return o, o.CheckSettings()
}

// inputs are the files and folder the pack flags name, for checkInputs.
func (p *packFlags) inputs() []input {
	init := input{flag: "--init", path: p.o.Init}
	if p.initDefault() {
		init.hint = "it is the default --init: 'make build' builds it, or pass --init"
	}
	ins := []input{
		init,
		{flag: "--payload", path: p.o.Payload},
		{flag: "--ca-bundle", path: p.o.CABundle},
		{flag: "--kernel-modules", path: p.o.KernelModules, folder: true, modTree: true},
	}
	for _, f := range p.files {
		ins = append(ins, input{flag: f.Flag(), path: f.Source})
	}
	return ins
}

// warnNoModules warns, when no --kernel-modules is given, that the initrd
// gets no modules at all. A kernel that builds virtio_net, vsock or the
// ACPI button driver as modules, as Debian's does, then boots a guest with
// no eth0, no attestation agent and no graceful power-off: it boots, so
// nothing else would tell. A warning, not an error: a kernel with those
// drivers built in needs no modules.
func (p *packFlags) warnNoModules(stderr io.Writer, cmd string) {
	if p.o.KernelModules != "" {
		return
	}
	fmt.Fprintf(stderr, "hostbuild %s: warning: no --kernel-modules: the initrd holds no kernel module; unless the kernel has virtio_net, vsock and the ACPI button driver built in (Debian's has them as modules), the guest gets no eth0, no attestation agent and no graceful power-off; pass --kernel-modules DIR (lib/modules/<release>, or the root of the extracted kernel package) to pack the default modules (listed under --module in -h)\n", cmd)
}

// warnDroppedModules warns when --module left out default modules that
// the kernel has as modules: --module replaces the default list, so
// "--module qemu_fw_cfg" alone packs a guest with no eth0 (a boot error),
// no attestation agent and no graceful power-off. The warning gives the
// flags that keep them.
func warnDroppedModules(stderr io.Writer, cmd string, res *initrd.Result) {
	for _, n := range res.NamedAbsent {
		fmt.Fprintf(stderr, "hostbuild %s: warning: --module %s: kernel %s does not have it; skipped, as it is from the default list\n", cmd, n, res.Release)
	}
	for _, sd := range res.SoftDeps {
		also := ""
		if len(sd.Candidates) > 0 {
			also = " (candidates by name: " + strings.Join(printable.QuoteAll(sd.Candidates), ", ") + ")"
		}
		// sd.Name is the module file's text (.modinfo): quoted when not
		// printable, as a terminal would run its control sequences.
		fmt.Fprintf(stderr, "hostbuild %s: warning: module %s has a soft dependency %s (.modinfo softdep=) that nothing packed provides: modprobe would load it, the guest has no modprobe; if %s needs it (its loading fails at boot), add the module that provides it with --module%s\n",
			cmd, sd.Module, printable.Quote(sd.Name), sd.Module, also)
	}
	if res.NoSEVGuest {
		fmt.Fprintf(stderr, "hostbuild %s: warning: kernel %s has no sev-guest driver (neither a module in --kernel-modules nor built in): the guest gets no SEV-SNP attestation device, and its agent answers every request no_snp_device; use a kernel built with CONFIG_SEV_GUEST (Debian's has it as a module)\n", cmd, res.Release)
	}
	dropped := res.Dropped
	if len(dropped) == 0 {
		return
	}
	fmt.Fprintf(stderr, "hostbuild %s: warning: --module replaces the default modules, and these were not packed: %s; without them the guest may get no eth0, no attestation agent or no graceful power-off. To add modules to the defaults, name these too: --module %s\n",
		cmd, strings.Join(dropped, " "), strings.Join(dropped, " --module "))
}

// noteEnvEpoch warns, -q or not, that the entries' mtime came from
// $SOURCE_DATE_EPOCH: it is measured, and some environments set it
// without being asked (nix-shell, CI systems, where -q is common), which
// gives another measurement than the same inputs packed elsewhere.
func (p *packFlags) noteEnvEpoch(w io.Writer, cmd string, o initrd.Options) {
	if p.epochFromEnv {
		fmt.Fprintf(w, "hostbuild %s: warning: every entry's mtime is %d, from $SOURCE_DATE_EPOCH in the environment (it is measured; --source-date-epoch sets it explicitly)\n", cmd, o.SourceDateEpoch)
	}
}

// prefixWriter prefixes each Write (one progress line) with a tag.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

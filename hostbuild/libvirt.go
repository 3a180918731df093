package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/launch"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

func init() {
	register(command{name: "libvirt", summary: "write a libvirt domain XML for the same SEV-SNP launch as 'run'", run: runLibvirt})
}

const libvirtUsage = `Usage: hostbuild libvirt --manifest FILE --ovmf F --kernel K --initrd I --cid N
         [--vcpus N] [--vcpu-type T] [--memory SIZE] [--forward [HOSTADDR:]HOSTPORT:GUESTPORT]...
         [--serial-log FILE] [--name NAME] [--qemu /path/to/qemu-system-x86_64] [-o FILE]

Writes a libvirt domain (XML) for the launch 'hostbuild run' would make with
the same flags: direct kernel boot of the manifest's kernel, initrd and exact
cmdline; SEV-SNP launch security with kernel hashes, the manifest's guest
policy, cbitpos 51 and reduced-phys-bits 1; the vCPU type as an exact CPU
model; a vsock device with the CID; passt user networking with the port
forwards and katana.net's eth0 address (passt cannot be given katana.net's
gateway or a resolver in eth0's subnet, such as the default 10.0.2.3: a
warning says so); the serial console to a file; every lifecycle event destroys the
domain (as -no-reboot). The same checks as 'run' come first (file hashes,
vCPU matrix, recomputed launch digest). Needs libvirt 10.5 or newer
(launchSecurity type='sev-snp') whose CPU map knows the vCPU type: versioned
names such as EPYC-v4 came later than 10.5 ('virsh cpu-models x86_64' lists
them). Paths are written absolute; one through /proc (/dev/stdin,
/dev/fd/N) is refused, as it names another file in libvirt's QEMU.

libvirt cannot be handed the files that were checked: it opens the OVMF,
kernel and initrd again by path each time the domain starts, following a
symlink on the path as it is then (a /vmlinuz that a kernel upgrade
points at the new kernel). The check holds only while those paths lead
to the same files, unchanged: keep them immutable (e.g. owned by root,
read-only, in a folder only root can write to), and name the files
themselves rather than symlinks that something else moves.

Stop the domain with 'virsh shutdown NAME' (the ACPI power button: a
graceful stop) and give it the cmdline's katana.stop_timeout plus 30 s (at
least 60 s) before 'virsh destroy NAME'; libvirt-guests' SHUTDOWN_TIMEOUT
must allow as much, or a host shutdown cuts Katana's own short. The
summary on stderr names the figure.

A value XML 1.0 cannot carry (a control character other than TAB, LF and
CR, or bytes that are not UTF-8) in the manifest's cmdline, a path or any
other field is refused, naming the field and the byte offset: libvirt would
read back other bytes than 'run' passes to QEMU. So is a CR anywhere, and
a TAB or LF in the serial log path: libvirt saves the domain with them
raw, and its saved copy reads them back changed (CR as LF, the others as
spaces) once its daemon restarts.

Exit status: 0 written; 1 error; 2 usage; 3 refused (does not match the
manifest, or a value libvirt would not keep as it is).

Flags:
`

func runLibvirt(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("libvirt", libvirtUsage, stderr)
	lf := addLaunchFlags(fs, launchHelp{
		ovmf:      "OVMF firmware `file` (required)",
		memory:    "guest memory `size`: MiB, or with a suffix M or G (default 2G)",
		cid:       "vsock guest `CID` (3 or more; required)",
		forward:   "forward a host TCP port: `[HOSTADDR:]HOSTPORT:GUESTPORT` (repeatable)",
		serialLog: "serial console `file` (default /var/log/libvirt/qemu/NAME-serial.log)",
		vcpuType:  "vCPU `type`, e.g. EPYC-v4 (default: the manifest's only type)",
	})
	o := &lf.o
	manifestPath := &lf.manifest
	name := fs.String("name", "katana", "libvirt domain `name`")
	out := fs.String("o", "", "write the XML to this `file` (atomically) instead of stdout")
	fs.StringVar(&o.QEMUBinary, "qemu", "/usr/bin/qemu-system-x86_64", "the domain's emulator: an absolute `path` to QEMU 9.1 or newer (Debian 12's /usr/bin one is 7.2, which cannot launch SEV-SNP: bookworm-backports' or your own)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !filepath.IsAbs(o.QEMUBinary) {
		return usageErrorf(stderr, "libvirt")("--qemu %s: want an absolute path (libvirt runs it by path)", o.QEMUBinary)
	}
	usageFail := usageErrorf(stderr, "libvirt")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	cid := ""
	if given(fs, "cid") {
		cid = "set" // --cid 0 is refused by check, as reserved
	}
	if m := missingFlags([]string{"--manifest", "--ovmf", "--kernel", "--initrd", "--cid"}, *manifestPath, o.OVMF, o.Kernel, o.Initrd, cid); m != "" {
		return usageFail("%s", m)
	}
	if code, ok := lf.check(usageFail); !ok {
		return code
	}
	if err := launch.CheckDomainName(*name); err != nil {
		// Before the default serial log is named after it and before
		// any file is hashed.
		fmt.Fprintf(stderr, "hostbuild %v\n", err)
		return exitUsage
	}
	if o.SerialLog == "" {
		o.SerialLog = filepath.Join("/var/log/libvirt/qemu", *name+"-serial.log")
	}
	m, err := manifest.Load(*manifestPath)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild libvirt: %v\n", err)
		return exitFail
	}
	o.Manifest, o.ManifestPath = m, *manifestPath
	if pol, err := m.GuestPolicyValue(); err == nil {
		warnDebugPolicy(stderr, "libvirt", pol)
	}
	// libvirt opens the serial log at its path when the domain starts.
	err = checkOutput("-o", *out, launchInputs(*o)...)
	if err == nil {
		err = checkOutputFolder("-o", *out)
	}
	if err == nil {
		err = checkOpenedOutput("--serial-log", o.SerialLog, launchInputs(*o)...)
	}
	if err == nil && *out != "" {
		a, aerr := filepath.Abs(*out)
		b, berr := filepath.Abs(o.SerialLog)
		same := aerr == nil && berr == nil && a == b
		if oi, e1 := os.Lstat(*out); e1 == nil {
			if si, e2 := os.Stat(o.SerialLog); e2 == nil && os.SameFile(oi, si) {
				same = true
			}
		}
		if same {
			err = fmt.Errorf("-o %s is also the --serial-log: the domain's serial console, opened when it starts, would overwrite the XML; give two paths", *out)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild libvirt: %v\n", err)
		return exitFail
	}
	const notBzImage = "the domain will not boot it as a kernel (--kernel and --initrd swapped?)"
	launchPreparing()
	plan, err := launch.Prepare(ctx, *o)
	if err != nil {
		// No domain: the file at the path is what the refusal is about.
		warnNotBzImage(stderr, "libvirt", o.Kernel, notBzImage)
		var nf *launch.NeedFlag
		if errors.As(err, &nf) {
			return usageFail("%v", nf)
		}
		var mm *launch.Mismatch
		if errors.As(err, &mm) {
			// libvirt launches nothing: it refuses to write the domain.
			fmt.Fprintf(stderr, "hostbuild libvirt: %s\n", strings.Replace(err.Error(), "refusing to launch:", "refusing to write the domain:", 1))
			return exitRunRefused
		}
		fmt.Fprintf(stderr, "hostbuild libvirt: %v\n", err)
		return exitFail
	}
	// Of the kernel checked (libvirt opens the path again when the
	// domain starts: the reopenHint below).
	if k, err := readKernelHeadFile(o.Kernel, plan.Kernel()); err == nil {
		k.warnNotBzImage(stderr, "libvirt", notBzImage)
	}
	plan.Close() // libvirt opens the paths itself
	for _, w := range plan.Warnings {
		fmt.Fprintf(stderr, "hostbuild libvirt: warning: %s\n", w)
	}
	if s := plan.QEMU.SNP; s != nil && s.DebugSwap {
		fmt.Fprintf(stderr, "hostbuild libvirt: warning: the manifest was measured with DebugSwap (guest features %s), which this domain does not ask for ('hostbuild run' passes QEMU 10.2+ debug-swap=on; the domain's launchSecurity has no such setting here): the guest's measurement matches the manifest only if this host's libvirt, QEMU or KVM adds DebugSwap by itself\n", m.GuestFeatures)
	}
	b, err := launch.LibvirtXML(plan, *name)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild libvirt: %v\n", err)
		var nx *launch.NotXMLChar
		if errors.As(err, &nx) {
			return exitRunRefused
		}
		return exitUsage
	}
	for _, w := range launch.LibvirtNetWarnings(plan) {
		fmt.Fprintf(stderr, "hostbuild libvirt: warning: %s\n", w)
	}
	stop, _ := stopBudget(m.Cmdline, 0)
	reopenHint := "hostbuild libvirt: libvirt opens the OVMF, kernel and initrd again by path when the domain starts: the files checked here, and any symlink on their paths, must not change (keep them root-owned and read-only)\n"
	stopHint := reopenHint + fmt.Sprintf("hostbuild libvirt: stop it with 'virsh shutdown %s' and allow %v before 'virsh destroy %s' (katana.stop_timeout + 30 s; libvirt-guests' SHUTDOWN_TIMEOUT too)\n", *name, stop, *name)
	if *out == "" {
		stdout.Write(b)
		fmt.Fprint(stderr, stopHint)
		return exitOK
	}
	removeStaleTemporaries(stderr, "libvirt", *out)
	if err := atomicfile.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(stderr, "hostbuild libvirt: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "hostbuild libvirt: wrote %s (%d × %s, expected measurement %s)\n", *out, plan.VCPUs, plan.VCPUType, plan.Expected.Measurement)
	fmt.Fprint(stderr, stopHint)
	return exitOK
}

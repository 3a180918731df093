package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/doctor"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/qemu"
)

func init() {
	register(command{name: "doctor", summary: "check that this host can launch an SEV-SNP guest and that attest can verify it; print each fix", run: runDoctor})
}

const doctorUsage = `Usage: hostbuild doctor [--ovmf F] [--qemu BIN]

Checks what 'hostbuild run' needs for an SEV-SNP launch: /dev/sev and its
SEV-SNP firmware (SNP_PLATFORM_STATUS: API version, the TCB reports carry,
which is what attest --min-tcb compares, and whether reports are signed and
carry the chip ID), kvm_amd's sev_snp parameter, /dev/kvm and that its KVM creates SEV-SNP VMs (Linux
6.11's KVM_X86_SNP_VM, which QEMU 9.1+ asks for), QEMU 9.1 or newer with
the sev-snp-guest object,
an OVMF with the kernel-hashes table (--ovmf), and /dev/vhost-vsock for the
attestation agent; and what 'hostbuild attest' needs: a processor whose
reports it verifies (AMD Milan or Genoa; Turin launches, but attest refuses
its reports). Prints one PASS, FAIL or SKIP line per check, each
failure with its fix. (No memlock limit is needed: an SEV-SNP guest's
private memory is guest_memfd, which is not counted against ulimit -l. A
manifest measured with DebugSwap needs QEMU 10.2 or newer; doctor does not
read the manifest.)

Exit status: 0 every check passed (or was skipped), 1 a check failed,
2 usage error.

Flags:
`

// doctorVMTypes replaces doctor's KVM_CAP_VM_TYPES ioctl in tests (whose
// --root /dev/kvm is not a KVM device); nil is the real one.
var doctorVMTypes func(path string) (uint64, error)

// doctorSNPStatus replaces doctor's SNP_PLATFORM_STATUS ioctl in tests
// (whose --root /dev/sev is not an SEV device); nil is the real one.
var doctorSNPStatus func(path string) (doctor.SNPStatus, error)

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("doctor", doctorUsage, stderr)
	var o doctor.Options
	fs.StringVar(&o.OVMF, "ovmf", "", "OVMF firmware `file` to check for the kernel-hashes table")
	fs.StringVar(&o.QEMU, "qemu", qemu.DefaultBinary, "QEMU `binary`")
	fs.StringVar(&o.Root, "root", "", "prefix for /dev, /sys and /proc (`dir`; for tests)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hostbuild doctor: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	o.VMTypes, o.SNPStatus = doctorVMTypes, doctorSNPStatus
	rs := doctor.Run(ctx, o)
	fails := 0
	var skipped []string
	for _, r := range rs {
		// Details quote /proc, /sys and QEMU's own output.
		fmt.Fprintf(stdout, "%s  %s: %s\n", r.Status, r.Name, printable.Escape(r.Detail))
		switch r.Status {
		case doctor.Fail:
			fails++
			fmt.Fprintf(stdout, "      fix: %s\n", r.Fix)
		case doctor.Skip:
			skipped = append(skipped, r.Name)
		}
	}
	if fails > 0 {
		fmt.Fprintf(stdout, "\n%d of %d checks failed: this host cannot launch an SEV-SNP guest, or attest cannot verify its reports, yet ('hostbuild run --plain' works without SEV).\n", fails, len(rs))
		return exitFail
	}
	if len(skipped) > 0 {
		// A skipped check is not a passed one: no claim rests on it.
		fmt.Fprintf(stdout, "\n%d of %d checks passed, none failed; not checked: %s (see their lines): this host may launch SEV-SNP guests, and attest verify their reports, once those hold too.\n", len(rs)-len(skipped), len(rs), strings.Join(skipped, ", "))
		return exitOK
	}
	fmt.Fprintln(stdout, "\nall checks passed: this host can launch SEV-SNP guests and attest verifies their reports.")
	return exitOK
}

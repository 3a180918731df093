package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SNPQEMUEnv names a qemu-system-x86_64 of version 9.1 or newer (the SEV-SNP
// syntax Build writes) for TestSNPArgvAcceptedByQEMU; .ci/run and make test
// fetch one (qemu/fetch-qemu-snp.sh). SNPQEMUDataEnv is its data folder (-L),
// optional.
const (
	SNPQEMUEnv     = "SNPBOOT_QEMU_SNP"
	SNPQEMUDataEnv = "SNPBOOT_QEMU_SNP_DATA"
)

// TestSNPArgvAcceptedByQEMU runs the SEV-SNP command lines Build makes (the
// golden cases') through a real QEMU 9.1 or newer. This machine cannot
// launch an SEV-SNP guest, so the check is that every option parses: QEMU
// parses the -machine options and creates the sev-snp-guest object with
// its properties before it sets up KVM, so a launch must fail only for the
// want of SEV-SNP (KVM's vm-type, or KVM itself), never on an option. The
// memory backend, devices, chardevs and netdevs, which QEMU creates later,
// are checked in a second run of the same line without SEV-SNP and paused
// (-S): where /dev/vhost-vsock cannot be opened (no host vsock, as here)
// it must stop on that device and nothing before it; where it can, it must
// still be running after a few seconds.
func TestSNPArgvAcceptedByQEMU(t *testing.T) {
	bin := os.Getenv(SNPQEMUEnv)
	if bin == "" {
		t.Skipf("skipping: set %s to a qemu-system-x86_64 of version 9.1 or newer to check the SEV-SNP command lines against it (make test fetches QEMU 10 from Debian's bookworm-backports with qemu/fetch-qemu-snp.sh)", SNPQEMUEnv)
	}
	major, minor := qemuVersion(t, bin)
	if major < 9 || major == 9 && minor < 1 {
		t.Fatalf("%s=%s is QEMU %d.%d: the SEV-SNP syntax needs 9.1 or newer", SNPQEMUEnv, bin, major, minor)
	}
	var data []string
	if d := os.Getenv(SNPQEMUDataEnv); d != "" {
		data = []string{"-L", d}
	}
	ran := 0
	for _, tt := range goldenCases() {
		if tt.opts.SNP == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := tt.opts
			o.Binary = bin
			o.SerialLog = filepath.Join(dir, "serial.log")
			if o.QMPSocket != "" {
				o.QMPSocket = filepath.Join(dir, "qmp.sock")
			}
			c, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			args := append(append([]string(nil), data...), c.Args()...)
			out, exited := runQEMU(t, bin, args, 20*time.Second)
			if o.SNP.DebugSwap && (major < 10 || major == 10 && minor < 2) {
				// Build writes debug-swap=on only for a manifest measured
				// with DebugSwap, and says it needs QEMU 10.2: older ones
				// must refuse exactly that property.
				if !strings.Contains(out, "Invalid parameter 'debug-swap'") {
					t.Errorf("QEMU %d.%d (before debug-swap, 10.2): want it to refuse debug-swap, got:\n%s", major, minor, out)
				}
				return
			}
			if !exited || !snpUnavailable.MatchString(out) || optionError.MatchString(out) {
				t.Errorf("QEMU %d.%d with %s: want a failure for want of SEV-SNP only, got (exited %v):\n%s", major, minor, c, exited, out)
			}
			// The same line without SEV-SNP, paused: the devices.
			plain := append(append(append([]string(nil), data...), withoutSNP(c.Args())...), "-S")
			vsock, err := os.OpenFile("/dev/vhost-vsock", os.O_RDWR, 0)
			if err == nil {
				vsock.Close()
			}
			if o.VsockCID != 0 && err != nil {
				out, exited = runQEMU(t, bin, plain, 60*time.Second)
				if !exited || !strings.Contains(out, "vhost-vsock: failed to open vhost device") || optionError.MatchString(out) {
					t.Errorf("QEMU %d.%d with the devices of %s (without SEV-SNP, paused; /dev/vhost-vsock cannot be opened: %v): want it to stop on that device only, got (exited %v):\n%s", major, minor, c, err, exited, out)
				}
			} else {
				out, exited = runQEMU(t, bin, plain, 5*time.Second)
				if exited || optionError.MatchString(out) {
					t.Errorf("QEMU %d.%d with the devices of %s (without SEV-SNP, paused): want it running after 5 s, got (exited %v):\n%s", major, minor, c, exited, out)
				}
			}
		})
		ran++
	}
	if ran == 0 {
		t.Fatal("no SEV-SNP golden case")
	}
}

// snpUnavailable is how QEMU says the host cannot run an SEV-SNP guest:
// KVM lacks the SEV-SNP VM type, or there is no KVM.
var snpUnavailable = regexp.MustCompile(`vm-type SEV-SNP not supported by KVM|Could not access KVM kernel module|failed to initialize kvm|KVM required|sev-snp.*(not supported|failed)`)

// optionError is how QEMU refuses an option or a property.
var optionError = regexp.MustCompile(`Invalid parameter|Parameter '[^']*' (is missing|expects)|Property '[^']*' not found|invalid option|unsupported machine|is not a valid|Unknown device|not a valid object|can't apply global`)

// runQEMU runs bin with args for at most d and returns its output and
// whether it exited by itself (else it was still running, and is killed).
func runQEMU(t *testing.T, bin string, args []string, d time.Duration) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), false
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", bin, err)
	}
	return string(out), true
}

// withoutSNP is args for a plain, paused TCG run of the same devices: no
// confidential-guest-support, no sev-snp-guest object, no firmware or
// kernel to load.
func withoutSNP(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch {
		case a == "-object" && strings.HasPrefix(next, "sev-snp-guest,"),
			a == "-bios", a == "-kernel", a == "-initrd", a == "-append":
			i++
			continue
		case a == "-accel":
			out = append(out, a, "tcg")
			i++
			continue
		case a == "-machine":
			var keep []string
			for _, p := range strings.Split(next, ",") {
				if !strings.HasPrefix(p, "confidential-guest-support=") {
					keep = append(keep, p)
				}
			}
			out = append(out, a, strings.Join(keep, ","))
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// qemuVersion is bin's version, from its --version line.
func qemuVersion(t *testing.T, bin string) (major, minor int) {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	m := regexp.MustCompile(`version (\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("%s --version said %q: no version", bin, out)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor
}

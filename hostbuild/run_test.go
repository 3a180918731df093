package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/katana-tee/snpboot/qemu"
	"github.com/katana-tee/snpboot/qemu/qemutest"
)

// The golden-file switch is shared by every test file of this package;
// register it once, whichever file gets there first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// runFixture is a manifest over a synthetic launch: the AmdSevX64 OVMF
// suffix from the shared fixtures (all the measurement reads), and small
// made-up kernel and initrd files. Nothing here boots; the boot through
// `hostbuild run --plain` is in qemu/boottest.
type runFixture struct {
	dir, ovmf, kernel, initrd, manifest string
}

const runFixtureCmdline = `console=ttyS0 panic=-1 katana.args="--http.addr 0.0.0.0 --name 'a b' *"`

func newRunFixture(t *testing.T) runFixture {
	t.Helper()
	return newRunFixtureCmdline(t, runFixtureCmdline)
}

// newRunFixtureCmdline is newRunFixture with a manifest measured with
// another cmdline.
func newRunFixtureCmdline(t *testing.T, cmdline string) runFixture {
	t.Helper()
	shared := os.Getenv("SHARED_DIR")
	if shared == "" {
		shared = filepath.Join("..", "..", "shared")
	}
	suffix, err := os.ReadFile(filepath.Join(shared, "measure", "fixtures", "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Skipf("skipping: the OVMF fixture is missing (%v); set SHARED_DIR to the shared folder (make test does)", err)
	}
	dir := t.TempDir()
	f := runFixture{
		dir:      dir,
		ovmf:     filepath.Join(dir, "OVMF.fd"),
		kernel:   filepath.Join(dir, "vmlinuz"),
		initrd:   filepath.Join(dir, "initrd.img"),
		manifest: filepath.Join(dir, "manifest.json"),
	}
	for p, b := range map[string][]byte{
		f.ovmf:   suffix,
		f.kernel: fakeBzImage(strings.Repeat("k", 50_000)), // a bzImage header: run and libvirt warn of anything else
		f.initrd: bytes.Repeat([]byte{'i'}, 70_000),
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cmdline", cmdline, "--vcpus", "1,4", "--vcpu-type", "EPYC-v4", "-o", f.manifest)
	if code != exitOK {
		t.Fatalf("hostbuild manifest: exit %d\n%s", code, stderr)
	}
	return f
}

// scrub replaces the temporary folders in out with stable names.
func (f runFixture) scrub(out string) string {
	out = strings.ReplaceAll(out, f.dir, "$FIXTURE")
	return strings.ReplaceAll(out, os.TempDir(), "$TMPDIR")
}

// --dry-run refuses a --serial-log that run would refuse for what is at
// the path (a folder, a device, a symlink), not one whose folder is not
// made yet: the command may be printed for later (the goldens name
// /var/log/katana).
func TestRunSerialLogDryRun(t *testing.T) {
	f := newRunFixture(t)
	link := filepath.Join(f.dir, "link.log")
	if err := os.Symlink(filepath.Join(f.dir, "elsewhere.log"), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{f.dir, "is a folder, which run does not replace"},
		{"/dev/null", "is a character device, which run does not replace"},
		{link, "is a symbolic link, which run does not replace"},
	} {
		stdout, stderr, code := runHB(t, "run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--serial-log", tc.path)
		if code != exitFail || !strings.Contains(stderr, "--serial-log "+tc.path+" "+tc.want) || stdout != "" {
			t.Errorf("--dry-run --serial-log %s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and %q", tc.path, code, stdout, stderr, exitFail, tc.want)
		}
	}
}

func TestRunDryRunGolden(t *testing.T) {
	f := newRunFixture(t)
	tests := []struct {
		name string
		args []string
	}{
		{"run-snp-1vcpu", []string{"--ovmf", f.ovmf, "--cid", "3", "--forward", "15051:5050", "--serial-log", "/var/log/katana/serial.log"}},
		{"run-snp-4vcpu", []string{"--ovmf", f.ovmf, "--vcpus", "4", "--vcpu-type", "EPYC-v4", "--memory", "4G", "--cid", "42",
			"--forward", "15051:5050", "--forward", "0.0.0.0:9100:9100", "--serial-log", "/var/log/katana/serial.log"}},
		{"run-plain-tcg", []string{"--plain", "--forward", "15050:5050", "--forward", "11024:1024", "--serial-log", "/srv/katana/serial.log"}},
		{"run-plain-kvm-ovmf-checked", []string{"--plain", "--accel", "kvm", "--ovmf", f.ovmf, "--memory", "2048", "--serial-log", "/srv/katana/serial.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--dry-run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}, tt.args...)
			stdout, stderr, code := runHB(t, args...)
			if code != exitOK {
				t.Fatalf("hostbuild %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			got := f.scrub(stdout)
			path := filepath.Join("testdata", tt.name+".golden")
			if updateGolden() {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (go test ./hostbuild -run TestRunDryRunGolden -update): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("dry-run argv (-want +got):\n%s", diff)
			}
			if !strings.Contains(stdout, "-append '"+strings.ReplaceAll(runFixtureCmdline, "'", `'\''`)+"'") {
				t.Errorf("the argv does not carry the manifest's cmdline byte for byte:\n%s", stdout)
			}
		})
	}
}

func TestRunRefusals(t *testing.T) {
	f := newRunFixture(t)
	base := []string{"run", "--dry-run", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3"}
	otherInitrd := filepath.Join(f.dir, "initrd-changed.img")
	if err := os.WriteFile(otherInitrd, bytes.Repeat([]byte{'j'}, 70_000), 0o644); err != nil {
		t.Fatal(err)
	}
	// A manifest whose cmdline was edited after measuring: its own matrix
	// no longer matches what QEMU would measure.
	editedCmdline := filepath.Join(f.dir, "manifest-cmdline.json")
	var m map[string]any
	b, err := os.ReadFile(f.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["cmdline"] = strings.Replace(runFixtureCmdline, "0.0.0.0", "127.0.0.1", 1)
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(editedCmdline, b, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string // replace or add flags after base
		manifest string
		code     int
		want     []string
	}{
		{name: "vcpu count not in matrix", args: []string{"--vcpus", "3"}, code: exitRunRefused,
			want: []string{"the vCPU count is 3", "allows 1, 4 for EPYC-v4"}},
		{name: "vcpu type not in matrix", args: []string{"--vcpu-type", "EPYC-Genoa"}, code: exitRunRefused,
			want: []string{`the vCPU type is "EPYC-Genoa"`, "one of EPYC-v4"}},
		{name: "changed initrd", args: []string{"--initrd", otherInitrd}, code: exitRunRefused,
			want: []string{"the initrd " + otherInitrd, "initrd.img, 70000 bytes"}},
		{name: "changed kernel in plain mode", args: []string{"--plain", "--kernel", otherInitrd}, code: exitRunRefused,
			want: []string{"the kernel " + otherInitrd}},
		{name: "changed cmdline", manifest: editedCmdline, code: exitRunRefused,
			want: []string{"launch digest", "127.0.0.1", "edited after measuring"}},
		{name: "snp with cid 0", args: []string{"--cid", "0"}, code: exitUsage, want: []string{"--cid 0: CIDs 0 to 2 and 4294967295 are reserved"}},
		{name: "snp with tcg", args: []string{"--accel", "tcg"}, code: exitUsage, want: []string{"needs --plain"}},
		{name: "bad forward", args: []string{"--forward", "1:2:3:4"}, code: exitUsage, want: []string{"--forward"}},
		{name: "bad memory", args: []string{"--memory", "lots"}, code: exitUsage, want: []string{"--memory"}},
		{name: "missing manifest", manifest: filepath.Join(f.dir, "nope.json"), code: exitFail, want: []string{"nope.json"}},
		{name: "unknown accel", args: []string{"--plain", "--accel", "hvf"}, code: exitUsage, want: []string{`--accel "hvf": want tcg or kvm`}},
		{name: "negative stop timeout", args: []string{"--stop-timeout", "-1s"}, code: exitUsage, want: []string{"--stop-timeout -1s: want a positive duration (or 0 for the default)"}},
		{name: "positional argument", args: []string{"extra"}, code: exitUsage, want: []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), base...)
			if tt.manifest != "" {
				args[3] = tt.manifest
			}
			args = withFlags(args, tt.args...)
			stdout, stderr, code := runHB(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			if stdout != "" {
				t.Errorf("a refused launch printed an argv:\n%s", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestRunLaunchFlagUsageErrors: what a flag alone decides is a usage
// error (exit 2, as documented and as libvirt says for the same flags),
// found before any file is checked or anything is started.
func TestRunLaunchFlagUsageErrors(t *testing.T) {
	f := newRunFixture(t)
	files := []string{"--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--qemu", filepath.Join(f.dir, "no-qemu")}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"snp without cid", []string{"--ovmf", f.ovmf}, "give --cid N"},
		{"snp with cid 2", []string{"--ovmf", f.ovmf, "--cid", "2"}, "--cid 2: CIDs 0 to 2"},
		{"plain with cid 1", []string{"--plain", "--cid", "1"}, "--cid 1: CIDs 0 to 2"},
		{"snp without ovmf", []string{"--cid", "3"}, "give --ovmf FILE"},
		{"memory too small", []string{"--ovmf", f.ovmf, "--cid", "3", "--memory", "10"}, `--memory "10": want at least 64 MiB`},
		{"memory one MiB short", []string{"--ovmf", f.ovmf, "--cid", "3", "--memory", "63"}, `--memory "63": want at least 64 MiB`},
		{"vcpus 0", []string{"--ovmf", f.ovmf, "--cid", "3", "--vcpus", "0"}, "--vcpus 0: want 1 or more"},
		{"cid 2^32-1", []string{"--ovmf", f.ovmf, "--cid", "4294967295"}, "--cid 4294967295: CIDs 0 to 2 and 4294967295 are reserved"},
		{"cid 2^32", []string{"--ovmf", f.ovmf, "--cid", "4294967296"}, "--cid 4294967296: out of range"},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"run", "libvirt"} {
			if cmd == "libvirt" && (tt.name == "snp without cid" || tt.name == "snp without ovmf" || strings.HasPrefix(tt.name, "plain")) {
				continue // libvirt's own "are required"
			}
			t.Run(cmd+"/"+tt.name, func(t *testing.T) {
				t.Setenv("TMPDIR", t.TempDir())
				args := append(append([]string{cmd}, files...), tt.args...)
				if cmd == "libvirt" {
					args = slices.DeleteFunc(args, func(s string) bool { return strings.HasPrefix(s, "--qemu") || strings.HasSuffix(s, "no-qemu") })
				}
				stdout, stderr, code := runHB(t, args...)
				if code != exitUsage || !strings.Contains(stderr, tt.want) {
					t.Errorf("hostbuild %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), code, stderr, exitUsage, tt.want)
				}
				if stdout != "" {
					t.Errorf("a usage error printed %q", stdout)
				}
			})
		}
	}
}

// fakeQEMUScript writes a shell script that stands in for QEMU: it finds
// the serial log in its -chardev option and runs body with $log set.
func fakeQEMUScript(t *testing.T, dir, body string) string {
	t.Helper()
	fake := filepath.Join(dir, "fake-qemu.sh")
	script := `#!/bin/sh
for a in "$@"; do
	case $a in file,id=serial0,path=*) log=${a#file,id=serial0,path=} ;; esac
done
` + body
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return fake
}

// fakeCleanBoot is a fakeQEMUScript body: Katana starts and exits 0, the
// guest powers off.
const fakeCleanBoot = `printf '%s\n' '[    1.000000] guestinit: katana started pid=1 argv=["/bin/katana"]' '[    1.100000] guestinit: katana exited status=0' '[    1.200000] guestinit: powering off' '[    1.300000] reboot: Power down' >>"$log"
`

// TestRunScratchFolder: run's scratch folder in $TMPDIR (QMP socket,
// default serial log) is made only for a launch that was checked, and
// goes at the end unless it holds the serial log run said it kept.
func TestRunScratchFolder(t *testing.T) {
	f := newRunFixture(t)
	fake := fakeQEMUScript(t, f.dir, fakeCleanBoot)
	base := []string{"run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--plain", "--ready-timeout", "20s"}
	tests := []struct {
		name    string
		args    []string
		code    int
		keptLog bool
	}{
		{"refused", []string{"--vcpus", "3", "--qemu", fake}, exitRunRefused, false},
		{"qemu missing", []string{"--qemu", filepath.Join(f.dir, "no-such-qemu")}, exitFail, false},
		{"booted", []string{"--qemu", fake}, exitOK, true},
		// QEMU refused the launch (a QEMU without sev-snp-guest): an
		// empty log is not kept.
		{"qemu failed at once", []string{"--qemu", fakeQEMUScript(t, t.TempDir(), "exit 1\n")}, exitFail, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			_, stderr, code := runHB(t, append(base, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
			var left []string
			filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
				if p != tmp {
					left = append(left, strings.TrimPrefix(p, tmp+"/"))
				}
				return nil
			})
			if !tt.keptLog {
				if len(left) > 0 {
					t.Errorf("run left %q in $TMPDIR\n%s", left, stderr)
				}
				return
			}
			if len(left) != 2 || !strings.HasPrefix(left[0], "hostbuild-run-") || left[1] != left[0]+"/serial.log" {
				t.Errorf("$TMPDIR holds %q, want only hostbuild-run-*/serial.log\n%s", left, stderr)
			} else if !strings.Contains(stderr, "serial console: "+filepath.Join(tmp, left[1])) {
				t.Errorf("run did not name the serial log it kept:\n%s", stderr)
			}
		})
	}
}

// A $TMPDIR too long for the QMP socket in the scratch folder run would
// make there is refused before anything starts, naming $TMPDIR and the
// fix: here one byte too long for os.MkdirTemp's longest name, though the
// placeholder Prepare checks fits.
func TestRunTMPDIRTooLong(t *testing.T) {
	f := newRunFixture(t)
	fake := fakeQEMUScript(t, f.dir, fakeCleanBoot)
	tmp := shortTempDir(t)
	tail := len("/hostbuild-run-4294967295/qmp.sock")
	long := filepath.Join(tmp, strings.Repeat("d", qemu.MaxUnixPath+1-tail-len(tmp)-1))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	_, stderr, code := runHB(t, "run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--plain", "--qemu", fake)
	if code != exitFail || !strings.Contains(stderr, "set TMPDIR to a shorter folder") || !strings.Contains(stderr, "(now "+long+")") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d naming $TMPDIR and the fix", code, stderr, exitFail)
	}
	if strings.Contains(stderr, "qemu started") {
		t.Errorf("QEMU was started:\n%s", stderr)
	}
	if left, _ := os.ReadDir(long); len(left) > 0 {
		t.Errorf("run left %v in $TMPDIR", left)
	}
}

// TestRunStartErrors: when QEMU cannot start, or fails at once, run says
// what to do about it, naming the flag, not only the system's error.
func TestRunStartErrors(t *testing.T) {
	f := newRunFixture(t)
	notADir := filepath.Join(f.dir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	oldQEMU := fakeQEMUScript(t, f.dir, `echo "qemu-system-x86_64: -object sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on: Parameter 'qom-type' does not accept value 'sev-snp-guest'" >&2
exit 1
`)
	noSNP := fakeQEMUScript(t, t.TempDir(), `echo "qemu-system-x86_64: -accel kvm: vm-type SEV-SNP not supported by KVM" >&2
exit 1
`)
	badBIOS := fakeQEMUScript(t, t.TempDir(), `echo "qemu-system-x86_64: could not load PC BIOS '/proc/self/fd/3'" >&2
exit 1
`)
	base := []string{"run", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3"}
	kvmHint := []string{"this host's KVM cannot run an SEV-SNP guest", "'hostbuild doctor' says what is missing; --plain boots the same files without SEV"}
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant string
	}{
		{"qemu 9.1+ on a host without SEV-SNP", []string{"--qemu", noSNP}, append([]string{"vm-type SEV-SNP not supported by KVM"}, kvmHint...), ""},
		{"bios refused", []string{"--qemu", badBIOS}, []string{"could not load PC BIOS", "QEMU refused the --ovmf file as a -bios image: give the whole OVMF.fd"}, ""},
		// One fix, not also the default binary's "apt-get install".
		{"no qemu binary", []string{"--qemu", "/nonexist"}, []string{"--qemu /nonexist: no such program: give the path of a QEMU binary (qemu-system-x86_64), or leave --qemu out"}, "apt-get"},
		// PATH is set to an empty folder below: the default binary is not found.
		{"no qemu on PATH", nil, []string{"qemu-system-x86_64", "install it: apt-get install qemu-system-x86"}, "--qemu"},
		// Refused before the launch is checked (--dry-run refuses the
		// same: TestRunSerialLogDryRun).
		{"serial log cannot be created", []string{"--qemu", oldQEMU, "--serial-log", filepath.Join(notADir, "serial.log")},
			[]string{"--serial-log " + filepath.Join(notADir, "serial.log") + ": " + notADir + " is not a folder"}, "files match"},
		{"serial log folder missing", []string{"--qemu", oldQEMU, "--serial-log", filepath.Join(notADir+"-not-made", "serial.log")},
			[]string{"its folder " + notADir + "-not-made cannot be used (no such file or directory): create it, or write elsewhere"}, "files match"},
		{"serial log is a folder", []string{"--qemu", oldQEMU, "--serial-log", filepath.Dir(notADir)},
			[]string{"--serial-log " + filepath.Dir(notADir) + " is a folder, which run does not replace: give the path of a new file"}, "files match"},
		{"qemu without sev-snp", []string{"--qemu", oldQEMU}, []string{"does not accept value 'sev-snp-guest'", "needs QEMU 9.1 or newer", "'hostbuild doctor'"}, ""},
	}
	// The real QEMU 10 that make test fetches (qemu/fetch-qemu-snp.sh),
	// on this host without SEV-SNP: it takes run's whole SEV-SNP line,
	// the sealed files as /proc/self/fd/N included, and stops at KVM.
	if bin := os.Getenv("SNPBOOT_QEMU_SNP"); bin != "" {
		tests = append(tests, struct {
			name    string
			args    []string
			want    []string
			notWant string
		}{"QEMU 9.1+ ($SNPBOOT_QEMU_SNP) on this host", []string{"--qemu", bin}, kvmHint[:1], "Invalid parameter"})
	} else {
		t.Log("the real-QEMU case needs $SNPBOOT_QEMU_SNP (a QEMU 9.1 or newer; make test fetches one): not run")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", shortTempDir(t))
			if tt.args == nil {
				t.Setenv("PATH", t.TempDir())
			}
			_, stderr, code := runHB(t, append(base, tt.args...)...)
			if code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if tt.notWant != "" && strings.Contains(stderr, tt.notWant) {
				t.Errorf("stderr contains %q:\n%s", tt.notWant, stderr)
			}
		})
	}
}

// TestRunExitStatus: run's exit status is the one its -h documents for
// each way a guest ends, read from the console and QEMU's exit (a fake
// QEMU that writes the console lines, then exits). "ready:" is printed
// only once Katana started, and the expected measurement and the attest
// command only in SEV-SNP mode.
func TestRunExitStatus(t *testing.T) {
	f := newRunFixture(t)
	var doc struct {
		Measurements []struct {
			VCPUs       int    `json:"vcpus"`
			VCPUType    string `json:"vcpu_type"`
			Measurement string `json:"measurement"`
		} `json:"measurements"`
	}
	b, err := os.ReadFile(f.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var measurement string
	for _, m := range doc.Measurements {
		if m.VCPUs == 1 && m.VCPUType == "EPYC-v4" {
			measurement = m.Measurement
		}
	}
	if measurement == "" {
		t.Fatalf("the fixture's manifest has no measurement for 1 x EPYC-v4:\n%s", b)
	}
	console := func(lines ...string) string {
		var sb strings.Builder
		sb.WriteString("printf '%s\\n'")
		for _, l := range lines {
			sb.WriteString(" " + shellWord(l))
		}
		sb.WriteString(` >>"$log"` + "\n")
		return sb.String()
	}
	const (
		started   = `[    1.000000] guestinit: katana started pid=1 argv=["/bin/katana"]`
		poweroff  = "[    1.200000] guestinit: powering off"
		powerDown = "[    1.300000] reboot: Power down"
	)
	tests := []struct {
		name   string
		snp    bool
		script string
		code   int
		ready  bool
		want   string // in stderr
	}{
		{"clean", false, console(started, "[    1.100000] guestinit: katana exited status=0", poweroff, powerDown), exitOK, true, "powered off cleanly"},
		{"clean snp", true, console(started, "[    1.100000] guestinit: katana exited status=0", poweroff, powerDown), exitOK, true, "powered off cleanly"},
		{"rebooted", false, console(started, "[    1.100000] guestinit: katana exited status=0", "[    1.200000] guestinit: rebooting", "[    1.300000] reboot: Restarting system"), exitOK, true, "rebooted cleanly"},
		{"boot error", false, console("[    1.000000] guestinit: boot error: mounting /proc: no such device", poweroff, powerDown), exitRunBootError, false, "boot error: mounting /proc: no such device"},
		{"katana failed", false, console(started, "[    1.100000] guestinit: katana exited status=3", poweroff, powerDown), exitRunKatana, true, "katana exited with status 3"},
		{"kernel panic", false, console(started, "[    1.100000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"), exitRunKilled, true, "the guest kernel panicked"},
		{"no power-off", false, console(started), exitRunKilled, true, "QEMU ended without the guest powering off"},
		{"qemu failed", false, "echo 'qemu-system-x86_64: could not load kernel' >&2\nexit 1\n", exitFail, false, "could not load kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fake := fakeQEMUScript(t, dir, tt.script)
			args := []string{"run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
				"--qemu", fake, "--serial-log", filepath.Join(dir, "serial.log"), "--ready-timeout", "30s"}
			checked := "checked the kernel and initrd against " + f.manifest + ": files match"
			if tt.snp {
				args = append(args, "--ovmf", f.ovmf, "--cid", "3", "--forward", "15051:5050", "--forward", "0.0.0.0:9100:9100")
				checked = "checked the OVMF, kernel and initrd against " + f.manifest + ": files match, launch digest recomputed and in the matrix\n"
			} else {
				args = append(args, "--plain")
			}
			stdout, stderr, code := runHB(t, args...)
			wants := []string{checked}
			if tt.snp {
				wants = append(wants, "forwarding 127.0.0.1:15051 -> guest port 5050\n", "forwarding 0.0.0.0:9100 -> guest port 9100\n")
			}
			for _, w := range wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if w := "did not start within"; strings.Contains(stderr, w) {
				t.Errorf("stderr reports a guest that ended as not ready in time (%q):\n%s", w, stderr)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, stderr)
			}
			if got := strings.HasPrefix(stdout, "ready: guestinit: katana started pid=1 "); got != tt.ready {
				t.Errorf("stdout starts with \"ready: guestinit: katana started\": %v, want %v\nstdout:\n%s", got, tt.ready, stdout)
			}
			wantMeasurement := "expected measurement (1 × EPYC-v4): " + measurement + "\n"
			wantAttest := "attest with: hostbuild attest --cid 3 --manifest "
			if got := strings.Contains(stdout, wantMeasurement) && strings.Contains(stdout, wantAttest); got != tt.snp {
				t.Errorf("stdout has %q and %q: %v, want %v (SEV-SNP mode)\nstdout:\n%s", wantMeasurement, wantAttest, got, tt.snp, stdout)
			}
		})
	}
}

// TestRunStopTimeoutWarning: a --stop-timeout shorter than the guest's own
// grace period plus the margin is run with a warning; the default is not.
func TestRunStopTimeoutWarning(t *testing.T) {
	f := newRunFixture(t)
	base := []string{"run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}
	tests := []struct {
		args []string
		warn string // "" for none
	}{
		{nil, ""},
		{[]string{"--stop-timeout", "60s"}, ""},
		{[]string{"--stop-timeout", "45s"}, "hostbuild run: warning: --stop-timeout 45s is shorter than the guest's katana.stop_timeout=30s plus 30s"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			stdout, stderr, code := runHB(t, append(base, tt.args...)...)
			if code != exitOK || stdout == "" {
				t.Fatalf("exit %d, stdout %q; want 0 and the argv\n%s", code, stdout, stderr)
			}
			if tt.warn == "" && strings.Contains(stderr, "warning:") || tt.warn != "" && !strings.Contains(stderr, tt.warn) {
				t.Errorf("stderr:\n%s\nwant the warning %q", stderr, tt.warn)
			}
		})
	}
}

// shortTempDir is t.TempDir with a short name: run puts its QMP socket in
// $TMPDIR, and a unix socket path has at most 107 bytes. t.TempDir's name
// (the test's) under a long $TMPDIR (go test's under GOTMPDIR, as gremlins
// sets) leaves too little: run then refuses the socket path before QEMU
// starts.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestRunSaysItStillWaits: between "qemu started" and "ready:" run says
// every progressEvery that it still waits, with the console's last line,
// rather than nothing for up to --ready-timeout.
func TestRunSaysItStillWaits(t *testing.T) {
	f := newRunFixture(t)
	fake := filepath.Join(t.TempDir(), fakeQEMUName)
	if err := os.Symlink(os.Args[0], fake); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeQEMUNotReadyEnv, "1")
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 100 * time.Millisecond
	_, stderr, code := runHB(t, "run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--qemu", fake, "--serial-log", filepath.Join(t.TempDir(), "serial.log"), "--ready-timeout", "1s")
	if code != exitFail {
		t.Errorf("exit %d, want %d (not ready in time)", code, exitFail)
	}
	if want := `still waiting for katana (`; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, stderr)
	}
	if want := `of --ready-timeout 1s; last console line: "[    0.500000] Run /init as init process")`; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, stderr)
	}
}

// TestRunRefusesZeroCountAndTimeout: --vcpus 0 would silently mean the
// manifest's default and --ready-timeout 0s give up at once.
func TestRunRefusesZeroCountAndTimeout(t *testing.T) {
	f := newRunFixture(t)
	base := []string{"--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--vcpus", "0"}, "--vcpus 0: want 1 or more"},
		{[]string{"run", "--vcpus", "-4"}, "--vcpus -4: want 1 or more"},
		{[]string{"libvirt", "--vcpus", "0"}, "--vcpus 0: want 1 or more"},
		{[]string{"run", "--ready-timeout", "0s"}, "--ready-timeout 0s: want a positive duration"},
		{[]string{"run", "--ready-timeout", "-1m"}, "--ready-timeout -1m0s: want a positive duration"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			args := append(append(tt.args[:1:1], base...), tt.args[1:]...)
			if tt.args[0] == "run" {
				args = append(args, "--qemu", filepath.Join(f.dir, "no-qemu"))
			}
			_, stderr, code := runHB(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}

// TestRunBootsTheHashedFiles: a file renamed over a checked path after the
// check (a build job, a sync tool, anyone with write access to the folder)
// is not what QEMU loads. The fake QEMU first replaces the OVMF, kernel and
// initrd paths, then reports the SHA-256 of what its -bios, -kernel and
// -initrd name: those must be the hashed (manifest) files.
func TestRunBootsTheHashedFiles(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := "snp"
		if plain {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			f := newRunFixture(t)
			want := map[string]string{"-bios": fileSHA256(t, f.ovmf), "-kernel": fileSHA256(t, f.kernel), "-initrd": fileSHA256(t, f.initrd)}
			if plain {
				delete(want, "-bios") // plain mode only checks the OVMF
			}
			var swaps strings.Builder
			for _, p := range []string{f.ovmf, f.kernel, f.initrd} {
				repl := p + ".new"
				if err := os.WriteFile(repl, []byte("swapped after the check: "+p), 0o644); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&swaps, "mv -f %s %s\n", shellWord(repl), shellWord(p))
			}
			fake := filepath.Join(f.dir, "fake-qemu")
			script := "#!/bin/sh\nset -e\n" + swaps.String() + `prev=
for a in "$@"; do
	case $prev in
	-bios|-kernel|-initrd) echo "fake-qemu: $prev $a sha256=$(sha256sum <"$a" | cut -d' ' -f1)" >>"$out" ;;
	-chardev) case $a in file,id=serial0,path=*) log=${a#file,id=serial0,path=} ;; esac ;;
	esac
	prev=$a
done
cat "$out" >>"$log"
printf '%s\n' '[    1.000000] guestinit: katana started pid=1 argv=["/bin/katana"]' '[    1.100000] guestinit: katana exited status=0' '[    1.200000] guestinit: powering off' '[    1.300000] reboot: Power down' >>"$log"
`
			script = strings.Replace(script, "set -e\n", "set -e\nout="+shellWord(filepath.Join(f.dir, "fake-qemu.out"))+"\n", 1)
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			serial := filepath.Join(f.dir, "serial.log")
			args := []string{"run", "--qemu", fake, "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--serial-log", serial}
			if plain {
				args = append(args, "--plain")
			} else {
				args = append(args, "--cid", "3")
			}

			// --dry-run prints the operator's paths and says what QEMU gets instead.
			stdout, stderr, code := runHB(t, append(args, "--dry-run")...)
			if code != exitOK {
				t.Fatalf("run --dry-run: exit %d\n%s", code, stderr)
			}
			for opt := range want {
				p := map[string]string{"-bios": f.ovmf, "-kernel": f.kernel, "-initrd": f.initrd}[opt]
				if !strings.Contains(stdout, opt+" "+p+" ") {
					t.Errorf("the dry-run argv does not name %s %s:\n%s", opt, p, stdout)
				}
				if !strings.Contains(stderr, opt+" /proc/self/fd/") {
					t.Errorf("the dry-run does not say that QEMU gets %s as /proc/self/fd/N:\n%s", opt, stderr)
				}
			}

			_, stderr, code = runHB(t, args...)
			if code != exitOK {
				t.Fatalf("run: exit %d\n%s", code, stderr)
			}
			b, err := os.ReadFile(serial)
			if err != nil {
				t.Fatal(err)
			}
			for opt, sum := range want {
				re := regexp.MustCompile(`fake-qemu: ` + opt + ` (\S+) sha256=(\w+)`)
				m := re.FindStringSubmatch(string(b))
				switch {
				case m == nil:
					t.Errorf("the fake QEMU got no %s:\n%s", opt, b)
				case m[2] != sum:
					t.Errorf("QEMU read %s %s with SHA-256 %s, not the checked file's %s: the file swapped in after the check", opt, m[1], m[2], sum)
				}
			}
			if fileSHA256(t, f.kernel) == want["-kernel"] {
				t.Errorf("the fake QEMU did not replace %s", f.kernel)
			}
			if t.Failed() {
				t.Logf("stderr:\n%s\nserial log:\n%s", stderr, b)
			}
		})
	}
}

// shellWord quotes s for a POSIX shell.
func shellWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1024", 1024, true}, {"2G", 2048, true}, {"512M", 512, true}, {"4g", 4096, true},
		{"0", 0, false}, {"-1G", 0, false}, {"1T", 0, false}, {"", 0, false}, {"99999999999G", 0, false},
		{"1073741824", 1 << 30, true}, {"1073741825", 0, false}, {"1048576G", 1 << 30, true}, {"1048577G", 0, false}, {"1m", 1, true},
	}
	for _, tt := range tests {
		got, err := parseMemory(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestStopBudget: run's default --stop-timeout outlasts the guest's own
// grace period (katana.stop_timeout from the manifest's cmdline) plus the
// init's sync and power-off; a shorter explicit one is kept with a warning.
func TestStopBudget(t *testing.T) {
	const s = time.Second
	tests := []struct {
		cmdline string
		set     time.Duration
		want    time.Duration
		warn    string // substring; "" for no warning
	}{
		{"console=ttyS0 panic=-1", 0, 60 * s, ""},                               // default 30s + 30s
		{"console=ttyS0 katana.stop_timeout=5s", 0, 60 * s, ""},                 // never under 60s
		{"console=ttyS0 katana.stop_timeout=10m", 0, 10*time.Minute + 30*s, ""}, // the guest's grace first
		{"console=ttyS0 katana.stop_timeout=120", 0, 150 * s, ""},               // whole seconds
		{"console=ttyS0 katana.stop_timeout=10m", 90 * s, 90 * s, "shorter than the guest's katana.stop_timeout=10m0s"},
		{"console=ttyS0 katana.stop_timeout=10m", 11 * time.Minute, 11 * time.Minute, ""},
		{"console=ttyS0", 45 * s, 45 * s, "katana.stop_timeout=30s plus 30s"},
		{"console=ttyS0", 60 * s, 60 * s, ""},
		{"katana.args='unbalanced", 0, 60 * s, ""}, // unparsable: the init's default
	}
	for _, tt := range tests {
		got, warn := stopBudget(tt.cmdline, tt.set)
		if got != tt.want {
			t.Errorf("stopBudget(%q, %v) = %v, want %v", tt.cmdline, tt.set, got, tt.want)
		}
		if tt.warn == "" && warn != "" || tt.warn != "" && !strings.Contains(warn, tt.warn) {
			t.Errorf("stopBudget(%q, %v) warning %q, want one containing %q", tt.cmdline, tt.set, warn, tt.warn)
		}
	}
}

// fakeQEMUName is the name of a link to this test binary that makes it a
// fake QEMU for `hostbuild run --qemu` (TestMain). The fake writes the init's
// "katana started" line to the serial log, answers QMP, and on
// system_powerdown prints the init's and the kernel's power-off lines and
// exits 0. On SIGINT, SIGTERM or SIGHUP it does what QEMU does: prints
// "terminating on signal N" on stderr and exits 0 at once. It appends what
// it got ("system_powerdown", "signal interrupt", ...) to the serial log's
// path plus ".events". With fakeQEMUFloodEnv=N in its environment, the
// fake logs Katana's exit with status 7 right after its start, then N more
// console lines, before it waits (and logs no other exit of Katana).
const fakeQEMUName = "fake-qemu-system-x86_64"

const fakeQEMUFloodEnv = "HOSTBUILD_TEST_FAKE_QEMU_FLOOD"

// fakeQEMUNotReadyEnv, set in its environment, makes the fake QEMU print a
// kernel line in place of "katana started": a boot that takes its time.
const fakeQEMUNotReadyEnv = "HOSTBUILD_TEST_FAKE_QEMU_NOT_READY"

// fakeQEMUNoPowerOffEnv, set in its environment, makes the fake QEMU record
// each system_powerdown and go on running: a guest that does not power off
// (or not yet), which only a kill ends.
const fakeQEMUNoPowerOffEnv = "HOSTBUILD_TEST_FAKE_QEMU_NO_POWEROFF"

// fakeQEMUPowerOffDelayEnv=DURATION makes the fake QEMU take that long
// between system_powerdown and its power-off (a guest stopping Katana).
const fakeQEMUPowerOffDelayEnv = "HOSTBUILD_TEST_FAKE_QEMU_POWEROFF_DELAY"

// fakeQEMUInternalErrorEnv (tests): after its start line the fake
// prints QEMU's internal-error stderr and stays alive, as a paused QEMU does.
const fakeQEMUInternalErrorEnv = "HOSTBUILD_TEST_FAKE_QEMU_INTERNAL_ERROR"

func fakeQEMU(args []string) int {
	serial, qmp := qemutest.ChardevPaths(args)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	events, err := os.OpenFile(serial+".events", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
		return 1
	}
	log, err := os.OpenFile(serial, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
		return 1
	}
	ln, err := net.Listen("unix", qmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake qemu: %v\n", err)
		return 1
	}
	powerdown := make(chan struct{}, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if qemutest.ServeQMP(conn) {
				select {
				case powerdown <- struct{}{}:
				default:
				}
			}
		}
	}()
	if os.Getenv(fakeQEMUNotReadyEnv) != "" {
		fmt.Fprintln(log, "[    0.500000] Run /init as init process")
	} else {
		fmt.Fprintln(log, `[    1.000000] guestinit: katana started pid=90 argv=["/bin/katana"]`)
	}
	if os.Getenv(fakeQEMUInternalErrorEnv) != "" {
		// What QEMU 9.1-10.0 prints when a vCPU exit it does not handle
		// (KVM_EXIT_SYSTEM_EVENT/KVM_SYSTEM_EVENT_SEV_TERM: the guest's
		// GHCB termination request) ends kvm_cpu_exec with ret < 0:
		// cpu_dump_state, then vm_stop(RUN_STATE_INTERNAL_ERROR). QEMU
		// stays alive, paused, and ignores the power button.
		fmt.Fprintln(os.Stderr, "KVM: unknown exit reason 24")
		fmt.Fprintln(os.Stderr, "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000000")
	}
	if n, _ := strconv.Atoi(os.Getenv(fakeQEMUFloodEnv)); n > 0 {
		w := bufio.NewWriter(log)
		fmt.Fprintln(w, "[    1.500000] guestinit: katana exited status=7")
		for i := range n {
			fmt.Fprintf(w, "[    1.600000] guestinit: console line %d\n", i)
		}
		w.Flush()
	}
	timeout := time.After(time.Minute)
	for {
		select {
		case s := <-sigs:
			fmt.Fprintf(events, "signal %v\n", s)
			fmt.Fprintf(os.Stderr, "qemu-system-x86_64: terminating on signal %d from pid %d\n", s.(syscall.Signal), os.Getppid())
			return 0
		case <-powerdown:
			fmt.Fprintln(events, "system_powerdown")
			if os.Getenv(fakeQEMUNoPowerOffEnv) != "" {
				continue
			}
			fmt.Fprintln(log, "[    2.000000] guestinit: power button pressed: stopping katana")
			if d, err := time.ParseDuration(os.Getenv(fakeQEMUPowerOffDelayEnv)); err == nil {
				time.Sleep(d)
			}
			if os.Getenv(fakeQEMUFloodEnv) == "" { // else Katana has exited already
				fmt.Fprintln(log, "[    2.100000] guestinit: katana exited status=143 signal=SIGTERM stop=graceful")
			}
			fmt.Fprintln(log, "[    2.200000] guestinit: powering off")
			fmt.Fprintln(log, "[    2.300000] reboot: Power down")
			return 0
		case <-timeout:
			fmt.Fprintln(events, "timeout")
			return 1
		}
	}
}

// fakeRun is `hostbuild run --plain` in a child process, with the fake
// QEMU, in a process group of its own (as a shell starts a job), ready.
type fakeRun struct {
	cmd    *exec.Cmd
	serial string
	stderr *qemutest.LockedBuffer
	done   chan struct{}
	// gone makes run's stderr a pipe whose reader has ended (as when the
	// tee of "run 2>&1 | tee log" ends on the same Ctrl-C): the next
	// line is not read, and the pipe is closed after it.
	gone atomic.Bool
}

func startFakeRun(t *testing.T, f runFixture, env ...string) *fakeRun {
	t.Helper()
	return startFakeRunArgs(t, f, []string{"--stop-timeout", "60s"}, env...)
}

// startFakeRunArgs is startFakeRun with launchFakeRunArgs' flags.
func startFakeRunArgs(t *testing.T, f runFixture, args []string, env ...string) *fakeRun {
	t.Helper()
	return startFakeRunWrapped(t, f, nil, args, env...)
}

// startFakeRunWrapped is startFakeRunArgs started through wrap
// (launchFakeRunWrapped).
func startFakeRunWrapped(t *testing.T, f runFixture, wrap, args []string, env ...string) *fakeRun {
	t.Helper()
	r, ready := launchFakeRunWrapped(t, f, wrap, args, env...)
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("hostbuild run ended before ready:\n%s", r.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("hostbuild run not ready after 30s:\n%s", r.stderr.String())
	}
	return r
}

// launchFakeRun is startFakeRun without the wait: ready gets true once run
// prints "ready:", or false when its stdout ends first.
func launchFakeRun(t *testing.T, f runFixture, env ...string) (r *fakeRun, ready <-chan bool) {
	t.Helper()
	return launchFakeRunArgs(t, f, []string{"--stop-timeout", "60s"}, env...)
}

// launchFakeRunArgs is launchFakeRun with run's flags after the files and
// --serial-log given by the caller (where a default is what a test checks).
func launchFakeRunArgs(t *testing.T, f runFixture, args []string, env ...string) (r *fakeRun, ready <-chan bool) {
	t.Helper()
	return launchFakeRunWrapped(t, f, nil, args, env...)
}

// launchFakeRunWrapped is launchFakeRunArgs with run started through wrap
// (a command that execs its arguments, e.g. to set a signal disposition).
func launchFakeRunWrapped(t *testing.T, f runFixture, wrap []string, args []string, env ...string) (r *fakeRun, ready <-chan bool) {
	t.Helper()
	fake := filepath.Join(t.TempDir(), fakeQEMUName)
	if err := os.Symlink(os.Args[0], fake); err != nil {
		t.Fatal(err)
	}
	r = &fakeRun{serial: filepath.Join(t.TempDir(), "serial.log"), stderr: &qemutest.LockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], append([]string{"run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--qemu", fake, "--serial-log", r.serial, "--ready-timeout", "30s"}, args...)...)
	if len(wrap) > 0 {
		r.cmd = exec.Command(wrap[0], append(append(wrap[1:], r.cmd.Path), r.cmd.Args[1:]...)...)
	}
	r.cmd.Env = append(append(os.Environ(), "HOSTBUILD_TEST_MAIN=1"), env...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		if r.gone.Load() {
			return 0, errors.New("the reader of stderr has ended")
		}
		return r.stderr.Write(p)
	})
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyc := make(chan bool, 2) // never blocks: one true at most, then false
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready: ") && len(readyc) == 0 {
				readyc <- true
			}
		}
		readyc <- false
		r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	})
	return r, readyc
}

// waitFor polls file until it holds want, failing the test if run exits
// first (before what, for the message).
func (r *fakeRun) waitFor(t *testing.T, file, want, what string) {
	t.Helper()
	for {
		if b, _ := os.ReadFile(file); strings.Contains(string(b), want) {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("hostbuild run ended before %s:\n%s", what, r.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait waits for run to exit and returns its exit status and what the fake
// QEMU recorded.
func (r *fakeRun) wait(t *testing.T) (code int, events string) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("hostbuild run still running after 30s:\n%s", r.stderr.String())
	}
	b, _ := os.ReadFile(r.serial + ".events")
	return r.cmd.ProcessState.ExitCode(), string(b)
}

// An operator's Ctrl-C sends SIGINT to the terminal's whole foreground
// process group, and closing the terminal sends it SIGHUP. Either must
// reach only hostbuild run, which presses the power button; QEMU (here a
// fake that acts on a signal as QEMU does: it ends at once, a power cut for
// the guest) must not get the signal itself.
func TestRunSignalToProcessGroupStopsGracefully(t *testing.T) {
	f := newRunFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			if sig == syscall.SIGHUP && ignored(t, sig) {
				t.Skip("skipping: SIGHUP is ignored in this process (nohup?), and run rightly keeps ignoring it (TestRunKeepsInheritedIgnoredSIGHUP)")
			}
			r := startFakeRun(t, f)
			if err := syscall.Kill(-r.cmd.Process.Pid, sig); err != nil {
				t.Fatal(err)
			}
			code, events := r.wait(t)
			if events != "system_powerdown\n" {
				t.Errorf("after %v to hostbuild run's process group, QEMU got %q, want only the power button (system_powerdown)", sig, events)
			}
			if code != exitOK {
				t.Errorf("hostbuild run exit status %d (%v), want %d (clean power-off)\nstderr:\n%s", code, r.cmd.ProcessState, exitOK, r.stderr.String())
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// With run's stderr a pipe whose reader ends on the same Ctrl-C (run 2>&1
// | tee log), run's next writes find no reader: they must not end run by
// SIGPIPE, which would take QEMU with it (Pdeathsig) and cut the guest's
// power instead of stopping it.
func TestRunStderrReaderGoneStillStopsGracefully(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRun(t, f)
	r.gone.Store(true)
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	if events != "system_powerdown\n" || code != exitOK {
		t.Errorf("hostbuild run exit status %d (%v) and QEMU got %q; want %d (clean power-off) after only the power button", code, r.cmd.ProcessState, events, exitOK)
	}
}

// TestRunSecondSignalKillsQEMU: a second SIGINT, SIGTERM or SIGHUP while
// the guest is being stopped kills QEMU at once, and run still ends as
// documented: exit 6 (the guest had to be killed), having said so. Also when
// the second signal comes right after the first, before run has started
// the stop: it must not find the default action interruptContext gives back
// after the first signal, which would end run itself by the signal (no
// outcome, no exit status of its own). The fake QEMU never powers off, so
// only a kill ends it.
func TestRunSecondSignalKillsQEMU(t *testing.T) {
	f := newRunFixture(t)
	for _, backToBack := range []bool{false, true} {
		name := "after the power button"
		if backToBack {
			name = "back to back"
		}
		t.Run(name, func(t *testing.T) {
			r := startFakeRun(t, f, fakeQEMUNoPowerOffEnv+"=1")
			if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if !backToBack {
				// Wait until run has pressed the power button.
				r.waitFor(t, r.serial+".events", "system_powerdown", "pressing the power button")
			}
			if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code, events := r.wait(t)
			stderr := r.stderr.String()
			if ws := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
				t.Fatalf("hostbuild run was ended by %v (after SIGINT then SIGTERM), want exit %d\nstderr:\n%s", ws.Signal(), exitRunKilled, stderr)
			}
			if code != exitRunKilled {
				t.Errorf("hostbuild run exit status %d, want %d (the guest had to be killed)\nstderr:\n%s", code, exitRunKilled, stderr)
			}
			for _, want := range []string{"interrupted again: killing qemu", "the guest did not power off; qemu was killed"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("run's stderr does not contain %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(events, "signal") {
				t.Errorf("the fake QEMU recorded %q: it got a signal, want only system_powerdown and SIGKILL", events)
			}
		})
	}
}

// TestRunTimeoutsDoubleSIGTERM: coreutils' timeout sends SIGTERM (or what
// -s names) to run and then to run's process group, run included: the
// same signal twice at once is one request, a graceful stop (it once
// killed QEMU: "interrupted again").
func TestRunTimeoutsDoubleSIGTERM(t *testing.T) {
	f := newRunFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			r := startFakeRun(t, f, fakeQEMUPowerOffDelayEnv+"=500ms")
			// Apart enough that the two are not merged into one pending
			// signal (as they mostly are when timeout sends them).
			for _, pid := range []int{r.cmd.Process.Pid, -r.cmd.Process.Pid} {
				if err := syscall.Kill(pid, sig); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			code, events := r.wait(t)
			if events != "system_powerdown\n" || code != exitOK {
				t.Errorf("hostbuild run exit status %d and QEMU got %q; want %d (clean power-off) after only the power button\nstderr:\n%s", code, events, exitOK, r.stderr.String())
			}
		})
	}
}

// A second Ctrl-C (SIGINT) well after the first still kills QEMU: only
// the same signal within 200 ms is taken as timeout's one request. The
// second comes 500 ms after run has acted on the first (pressed the power
// button), so a late first on a busy machine does not merge them.
func TestRunQuickSecondSIGINTKills(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRun(t, f, fakeQEMUNoPowerOffEnv+"=1")
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, r.serial+".events", "system_powerdown", "pressing the power button")
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, _ := r.wait(t); code != exitRunKilled || !strings.Contains(r.stderr.String(), "interrupted again: killing qemu") {
		t.Errorf("exit %d, want %d after a second SIGINT\n%s", code, exitRunKilled, r.stderr.String())
	}
}

// TestRunInterruptedBeforeReady: a signal while the guest still boots stops
// it gracefully as well (the power button), says so, and the exit status is
// the guest's end (here a clean power-off: 0), not a failure to start.
func TestRunInterruptedBeforeReady(t *testing.T) {
	f := newRunFixture(t)
	r, ready := launchFakeRun(t, f, fakeQEMUNotReadyEnv+"=1")
	// Wait until the fake QEMU is up and booting (its QMP socket listens
	// before it writes the console line).
	r.waitFor(t, r.serial, "Run /init as init process", "the guest booted")
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	stderr := r.stderr.String()
	if <-ready {
		t.Errorf("run printed \"ready:\" for a guest whose katana never started\nstderr:\n%s", stderr)
	}
	if events != "system_powerdown\n" {
		t.Errorf("the fake QEMU recorded %q, want only the power button (system_powerdown)", events)
	}
	if code != exitOK {
		t.Errorf("hostbuild run exit status %d, want %d (the guest powered off cleanly)\nstderr:\n%s", code, exitOK, stderr)
	}
	for _, want := range []string{"interrupted before katana started", "stopping the guest (system_powerdown, up to 1m0s", "powered off cleanly"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("run's stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "did not start within") {
		t.Errorf("run reports an interrupt as a timeout:\n%s", stderr)
	}
	// The stop succeeded: no error line after "stopping the guest".
	if _, after, _ := strings.Cut(stderr, "stopping the guest"); strings.Count(after, "hostbuild run: ") != 1 {
		t.Errorf("after \"stopping the guest\" run printed more than its outcome line:\n%s", after)
	}
}

var reQEMUPid = regexp.MustCompile(`qemu started \(pid (\d+)\)`)

// QEMU sent SIGTERM by someone else (an admin, systemd stopping a unit)
// exits with status 0 at once: the guest did not power off, and run must
// not say it did.
func TestRunQEMUTerminatedIsNotClean(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRun(t, f)
	m := reQEMUPid.FindStringSubmatch(r.stderr.String())
	if m == nil {
		t.Fatalf("no QEMU pid in run's stderr:\n%s", r.stderr.String())
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	if events != "signal terminated\n" {
		t.Fatalf("the fake QEMU recorded %q, want the SIGTERM", events)
	}
	stderr := r.stderr.String()
	if code != exitRunKilled {
		t.Errorf("hostbuild run exit status %d, want %d\nstderr:\n%s", code, exitRunKilled, stderr)
	}
	for _, want := range []string{"QEMU ended without the guest powering off (qemu: qemu-system-x86_64: terminating on signal 15", "QEMU was sent the signal itself", "KillMode=mixed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("run's stderr does not contain %q:\n%s", want, stderr)
		}
	}
}

// run reads the outcome from the console as it goes, not from the runner's
// window of recent lines: a fact logged long before the end (here Katana's
// exit with status 7, then more console lines than the window holds) still
// decides the exit status.
func TestRunOutcomeFromWholeConsole(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRun(t, f, fmt.Sprintf("%s=%d", fakeQEMUFloodEnv, 3*qemu.KeepLines))
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, events := r.wait(t)
	if events != "system_powerdown\n" {
		t.Errorf("the fake QEMU recorded %q, want system_powerdown", events)
	}
	if code != exitRunKatana {
		t.Errorf("hostbuild run exit status %d, want %d (katana exited with status 7)\nstderr:\n%s", code, exitRunKatana, r.stderr.String())
	}
}

// A manifest written before cmdlines were checked for OVMF (here one longer
// than OVMF leaves room for) still boots plain, where nothing is added to
// the cmdline, and is refused in SEV-SNP mode, naming why.
func TestRunOldManifestCmdline(t *testing.T) {
	f := newRunFixture(t)
	b, err := os.ReadFile(f.manifest)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["cmdline"] = "console=ttyS0 panic=-1 " + strings.Repeat("x", 2020)
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(f.manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"run", "--dry-run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}
	if _, stderr, code := runHB(t, append(common, "--plain")...); code != exitOK {
		t.Errorf("plain: exit %d, want 0\n%s", code, stderr)
	}
	_, stderr, code := runHB(t, append(common, "--ovmf", f.ovmf, "--cid", "3")...)
	if code != exitFail || !strings.Contains(stderr, "refusing this manifest in SEV-SNP mode") || !strings.Contains(stderr, "at most 2033") {
		t.Errorf("SEV-SNP: exit %d, want 1 (an error of the manifest itself, not a file that differs from it: 3) and a refusal naming the cmdline's length\n%s", code, stderr)
	}
}

// The lowest values run accepts: one vCPU (in the manifest's matrix) and
// the minimum memory.
func TestRunLowestAcceptedValues(t *testing.T) {
	f := newRunFixture(t)
	base := []string{"run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}
	for _, tt := range []struct {
		args []string
		want string // in the printed argv
	}{
		{[]string{"--vcpus", "1"}, "-smp 1"},
		{[]string{"--memory", "64"}, "-m 64"},
	} {
		stdout, stderr, code := runHB(t, append(base, tt.args...)...)
		if code != exitOK || !strings.Contains(stdout, tt.want) {
			t.Errorf("run %q: exit %d, stdout %q; want 0 and %q\n%s", tt.args, code, stdout, tt.want, stderr)
		}
	}
}

// The guest's console is the guest's text: with --console, and in the
// last lines an error quotes, run escapes its control sequences (a
// window title, a screen clear, C1) instead of handing them to the
// operator's terminal.
func TestRunEscapesGuestText(t *testing.T) {
	f := newRunFixture(t)
	spoof := `printf 'katana log: \033]0;PWNED\007\033[2J\302\233x\n' >>"$log"
`
	for _, tc := range []struct {
		name, body string
		args       []string
	}{
		{"--console", spoof + fakeCleanBoot, []string{"--console"}},
		{"last lines of a boot that never got ready", spoof + "sleep 3\n", []string{"--ready-timeout", "1s"}},
		// The readiness line, which run prints on stdout, is the guest's too.
		{"the ready line", `printf '[    0.900000] guestinit: katana started pid=1 katana log: \033]0;PWNED\007\033[2J\302\233x\n' >>"$log"
` + fakeCleanBoot, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", shortTempDir(t)) // run's scratch folder (a serial log it keeps)
			fake := fakeQEMUScript(t, t.TempDir(), tc.body)
			args := append([]string{"run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--plain", "--qemu", fake, "--stop-timeout", "60s"}, tc.args...)
			stdout, stderr, _ := runHB(t, args...)
			if !strings.Contains(stdout+stderr, `katana log: \x1b]0;PWNED\a\x1b[2J\u009bx`) {
				t.Errorf("the guest's line is not shown escaped:\n%s%s", stdout, stderr)
			}
			if i := strings.IndexFunc(stdout+stderr, func(r rune) bool { return r == 0x1b || r == 0x07 || r == 0x9b }); i >= 0 {
				t.Errorf("output carries a raw control character at byte %d: %q", i, stdout+stderr)
			}
		})
	}
}

// A host port given twice to --forward is decided by the flags alone: a
// usage error (exit 2) naming the flag, before any file is read.
func TestRunDuplicateForwardIsUsageError(t *testing.T) {
	f := newRunFixture(t)
	for _, cmd := range []string{"run", "libvirt"} {
		t.Run(cmd, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			args := []string{cmd, "--manifest", f.manifest, "--ovmf", f.ovmf, "--cid", "3", "--kernel", f.kernel, "--initrd", f.initrd,
				"--forward", "8545:8545", "--forward", "127.0.0.1:8545:9000"}
			if cmd == "run" {
				args = append(args, "--qemu", filepath.Join(f.dir, "no-qemu"))
			}
			_, stderr, code := runHB(t, args...)
			if code != exitUsage || !strings.Contains(stderr, "--forward 127.0.0.1:8545:9000") {
				t.Errorf("exit %d, stderr %q; want exit %d naming --forward 127.0.0.1:8545:9000", code, stderr, exitUsage)
			}
		})
	}
}

// --kernel and --initrd swapped: run and libvirt say that the kernel is no
// bzImage (before the manifest refuses the files), not only "does not match".
func TestLaunchWarnsKernelNotBzImage(t *testing.T) {
	f := newRunFixture(t)
	for _, args := range [][]string{
		{"run", "--plain", "--dry-run", "--manifest", f.manifest, "--kernel", f.initrd, "--initrd", f.kernel},
		{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.initrd, "--initrd", f.kernel, "--cid", "3", "-o", filepath.Join(t.TempDir(), "d.xml")},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, stderr, code := runHB(t, args...)
			want := "hostbuild " + args[0] + ": warning: --kernel " + f.initrd + ": not a Linux bzImage"
			if code == exitOK || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--kernel and --initrd swapped?") {
				t.Errorf("exit %d, stderr %q; want a failure and %q", code, stderr, want)
			}
		})
	}
}

// README: "a folder, a device node, a FIFO or `-` is refused before any
// work" and --serial-log is "checked before anything else, --dry-run too".
func TestRunDryRunSerialLogDash(t *testing.T) {
	f := newRunFixture(t)
	stdout, stderr, code := runHB(t, "run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--serial-log", "-")
	if code != exitFail || !strings.Contains(stderr, "--serial-log -:") || stdout != "" {
		t.Errorf("--dry-run --serial-log -: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and the '-' refusal", code, stdout, stderr)
	}
}

// attest --cid 4294967295 (VMADDR_CID_ANY) is refused, but the message
// says "--cid must be at least 3", which 4294967295 is.
func TestAttestCIDRangeMessage(t *testing.T) {
	_, stderr, code := runHB(t, "attest", "--cid", "4294967295", "--manifest", "m.json", "--min-tcb", "none")
	if code != exitUsage || !strings.Contains(stderr, "4294967294") || strings.Contains(stderr, "--cid must be at least 3 and") {
		t.Errorf("exit %d, stderr:\n%s\nwant the CID range 3 to 4294967294 named for --cid", code, stderr)
	}
}

// failWriter fails every write, as a full disk does.
type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("no space left on device") }

// run --dry-run prints the QEMU command line on stdout (its output): a
// failed write must not exit 0, as for every other command's stdout.
func TestRunDryRunStdoutError(t *testing.T) {
	f := newRunFixture(t)
	var errb strings.Builder
	code := run(context.Background(), []string{"run", "--dry-run", "--plain", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}, failWriter{}, &errb)
	if code == exitOK {
		t.Errorf("run --dry-run with a failing stdout: exit 0, stderr:\n%s", errb.String())
	}
}

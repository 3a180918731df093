package doctor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

// fakeHost builds a /dev + /sys tree under a temp root. Character devices
// are symlinks to /dev/null (os.Stat follows them), so no mknod is needed.
func fakeHost(t *testing.T, devs []string, snp string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if err := os.Symlink("/dev/null", filepath.Join(root, "dev", d)); err != nil {
			t.Fatal(err)
		}
	}
	if snp != "" {
		p := filepath.Join(root, "sys/module/kvm_amd/parameters")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if snp != "no-param" {
			if err := os.WriteFile(filepath.Join(p, "sev_snp"), []byte(snp+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// fakeQEMU writes a script answering --version and -object help.
func fakeQEMU(t *testing.T, version string, objects ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	script := "#!/bin/sh\ncase $1 in\n--version) echo 'QEMU emulator version " + version + "'; echo 'Copyright (c) 2003-2024';;\n" +
		"-object) echo 'List of user creatable objects:'"
	for _, o := range objects {
		script += "; echo '  " + o + "'"
	}
	script += ";;\nesac\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fullImage is the fixture (an AmdSevX64 build's last 4 KiB) behind 0xff
// fill to 4 MiB, as a whole OVMF.fd is: QEMU's -bios takes only a
// multiple of 64 KiB, and the measurement depends on the footer alone.
func fullImage(t *testing.T, name string) string {
	t.Helper()
	suffix, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".fd")
	if err := os.WriteFile(p, append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("SHARED_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	p := filepath.Join(dir, "measure", "fixtures", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: %v; set SHARED_DIR to the shared folder (make test does)", err)
	}
	return p
}

// snpVMTypes is a host KVM's answer with KVM_X86_SNP_VM (bit 4) among
// the default, SEV and SEV-ES types.
func snpVMTypes(string) (uint64, error) { return 0x1d, nil }

// milanStatus is an SNP_PLATFORM_STATUS as a Milan host's firmware
// answers it: API 1.55 build 21, initialised, reports signed.
func milanStatus(string) (SNPStatus, error) {
	return SNPStatus{APIMajor: 1, APIMinor: 55, Build: 21, State: 1, RMPInitialised: true,
		CurrentTCB: 0xd315000000000004, ReportedTCB: 0xd315000000000004}, nil
}

func TestRun(t *testing.T) {
	amdsev := fullImage(t, "ovmf_AmdSev_suffix.bin")
	plainOVMF := fixture(t, "ovmf_OvmfX64_suffix.bin")
	allDevs := []string{"sev", "kvm", "vhost-vsock"}
	goodQEMU := fakeQEMU(t, "9.2.0", "sev-guest", "sev-snp-guest", "memory-backend-memfd")
	tests := []struct {
		name string
		o    Options
		want []Status
	}{
		{
			name: "snp host",
			o:    Options{Root: fakeHost(t, allDevs, "Y"), QEMU: goodQEMU, OVMF: amdsev, VMTypes: snpVMTypes, SNPStatus: milanStatus},
			want: []Status{Pass, Pass, Pass, Pass, Pass, Pass, Pass, Pass, Pass, Skip},
		},
		{
			name: "snp host, no ovmf given",
			o:    Options{Root: fakeHost(t, allDevs, "1"), QEMU: goodQEMU, VMTypes: snpVMTypes, SNPStatus: milanStatus},
			want: []Status{Pass, Pass, Pass, Pass, Pass, Pass, Pass, Skip, Pass, Skip},
		},
		{
			name: "no sev, old qemu, debian ovmf",
			o: Options{Root: fakeHost(t, []string{"kvm"}, "N"), QEMU: fakeQEMU(t, "7.2.22", "sev-guest"), OVMF: plainOVMF,
				VMTypes: func(string) (uint64, error) { return 0x3, nil }}, // default and software-protected VMs only
			want: []Status{Fail, Fail, Skip, Pass, Fail, Fail, Fail, Fail, Fail, Skip},
		},
		{
			// A device this user cannot open fails like a missing one.
			name: "/dev/kvm not accessible",
			o: Options{Root: fakeHost(t, allDevs, "Y"), QEMU: goodQEMU, OVMF: amdsev, SNPStatus: milanStatus,
				Access: func(p string) error {
					if strings.HasSuffix(p, "/dev/kvm") {
						return syscall.EACCES
					}
					return nil
				}},
			want: []Status{Pass, Pass, Pass, Fail, Skip, Pass, Pass, Pass, Pass, Skip},
		},
		{
			name: "kvm_amd without sev_snp parameter, qemu missing",
			o:    Options{Root: fakeHost(t, nil, "no-param"), QEMU: filepath.Join(t.TempDir(), "no-qemu")},
			want: []Status{Fail, Fail, Skip, Fail, Skip, Fail, Fail, Skip, Fail, Skip},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Run(context.Background(), tt.o)
			var got []Status
			for _, r := range rs {
				got = append(got, r.Status)
				if r.Status == Fail && r.Fix == "" {
					t.Errorf("check %q failed without a fix: %s", r.Name, r.Detail)
				}
				if r.Detail == "" {
					t.Errorf("check %q has no detail", r.Name)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s\nresults: %+v", diff, rs)
			}
			wantFailed := false
			for _, s := range tt.want {
				wantFailed = wantFailed || s == Fail
			}
			if Failed(rs) != wantFailed {
				t.Errorf("Failed() = %v, want %v", Failed(rs), wantFailed)
			}
		})
	}
}

// The processor check: Milan and Genoa pass, Turin fails (attest refuses
// its reports), anything older or not AMD fails.
func TestCheckCPU(t *testing.T) {
	for _, tc := range []struct {
		cpuinfo string
		want    Status
		detail  string
	}{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n", Pass, "AuthenticAMD, family 25 (EPYC 7003 Milan or 9004 Genoa)"},
		{"vendor_id\t: AuthenticAMD\ncpu family\t: 26\n", Fail, "(EPYC 9005 Turin): the guest launches, but hostbuild attest refuses"},
		{"vendor_id\t: AuthenticAMD\ncpu family\t: 23\n", Fail, "AuthenticAMD, family 23"},
		{"vendor_id\t: GenuineIntel\ncpu family\t: 6\n", Fail, "GenuineIntel, family 6"},
		{"", Skip, ""},
	} {
		root := t.TempDir()
		if tc.cpuinfo != "" {
			os.MkdirAll(filepath.Join(root, "proc"), 0o755)
			os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte(tc.cpuinfo), 0o644)
		}
		r := checkCPU(root)
		if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) || (r.Status == Fail) != (r.Fix != "") {
			t.Errorf("cpuinfo %q: %+v, want %s and %q", tc.cpuinfo, r, tc.want, tc.detail)
		}
	}
}

func TestCheckSNPParamDetails(t *testing.T) {
	tests := []struct {
		snp, detail string
	}{
		{"", "kvm_amd is not loaded"},
		{"no-param", "no sev_snp parameter"},
		{"N", "sev_snp=N"},
		{"Y", "sev_snp=Y"},
	}
	for _, tt := range tests {
		r := checkSNPParam(fakeHost(t, nil, tt.snp))
		if !contains(r.Detail, tt.detail) {
			t.Errorf("sev_snp %q: detail %q, want it to contain %q", tt.snp, r.Detail, tt.detail)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// script writes an executable shell script with body.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// result returns the result of the check whose name starts with prefix.
func result(t *testing.T, rs []Result, prefix string) Result {
	t.Helper()
	for _, r := range rs {
		if strings.HasPrefix(r.Name, prefix) {
			return r
		}
	}
	t.Fatalf("no check named %q... in %+v", prefix, rs)
	return Result{}
}

// The QEMU checks: 9.1 is the first release that passes, the version is
// shown as QEMU prints it, and a QEMU that fails says why.
func TestQEMUChecks(t *testing.T) {
	tests := []struct {
		name      string
		bin       string
		ver, obj  Status
		verDetail string // {bin} is the binary
		fix       string // part of the version check's fix
	}{
		{"9.1, the first", fakeQEMU(t, "9.1", "sev-snp-guest"), Pass, Pass, "{bin} is QEMU 9.1", ""},
		{"9.0.5", fakeQEMU(t, "9.0.5", "sev-snp-guest"), Fail, Pass, "{bin} is QEMU 9.0.5", "install QEMU 9.1 or newer"},
		{"10.0.2", fakeQEMU(t, "10.0.2", "sev-snp-guest"), Pass, Pass, "{bin} is QEMU 10.0.2", ""},
		{"8.2.2", fakeQEMU(t, "8.2.2", "sev-snp-guest"), Fail, Pass, "{bin} is QEMU 8.2.2", "install QEMU 9.1 or newer"},
		{"no version", script(t, "echo 'not a qemu'; echo '  sev-snp-guest'"), Fail, Pass,
			`cannot read a version from "not a qemu"`, "check that {bin} is QEMU's qemu-system-x86_64"},
		{"fails, saying why", script(t, "echo 'qemu: unsupported machine' >&2; echo 'more' >&2; exit 1"), Fail, Fail,
			"running {bin} --version: exit status 1: qemu: unsupported machine", "install QEMU 9.1 or newer"},
		{"fails silently", script(t, "exit 3"), Fail, Fail, "running {bin} --version: exit status 3", "install QEMU 9.1 or newer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := Run(context.Background(), Options{Root: t.TempDir(), QEMU: tc.bin})
			ver, obj := result(t, rs, "QEMU 9.1 or newer"), result(t, rs, "QEMU knows the sev-snp-guest object")
			if want := strings.ReplaceAll(tc.verDetail, "{bin}", tc.bin); ver.Status != tc.ver || ver.Detail != want {
				t.Errorf("version check: %s %q, want %s %q", ver.Status, ver.Detail, tc.ver, want)
			}
			if want := strings.ReplaceAll(tc.fix, "{bin}", tc.bin); !strings.Contains(ver.Fix, want) || (tc.ver == Pass) != (ver.Fix == "") {
				t.Errorf("version check's fix %q, want one with %q", ver.Fix, want)
			}
			if obj.Status != tc.obj {
				t.Errorf("object check: %s %q, want %s", obj.Status, obj.Detail, tc.obj)
			}
		})
	}
}

// A --ovmf path that does not exist: the fix says to check the path first,
// not only which firmware to build.
func TestCheckOVMFMissing(t *testing.T) {
	r := checkOVMF(filepath.Join(t.TempDir(), "OVMF.fd"))
	if r.Status != Fail || !strings.Contains(r.Detail, "no such file") || !strings.HasPrefix(r.Fix, "check the --ovmf path: ") {
		t.Errorf("missing OVMF: %+v", r)
	}
	r = checkOVMF(fixture(t, "ovmf_OvmfX64_suffix.bin"))
	if r.Status != Fail || strings.Contains(r.Fix, "check the --ovmf path") {
		t.Errorf("OvmfX64 image: %+v, want a fix about the firmware, not the path", r)
	}
	// The AmdSevX64 image's last 4 KiB alone: measurable, but no -bios.
	r = checkOVMF(fixture(t, "ovmf_AmdSev_suffix.bin"))
	if r.Status != Fail || !strings.Contains(r.Detail, "not a multiple of 64 KiB") || !strings.Contains(r.Fix, "whole OVMF.fd") {
		t.Errorf("4 KiB of an AmdSevX64 image: %+v, want the -bios size named", r)
	}
	full := fullImage(t, "ovmf_AmdSev_suffix.bin")
	if r = checkOVMF(full); r.Status != Pass {
		t.Errorf("4 MiB AmdSevX64 image: %+v, want a pass", r)
	}
	// Without its SEV-ES reset block (the GUID changed), measure refuses
	// it, and so does doctor.
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, ovmf.SEVESResetBlockGUID[:])
	if i < 0 {
		t.Fatal("no SEV_ES_RESET_BLOCK GUID in the fixture")
	}
	b[i] ^= 0xff
	noReset := filepath.Join(t.TempDir(), "OVMF.fd")
	if err := os.WriteFile(noReset, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r = checkOVMF(noReset); r.Status != Fail || !strings.Contains(r.Detail, "SEV_ES_RESET_BLOCK") {
		t.Errorf("image without a reset block: %+v, want measure's refusal", r)
	}
}

// KVM's VM types decide whether QEMU can create an SEV-SNP guest, whatever
// kvm_amd's sev_snp parameter says; a KVM that cannot be asked fails too.
func TestCheckSNPVMType(t *testing.T) {
	for _, tc := range []struct {
		types uint64
		err   error
		want  Status
		say   string
	}{
		{0x1d, nil, Pass, "VM types 0x1d"},
		{0x10, nil, Pass, "VM types 0x10"},
		{0xd, nil, Fail, "without KVM_X86_SNP_VM (bit 4)"},
		{0, nil, Fail, "KVM's VM types are 0x0"}, // a kernel before KVM_CAP_VM_TYPES answers 0
		{0, syscall.ENOTTY, Fail, "KVM_CAP_VM_TYPES"},
	} {
		r := checkSNPVMType(Options{VMTypes: func(string) (uint64, error) { return tc.types, tc.err }}, true)
		if r.Status != tc.want || !strings.Contains(r.Detail, tc.say) || (r.Status == Fail && r.Fix == "") {
			t.Errorf("types %#x, error %v: %+v, want %s saying %q", tc.types, tc.err, r, tc.want, tc.say)
		}
	}
	if r := checkSNPVMType(Options{VMTypes: func(string) (uint64, error) { t.Error("asked without /dev/kvm"); return 0, nil }}, false); r.Status != Skip {
		t.Errorf("without /dev/kvm: %+v, want skipped", r)
	}
}

// The firmware check: its decoding of struct sev_user_data_snp_status,
// what it shows (the TCB as --min-tcb takes it), and when it fails.
func TestCheckSNPFirmware(t *testing.T) {
	raw := make([]byte, SNPStatusSize)
	raw[0], raw[1], raw[2], raw[3] = 1, 55, 1, 1         // API 1.55, INIT, RMP initialised
	copy(raw[4:], []byte{21, 0, 0, 0})                   // build 21
	copy(raw[8:], []byte{0b101, 0, 0, 0})                // MASK_CHIP_ID, VLEK
	copy(raw[12:], []byte{2, 0, 0, 0})                   // 2 guests
	copy(raw[16:], []byte{4, 0, 0, 0, 0, 0, 0x16, 0xd5}) // current: bl=4 snp=22 ucode=213
	copy(raw[24:], []byte{3, 0, 0, 0, 0, 0, 0x15, 0xd3}) // reported: bl=3 snp=21 ucode=211
	st, err := ParseSNPStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := SNPStatus{APIMajor: 1, APIMinor: 55, State: 1, RMPInitialised: true, Build: 21, MaskChipID: true, VLEK: true,
		Guests: 2, CurrentTCB: 0xd516000000000004, ReportedTCB: 0xd315000000000003}
	if st != want {
		t.Fatalf("ParseSNPStatus = %+v, want %+v", st, want)
	}
	if _, err := ParseSNPStatus(raw[:31]); err == nil {
		t.Error("ParseSNPStatus took 31 bytes")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte("vendor_id\t: AuthenticAMD\ncpu family\t: 25\n"), 0o644)
	var asked string
	o := Options{Root: root, SNPStatus: func(p string) (SNPStatus, error) { asked = p; return st, nil }}
	r := checkSNPFirmware(o, true, true)
	for _, w := range []string{
		"API 1.55 build 21, platform INIT, RMP initialised true, 2 guests",
		"REPORTED_TCB 0xd315000000000003 (bl=3,tee=0,snp=21,ucode=211)",
		"installed firmware's TCB is 0xd516000000000004 (bl=4,tee=0,snp=22,ucode=213)",
		"MASK_CHIP_ID set", "--certs", "a VLEK is loaded",
	} {
		if !strings.Contains(r.Detail, w) {
			t.Errorf("detail lacks %q: %s", w, r.Detail)
		}
	}
	if r.Status != Pass || asked != filepath.Join(root, "/dev/sev") {
		t.Errorf("status %s, asked %q; want a pass from %s/dev/sev", r.Status, asked, root)
	}
	// Turin's layout is another: not decoded as Milan's.
	os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte("vendor_id\t: AuthenticAMD\ncpu family\t: 26\n"), 0o644)
	if r := checkSNPFirmware(o, true, true); !strings.Contains(r.Detail, "0xd315000000000003 (Turin layout, not decoded)") {
		t.Errorf("Turin host: %s", r.Detail)
	}
	// Unsigned reports: attest refuses them, so doctor fails.
	st.MaskChipKey = true
	if r := checkSNPFirmware(o, true, true); r.Status != Fail || !strings.Contains(r.Fix, "MASK_CHIP_KEY") {
		t.Errorf("MASK_CHIP_KEY: %+v, want a failure naming it", r)
	}
	// A kernel that has not initialised SNP answers EINVAL; the firmware's
	// own refusal carries its status code.
	for _, tc := range []struct {
		err      error
		say, fix string
	}{
		{&FirmwareError{Errno: syscall.EINVAL}, "SNP_PLATFORM_STATUS: invalid argument", "EINVAL means the SNP firmware is not initialised"},
		{&FirmwareError{Errno: syscall.EIO, Status: 0x1a}, "input/output error (firmware status 0x1a)", "kvm_amd sev_snp=1"},
		{&FirmwareError{Errno: syscall.EACCES}, "permission denied", "read access to /dev/sev"},
	} {
		o.SNPStatus = func(string) (SNPStatus, error) { return SNPStatus{}, tc.err }
		r := checkSNPFirmware(o, true, true)
		if r.Status != Fail || !strings.Contains(r.Detail, tc.say) || !strings.Contains(r.Fix, tc.fix) {
			t.Errorf("%v: %+v, want a failure saying %q, fix with %q", tc.err, r, tc.say, tc.fix)
		}
	}
	o.SNPStatus = func(string) (SNPStatus, error) { t.Error("asked without /dev/sev"); return SNPStatus{}, nil }
	if r := checkSNPFirmware(o, false, true); r.Status != Skip {
		t.Errorf("without /dev/sev: %+v, want skipped", r)
	}
	if r := checkSNPFirmware(o, true, false); r.Status != Skip || !strings.Contains(r.Detail, "not asked while kvm_amd's sev_snp is not enabled") {
		t.Errorf("without kvm_amd's sev_snp: %+v, want skipped, not asked", r)
	}
}

// The real ioctl reaches the device: /dev/null refuses it as no SEV
// device (ENOTTY), which the check reports with the errno.
func TestReadSNPStatusRealIoctl(t *testing.T) {
	_, err := readSNPStatus("/dev/null")
	var fe *FirmwareError
	if !errors.As(err, &fe) || fe.Errno != syscall.ENOTTY {
		t.Fatalf("readSNPStatus(/dev/null) = %v, want ENOTTY from the ioctl", err)
	}
	if _, err := readSNPStatus(filepath.Join(t.TempDir(), "sev")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing device: %v", err)
	}
}

// A --qemu wrapper whose child keeps QEMU's output open (a daemon it
// starts, a logger) must not hold the check until that child ends: the
// probe waits probeWaitDelay for the output after the exit, then reads
// what it has.
func TestCheckQEMUChildHoldingOutput(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	p := filepath.Join(dir, "qemu")
	script := "#!/bin/sh\nsleep 60 & echo $! >> " + pids + "\ncase $1 in\n--version) echo 'QEMU emulator version 10.0.2';;\n-object) echo '  sev-snp-guest';;\nesac\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b, _ := os.ReadFile(pids)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	res := checkQEMU(context.Background(), p)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("checkQEMU took %v: it waited for the wrapper's child, not for QEMU", d.Round(time.Second))
	}
	for _, r := range res {
		if r.Status != Pass {
			t.Errorf("%s: %v %s, want a pass (the output was read)", r.Name, r.Status, r.Detail)
		}
	}
}

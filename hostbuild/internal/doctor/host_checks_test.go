package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The firmware check's skip says which input is missing: /dev/sev, or
// kvm_amd's sev_snp (fails for: doctor.go:107 with checkSNPFirmware's two
// flags swapped; the statuses alone do not tell).
func TestFirmwareSkipReason(t *testing.T) {
	noQEMU := filepath.Join(t.TempDir(), "no-qemu")
	for _, tc := range []struct {
		name string
		devs []string
		snp  string
		say  string
	}{
		{"/dev/sev, sev_snp=N", []string{"sev"}, "N", "not asked while kvm_amd's sev_snp is not enabled"},
		{"no /dev/sev, sev_snp=Y", nil, "Y", "/dev/sev cannot be opened"},
	} {
		o := Options{Root: fakeHost(t, tc.devs, tc.snp), QEMU: noQEMU,
			SNPStatus: func(string) (SNPStatus, error) { t.Error("asked the firmware"); return SNPStatus{}, nil }}
		r := result(t, Run(context.Background(), o), "SEV-SNP firmware")
		if r.Status != Skip || !strings.Contains(r.Detail, tc.say) {
			t.Errorf("%s: %+v, want skipped saying %q", tc.name, r, tc.say)
		}
	}
}

// A processor family newer than Turin fails with its own fix, not the one
// for processors too old (fails for: doctor.go:137 `family > 26` ->
// `family > 27`).
func TestCPUNewerThanKnown(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte("vendor_id\t: AuthenticAMD\ncpu family\t: 27\n"), 0o644)
	if r := checkCPU(root); r.Status != Fail || !strings.Contains(r.Fix, "newer than this tool knows") {
		t.Errorf("family 27: %+v, want a failure saying it is newer than known", r)
	}
}

// cpuInfo reads the first processor's vendor and family, as documented
// (fails for: doctor.go:159 without `&& vendor == ""`, doctor.go:161 without
// `&& family < 0`, which take the last processor's).
func TestCPUInfoFirstProcessor(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte(
		"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\n"+
			"processor\t: 1\nvendor_id\t: OtherVendor\ncpu family\t: 6\n"), 0o644)
	if v, f, err := cpuInfo(root); err != nil || v != "AuthenticAMD" || f != 25 {
		t.Errorf("cpuInfo = %q, %d, %v; want the first processor's AuthenticAMD, 25", v, f, err)
	}
}

// A device path that is a regular file or a block device fails (a file
// left at /dev/kvm by a broken install, say): only a character device
// passes (fails for: doctor.go:185 the not-a-character-device case dropped,
// or fs.ModeCharDevice -> fs.ModeDevice).
func TestCharDevRefusesOthers(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev/kvm"), nil, 0o666)
	paths := []string{"/dev/kvm"}
	if fi, err := os.Stat("/dev/loop0"); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		os.Symlink("/dev/loop0", filepath.Join(root, "dev/sev"))
		paths = append(paths, "/dev/sev")
	}
	o := Options{Root: root, Access: func(string) error { return nil }}
	for _, p := range paths {
		if r := checkCharDev(o, p, p, "fix"); r.Status != Fail || !strings.Contains(r.Detail, "not a character device") {
			t.Errorf("%s: %+v, want a failure: not a character device", p, r)
		}
	}
}

// An sev_snp parameter that cannot be read is a failure with a fix, not a
// skip or a pass (fails for: doctor.go:214 Fail -> Skip).
func TestSNPParamUnreadable(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys/module/kvm_amd/parameters/sev_snp"), 0o755) // read(2) of a folder: EISDIR
	if r := checkSNPParam(root); r.Status != Fail || !strings.Contains(r.Fix, "check /sys is mounted") {
		t.Errorf("unreadable sev_snp: %+v, want a failure", r)
	}
}

// The real KVM_CHECK_EXTENSION(KVM_CAP_VM_TYPES) on this host's /dev/kvm:
// every KVM with the capability (Linux 6.10+) creates default VMs, bit 0
// (fails for: doctor.go:74 kvmCapVMTypes 235 -> 236, another capability).
func TestKVMVMTypesRealIoctl(t *testing.T) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Skip(err)
	}
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	parts := strings.SplitN(string(rel), ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	if major < 6 || major == 6 && minor < 10 {
		t.Skipf("kernel %s predates KVM_CAP_VM_TYPES; runs on a Linux 6.10+ host with /dev/kvm", rel)
	}
	types, err := kvmVMTypes("/dev/kvm")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		t.Skipf("no /dev/kvm to ask: %v; runs on a Linux 6.10+ host with /dev/kvm readable", err)
	}
	if err != nil || types&1 == 0 {
		t.Errorf("kvmVMTypes(/dev/kvm) = %#x, %v; want KVM_X86_DEFAULT_VM (bit 0) among them", types, err)
	}
}

// The first line of a QEMU's stderr is its first non-blank one (fails for:
// doctor.go:345 without strings.TrimSpace).
func TestFirstLineSkipsBlank(t *testing.T) {
	if got := firstLine("\n  qemu: unsupported machine\nmore\n"); got != "qemu: unsupported machine" {
		t.Errorf("firstLine = %q", got)
	}
}

// A whole (4 MiB) Debian OvmfX64, which -bios takes and whose metadata
// passes the SNP checks, fails for want of the kernel-hashes table: QEMU
// would boot the kernel unmeasured (fails for: doctor.go:322
// CheckDirectBoot's error ignored; the existing test gives only the 4 KiB
// suffix, which fails on its size first).
func TestCheckOVMFNoKernelHashes(t *testing.T) {
	r := checkOVMF(fullImage(t, "ovmf_OvmfX64_suffix.bin"))
	if r.Status != Fail || !strings.Contains(r.Fix, "unmeasured") {
		t.Errorf("4 MiB OvmfX64 image: %+v, want the missing kernel-hashes table named", r)
	}
}

// ParseSNPStatus takes exactly the 32 bytes of the struct, and only bit 0
// of byte 3 says the RMP is initialised (the other 7 are reserved)
// (fails for: snpstatus.go:38 `!=` -> `<`, snpstatus.go:47 `b[3]&1 != 0` ->
// `b[3] != 0`).
func TestParseSNPStatusBounds(t *testing.T) {
	if _, err := ParseSNPStatus(make([]byte, SNPStatusSize+1)); err == nil {
		t.Error("ParseSNPStatus took 33 bytes")
	}
	raw := make([]byte, SNPStatusSize)
	raw[3] = 0xfe
	if st, err := ParseSNPStatus(raw); err != nil || st.RMPInitialised {
		t.Errorf("reserved bits of byte 3 set: %+v, %v; want RMP not initialised", st, err)
	}
}

// The kernel's refusal before the firmware saw the command carries no
// firmware status: the error is the errno alone (fails for: snpstatus.go:111
// the status read from cmd[8:], the upper half of the data pointer).
func TestReadSNPStatusNoFirmwareStatus(t *testing.T) {
	_, err := readSNPStatus("/dev/null")
	var fe *FirmwareError
	if !errors.As(err, &fe) || fe.Status != 0 || strings.Contains(err.Error(), "firmware status") {
		t.Errorf("readSNPStatus(/dev/null) = %#v (%v), want ENOTTY with no firmware status", fe, err)
	}
}

// EPERM from /dev/sev is fixed as EACCES is, with access to the device
// (fails for: snpstatus.go:141 without `|| errors.Is(err, unix.EPERM)`).
func TestSNPStatusEPERM(t *testing.T) {
	o := Options{Root: t.TempDir(), SNPStatus: func(string) (SNPStatus, error) { return SNPStatus{}, &FirmwareError{Errno: syscall.EPERM} }}
	if r := checkSNPFirmware(o, true, true); r.Status != Fail || !strings.Contains(r.Fix, "read access to /dev/sev") {
		t.Errorf("EPERM: %+v, want a fix about access to /dev/sev", r)
	}
}

// A plain, healthy firmware's detail has none of the notes for an unusual
// one, and a state the check does not know is shown by number (fails for:
// snpstatus.go:157, :160, :163 conditions -> true; :151 `state == ""` ->
// false).
func TestFirmwareDetailNotes(t *testing.T) {
	root := t.TempDir()
	st, _ := milanStatus("")
	o := Options{Root: root, SNPStatus: func(string) (SNPStatus, error) { return st, nil }}
	r := checkSNPFirmware(o, true, true)
	for _, no := range []string{"installed firmware's TCB", "MASK_CHIP_ID", "VLEK"} {
		if strings.Contains(r.Detail, no) {
			t.Errorf("detail has %q for a firmware without it: %s", no, r.Detail)
		}
	}
	if r.Status != Pass {
		t.Errorf("status %s, want a pass", r.Status)
	}
	st.State = 2
	if r := checkSNPFirmware(o, true, true); !strings.Contains(r.Detail, "platform state 2,") {
		t.Errorf("state 2: %s, want it shown by number", r.Detail)
	}
}

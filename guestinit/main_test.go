package main

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/modload"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Run as a test binary with GUESTINIT_TEST_MAIN=1, the test binary runs
// main() instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GUESTINIT_TEST_KATANA") == "term" {
		katanaHelper()
	}
	if mode := os.Getenv("GUESTINIT_SIGNALS_TEST"); mode != "" {
		signalsTestMode(mode)
	}
	if os.Getenv("GUESTINIT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Outside PID 1 the init must refuse before touching anything (mounts,
// reboot(2)): run by mistake on a host it would otherwise power it off.
func TestRefusesWhenNotPID1(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "GUESTINIT_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output %q", err, out)
	}
	if !strings.Contains(string(out), "guestinit: must run as PID 1") {
		t.Errorf("output %q lacks the refusal", out)
	}
}

// A full memory, which a guest too small for its initrd shows as "no space
// left on device" on the first file the init writes, is named as such.
func TestExplainNoSpace(t *testing.T) {
	err := explain(&os.PathError{Op: "open", Path: "/etc/resolv.conf.tmp", Err: unix.ENOSPC}, false)
	if !strings.Contains(err.Error(), "no space left on device (the guest's memory is full") || !errors.Is(err, unix.ENOSPC) {
		t.Errorf("explain(ENOSPC) = %v", err)
	}
	other := errors.New("eth0: no carrier")
	if got := explain(other, false); got != other {
		t.Errorf("explain(%v) = %v, want it unchanged", other, got)
	}
}

// The boot watchdog fires once its time has passed, and never after it is
// disarmed (the init disarms it as Katana is about to start).
func TestWatchBoot(t *testing.T) {
	fired := make(chan struct{}, 1)
	watchBoot(10*time.Millisecond, func() { fired <- struct{}{} })
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not fire")
	}
	// Disarmed before its time: it must never fire. The check counts only
	// when the disarm came within the 50 ms (this goroutine may be
	// descheduled that long on a loaded machine, and then the watchdog
	// rightly fires): try again otherwise, each try with a channel of its
	// own (a late try's watchdog may still fire).
	var disarmed chan struct{}
	for try := 0; disarmed == nil; try++ {
		if try == 20 {
			t.Fatal("never disarmed within 50 ms of arming in 20 tries: cannot check the disarm")
		}
		ch := make(chan struct{}, 1)
		armed := time.Now()
		disarm := watchBoot(50*time.Millisecond, func() { ch <- struct{}{} })
		disarm()
		if time.Since(armed) < 50*time.Millisecond {
			disarmed = ch
		}
	}
	select {
	case <-disarmed:
		t.Error("the watchdog fired after it was disarmed")
	case <-time.After(200 * time.Millisecond):
	}
	if bootDeadline < 5*time.Minute {
		t.Errorf("bootDeadline %v: a large payload under TCG takes a minute", bootDeadline)
	}
}

// sha256_ssse3 is left out only for a CPU its module_cpu_ids refuses, as
// the kernel's flags in /proc/cpuinfo tell.
func TestCPURefused(t *testing.T) {
	qemu64 := "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm pni cx16 x2apic hypervisor lahf_lm svm\nbugs\t\t: fxsave_leak\n\nprocessor\t: 1\nflags\t\t: fpu ssse3\n"
	for _, c := range []struct {
		name    string
		cpuinfo string
		refused bool
	}{
		{"qemu64", qemu64, true},
		{"ssse3", strings.Replace(qemu64, "pni ", "pni ssse3 ", 1), false},
		{"avx", strings.Replace(qemu64, "pni ", "pni avx ", 1), false},
		{"avx2", strings.Replace(qemu64, "pni ", "pni avx2 ", 1), false},
		{"sha_ni alone (a kernel after 6.1 loads it)", strings.Replace(qemu64, "pni ", "pni sha_ni ", 1), false},
		{"a flag that only contains one", strings.Replace(qemu64, "pni ", "pni avx512f xssse3 ", 1), true},
		{"no flags line", "processor\t: 0\n", false},
		{"unreadable", "", false},
	} {
		got := cpuRefused(cpuFlags([]byte(c.cpuinfo)))
		if _, ok := got["sha256_ssse3"]; ok != c.refused {
			t.Errorf("%s: cpuRefused = %v, want sha256_ssse3 refused %v", c.name, got, c.refused)
		}
	}
	// aesni_intel wants AES-NI (Linux 6.1's aesni_cpu_id), and PCLMULQDQ
	// for its AES-GCM.
	for _, c := range []struct {
		name    string
		cpuinfo string
		want    []string
	}{
		{"qemu64", qemu64, []string{"aesni_intel", "sha256_ssse3"}},
		{"aes", strings.Replace(qemu64, "pni ", "pni pclmulqdq aes ", 1), []string{"sha256_ssse3"}},
		{"aes without pclmulqdq", strings.Replace(qemu64, "pni ", "pni aes ", 1), []string{"aesni_intel", "sha256_ssse3"}},
		{"EPYC-v4's", strings.Replace(qemu64, "pni ", "pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx ", 1), []string{}},
		{"a flag that only contains it", strings.Replace(qemu64, "pni ", "pni vaes aes_ni ssse3 ", 1), []string{"aesni_intel"}},
		{"unreadable", "", nil},
	} {
		got := slices.Sorted(maps.Keys(cpuRefused(cpuFlags([]byte(c.cpuinfo)))))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: cpuRefused refuses %q, want %q", c.name, got, c.want)
		}
	}
}

// procCrypto is /proc/crypto of a Linux 6.1 SEV-SNP guest in part, once
// sev-guest probed: without aesni_intel, the template's instance that
// sev-guest holds (refcnt 2); with it, aesni_intel's AES-GCM held and no
// instance.
func procCrypto(withAESNI bool) string {
	other := "name         : sha256\ndriver       : sha256-generic\nmodule       : kernel\npriority     : 500\nrefcnt       : 3\n\n"
	if withAESNI {
		return "name         : __gcm(aes)\ndriver       : __generic-gcm-aesni\nmodule       : aesni_intel\npriority     : 400\nrefcnt       : 2\ninternal     : yes\n\n" +
			"name         : gcm(aes)\ndriver       : generic-gcm-aesni\nmodule       : aesni_intel\npriority     : 400\nrefcnt       : 2\nselftest     : passed\ninternal     : no\ntype         : aead\n\n" + other
	}
	return "name         : gcm(aes)\ndriver       : gcm_base(ctr(aes-generic),ghash-generic)\nmodule       : gcm\npriority     : 100\nrefcnt       : 2\nselftest     : passed\ninternal     : no\ntype         : aead\n\n" + other
}

// The init names the AES-GCM sev-guest seals its messages with, in an
// SEV-SNP guest only, and refuses a table-based one.
func TestSEVGuestCipher(t *testing.T) {
	// bound: the kernel made the device and the driver's probe took it
	// (the module loaded, or built in); unbound: the probe failed, or no
	// sev_guest was loaded.
	bound, unbound := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(bound, sevGuestDevice, "driver"), filepath.Join(unbound, sevGuestDevice)} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	without := t.TempDir()
	for _, c := range []struct {
		name   string
		sys    string
		crypto string
		want   string // in the line logged
		refuse string // in the boot error; "" none
	}{
		{"AES-NI", bound, procCrypto(true), "AES-GCM by generic-gcm-aesni", ""},
		{"table-based", bound, procCrypto(false), "", "table-based (gcm_base(ctr(aes-generic),ghash-generic))"},
		{"the library's", bound, "name : sha256\ndriver : sha256-generic\npriority : 100\nrefcnt : 2\n", "no gcm(aes)", ""},
		{"the library's, beside a gcm(aes) nobody holds", bound, "name : gcm(aes)\ndriver : generic-gcm-aesni\npriority : 400\nrefcnt : 1\n", "no gcm(aes)", ""},
		{"the one held, not the highest", bound, "name : gcm(aes)\ndriver : generic-gcm-aesni\npriority : 400\nrefcnt : 1\n\nname : gcm(aes)\ndriver : gcm_base(ctr(aes-generic),ghash-generic)\npriority : 100\nrefcnt : 2\n", "", "table-based"},
		{"aes-generic's AES, a CLMUL GHASH", bound, "name : gcm(aes)\ndriver : gcm_base(ctr(aes-generic),ghash-clmulni)\npriority : 200\nrefcnt : 2\n", "", "aes-generic"},
		{"AES-NI's, ghash-generic's GHASH", bound, "name : gcm(aes)\ndriver : gcm_base(ctr-aes-aesni,ghash-generic)\npriority : 400\nrefcnt : 2\n", "", "ghash-generic"},
		{"the highest of two held", bound, "name : gcm(aes)\ndriver : gcm_base(ctr(aes-generic),ghash-generic)\npriority : 100\nrefcnt : 2\n\nname : gcm(aes)\ndriver : a-gcm\npriority : 300\nrefcnt : 2\n", "AES-GCM by a-gcm", ""},
		{"outside SEV-SNP", without, procCrypto(false), "", ""},
		{"driver not bound", unbound, procCrypto(false), "", ""},
	} {
		msg, err := sevGuestCipher(c.sys, []byte(c.crypto))
		if c.refuse != "" {
			if err == nil || !strings.Contains(err.Error(), c.refuse) || !strings.Contains(err.Error(), "VMPCK0") || msg != "" {
				t.Errorf("%s: sevGuestCipher = %q, %v; want a boot error with %q and VMPCK0", c.name, msg, err, c.refuse)
			}
			continue
		}
		if err != nil || (c.want == "") != (msg == "") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: sevGuestCipher = %q, %v; want %q and no error", c.name, msg, err, c.want)
		}
	}
	// Where the driver's binding cannot be told (here the device is a
	// file), the boot does not go on unjudged.
	file := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(file, sevGuestDevice)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(file, sevGuestDevice), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := sevGuestCipher(file, []byte(procCrypto(false))); err == nil || !strings.Contains(err.Error(), "cannot tell whether a driver took") {
		t.Errorf("unreadable binding: sevGuestCipher = %q, %v; want a boot error", msg, err)
	}
	// Nor where whether this is an SEV-SNP guest cannot be told (sysfs a
	// file here).
	notDir := filepath.Join(t.TempDir(), "sys")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := sevGuestCipher(notDir, []byte(procCrypto(false))); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("unreadable sysfs: sevGuestCipher = %q, %v; want a boot error", msg, err)
	}
}

// A CPU without AES-NI or PCLMULQDQ (a host may clear them: SEV-SNP does
// not measure CPUID) is a boot error in an SEV-SNP guest before any module
// loads, since sev-guest would key the table-based AES-GCM with VMPCK0;
// elsewhere aesni_intel is skipped and the boot goes on.
func TestSEVGuestAESNI(t *testing.T) {
	withDevice := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withDevice, sevGuestDevice), 0o755); err != nil {
		t.Fatal(err)
	}
	without := t.TempDir()
	mods := []initrdlayout.Module{{Name: "cryptd", Path: "cryptd.ko"}, {Name: "aesni-intel", Path: "aesni-intel.ko"}, {Name: "sev_guest", Path: "sev-guest.ko"}}
	epyc := "flags\t\t: fpu pni pclmulqdq ssse3 aes avx\n"
	for _, c := range []struct {
		name, sys, cpuinfo string
		refuse             string
	}{
		{"no AES-NI in an SEV-SNP guest", withDevice, "flags\t\t: fpu pni pclmulqdq ssse3 avx\n", "the CPU has no AES-NI"},
		{"no PCLMULQDQ in an SEV-SNP guest", withDevice, "flags\t\t: fpu pni ssse3 aes avx\n", "without PCLMULQDQ"},
		{"both in an SEV-SNP guest", withDevice, epyc, ""},
		{"no AES-NI outside SEV-SNP (TCG's qemu64)", without, "flags\t\t: fpu pni\n", ""},
		{"unreadable flags in an SEV-SNP guest (the module load decides)", withDevice, "", ""},
	} {
		_, skipped := modload.Drop(mods, cpuRefused(cpuFlags([]byte(c.cpuinfo))))
		err := sevGuestAESNI(skipped, c.sys)
		if (err != nil) != (c.refuse != "") {
			t.Errorf("%s: err %v, want a boot error %v", c.name, err, c.refuse != "")
			continue
		}
		if err != nil {
			for _, w := range []string{c.refuse, "SEV-SNP guest", filepath.Join(withDevice, sevGuestDevice), "VMPCK0", "-cpu"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", c.name, err, w)
				}
			}
		}
	}
	// The device's path unreadable (not absent): refused, naming it.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, skipped := modload.Drop(mods, cpuRefused(cpuFlags([]byte("flags\t\t: fpu\n"))))
	if err := sevGuestAESNI(skipped, blocked); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("sysfs under a file: err %v, want one saying the device cannot be read", err)
	}
}

// A skipped sev_guest is a boot error only where the kernel made the
// SEV-SNP guest device: there the skip is a failed probe.
func TestSEVGuestProbe(t *testing.T) {
	// unbound: the kernel made the device and no driver took it; bound: a
	// driver did (the module loaded now, or built in).
	unbound, bound := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(unbound, sevGuestDevice), filepath.Join(bound, sevGuestDevice, "driver")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	without := t.TempDir()
	notDir := filepath.Join(t.TempDir(), "sys")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	why := errors.New("no such device; kernel: sev-guest sev-guest: vmpck id 0 is null")
	skipped := []modload.Result{{Name: "virtio_pci", Status: modload.Loaded}, {Name: "sev_guest", Status: modload.Skipped, Skipped: why}}
	loaded := []modload.Result{{Name: "sev_guest", Status: modload.Loaded}}
	for _, c := range []struct {
		name string
		res  []modload.Result
		sys  string
		want []string // in the boot error; nil for none
	}{
		{"skipped outside SEV-SNP", skipped, without, nil},
		{"skipped in an SEV-SNP guest", skipped, unbound, []string{"SEV-SNP guest", "probe failed", "vmpck id 0 is null", filepath.Join(unbound, sevGuestDevice)}},
		{"dashed name skipped in an SEV-SNP guest", []modload.Result{{Name: "sev-guest", Status: modload.Skipped, Skipped: why}}, unbound, []string{"probe failed", "vmpck id 0 is null"}},
		{"loaded in an SEV-SNP guest", loaded, bound, nil},
		{"another module skipped, sev-guest built in", []modload.Result{{Name: "button", Status: modload.Skipped, Skipped: why}}, bound, nil},
		{"not listed, built in", nil, bound, nil},
		{"not listed, no driver took the device", nil, unbound, []string{"SEV-SNP guest", "no driver took the device", "do not list sev_guest", filepath.Join(unbound, sevGuestDevice)}},
		{"present, no driver took the device", []modload.Result{{Name: "sev_guest", Status: modload.Present}}, unbound, []string{"no driver took the device", "built-in driver's probe failed"}},
		{"not listed outside SEV-SNP", nil, without, nil},
		{"skipped, sysfs unreadable", skipped, notDir, []string{"module sev_guest was skipped", "vmpck id 0 is null", "cannot be read"}},
		{"loaded, sysfs unreadable", loaded, notDir, []string{"sev-guest:", "cannot be read"}},
	} {
		err := sevGuestProbe(c.res, c.sys)
		if (err != nil) != (c.want != nil) {
			t.Errorf("%s: err %v, want error %v", c.name, err, c.want != nil)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

// The network pass holds everything netcfg needs before eth0 is
// configured: virtio-net over PCI with its dependencies, and ipv6 where it
// is a module (its sysctls are written before eth0 comes up), in list order.
func TestNetworkPass(t *testing.T) {
	var list []initrdlayout.Module
	for _, n := range []string{"af_alg", "algif_hash", "ipv6", "button", "failover", "net_failover", "virtio", "virtio_ring",
		"virtio_net", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "vsock", "sev_guest"} {
		list = append(list, initrdlayout.Module{Name: n, Path: n + ".ko"})
	}
	pre, rest := modload.Split(list, netModules...)
	var got, left []string
	for _, m := range pre {
		got = append(got, m.Name)
	}
	for _, m := range rest {
		left = append(left, m.Name)
	}
	want := []string{"ipv6", "failover", "net_failover", "virtio", "virtio_ring", "virtio_net", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci"}
	if !slices.Equal(got, want) {
		t.Errorf("network pass %v, want %v", got, want)
	}
	if wantLeft := []string{"af_alg", "algif_hash", "button", "vsock", "sev_guest"}; !slices.Equal(left, wantLeft) {
		t.Errorf("left for the full pass %v, want %v", left, wantLeft)
	}
}

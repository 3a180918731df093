package doctor

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Whatever qemu-system-x86_64 --version prints, doctor passes the version
// check exactly for the first "QEMU emulator version X.Y" at or above
// MinQEMU, says which version it read, and gives a fix when it fails.
func FuzzQEMUVersion(f *testing.F) {
	f.Add([]byte("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)\nCopyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n"))
	f.Add([]byte("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)\n"))
	f.Add([]byte("QEMU emulator version 9.1\n"))
	f.Add([]byte("QEMU emulator version 9.0.0\nQEMU emulator version 10.0.0\n"))
	f.Add([]byte("qemu-system-x86_64: -version: invalid option\x1b[2K"))
	re := regexp.MustCompile(`QEMU emulator version (\d{1,9})\.(\d{1,9})\b`)
	f.Fuzz(func(t *testing.T, out []byte) {
		var r Result
		qemuVersion(&r, "qemu", out)
		if r.Status != Pass && r.Status != Fail || r.Detail == "" {
			t.Fatalf("%q: %+v", out, r)
		}
		if r.Status == Fail && r.Fix == "" {
			t.Fatalf("%q: a failure without a fix: %+v", out, r)
		}
		if strings.ContainsAny(r.Detail, "\n\x1b") {
			t.Fatalf("%q: detail %q prints the probe's output raw", out, r.Detail)
		}
		m := reQEMUVersion.FindSubmatchIndex(out)
		if m == nil {
			if r.Status == Pass {
				t.Fatalf("%q: passed without a version", out)
			}
			return
		}
		// Versions of ordinary size: compare them as numbers here.
		n := re.FindSubmatch(out[m[0]:])
		if n == nil || re.FindIndex(out[m[0]:])[0] != 0 {
			return
		}
		major, _ := strconv.Atoi(string(n[1]))
		minor, _ := strconv.Atoi(string(n[2]))
		want := major > MinQEMU[0] || major == MinQEMU[0] && minor >= MinQEMU[1]
		if (r.Status == Pass) != want || !strings.Contains(r.Detail, string(n[1])+"."+string(n[2])) {
			t.Fatalf("%q: QEMU %d.%d judged %+v", out, major, minor, r)
		}
	})
}

// Whatever the SEV firmware's SNP_PLATFORM_STATUS answer holds, only its
// 32 bytes decode, and every field comes back from where the kernel's
// struct sev_user_data_snp_status puts it.
func FuzzParseSNPStatus(f *testing.F) {
	good := make([]byte, SNPStatusSize)
	good[0], good[1], good[2], good[3] = 1, 55, 1, 1
	binary.LittleEndian.PutUint32(good[4:], 21)
	binary.LittleEndian.PutUint32(good[8:], 4)
	binary.LittleEndian.PutUint64(good[24:], 0xdb18000000000004)
	f.Add(good)
	f.Add(good[:31])
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseSNPStatus(b)
		if len(b) != SNPStatusSize {
			if err == nil || !strings.Contains(err.Error(), strconv.Itoa(len(b))+" bytes") {
				t.Fatalf("%d bytes: %+v, %v; want an error naming the size", len(b), st, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back := make([]byte, SNPStatusSize)
		back[0], back[1], back[2] = st.APIMajor, st.APIMinor, st.State
		if st.RMPInitialised {
			back[3] = 1
		}
		var flags uint32
		for i, on := range []bool{st.MaskChipID, st.MaskChipKey, st.VLEK} {
			if on {
				flags |= 1 << i
			}
		}
		le := binary.LittleEndian
		le.PutUint32(back[4:], st.Build)
		le.PutUint32(back[8:], flags)
		le.PutUint32(back[12:], st.Guests)
		le.PutUint64(back[16:], st.CurrentTCB)
		le.PutUint64(back[24:], st.ReportedTCB)
		// Bits the struct reserves (byte 3 above bit 0, flags above bit 2)
		// are not read.
		want := append([]byte{}, b...)
		want[3] &= 1
		le.PutUint32(want[8:], le.Uint32(want[8:])&7)
		if string(back) != string(want) {
			t.Fatalf("%x decoded to %+v, which encodes to %x", b, st, back)
		}
	})
}

// Whatever the host's /proc/cpuinfo holds, doctor reads the first
// vendor_id and the first cpu family (-1 without one) and judges the CPU
// without failing to produce a result.
func FuzzCPUInfo(f *testing.F) {
	f.Add([]byte("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"))
	f.Add([]byte("vendor_id: AuthenticAMD\ncpu family: x\ncpu family: 26\n"))
	f.Add([]byte("cpu family\t: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, cpuinfo []byte) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "proc/cpuinfo"), cpuinfo, 0o644); err != nil {
			t.Fatal(err)
		}
		vendor, family, err := cpuInfo(root)
		if err != nil {
			t.Fatal(err)
		}
		wantVendor, sawFamily := "", false
		for _, l := range strings.Split(string(cpuinfo), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "vendor_id" && wantVendor == "" {
				wantVendor = v
			}
			sawFamily = sawFamily || k == "cpu family"
		}
		if vendor != wantVendor || !sawFamily && family != -1 {
			t.Fatalf("cpuinfo %q: vendor %q family %d, want vendor %q", cpuinfo, vendor, family, wantVendor)
		}
		r := checkCPU(root)
		if r.Status != Pass && r.Status != Fail || r.Detail == "" && r.Status == Fail {
			t.Fatalf("cpuinfo %q: %+v", cpuinfo, r)
		}
	})
}

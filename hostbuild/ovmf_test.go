package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestOVMFGolden(t *testing.T) {
	shared := sharedMeasureDir(t)
	for _, tc := range []struct{ fixture, golden string }{
		{"ovmf_AmdSev_suffix.bin", "ovmf_amdsev.golden"},
		{"ovmf_OvmfX64_suffix.bin", "ovmf_ovmfx64.golden"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			path := filepath.Join(shared, "fixtures", tc.fixture)
			stdout, stderr, code := runHB(t, "ovmf", path)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strings.ReplaceAll(stdout, path, "FIXTURE")
			golden := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./hostbuild -run TestOVMFGolden -update' to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOVMFJSON(t *testing.T) {
	shared := sharedMeasureDir(t)
	path := filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin")
	// Flags may follow the file.
	stdout, stderr, code := runHB(t, "ovmf", path, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep ovmfReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, s := range rep.Sections {
		types = append(types, s.Type+"@"+s.GPA)
	}
	got := []any{rep.GPA, rep.ResetEIP, rep.HashTableGPA, rep.DirectBoot, len(rep.Entries), types}
	want := []any{"0xfffff000", "0x80b004", "0x810c00", true, 5, []string{
		"SNP_SEC_MEM@0x800000", "SNP_SEC_MEM@0x80a000", "SNP_SECRETS@0x80d000", "CPUID@0x80e000",
		"SVSM_CAA@0x80f000", "SNP_KERNEL_HASHES@0x810000", "SNP_SEC_MEM@0x811000",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestOVMFErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.fd")
	img := make([]byte, 4096)
	// Footer GUID with a table size running off the image.
	copy(img[4096-50:], []byte{0xff, 0xff, 0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d})
	if err := os.WriteFile(bad, img, 0o644); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(tmp, "README.md")
	if err := os.WriteFile(readme, []byte("# snpboot\n\nNot a firmware image.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noFooter := filepath.Join(tmp, "VARS.fd") // whole pages, no footer: a variable store
	if err := os.WriteFile(noFooter, make([]byte, 2*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{}, exitUsage, "exactly one FILE"},
		{"two files", []string{"a", "b"}, exitUsage, "exactly one FILE"},
		{"missing", []string{filepath.Join(tmp, "nope")}, exitFail, "no such file"},
		{"malformed", []string{bad}, exitFail, "malformed OVMF image: footer table of 65517 bytes starts before the beginning"},
		{"help", []string{"-h"}, exitOK, "Usage: hostbuild ovmf"},
		{"not firmware", []string{readme}, exitFail, readme + ": not an OVMF image: its size, 33 bytes, is not a multiple of 4096"},
		{"no footer", []string{noFooter}, exitFail, noFooter + ": not an OVMF image: no OVMF footer table GUID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runHB(t, append([]string{"ovmf"}, tc.args...)...)
			if tc.name == "help" {
				stderr = stdout // help asked for goes to stdout
			}
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}

// Debian's ovmf package has no AmdSevX64 build: `ovmf` says so, and
// `measure` with a kernel refuses it with the reason.
func TestDebianFirmwareCLI(t *testing.T) {
	var files []string
	for _, pat := range []string{"/usr/share/OVMF/OVMF_CODE*.fd", "/usr/share/ovmf/OVMF*.fd"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("skipping: no Debian OVMF code images; install them with 'apt-get install -y ovmf' (.ci/run does)")
	}
	tmp := t.TempDir()
	kernel := filepath.Join(tmp, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fw := range files {
		t.Run(fw, func(t *testing.T) {
			if strings.Contains(strings.ToLower(fw), "amdsev") {
				t.Skip("skipping: an AmdSev build supports measured direct boot")
			}
			stdout, stderr, code := runHB(t, "ovmf", fw)
			if code != exitOK || !strings.Contains(stdout, "measured direct kernel boot is NOT possible") {
				t.Errorf("ovmf: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			stdout, stderr, code = runHB(t, "measure", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", fw, "--kernel", kernel, "--append", "console=ttyS0")
			if code != exitFail || stdout != "" ||
				!strings.Contains(stderr, "kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section") ||
				!strings.Contains(stderr, "QEMU would boot the kernel, initrd and cmdline unmeasured") {
				t.Errorf("measure with a kernel: exit %d, stdout %q, stderr %q; want exit 1 and the explanation", code, stdout, stderr)
			}
			stdout, stderr, code = runHB(t, "measure", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", fw)
			if code != exitOK || len(strings.TrimSpace(stdout)) != 96 {
				t.Errorf("measure without a kernel: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLibvirtGolden(t *testing.T) {
	f := newRunFixture(t)
	tests := []struct {
		name   string
		domain string
		args   []string
	}{
		{"libvirt-snp-1vcpu", "katana", []string{"--cid", "3", "--forward", "15051:5050", "--serial-log", "/var/log/katana/serial.log"}},
		{"libvirt-snp-4vcpu", "katana-4", []string{"--cid", "42", "--vcpus", "4", "--memory", "4G", "--name", "katana-4",
			"--forward", "15051:5050", "--forward", "0.0.0.0:9100:9100", "--qemu", "/opt/qemu-10.2/bin/qemu-system-x86_64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(f.dir, tt.name+".xml")
			args := withFlags([]string{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "-o", out}, tt.args...)
			_, stderr, code := runHB(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			// libvirt reopens the paths: the operator is told to keep them as they are.
			if w := "libvirt opens the OVMF, kernel and initrd again by path"; !strings.Contains(stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, stderr)
			}
			// The fixture's cmdline has the default katana.stop_timeout.
			if w := "virsh shutdown " + tt.domain + "' and allow 1m0s"; !strings.Contains(stderr, w) {
				t.Errorf("stderr lacks the stop hint %q:\n%s", w, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// Well-formed XML that carries the cmdline byte for byte.
			var d struct {
				OS struct {
					Cmdline string `xml:"cmdline"`
				} `xml:"os"`
				LaunchSecurity struct {
					Type         string `xml:"type,attr"`
					KernelHashes string `xml:"kernelHashes,attr"`
				} `xml:"launchSecurity"`
			}
			if err := xml.Unmarshal(b, &d); err != nil {
				t.Fatalf("the domain XML does not parse: %v", err)
			}
			if d.OS.Cmdline != runFixtureCmdline {
				t.Errorf("cmdline = %q, want the manifest's %q", d.OS.Cmdline, runFixtureCmdline)
			}
			if d.LaunchSecurity.Type != "sev-snp" || d.LaunchSecurity.KernelHashes != "yes" {
				t.Errorf("launchSecurity = %+v, want sev-snp with kernelHashes=yes", d.LaunchSecurity)
			}
			got := f.scrub(string(b))
			path := filepath.Join("testdata", tt.name+".golden.xml")
			if updateGolden() {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (go test ./hostbuild -run TestLibvirtGolden -update): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("domain XML (-want +got):\n%s", diff)
			}
			validateLibvirt(t, out)
		})
	}
}

// validateLibvirt runs virt-xml-validate (Debian's libvirt-clients, with
// xmllint from libxml2-utils) when it is installed. A libvirt schema older
// than 10.5 has no sev-snp launch security (Debian 12 ships 9.0): then the
// document is validated with launchSecurity type='sev' in its place, which
// checks every other element, and the golden file covers the rest.
func validateLibvirt(t *testing.T, path string) {
	t.Helper()
	validateLibvirtSNP(t, path)
	bin, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Logf("not validated with virt-xml-validate: not installed (apt-get install libvirt-clients libxml2-utils)")
		return
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Logf("not validated with virt-xml-validate: xmllint is missing (apt-get install libxml2-utils)")
		return
	}
	rng, err := os.ReadFile("/usr/share/libvirt/schemas/domaincommon.rng")
	if err != nil {
		t.Logf("not validated with virt-xml-validate: no libvirt schema: %v", err)
		return
	}
	if !bytes.Contains(rng, []byte("sev-snp")) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		const snp = `type="sev-snp" kernelHashes="yes" authorKey="no" vcek="yes"`
		if !bytes.Contains(b, []byte(snp)) {
			t.Fatalf("%s has no %s", path, snp)
		}
		path = filepath.Join(t.TempDir(), "as-sev.xml")
		if err := os.WriteFile(path, bytes.Replace(b, []byte(snp), []byte(`type="sev" kernelHashes="yes"`), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("the installed libvirt schema predates sev-snp (libvirt 10.5): validating with launchSecurity type='sev' in its place")
	}
	out, err := exec.Command(bin, path, "domain").CombinedOutput()
	if err != nil {
		t.Errorf("virt-xml-validate %s: %v\n%s", path, err, out)
	}
}

// validateLibvirtSNP validates the document as it is, launchSecurity
// type='sev-snp' included, against a libvirt schema that has it (10.5 or
// newer: $SNPBOOT_LIBVIRT_SCHEMAS, the schemas folder of bookworm-backports'
// libvirt-common, which make test fetches with QEMU 10).
func validateLibvirtSNP(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("SNPBOOT_LIBVIRT_SCHEMAS")
	if dir == "" {
		t.Logf("not validated against a libvirt schema with sev-snp: set SNPBOOT_LIBVIRT_SCHEMAS to a libvirt 10.5+ schemas folder (make test fetches 11.3's)")
		return
	}
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("SNPBOOT_LIBVIRT_SCHEMAS is set, but xmllint is missing (apt-get install libxml2-utils)")
	}
	rng := filepath.Join(dir, "domain.rng")
	if b, err := os.ReadFile(filepath.Join(dir, "domaincommon.rng")); err != nil || !bytes.Contains(b, []byte("sev-snp")) {
		t.Fatalf("SNPBOOT_LIBVIRT_SCHEMAS=%s: no libvirt schema with sev-snp there (%v)", dir, err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--relaxng", rng, path).CombinedOutput(); err != nil {
		t.Errorf("xmllint --relaxng %s %s: %v\n%s", rng, path, err, out)
	}
}

func TestLibvirtRefusals(t *testing.T) {
	f := newRunFixture(t)
	changed := filepath.Join(f.dir, "vmlinuz-changed")
	if err := os.WriteFile(changed, []byte("another kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "refused.xml")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"changed kernel", []string{"--cid", "3", "--kernel", changed}, exitRunRefused, "the kernel " + changed},
		{"vcpus not in matrix", []string{"--cid", "3", "--vcpus", "2"}, exitRunRefused, "refusing to write the domain: the vCPU count is 2, but the manifest allows 1, 4"},
		{"no cid", nil, exitUsage, "--cid"},
		{"bad name", []string{"--cid", "3", "--name", "a b"}, exitUsage, "domain name"},
		{"relative qemu", []string{"--cid", "3", "--qemu", "qemu-system-x86_64"}, exitUsage, "--qemu qemu-system-x86_64: want an absolute path"},
		// Refused before any file is hashed (the changed kernel is not
		// reported), and before the default serial log is named after it.
		{"bad name before the files", []string{"--cid", "3", "--kernel", changed, "--name", "../x"}, exitUsage, `domain name "../x" (--name)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := withFlags([]string{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "-o", out}, tt.args...)
			_, stderr, code := runHB(t, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run left %s behind", out)
			}
		})
	}
}

// TestLibvirtRefusesNonXMLChars: XML 1.0 cannot carry C0 controls other
// than TAB, LF and CR (encoding/xml writes U+FFFD instead), nor bytes that
// are not UTF-8. A domain with such a value would not be the launch run
// makes (a measured cmdline, byte for byte): libvirt refuses it, naming the
// field and the byte offset, and writes nothing. A cmdline with most such
// controls does not get that far: the manifest refuses them
// (bootcfg.CheckBytes). \v and \f, the kernel's whitespace, pass the
// manifest and are refused here with the advice to launch with run
// (launch's TestLibvirtXMLRefusesAMeasuredCmdlineXMLCannotCarry).
func TestLibvirtRefusesNonXMLChars(t *testing.T) {
	f := newRunFixture(t)
	cmdline := "console=ttyS0 panic=-1 katana.args=\"--name a\x01b\""
	if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cmdline", cmdline, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", filepath.Join(f.dir, "ctl.json")); code == exitOK ||
		!strings.Contains(stderr, fmt.Sprintf("at byte %d: control byte 0x01", strings.IndexByte(cmdline, 1))) {
		t.Errorf("manifest with a C0 control in the cmdline: exit %d, stderr %q; want it refused naming the byte", code, stderr)
	}
	kernelCtl := filepath.Join(f.dir, "vm\x1flinuz")
	b, err := os.ReadFile(f.kernel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernelCtl, b, 0o644); err != nil {
		t.Fatal(err)
	}
	absKernelCtl, _ := filepath.Abs(kernelCtl)
	out := filepath.Join(f.dir, "refused.xml")
	tests := []struct {
		name     string
		manifest string
		args     []string
		want     []string
	}{
		{"kernel path with a C0 control", f.manifest, []string{"--kernel", kernelCtl},
			[]string{"the kernel path (os/kernel)", fmt.Sprintf("U+001F at byte offset %d", strings.IndexByte(absKernelCtl, 0x1f))}},
		{"serial log path not UTF-8", f.manifest, []string{"--serial-log", "/var/log/katana/\xffserial.log"},
			[]string{"the serial log path (devices/serial/source/@path)", "byte 0xff (not UTF-8) at byte offset 16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := withFlags([]string{"libvirt", "--manifest", tt.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "-o", out}, tt.args...)
			_, stderr, code := runHB(t, args...)
			if code != exitRunRefused {
				t.Errorf("exit %d, want %d (refused)\n%s", code, exitRunRefused, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused domain was written to %s", out)
			}
		})
	}
}

// TestLibvirtCmdlineWhitespaceRoundTrips: TAB is an XML character
// (so is LF, but the manifest refuses it: the kernel's EFI stub ends the
// cmdline there); encoding/xml writes it as a character reference, which a
// parser (libvirt's libxml2 as much as encoding/xml) returns unchanged, and
// libvirt's own copy (written raw) keeps it in element text. A CR, which
// that copy would read back as LF, is refused (exit 3).
func TestLibvirtCmdlineWhitespaceRoundTrips(t *testing.T) {
	withCR := newRunFixtureCmdline(t, "console=ttyS0 panic=-1 katana.args=\"--name a\rb\"")
	crOut := filepath.Join(withCR.dir, "cr.xml")
	_, stderr, code := runHB(t, "libvirt", "--manifest", withCR.manifest, "--ovmf", withCR.ovmf, "--kernel", withCR.kernel, "--initrd", withCR.initrd, "--cid", "3", "-o", crOut)
	if code != 3 || !strings.Contains(stderr, "U+000D (CR) at byte offset 44, which libvirt saves as a raw CR") {
		t.Errorf("a cmdline with a CR: exit %d, want 3 naming the CR\n%s", code, stderr)
	}
	if _, err := os.Stat(crOut); err == nil {
		t.Errorf("a refused domain was written to %s", crOut)
	}

	cmdline := "console=ttyS0 panic=-1\tkatana.args=\"--name a\tb c\""
	f := newRunFixtureCmdline(t, cmdline)
	out := filepath.Join(f.dir, "ws.xml")
	_, stderr, code = runHB(t, "libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		OS struct {
			Cmdline string `xml:"cmdline"`
		} `xml:"os"`
	}
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("the domain XML does not parse: %v", err)
	}
	if d.OS.Cmdline != cmdline {
		t.Errorf("<cmdline> reads back as %q, the manifest measured %q", d.OS.Cmdline, cmdline)
	}
	if xmllint, err := exec.LookPath("xmllint"); err == nil {
		got, err := exec.Command(xmllint, "--xpath", "string(/domain/os/cmdline)", out).Output()
		if err != nil {
			t.Fatalf("xmllint: %v", err)
		}
		if got := strings.TrimSuffix(string(got), "\n"); got != cmdline { // xmllint ends its output with a newline
			t.Errorf("libxml2 reads <cmdline> as %q, the manifest measured %q", got, cmdline)
		}
	}
}

// TestLibvirtOutputs: without -o the domain goes to stdout, the same bytes
// -o writes; -o says what it wrote. A file that cannot be written is an
// error (exit 1), a refused launch keeps a previous -o file as it was, and
// an argument or a missing manifest are refused with their exit codes.
func TestLibvirtOutputs(t *testing.T) {
	f := newRunFixture(t)
	base := []string{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd, "--cid", "3"}
	out := filepath.Join(f.dir, "domain.xml")
	_, stderr, code := runHB(t, append(base, "-o", out)...)
	if code != exitOK {
		t.Fatalf("-o: exit %d\n%s", code, stderr)
	}
	if w := "hostbuild libvirt: wrote " + out + " (1 × EPYC-v4, expected measurement "; !strings.Contains(stderr, w) {
		t.Errorf("stderr lacks %q:\n%s", w, stderr)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// A domain definition holds no secret: readable by all, as virsh
	// define may run as another user.
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("-o file mode %v (%v), want -rw-r--r--", fi.Mode(), err)
	}
	stdout, stderr, code := runHB(t, base...)
	if code != exitOK || stdout != string(written) {
		t.Errorf("without -o: exit %d, stdout differs from what -o wrote (%d bytes, want %d)\n%s", code, len(stdout), len(written), stderr)
	}
	if strings.Contains(stderr, "wrote") || !strings.Contains(stderr, "virsh shutdown katana' and allow 1m0s") {
		t.Errorf("without -o, stderr:\n%s\nwant the stop hint and no \"wrote\"", stderr)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unwritable -o", []string{"-o", filepath.Join(f.dir, "no-such-folder", "d.xml")}, exitFail, "no-such-folder"},
		{"refused keeps -o", []string{"--vcpus", "2", "-o", out}, exitRunRefused, "allows 1, 4"},
		{"positional argument", []string{"extra"}, exitUsage, `unexpected argument "extra"`},
		{"missing manifest", []string{"--manifest", filepath.Join(f.dir, "nope.json"), "-o", out}, exitFail, "nope.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runHB(t, withFlags(base, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Errorf("exit %d, stdout %d bytes, stderr %q; want exit %d, no stdout and %q", code, len(stdout), stderr, tt.code, tt.want)
			}
			if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, written) {
				t.Errorf("%s changed (%v)", out, err)
			}
		})
	}
}

// A manifest measured with DebugSwap: run passes debug-swap=on to QEMU,
// the libvirt domain cannot ask for it, and libvirt says so; the default
// features give no such warning.
func TestLibvirtWarnsOfDebugSwap(t *testing.T) {
	f := newRunFixture(t)
	const warn = "measured with DebugSwap (guest features 0x21), which this domain does not ask for"
	libvirt := func() string {
		t.Helper()
		_, stderr, code := runHB(t, "libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
			"--cid", "3", "-o", filepath.Join(f.dir, "domain.xml"))
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		return stderr
	}
	if stderr := libvirt(); strings.Contains(stderr, "measured with DebugSwap") {
		t.Errorf("default features: stderr warns of DebugSwap:\n%s", stderr)
	}
	_, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cmdline", runFixtureCmdline, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--guest-features", "0x21", "-o", f.manifest)
	if code != exitOK {
		t.Fatalf("hostbuild manifest: exit %d\n%s", code, stderr)
	}
	if stderr := libvirt(); !strings.Contains(stderr, warn) {
		t.Errorf("features 0x21: stderr lacks %q:\n%s", warn, stderr)
	}
}

package launch

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/qemu"
)

func libvirtXML(t *testing.T, p *Plan, name string) (domainXML, []byte) {
	t.Helper()
	b, err := LibvirtXML(p, name)
	if err != nil {
		t.Fatalf("LibvirtXML: %v", err)
	}
	var d domainXML
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("the domain XML does not parse: %v\n%s", err, b)
	}
	return d, b
}

// TestLibvirtXMLPathsNameTheCheckedFiles: libvirt opens the paths again, so
// each must name the file Prepare checked. A ".." after a symbolic link is
// not the parent of the link's name: cleaning "x/link/../vmlinuz" into
// "x/vmlinuz" would name another file.
func TestLibvirtXMLPathsNameTheCheckedFiles(t *testing.T) {
	f := newFixture(t, []int{1})
	// x/link is a/b: x/link/../NAME is a/NAME (the checked copies), while
	// x/NAME is a decoy with other bytes.
	for _, d := range []string{"a/b", "x"} {
		if err := os.MkdirAll(filepath.Join(f.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(f.dir, "a", "b"), filepath.Join(f.dir, "x", "link")); err != nil {
		t.Fatal(err)
	}
	via := map[string]string{}
	for _, src := range []string{f.ovmf, f.kernel, f.initrd} {
		name := filepath.Base(src)
		f.file(t, filepath.Join("a", name), readFile(t, src))
		f.file(t, filepath.Join("x", name), []byte("decoy"))
		via[src] = filepath.Join(f.dir, "x", "link") + "/../" + name
	}
	o := f.snp()
	o.OVMF, o.Kernel, o.Initrd = via[f.ovmf], via[f.kernel], via[f.initrd]
	p := prepare(t, o)
	d, _ := libvirtXML(t, p, "katana")
	for _, c := range []struct{ what, got, src string }{
		{"OVMF", d.OS.Loader.Path, f.ovmf},
		{"kernel", d.OS.Kernel, f.kernel},
		{"initrd", d.OS.Initrd, f.initrd},
	} {
		if c.got != via[c.src] {
			t.Errorf("the domain's %s is %s, want %s as given", c.what, c.got, via[c.src])
		}
		checked := filepath.Join(f.dir, "a", filepath.Base(c.src))
		got, err := os.Stat(c.got)
		if err != nil {
			t.Errorf("the domain's %s %s: %v", c.what, c.got, err)
			continue
		}
		want, err := os.Stat(checked)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(got, want) {
			t.Errorf("the domain's %s %s is not the file checked (%s, reached as %s)", c.what, c.got, checked, via[c.src])
		}
	}
}

// domainSummary is what a domain says about the launch, one field per value
// run's argv also carries (and the constants SEV-SNP depends on).
type domainSummary struct {
	Type, Emulator                  string
	MemoryMiB, VCPUs                int
	CPU                             string // mode[/match/check/model fallback]
	Loader, Kernel, Initrd, Cmdline string // Loader: "" when there is none
	Serial                          string
	Forwards                        []string // "proto address start->to"
	Network                         bool
	Vsock                           string // "" when there is none
	IOMMU                           string // the interface's and vsock's driver iommu
	MemoryBacking                   string // "" when there is none
	LaunchSecurity                  string // "" when there is none
}

func summarize(d domainXML) domainSummary {
	s := domainSummary{
		Type: d.Type, Emulator: d.Devices.Emulator, MemoryMiB: d.Memory.Value, VCPUs: d.VCPU.Value,
		Kernel: d.OS.Kernel, Initrd: d.OS.Initrd, Cmdline: d.OS.Cmdline, Serial: d.Devices.Serial.Source.Path,
	}
	if d.Memory.Unit != "MiB" {
		s.MemoryMiB = -1
	}
	s.CPU = d.CPU.Mode
	if d.CPU.Match != "" || d.CPU.Check != "" || d.CPU.Model != nil {
		s.CPU += "/" + d.CPU.Match + "/" + d.CPU.Check
	}
	if d.CPU.Model != nil {
		s.CPU += "/" + d.CPU.Model.Value + " fallback=" + d.CPU.Model.Fallback
	}
	if l := d.OS.Loader; l != nil {
		s.Loader = l.Path + " readonly=" + l.ReadOnly + " type=" + l.Type
	}
	var iommu []string
	for _, i := range d.Devices.Interfaces {
		s.Network = true
		for _, f := range i.PortForwards {
			s.Forwards = append(s.Forwards, fmt.Sprintf("%s %s %d->%d", f.Proto, f.Address, f.Range.Start, f.Range.To))
		}
		if i.Driver != nil {
			iommu = append(iommu, "interface "+i.Driver.IOMMU)
		}
	}
	if v := d.Devices.Vsock; v != nil {
		s.Vsock = fmt.Sprintf("%s auto=%s address=%d", v.Model, v.CID.Auto, v.CID.Address)
		if v.Driver != nil {
			iommu = append(iommu, "vsock "+v.Driver.IOMMU)
		}
	}
	s.IOMMU = strings.Join(iommu, ", ")
	if m := d.MemoryBacking; m != nil {
		s.MemoryBacking = m.Source.Type + " " + m.Access.Mode
	}
	if l := d.LaunchSecurity; l != nil {
		s.LaunchSecurity = fmt.Sprintf("%s kernelHashes=%s authorKey=%s vcek=%s cbitpos=%d reducedPhysBits=%d policy=%s",
			l.Type, l.KernelHashes, l.AuthorKey, l.VCEK, l.CBitPos, l.ReducedPhysBits, l.Policy)
	}
	return s
}

// TestLibvirtXMLIsTheRunLaunch: the domain is the launch hostbuild run makes
// from the same plan. The values the measurement covers (the checked files,
// the cmdline byte for byte, the vCPU count and type) and the rest of run's
// argv (memory, the policy, the vsock CID, the forwards, the accelerator)
// read the same in the XML, with each default Build applies; SEV-SNP mode
// asks for the kernel hashes, an exact CPU model without fallback and the
// IOMMU for virtio devices.
func TestLibvirtXMLIsTheRunLaunch(t *testing.T) {
	f := newFixture(t, []int{1, 4})
	if err := os.Mkdir(filepath.Join(f.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A policy other than the default: the domain takes the manifest's.
	policyM := f.manifestWith(func(m *manifest.Manifest) { m.GuestPolicy = "0x130000" })
	const snpSec = "sev-snp kernelHashes=yes authorKey=no vcek=yes cbitpos=51 reducedPhysBits=1 policy="
	const snpCPU = "custom/exact/none/EPYC-v4 fallback=forbid"
	emulator := "/usr/bin/" + qemu.DefaultBinary
	tests := []struct {
		name     string
		relative bool // run from f.dir, with relative paths
		opts     func() Options
		want     func(wd string) domainSummary
	}{
		{"SEV-SNP defaults", false, f.snp, func(string) domainSummary {
			return domainSummary{
				Type: "kvm", Emulator: emulator, MemoryMiB: qemu.DefaultSNPMemoryMiB, VCPUs: 1, CPU: snpCPU,
				Loader: f.ovmf + " readonly=yes type=rom", Kernel: f.kernel, Initrd: f.initrd, Cmdline: fixtureCmdline,
				Serial: filepath.Join(f.dir, "serial.log"), Network: true,
				Vsock: "virtio auto=no address=3", IOMMU: "interface on, vsock on",
				MemoryBacking: "memfd shared", LaunchSecurity: snpSec + "0x00030000",
			}
		}},
		{"SEV-SNP 4 vCPUs, relative paths, memory, forwards, emulator, policy", true, func() Options {
			o := f.snp()
			o.Manifest = policyM
			o.OVMF, o.Kernel, o.Initrd, o.SerialLog = "sub/../OVMF.fd", "vmlinuz", "./initrd.img", "logs//serial.log"
			o.VCPUs, o.MemoryMiB, o.CID, o.QEMUBinary = 4, 4096, 42, "/opt/qemu/bin/qemu-system-x86_64"
			o.Forwards = []qemu.Forward{{HostPort: 15051, GuestPort: 5050}, {HostAddr: "0.0.0.0", HostPort: 9100, GuestPort: 9101}}
			return o
		}, func(wd string) domainSummary {
			return domainSummary{
				Type: "kvm", Emulator: "/opt/qemu/bin/qemu-system-x86_64", MemoryMiB: 4096, VCPUs: 4, CPU: snpCPU,
				Loader: wd + "/sub/../OVMF.fd readonly=yes type=rom", Kernel: wd + "/vmlinuz", Initrd: wd + "/initrd.img",
				Cmdline: fixtureCmdline, Serial: wd + "/logs/serial.log", Network: true,
				Forwards: []string{"tcp 127.0.0.1 15051->5050", "tcp 0.0.0.0 9100->9101"},
				Vsock:    "virtio auto=no address=42", IOMMU: "interface on, vsock on",
				MemoryBacking: "memfd shared", LaunchSecurity: snpSec + "0x00130000",
			}
		}},
		{"plain, default accelerator (TCG)", false, f.plain, func(string) domainSummary {
			return domainSummary{
				Type: "qemu", Emulator: emulator, MemoryMiB: qemu.DefaultPlainMemoryMiB, VCPUs: 1, CPU: "maximum",
				Kernel: f.kernel, Initrd: f.initrd, Cmdline: fixtureCmdline, Serial: filepath.Join(f.dir, "serial.log"), Network: true,
			}
		}},
		{"plain TCG", false, func() Options {
			o := f.plain()
			o.Accel = qemu.TCG
			return o
		}, func(string) domainSummary {
			return domainSummary{
				Type: "qemu", Emulator: emulator, MemoryMiB: qemu.DefaultPlainMemoryMiB, VCPUs: 1, CPU: "maximum",
				Kernel: f.kernel, Initrd: f.initrd, Cmdline: fixtureCmdline, Serial: filepath.Join(f.dir, "serial.log"), Network: true,
			}
		}},
		{"plain KVM, 4 vCPUs, vsock, a forward", false, func() Options {
			o := f.plain()
			o.Accel, o.VCPUs, o.CID, o.MemoryMiB = qemu.KVM, 4, 5, 512
			o.Forwards = []qemu.Forward{{HostAddr: "127.0.0.2", HostPort: 2222, GuestPort: 22}}
			return o
		}, func(string) domainSummary {
			return domainSummary{
				Type: "kvm", Emulator: emulator, MemoryMiB: 512, VCPUs: 4, CPU: "host-passthrough",
				Kernel: f.kernel, Initrd: f.initrd, Cmdline: fixtureCmdline, Serial: filepath.Join(f.dir, "serial.log"), Network: true,
				Forwards: []string{"tcp 127.0.0.2 2222->22"}, Vsock: "virtio auto=no address=5",
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.relative {
				t.Chdir(f.dir)
			}
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			p := prepare(t, tt.opts())
			d, b := libvirtXML(t, p, "katana")
			got := summarize(d)
			if diff := cmp.Diff(tt.want(wd), got); diff != "" {
				t.Errorf("domain (-want +got):\n%s\n%s", diff, b)
			}
			checkSameAsRun(t, p, d)
		})
	}
}

// checkSameAsRun compares the domain with run's argv (Plan.Command) and the
// files at its paths with the bytes Prepare hashed.
func checkSameAsRun(t *testing.T, p *Plan, d domainXML) {
	t.Helper()
	c := p.Command
	for _, v := range []struct{ what, xml, argv string }{
		{"cmdline (-append)", d.OS.Cmdline, argAfter(c, "-append")},
		{"vCPU count (-smp)", strconv.Itoa(d.VCPU.Value), argAfter(c, "-smp")},
		{"memory (-m)", strconv.Itoa(d.Memory.Value) + "M", argAfter(c, "-m")},
	} {
		if v.xml != v.argv {
			t.Errorf("the domain's %s is %q, run's %q", v.what, v.xml, v.argv)
		}
	}
	if p.QEMU.SNP != nil {
		if d.CPU.Model == nil || d.CPU.Model.Value != argAfter(c, "-cpu") || d.CPU.Model.Value != p.VCPUType {
			t.Errorf("the domain's CPU is %+v, run's -cpu %q (the measured vCPU type %q)", d.CPU, argAfter(c, "-cpu"), p.VCPUType)
		}
		var obj string
		for _, o := range c.Options {
			if strings.HasPrefix(o.Value, "sev-snp-guest,") {
				obj = o.Value
			}
		}
		ls := d.LaunchSecurity
		want := fmt.Sprintf("policy=%#x,cbitpos=%d,reduced-phys-bits=%d,", parseUint(t, ls.Policy), ls.CBitPos, ls.ReducedPhysBits)
		if !strings.Contains(obj, want) {
			t.Errorf("the domain's launchSecurity is %+v, run's object %q", ls, obj)
		}
	}
	files := []struct {
		what, path string
		f          *os.File
	}{{"kernel", d.OS.Kernel, p.kernel}, {"initrd", d.OS.Initrd, p.initrd}}
	if d.OS.Loader != nil {
		files = append(files, struct {
			what, path string
			f          *os.File
		}{"OVMF", d.OS.Loader.Path, p.ovmf})
	}
	for _, f := range files {
		if !filepath.IsAbs(f.path) {
			t.Errorf("the domain's %s %s is not absolute", f.what, f.path)
		}
		// Prepare hashed a sealed copy of the file: the path must name
		// a file with those bytes (a decoy elsewhere has others).
		if _, err := os.Stat(f.path); err != nil {
			t.Errorf("the domain's %s: %v", f.what, err)
			continue
		}
		if got, want := sha256Of(t, f.path), sha256Of(t, ownFD(f.f)); got != want {
			t.Errorf("the domain's %s %s reads with SHA-256 %s, not as the file Prepare hashed (%s, %s)", f.what, f.path, got, f.f.Name(), want)
		}
	}
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestLibvirtXMLDomainName: the name is the one operator value written
// without a check of its own: only letters, digits and _.+- (first a letter
// or a digit), up to 64, so it cannot carry markup, a path or a newline.
func TestLibvirtXMLDomainName(t *testing.T) {
	f := newFixture(t, []int{1})
	p := prepare(t, f.snp())
	long := strings.Repeat("k", 64)
	for _, name := range []string{"katana", "k", "9", "katana-4_x.y+z", long} {
		d, _ := libvirtXML(t, p, name)
		if d.Name != name {
			t.Errorf("domain name %q reads back as %q", name, d.Name)
		}
	}
	for _, name := range []string{"", long + "k", "a b", "-katana", "_katana", ".katana", "+k", "katana\n", "\nkatana",
		"a/b", "../x", "a<b", `a"b`, "a'b", "a&b", "a>b", "kätana"} {
		b, err := LibvirtXML(p, name)
		want := fmt.Sprintf("libvirt: domain name %q (--name): want 1 to 64 letters, digits and _.+-, the first a letter or a digit", name)
		if err == nil || err.Error() != want {
			t.Errorf("LibvirtXML(%q) = %q, %v; want the error %q", name, b, err, want)
		}
		if b != nil {
			t.Errorf("LibvirtXML(%q) refused but gave %d bytes", name, len(b))
		}
	}
}

// TestLibvirtXMLRefusals: a plan without what the domain needs (a path, a
// vCPU count) is an error, naming it, and no domain.
func TestLibvirtXMLRefusals(t *testing.T) {
	f := newFixture(t, []int{1})
	tests := []struct {
		name string
		mod  func(p *Plan)
		want string
	}{
		{"no kernel", func(p *Plan) { p.QEMU.Kernel = "" }, `libvirt: kernel path "": empty path`},
		{"no initrd", func(p *Plan) { p.QEMU.Initrd = "" }, `libvirt: initrd path "": empty path`},
		{"no OVMF", func(p *Plan) { p.QEMU.SNP.OVMF = "" }, `libvirt: OVMF path "": empty path`},
		{"no serial log", func(p *Plan) { p.QEMU.SerialLog = "" }, `libvirt: serial log path "": empty path`},
		{"no vCPU count", func(p *Plan) { p.VCPUs = 0 }, "libvirt: the plan has no vCPU count"},
		{"a negative vCPU count", func(p *Plan) { p.VCPUs = -1 }, "libvirt: the plan has no vCPU count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(t, f.snp())
			tt.mod(p)
			b, err := LibvirtXML(p, "katana")
			if err == nil || err.Error() != tt.want {
				t.Errorf("LibvirtXML = %v, want the error %q", err, tt.want)
			}
			if b != nil {
				t.Errorf("LibvirtXML refused but gave %d bytes:\n%s", len(b), b)
			}
		})
	}
}

// TestLibvirtXMLRefusesNonXMLChars: encoding/xml writes U+FFFD for what
// XML 1.0 cannot carry, so libvirt would read back another cmdline, another
// path: LibvirtXML refuses every such value, wherever it is in the domain,
// naming the element or attribute, what the value is, the character and its
// byte offset. (The manifest and Build refuse most of these first; the
// check does not rely on them.) U+FFFD itself, TAB, LF and CR are XML
// characters and read back unchanged, as does markup (<&>"') in a path or
// the cmdline: it is escaped, in elements and attributes alike.
func TestLibvirtXMLRefusesNonXMLChars(t *testing.T) {
	f := newFixture(t, []int{1})
	const cmdFix = "the cmdline is measured, so it cannot be changed here: launch with 'hostbuild run', or measure a cmdline without it (hostbuild manifest --cmdline)"
	tests := []struct {
		name              string
		mod               func(p *Plan)
		field, what, char string
		value             string
		offset            int
		fix               string
	}{
		{"cmdline C0 control", func(p *Plan) { p.QEMU.Append = "console=ttyS0\x01x" }, "os/cmdline", "the manifest's cmdline", "U+0001", "console=ttyS0\x01x", 13, cmdFix},
		{"cmdline ESC", func(p *Plan) { p.QEMU.Append = "\x1b[0m" }, "os/cmdline", "the manifest's cmdline", "U+001B", "\x1b[0m", 0, cmdFix},
		{"cmdline U+FFFE", func(p *Plan) { p.QEMU.Append = "a\uFFFE" }, "os/cmdline", "the manifest's cmdline", "U+FFFE", "a\uFFFE", 1, cmdFix},
		{"cmdline U+FFFF", func(p *Plan) { p.QEMU.Append = "ab\uFFFF" }, "os/cmdline", "the manifest's cmdline", "U+FFFF", "ab\uFFFF", 2, cmdFix},
		{"cmdline not UTF-8", func(p *Plan) { p.QEMU.Append = "é\xff" }, "os/cmdline", "the manifest's cmdline", "byte 0xff (not UTF-8)", "é\xff", 2, cmdFix},
		{"cmdline surrogate", func(p *Plan) { p.QEMU.Append = "\xed\xa0\x80" }, "os/cmdline", "the manifest's cmdline", "byte 0xed (not UTF-8)", "\xed\xa0\x80", 0, cmdFix},
		{"kernel path", func(p *Plan) { p.QEMU.Kernel = "/boot/vm\x1flinuz" }, "os/kernel", "the kernel path", "U+001F", "/boot/vm\x1flinuz", 8, "give --kernel a path without it (rename the file, or link to it)"},
		{"initrd path", func(p *Plan) { p.QEMU.Initrd = "/boot/\x7f\x00" }, "os/initrd", "the initrd path", "U+0000", "/boot/\x7f\x00", 7, "give --initrd a path without it (rename the file, or link to it)"},
		{"OVMF path", func(p *Plan) { p.QEMU.SNP.OVMF = "/fw/\x80" }, "os/loader", "the OVMF path", "byte 0x80 (not UTF-8)", "/fw/\x80", 4, "give --ovmf a path without it (rename the file, or link to it)"},
		{"serial log path", func(p *Plan) { p.QEMU.SerialLog = "/log/\x0c" }, "devices/serial/source/@path", "the serial log path", "U+000C", "/log/\x0c", 5, "give --serial-log a path without it"},
		{"emulator", func(p *Plan) { p.QEMU.Binary = "/bin/q\x0b" }, "devices/emulator", "the emulator path", "U+000B", "/bin/q\x0b", 6, ""},
		{"vCPU type", func(p *Plan) { p.QEMU.CPU = "EPYC\x08" }, "cpu/model", "the vCPU type", "U+0008", "EPYC\x08", 4, ""},
		{"forward address", func(p *Plan) {
			p.QEMU.Forwards = []qemu.Forward{{HostAddr: "127.0.0.1", HostPort: 1, GuestPort: 1}, {HostAddr: "1\x02", HostPort: 2, GuestPort: 2}}
		},
			"devices/interface/portForward/@address", "", "U+0002", "1\x02", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(t, f.snp())
			tt.mod(p)
			b, err := LibvirtXML(p, "katana")
			if b != nil {
				t.Errorf("LibvirtXML refused but gave %d bytes:\n%s", len(b), b)
			}
			var nx *NotXMLChar
			if !errors.As(err, &nx) {
				t.Fatalf("LibvirtXML = %v, want a *NotXMLChar", err)
			}
			want := NotXMLChar{Field: tt.field, What: tt.what, Value: tt.value, Offset: tt.offset, Char: tt.char, Fix: tt.fix}
			if *nx != want {
				t.Errorf("refusal = %+v, want %+v", *nx, want)
			}
		})
	}
	// XML characters that libvirt's own copy of the domain (virsh define
	// saves TAB, LF and CR raw) would read back as others when its daemon
	// restarts: CR as LF, and TAB or LF in an attribute as a space.
	for _, tt := range []struct {
		name, field, char string
		offset            int
		mod               func(p *Plan)
		why               string
	}{
		{"CR in the cmdline", "os/cmdline", "U+000D (CR)", 1, func(p *Plan) { p.QEMU.Append = "a\rb" }, "reads back as LF"},
		{"CR in the kernel path", "os/kernel", "U+000D (CR)", 7, func(p *Plan) { p.QEMU.Kernel = "/boot/a\rb" }, "reads back as LF"},
		{"TAB in the serial log path", "devices/serial/source/@path", "U+0009", 6, func(p *Plan) { p.QEMU.SerialLog = "/log/a\tb" }, "reads back as a space"},
		{"LF in the serial log path", "devices/serial/source/@path", "U+000A", 6, func(p *Plan) { p.QEMU.SerialLog = "/log/a\nb" }, "reads back as a space"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(t, f.snp())
			tt.mod(p)
			b, err := LibvirtXML(p, "katana")
			var nx *NotXMLChar
			if b != nil || !errors.As(err, &nx) || nx.Field != tt.field || nx.Char != tt.char || nx.Offset != tt.offset || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("LibvirtXML = %d bytes, %v; want a refusal of %s at %s saying it %s", len(b), err, tt.char, tt.field, tt.why)
			}
		})
	}
	t.Run("XML characters", func(t *testing.T) {
		p := prepare(t, f.snp())
		cmdline := "a\tb\nc d \uFFFD \u00e9 \U0001F600 \U0010FFFF \uE000 \uD7FF <&>\"'"
		p.QEMU.Append = cmdline
		// Markup in an element's text and in an attribute is escaped.
		const kernel, serial = `/boot/</kernel><kernel>/x&amp;"'`, `/log/" path="/etc/x' <b>&.log`
		p.QEMU.Kernel, p.QEMU.SerialLog = kernel, serial
		d, b := libvirtXML(t, p, "katana")
		for _, c := range []struct{ what, got, want string }{
			{"cmdline", d.OS.Cmdline, cmdline},
			{"kernel", d.OS.Kernel, kernel},
			{"serial log", d.Devices.Serial.Source.Path, serial},
		} {
			if c.got != c.want {
				t.Errorf("the %s reads back as %q, want %q\n%s", c.what, c.got, c.want, b)
			}
		}
	})
}

// TestIsXMLChar: XML 1.0's Char production, at each bound.
// The refusal's text, literally: what the value is and its field, the
// value quoted, the character, its offset, and the fix when there is one.
func TestNotXMLCharError(t *testing.T) {
	for _, tt := range []struct {
		e    NotXMLChar
		want string
	}{
		{NotXMLChar{Field: "os/kernel", What: "the kernel path", Value: "/boot/vm\x1flinuz", Offset: 8, Char: "U+001F", Fix: "give --kernel a path without it (rename the file, or link to it)"},
			`libvirt: refusing to write the domain: the kernel path (os/kernel) "/boot/vm\x1flinuz" has U+001F at byte offset 8, which XML 1.0 cannot carry (libvirt would read back other bytes): give --kernel a path without it (rename the file, or link to it)`},
		{NotXMLChar{Field: "devices/interface/portForward/@address", Value: "1\x02", Offset: 1, Char: "U+0002"},
			`libvirt: refusing to write the domain: devices/interface/portForward/@address "1\x02" has U+0002 at byte offset 1, which XML 1.0 cannot carry (libvirt would read back other bytes)`},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
		}
	}
}

func TestIsXMLChar(t *testing.T) {
	yes := []rune{0x09, 0x0A, 0x0D, 0x20, 0x7F, 0xD7FF, 0xE000, 0xFFFD, 0x10000, 0x10FFFF}
	no := []rune{-1, 0x00, 0x08, 0x0B, 0x0C, 0x0E, 0x1F, 0xD800, 0xDFFF, 0xFFFE, 0xFFFF, 0x110000}
	for _, r := range yes {
		if !isXMLChar(r) {
			t.Errorf("isXMLChar(%U) = false, want true", r)
		}
	}
	for _, r := range no {
		if isXMLChar(r) {
			t.Errorf("isXMLChar(%U) = true, want false", r)
		}
	}
}

// TestAbsPath: a path is made absolute; it is cleaned only without a ".."
// element (after a symbolic link ".." is not lexical).
func TestAbsPath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"/boot/vmlinuz", "/boot/vmlinuz"},
		{"/boot//./vmlinuz", "/boot/vmlinuz"},
		{"/boot/x/../vmlinuz", "/boot/x/../vmlinuz"},
		{"/boot/x/..", "/boot/x/.."},
		{"vmlinuz", wd + "/vmlinuz"},
		{"./a//vmlinuz", wd + "/a/vmlinuz"},
		{"x/../vmlinuz", wd + "/x/../vmlinuz"},
		{"../vmlinuz", wd + "/../vmlinuz"},
		{"..", wd + "/.."},
		{"x..y/vmlinuz", wd + "/x..y/vmlinuz"},
	} {
		got, err := absPath(c.in)
		if err != nil || got != c.want {
			t.Errorf("absPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if got, err := absPath(""); err == nil {
		t.Errorf("absPath(\"\") = %q, want an error", got)
	}
}

// TestViaProc: a path that reaches /proc, directly or through symbolic
// links (absolute or relative targets, ".." after them, chains), is
// reported with the first /proc path on the way; one that does not (a
// name that only starts with "proc", a loop of links) is not.
func TestViaProc(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fd := link("fd", "/proc/self/fd")
	up := link("up", strings.Repeat("../", strings.Count(dir, "/")+2)+"proc/self")
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	link("sub/parent", dir)
	chain := link("c0", "fd")
	for i := 1; i < 12; i++ {
		chain = link(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i-1))
	}
	link("loop1", "loop2")
	loop := link("loop2", "loop1")
	for _, c := range []struct {
		path, via string
	}{
		{"/proc/self/fd/3", "/proc"},
		{"/proc", "/proc"},
		{fd + "/3", "/proc"},
		{up + "/fd/3", "/proc"},
		{sub + "/parent/fd/3", "/proc"},
		{sub + "/../fd/3", "/proc"},
		{chain + "/3", "/proc"},
		{file, ""},
		{dir + "/./vmlinuz", ""},
		{"/process/fd/3", ""},
		{"/procx", ""},
		{loop, ""},
	} {
		via, ok := viaProc(c.path)
		if via != c.via || ok != (c.via != "") {
			t.Errorf("viaProc(%q) = %q, %v; want %q, %v", c.path, via, ok, c.via, c.via != "")
		}
	}
}

// TestLibvirtXMLPathsNameTheCheckedFilesFromPWD: a relative path is joined
// to the working directory os.Getwd gives, which is $PWD whenever $PWD
// names the working directory, even through "..". After a symbolic link
// that ".." is not lexical either: the joined path must not be cleaned.
func TestLibvirtXMLPathsNameTheCheckedFilesFromPWD(t *testing.T) {
	f := newFixture(t, []int{1})
	// The working directory is a/c, holding the checked copies; $PWD names
	// it as x/link/../c (x/link is a/b), while x/c holds decoys.
	for _, d := range []string{"a/b", "a/c", "x/c"} {
		if err := os.MkdirAll(filepath.Join(f.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(f.dir, "a", "b"), filepath.Join(f.dir, "x", "link")); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{f.ovmf, f.kernel, f.initrd} {
		name := filepath.Base(src)
		f.file(t, filepath.Join("a", "c", name), readFile(t, src))
		f.file(t, filepath.Join("x", "c", name), []byte("decoy"))
	}
	t.Chdir(filepath.Join(f.dir, "a", "c"))
	pwd := filepath.Join(f.dir, "x", "link") + "/../c"
	t.Setenv("PWD", pwd)
	if wd, err := os.Getwd(); err != nil || wd != pwd {
		t.Skipf("skipping: os.Getwd() = %q, %v; want $PWD %q", wd, err, pwd)
	}
	o := f.snp()
	o.OVMF, o.Kernel, o.Initrd = filepath.Base(f.ovmf), filepath.Base(f.kernel), filepath.Base(f.initrd)
	p := prepare(t, o)
	d, _ := libvirtXML(t, p, "katana")
	checkSameAsRun(t, p, d)
	for _, c := range []struct{ what, got, name string }{
		{"OVMF", d.OS.Loader.Path, o.OVMF},
		{"kernel", d.OS.Kernel, o.Kernel},
		{"initrd", d.OS.Initrd, o.Initrd},
	} {
		if want := pwd + "/" + c.name; c.got != want {
			t.Errorf("the domain's %s is %s, want %s", c.what, c.got, want)
		}
	}
}

// TestLibvirtXMLRefusesAMeasuredCmdlineXMLCannotCarry: the manifest (and
// run) allow \v and \f in the cmdline, the kernel's whitespace, but XML 1.0
// cannot carry them: the domain is refused, saying what to do instead.
func TestLibvirtXMLRefusesAMeasuredCmdlineXMLCannotCarry(t *testing.T) {
	f := newFixture(t, []int{1})
	for _, c := range []struct{ cmdline, char string }{
		{"console=ttyS0 panic=-1\vquiet", "U+000B"},
		{"console=ttyS0 panic=-1\fquiet", "U+000C"},
	} {
		m, err := manifest.Generate(context.Background(), manifest.GenerateOptions{
			OVMF: f.ovmf, Kernel: f.kernel, Initrd: f.initrd, Cmdline: c.cmdline,
			VCPUs: []int{1}, VCPUTypes: []string{"EPYC-v4"}, ToolVersion: "v0.0.0-test",
		})
		if err != nil {
			t.Fatalf("manifest with the cmdline %q: %v", c.cmdline, err)
		}
		o := f.snp()
		o.Manifest = m
		p := prepare(t, o)
		b, err := LibvirtXML(p, "katana")
		want := fmt.Sprintf("libvirt: refusing to write the domain: the manifest's cmdline (os/cmdline) %q has %s at byte offset 22, "+
			"which XML 1.0 cannot carry (libvirt would read back other bytes): the cmdline is measured, so it cannot be changed here: "+
			"launch with 'hostbuild run', or measure a cmdline without it (hostbuild manifest --cmdline)", c.cmdline, c.char)
		if err == nil || err.Error() != want || b != nil {
			t.Errorf("LibvirtXML with the measured cmdline %q = %d bytes, %v; want no bytes and the error\n%s", c.cmdline, len(b), err, want)
		}
	}
}

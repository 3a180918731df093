package launch

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/katana-tee/snpboot/qemu"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Libvirt domain XML for the same launch as the QEMU argv of a Plan: direct
// kernel boot with the manifest's cmdline, SEV-SNP launch security with
// kernel hashes, an explicit CPU model, a vsock device with the CID, user
// networking (passt) with the port forwards, serial console to a file, and
// every lifecycle event ending the domain (as -no-reboot does). Needs
// libvirt 10.5 or newer (launchSecurity type='sev-snp').

type domainXML struct {
	XMLName        xml.Name          `xml:"domain"`
	Type           string            `xml:"type,attr"`
	Name           string            `xml:"name"`
	Memory         unitValue         `xml:"memory"`
	MemoryBacking  *memoryBackingXML `xml:"memoryBacking,omitempty"`
	VCPU           vcpuXML           `xml:"vcpu"`
	OS             osXML             `xml:"os"`
	Features       featuresXML       `xml:"features"`
	CPU            cpuXML            `xml:"cpu"`
	Clock          clockXML          `xml:"clock"`
	OnPoweroff     string            `xml:"on_poweroff"`
	OnReboot       string            `xml:"on_reboot"`
	OnCrash        string            `xml:"on_crash"`
	Devices        devicesXML        `xml:"devices"`
	LaunchSecurity *launchSecXML     `xml:"launchSecurity,omitempty"`
}

type unitValue struct {
	Unit  string `xml:"unit,attr"`
	Value int    `xml:",chardata"`
}

type memoryBackingXML struct {
	Source typeAttr `xml:"source"`
	Access struct {
		Mode string `xml:"mode,attr"`
	} `xml:"access"`
}

type typeAttr struct {
	Type string `xml:"type,attr"`
}

type vcpuXML struct {
	Placement string `xml:"placement,attr"`
	Value     int    `xml:",chardata"`
}

type osXML struct {
	Type struct {
		Arch    string `xml:"arch,attr"`
		Machine string `xml:"machine,attr"`
		Value   string `xml:",chardata"`
	} `xml:"type"`
	Loader *struct {
		ReadOnly string `xml:"readonly,attr"`
		Type     string `xml:"type,attr"`
		Path     string `xml:",chardata"`
	} `xml:"loader,omitempty"`
	Kernel  string `xml:"kernel"`
	Initrd  string `xml:"initrd"`
	Cmdline string `xml:"cmdline"`
}

type featuresXML struct {
	ACPI struct{} `xml:"acpi"`
}

type cpuXML struct {
	Mode  string `xml:"mode,attr"`
	Match string `xml:"match,attr,omitempty"`
	Check string `xml:"check,attr,omitempty"`
	Model *struct {
		Fallback string `xml:"fallback,attr"`
		Value    string `xml:",chardata"`
	} `xml:"model,omitempty"`
}

type clockXML struct {
	Offset string `xml:"offset,attr"`
}

type devicesXML struct {
	Emulator   string         `xml:"emulator"`
	Controller controllerXML  `xml:"controller"`
	Serial     serialXML      `xml:"serial"`
	Interfaces []interfaceXML `xml:"interface"`
	Vsock      *vsockXML      `xml:"vsock,omitempty"`
	Memballoon struct {
		Model string `xml:"model,attr"`
	} `xml:"memballoon"`
}

type controllerXML struct {
	Type  string `xml:"type,attr"`
	Model string `xml:"model,attr"`
}

type serialXML struct {
	Type   string `xml:"type,attr"`
	Source struct {
		Path string `xml:"path,attr"`
	} `xml:"source"`
	Target struct {
		Port int `xml:"port,attr"`
	} `xml:"target"`
}

type interfaceXML struct {
	Type         string           `xml:"type,attr"`
	Backend      typeAttr         `xml:"backend"`
	IPs          []ipXML          `xml:"ip"`
	PortForwards []portForwardXML `xml:"portForward"`
	Model        typeAttr         `xml:"model"`
	Driver       *iommuDriver     `xml:"driver,omitempty"`
	ROM          romXML           `xml:"rom"`
}

// ipXML is the guest's address, which libvirt hands passt as --address
// and (IPv4) --netmask.
type ipXML struct {
	Family  string `xml:"family,attr"`
	Address string `xml:"address,attr"`
	Prefix  int    `xml:"prefix,attr,omitempty"`
}

// romXML is <rom enabled='no'/>: without it QEMU gives virtio-net-pci its
// iPXE option ROM, which run's romfile= leaves out.
type romXML struct {
	Enabled string `xml:"enabled,attr"`
}

type portForwardXML struct {
	Proto   string `xml:"proto,attr"`
	Address string `xml:"address,attr"`
	Range   struct {
		Start int `xml:"start,attr"`
		To    int `xml:"to,attr"`
	} `xml:"range"`
}

type iommuDriver struct {
	IOMMU string `xml:"iommu,attr"`
}

type vsockXML struct {
	Model string `xml:"model,attr"`
	CID   struct {
		Auto    string `xml:"auto,attr"`
		Address uint32 `xml:"address,attr"`
	} `xml:"cid"`
	Driver *iommuDriver `xml:"driver,omitempty"`
}

type launchSecXML struct {
	Type            string `xml:"type,attr"`
	KernelHashes    string `xml:"kernelHashes,attr"`
	AuthorKey       string `xml:"authorKey,attr"`
	VCEK            string `xml:"vcek,attr"`
	CBitPos         int    `xml:"cbitpos"`
	ReducedPhysBits int    `xml:"reducedPhysBits"`
	Policy          string `xml:"policy"`
}

var reDomainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$`)

// CheckDomainName refuses a libvirt domain name LibvirtXML would refuse
// (the name also names the default serial log file), so that a caller can
// refuse it before any file is opened.
func CheckDomainName(name string) error {
	if !reDomainName.MatchString(name) {
		return fmt.Errorf("libvirt: domain name %q (--name): want 1 to 64 letters, digits and _.+-, the first a letter or a digit", name)
	}
	return nil
}

// LibvirtXML renders the plan as a libvirt domain. Paths are made absolute
// (libvirt requires it), naming the files that were checked (absPath).
// Plain plans (no SEV) render without launchSecurity.
func LibvirtXML(p *Plan, name string) ([]byte, error) {
	if err := CheckDomainName(name); err != nil {
		return nil, err
	}
	q := p.QEMU
	abs := func(what, s string) (string, error) {
		a, err := absPath(s)
		if err != nil {
			return "", fmt.Errorf("libvirt: %s path %q: %w", what, s, err)
		}
		if via, ok := viaProc(a); ok {
			return "", fmt.Errorf("libvirt: the %s path %s goes through %s, which names a file of the process that opens it: libvirt's QEMU would open its own descriptor, not the file checked here; give the file's own path", what, s, via)
		}
		return a, nil
	}
	var err error
	d := domainXML{Type: "kvm", Name: name, OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy"}
	if q.Accel == qemu.TCG {
		d.Type = "qemu"
	}
	mem := q.MemoryMiB
	if mem == 0 {
		mem = qemu.DefaultPlainMemoryMiB
		if q.SNP != nil {
			mem = qemu.DefaultSNPMemoryMiB
		}
	}
	d.Memory = unitValue{Unit: "MiB", Value: mem}
	d.VCPU = vcpuXML{Placement: "static", Value: p.VCPUs}
	d.OS.Type.Arch, d.OS.Type.Machine, d.OS.Type.Value = "x86_64", "q35", "hvm"
	if d.OS.Kernel, err = abs("kernel", q.Kernel); err != nil {
		return nil, err
	}
	if d.OS.Initrd, err = abs("initrd", q.Initrd); err != nil {
		return nil, err
	}
	d.OS.Cmdline = q.Append
	d.Clock.Offset = "utc"
	d.Devices.Emulator = "/usr/bin/" + qemu.DefaultBinary
	if q.Binary != "" && filepath.IsAbs(q.Binary) {
		d.Devices.Emulator = q.Binary
	}
	d.Devices.Controller = controllerXML{Type: "usb", Model: "none"}
	d.Devices.Serial.Type = "file"
	if d.Devices.Serial.Source.Path, err = abs("serial log", q.SerialLog); err != nil {
		return nil, err
	}
	d.Devices.Memballoon.Model = "none"
	var iommu *iommuDriver
	if q.SNP != nil {
		iommu = &iommuDriver{IOMMU: "on"}
	}
	if !q.NoNetwork {
		iface := interfaceXML{Type: "user", Backend: typeAttr{Type: "passt"}, Model: typeAttr{Type: "virtio"}, Driver: iommu, ROM: romXML{Enabled: "no"}}
		for _, f := range q.Forwards {
			var pf portForwardXML
			pf.Proto, pf.Address = "tcp", f.HostAddr
			if pf.Address == "" {
				pf.Address = qemu.DefaultHostAddr
			}
			pf.Range.Start, pf.Range.To = f.HostPort, f.GuestPort
			iface.PortForwards = append(iface.PortForwards, pf)
		}
		iface.IPs = passtGuestIP(q.Append)
		d.Devices.Interfaces = append(d.Devices.Interfaces, iface)
	}
	if q.VsockCID != 0 {
		v := &vsockXML{Model: "virtio", Driver: iommu}
		v.CID.Auto, v.CID.Address = "no", q.VsockCID
		d.Devices.Vsock = v
	}
	if q.SNP != nil {
		d.MemoryBacking = &memoryBackingXML{Source: typeAttr{Type: "memfd"}}
		d.MemoryBacking.Access.Mode = "shared"
		d.OS.Loader = &struct {
			ReadOnly string `xml:"readonly,attr"`
			Type     string `xml:"type,attr"`
			Path     string `xml:",chardata"`
		}{ReadOnly: "yes", Type: "rom"}
		if d.OS.Loader.Path, err = abs("OVMF", q.SNP.OVMF); err != nil {
			return nil, err
		}
		d.CPU = cpuXML{Mode: "custom", Match: "exact", Check: "none", Model: &struct {
			Fallback string `xml:"fallback,attr"`
			Value    string `xml:",chardata"`
		}{Fallback: "forbid", Value: q.CPU}}
		cbit, rpb := q.SNP.CBitPos, q.SNP.ReducedPhysBits
		if cbit == 0 {
			cbit = qemu.DefaultCBitPos
		}
		if rpb == 0 {
			rpb = qemu.DefaultReducedPhysBits
		}
		d.LaunchSecurity = &launchSecXML{
			Type: "sev-snp", KernelHashes: "yes", AuthorKey: "no", VCEK: "yes",
			CBitPos: cbit, ReducedPhysBits: rpb, Policy: fmt.Sprintf("0x%08x", q.SNP.Policy),
		}
	} else {
		d.CPU = cpuXML{Mode: "host-passthrough"}
		if q.Accel == qemu.TCG || q.Accel == "" {
			d.Type = "qemu"
			d.CPU = cpuXML{Mode: "maximum"}
		}
	}
	if p.VCPUs < 1 {
		return nil, errors.New("libvirt: the plan has no vCPU count")
	}
	// encoding/xml writes U+FFFD for what XML 1.0 cannot carry: libvirt
	// would start another launch than run (another measured cmdline).
	if err := checkXMLChars(reflect.ValueOf(d), ""); err != nil {
		return nil, err
	}
	b, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	return append(b, '\n'), nil
}

// passtGuestIP is the <ip> that tells passt eth0's address from the
// cmdline's katana.net (none for katana.net=none or a cmdline that does not
// parse). passt otherwise takes the host's own address for the guest
// (passt(1) -a) and sends an inbound forward to the IPv4 address it last
// saw the guest use, which starts as that one (conf.c addr_seen, fwd.c
// fwd_nat_from_host): a guest configured statically from katana.net that
// has not sent a packet yet would not get the forwards. libvirt gives
// passt <ip address=> as --address and an IPv4 prefix as --netmask
// (qemu_passt.c, since 9.0); it refuses an IPv4 prefix outside 4 to 27
// and an IPv6 one other than 64 (qemu_validate.c), where the address goes
// alone (the netmask passt derives is only for its DHCP, which the guest
// does not use).
func passtGuestIP(cmdline string) []ipXML {
	cfg, err := bootcfg.Parse(cmdline)
	if err != nil || cfg.Net.None || !cfg.Net.Addr.IsValid() {
		return nil
	}
	a := cfg.Net.Addr
	if a.Addr().Is4() {
		ip := ipXML{Family: "ipv4", Address: a.Addr().String()}
		if b := a.Bits(); b >= 4 && b <= 27 {
			ip.Prefix = b
		}
		return []ipXML{ip}
	}
	return []ipXML{{Family: "ipv6", Address: a.Addr().String()}}
}

// LibvirtNetWarnings says what of katana.net the domain's passt cannot
// provide, as libvirt has no setting for it: libvirt refuses <route> on
// type='user' (qemu_validate.c) and gives passt neither --gateway nor
// --dns-forward (qemu_passt.c). The guest's gateway works as a next hop
// (passt answers ARP for every address but the guest's own, arp.c), but a
// DNS server in eth0's subnet is no resolver (QEMU's user networking
// answers at 10.0.2.3; passt has none there and sends the queries on to
// that address on the host's network), a guest without a default route
// cannot answer a forwarded connection (passt presents it as coming from
// the client's address, or from the host's default gateway for a client
// on the host, fwd.c fwd_nat_from_host), and the forwards, IPv4, reach no
// IPv6-only guest.
func LibvirtNetWarnings(p *Plan) []string {
	q := p.QEMU
	if q.NoNetwork {
		return nil
	}
	cfg, err := bootcfg.Parse(q.Append)
	if err != nil || cfg.Net.None || !cfg.Net.Addr.IsValid() {
		return nil
	}
	n := cfg.Net
	var w []string
	subnet := n.Addr.Masked()
	for _, d := range n.DNS {
		if subnet.Contains(d) {
			w = append(w, fmt.Sprintf("katana.net's DNS server %s is in eth0's subnet %s: under passt nothing answers there unless the host's own network has a resolver at %s (passt has no resolver of its own, as QEMU's user networking has at 10.0.2.3; it sends the queries on to that address from the host, and libvirt cannot give passt --dns-forward): measure a katana.net whose dns= names a resolver the host reaches, or launch with 'hostbuild run'", d, subnet, d))
		}
	}
	if len(q.Forwards) > 0 {
		switch {
		case n.Addr.Addr().Is6():
			w = append(w, fmt.Sprintf("katana.net gives eth0 only the IPv6 address %s: the --forward ports are IPv4, and passt forwards a connection in the family it came in, so they reach nothing in this guest", n.Addr.Addr()))
		case !n.Gateway.IsValid():
			w = append(w, fmt.Sprintf("katana.net gives eth0 no gateway: passt presents a forwarded connection as coming from the client's address, or from the host's default gateway for a client on the host (the --forward default 127.0.0.1), which the guest can answer only through a default route unless that address is in %s; measure a katana.net with gw=", subnet))
		}
	}
	return w
}

// absPath makes path absolute, as libvirt requires, naming the same file:
// a relative path is joined to the working directory, and the result is
// cleaned only when it has no ".." element. After a symbolic link ".." is
// not the parent of the link's name, so cleaning "dir/link/../vmlinuz" into
// "dir/vmlinuz" would give libvirt another file than the one checked. The
// working directory counts too: os.Getwd returns $PWD whenever it names the
// working directory, also when it does so through "..".
func absPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		path = strings.TrimSuffix(wd, string(filepath.Separator)) + string(filepath.Separator) + path
	}
	if slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "..") {
		return path, nil
	}
	return filepath.Clean(path), nil
}

// viaProc reports whether resolving the absolute path goes through /proc
// (/dev/stdin, /dev/fd/N, /proc/self/fd/N), and the first such path: those
// name what they name in the process that opens them, and libvirt's QEMU
// is another process than the one that checked the file.
func viaProc(path string) (string, bool) {
	rest := strings.Split(path, "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		if next == "/proc" || strings.HasPrefix(next, "/proc/") {
			return next, true
		}
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if hops++; err != nil || hops > 40 {
			return "", false
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return "", false
}

// NotXMLChar is a refusal: a value of the launch holds a character that
// XML 1.0 cannot carry (C0 controls other than TAB, LF and CR, U+FFFE,
// U+FFFF, or bytes that are not UTF-8), so the domain XML would not
// describe the same launch.
type NotXMLChar struct {
	Field  string // the XML element or attribute, e.g. "os/cmdline"
	What   string // what the value is, e.g. "the manifest's cmdline"
	Value  string
	Offset int    // byte offset of the character in Value
	Char   string // e.g. "U+0001", or "byte 0xff (not UTF-8)"
	Fix    string // what to do instead, naming the flag; may be empty
	Why    string // why it cannot be written; empty: XML 1.0 cannot carry it
}

func (e *NotXMLChar) Error() string {
	what := e.Field
	if e.What != "" {
		what = e.What + " (" + e.Field + ")"
	}
	why := e.Why
	if why == "" {
		why = "which XML 1.0 cannot carry (libvirt would read back other bytes)"
	}
	msg := fmt.Sprintf("libvirt: refusing to write the domain: %s %q has %s at byte offset %d, %s",
		what, e.Value, e.Char, e.Offset, why)
	if e.Fix != "" {
		msg += ": " + e.Fix
	}
	return msg
}

// xmlFields names the values an operator gives or the manifest holds
// (what), and says what to do about one that XML cannot carry, naming the
// flag that gave it (fix; empty where no flag does).
var xmlFields = map[string]struct{ what, fix string }{
	"name":                        {"the domain name", ""},
	"os/kernel":                   {"the kernel path", "give --kernel a path without it (rename the file, or link to it)"},
	"os/initrd":                   {"the initrd path", "give --initrd a path without it (rename the file, or link to it)"},
	"os/cmdline":                  {"the manifest's cmdline", "the cmdline is measured, so it cannot be changed here: launch with 'hostbuild run', or measure a cmdline without it (hostbuild manifest --cmdline)"},
	"os/loader":                   {"the OVMF path", "give --ovmf a path without it (rename the file, or link to it)"},
	"cpu/model":                   {"the vCPU type", ""},
	"devices/emulator":            {"the emulator path", ""},
	"devices/serial/source/@path": {"the serial log path", "give --serial-log a path without it"},
}

// checkXMLChars checks every string of the domain against XML 1.0's Char
// production, and against what libvirt keeps: encoding/xml writes TAB, LF
// and CR as character references, which a parser returns unchanged, but
// libvirt saves the domain (virsh define) with the three written as they
// are (virBufferEscapeString) and parses that file again whenever its
// daemon starts, and XML reads a raw CR back as LF and, in an attribute,
// TAB, LF and CR as spaces. So CR is refused everywhere, TAB and LF in
// attributes.
func checkXMLChars(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkXMLChars(v.Elem(), path)
	case reflect.Slice:
		for i := range v.Len() {
			if err := checkXMLChars(v.Index(i), path); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("xml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() || f.Name == "XMLName" {
				continue
			}
			p := path
			switch {
			case strings.Contains(opts, "attr"):
				p = join(path, "@"+name)
			case strings.Contains(opts, "chardata"), name == "":
			default:
				p = join(path, name)
			}
			if err := checkXMLChars(v.Field(i), p); err != nil {
				return err
			}
		}
	case reflect.String:
		s := v.String()
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				return &NotXMLChar{Field: path, What: xmlFields[path].what, Value: s, Offset: i, Char: fmt.Sprintf("byte 0x%02x (not UTF-8)", s[i]), Fix: xmlFields[path].fix}
			case !isXMLChar(r):
				return &NotXMLChar{Field: path, What: xmlFields[path].what, Value: s, Offset: i, Char: fmt.Sprintf("U+%04X", r), Fix: xmlFields[path].fix}
			case r == '\r':
				return &NotXMLChar{Field: path, What: xmlFields[path].what, Value: s, Offset: i, Char: "U+000D (CR)", Fix: xmlFields[path].fix,
					Why: "which libvirt saves as a raw CR in its copy of the domain and reads back as LF when its daemon restarts"}
			case strings.Contains(path, "@") && (r == '\t' || r == '\n'):
				return &NotXMLChar{Field: path, What: xmlFields[path].what, Value: s, Offset: i, Char: fmt.Sprintf("U+%04X", r), Fix: xmlFields[path].fix,
					Why: "which libvirt saves raw in an attribute of its copy of the domain and reads back as a space when its daemon restarts"}
			}
			i += n
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "/" + name
}

// isXMLChar is XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

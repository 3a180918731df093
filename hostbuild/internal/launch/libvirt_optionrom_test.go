package launch

import (
	"encoding/xml"
	"strings"
	"testing"
)

// TestLibvirtXMLNICHasNoOptionROM: run gives the virtio NIC no option ROM
// (romfile=: nothing boots from the network, and an OVMF older than edk2's
// "ignore option ROMs in a confidential guest" would run the host's iPXE
// driver in the guest before the kernel). QEMU gives virtio-net-pci
// efi-virtio.rom unless told otherwise, and libvirt tells it only for
// <rom enabled='no'/>: the domain must say so, in SEV-SNP and plain mode.
func TestLibvirtXMLNICHasNoOptionROM(t *testing.T) {
	f := newFixture(t, []int{1})
	for _, mode := range []struct {
		name string
		opts func() Options
	}{{"SEV-SNP", f.snp}, {"plain", f.plain}} {
		t.Run(mode.name, func(t *testing.T) {
			p := prepare(t, mode.opts())
			var nic string
			for _, o := range p.Command.Options {
				if strings.HasPrefix(o.Value, "virtio-net-pci,") {
					nic = o.Value
				}
			}
			if !strings.HasSuffix(nic, ",romfile=") {
				t.Fatalf("run's NIC is %q, want it without an option ROM (romfile=)", nic)
			}
			b, err := LibvirtXML(p, "katana")
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				Interfaces []struct {
					ROM *struct {
						Enabled string `xml:"enabled,attr"`
					} `xml:"rom"`
				} `xml:"devices>interface"`
			}
			if err := xml.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Interfaces) != 1 {
				t.Fatalf("the domain has %d interfaces, want 1\n%s", len(d.Interfaces), b)
			}
			if r := d.Interfaces[0].ROM; r == nil || r.Enabled != "no" {
				t.Errorf("the domain's interface has no <rom enabled=\"no\"/>: libvirt lets QEMU load the NIC's option ROM, which run (%s) does not\n%s", nic, b)
			}
		})
	}
}

package launch

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
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

package initrd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/kmod"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// A module folder whose name has a colon (a DKMS-style "extra:1" folder)
// is one pack accepts (the module list and the content list hold it), so
// the modules.dep it writes beside it must be one the init reads back:
// outside SEV-SNP the init parses modules.dep before any module loads, and
// a refusal there is a boot error.
func TestPackedModulesDepWithColonPathParses(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	tree := filepath.Join(dir, "lib/modules/6.9.0-test")
	if err := os.Remove(filepath.Join(tree, "kernel/drivers/virtio/virtio.ko")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tree, "kernel/extra:1/virtio.ko")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, testelf.Module("depends=", "name=virtio"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Modules = []string{"virtio_net", "virtio_pci"}
	o.Output = filepath.Join(t.TempDir(), "initrd.img")
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	// The modules.dep pack wrote: kmod.ModulesDep of the closure, the
	// bytes the content list vouches for.
	kt, err := kmod.Open(tree)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := kt.Closure(o.Modules)
	if err != nil {
		t.Fatal(err)
	}
	dep := kmod.ModulesDep(mods)
	depPath := path.Join(initrdlayout.ModulesRoot("6.9.0-test"), initrdlayout.ModulesDepName)
	if sum, ok := res.Contents[depPath]; !ok || sum != sha256.Sum256(dep) {
		t.Fatalf("the content list's %s is not kmod.ModulesDep's %q", depPath, dep)
	}
	got, err := initrdlayout.ParseModulesDep(bytes.NewReader(dep))
	if err != nil {
		t.Fatalf("the init refuses the modules.dep pack wrote: %v\n%s", err, dep)
	}
	if back := initrdlayout.FormatModulesDep(got); !bytes.Equal(back, dep) {
		t.Errorf("modules.dep read back as %q, written %q", back, dep)
	}
	want := map[string]int{"kernel/extra:1/virtio.ko": 0, "kernel/drivers/net/virtio_net.ko": 1, "kernel/drivers/virtio/virtio_pci.ko": 1}
	for _, m := range got {
		if n, ok := want[m.Path]; !ok || len(m.Deps) != n || n == 1 && m.Deps[0] != "kernel/extra:1/virtio.ko" {
			t.Errorf("read back %s: %q", m.Path, m.Deps)
		}
	}
	if len(got) != len(want) {
		t.Errorf("read back %d modules, want %d", len(got), len(want))
	}
}

package modload

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Tests added after a second mutation-testing sample of the module loader.

// A failed module whose kernel log has exactly one matching line carries
// that line: the test with two lines would not notice a "more than one"
// threshold.
func TestKernelLogOneLineInError(t *testing.T) {
	root, contents, mods := setup(t, []string{"virtio"}, []string{""})
	k := &fakeKernel{errs: map[string]error{"image:virtio": unix.ENOENT}}
	_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k, KernelLog: func(string) []string {
		return []string{"virtio: Unknown symbol vring_del_virtqueue (err -2)"}
	}})
	if err == nil || !strings.HasSuffix(err.Error(), "; kernel: virtio: Unknown symbol vring_del_virtqueue (err -2)") {
		t.Errorf("error %v does not carry the kernel's one message", err)
	}
}

// A listed file whose name is no module format the loader knows (.ko,
// .ko.xz, .ko.zst, .ko.gz) is a format error, never counted as loaded.
func TestLoadUnknownSuffixIsFormatError(t *testing.T) {
	root := t.TempDir()
	rel := "lib/modules/6.1.0/kernel/m.ko.bz2"
	data := []byte("image:m")
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, rel), data, 0o644); err != nil {
		t.Fatal(err)
	}
	contents := initrdlayout.Contents{rel: sha256.Sum256(data)}
	k := &fakeKernel{}
	res, err := Load([]initrdlayout.Module{{Name: "m", Path: rel}}, Options{Root: root, Contents: contents, Kernel: k})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("Load of %s: results %+v, err %v; want ErrFormat", rel, res, err)
	}
	if len(k.calls) != 0 {
		t.Errorf("the kernel was asked to load it: %v", k.calls)
	}
}

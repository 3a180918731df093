package modload

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"golang.org/x/sys/unix"
)

// Every errno the loader explains gets its hint in the boot error; one it
// does not know is passed on as it is. The hint is what tells the operator
// where to look (the kernel log, the module's release, lockdown).
func TestLoadErrorHints(t *testing.T) {
	for _, tc := range []struct {
		errno unix.Errno
		hint  string
	}{
		{unix.ENOENT, "(unknown symbol: a dependency is missing or listed after it; see the kernel log)"},
		{unix.ENOEXEC, "(invalid module format: built for another kernel release?)"},
		{unix.EKEYREJECTED, "(module signature rejected)"},
		{unix.EBADMSG, "(module signature rejected)"},
		{unix.EPERM, "(module loading not permitted (modules disabled or lockdown))"},
		{unix.EINVAL, "(invalid parameters or module; see the kernel log)"},
		{unix.E2BIG, ""},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			root, contents, mods := setup(t, []string{"m"}, []string{""})
			k := &fakeKernel{errs: map[string]error{"image:m": tc.errno}}
			_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k})
			if !errors.Is(err, tc.errno) {
				t.Fatalf("err = %v, want %v", err, tc.errno)
			}
			want := "loading module m (" + mods[0].Path + "): " + tc.errno.Error()
			if tc.hint != "" {
				want += " " + tc.hint
			}
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

// When the kernel log has nothing about the failed module, the error says
// nothing of it either: no empty "; kernel: " tail.
func TestKernelLogEmptyAddsNothing(t *testing.T) {
	root, contents, mods := setup(t, []string{"virtio"}, []string{""})
	k := &fakeKernel{errs: map[string]error{"image:virtio": unix.ENOENT}}
	_, err := Load(mods, Options{Root: root, Contents: contents, Kernel: k, KernelLog: func(string) []string { return nil }})
	if err == nil || strings.Contains(err.Error(), "kernel:") {
		t.Errorf("error %v, want no kernel messages part when the log has none", err)
	}
}

// A load list that exists but is not in the content list is ErrNotListed
// (something added it to the initrd), not a checksum mismatch against a
// zero digest: the two point the operator at different faults.
func TestReadListNotListed(t *testing.T) {
	root, contents, _ := setup(t, []string{"a"}, []string{""})
	delete(contents, initrdlayout.ModulesLoad)
	if err := os.WriteFile(filepath.Join(root, initrdlayout.ModulesLoad), []byte("a lib/modules/x.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadList(root, contents); !errors.Is(err, ErrNotListed) || errors.Is(err, ErrMismatch) {
		t.Errorf("unlisted load list: err = %v, want ErrNotListed", err)
	}
}

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

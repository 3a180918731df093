package modload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Tests added after a mutation-testing sample of the module loader: each
// pins a decision that the rest of the suite let change unnoticed.

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

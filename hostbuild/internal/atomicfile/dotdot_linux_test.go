package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// An output path with ".." after a folder name ("a/../out.img") is
// resolved by the kernel, folder by folder: "a" must exist, and when it is
// a symlink ".." leaves its target, not the folder that holds the link.
// The temporary file went to filepath.Dir's lexical folder ("." for
// "a/../out.img") and was renamed to the path as the kernel resolves it:
// CheckFolder passed a path whose rename then failed (ENOENT, after all
// the work, naming the temporary file), and through a symlink to another
// file system the rename failed with EXDEV.
func TestPathThroughDotDotResolvesAsTheKernelDoes(t *testing.T) {
	t.Run("missing folder", func(t *testing.T) {
		dir := t.TempDir()
		out := dir + "/missing/../out.img"
		if err := CheckFolder(out); err == nil || !strings.Contains(err.Error(), dir+"/missing/..") {
			t.Errorf("CheckFolder(%s) = %v, want an error naming %s/missing/.. (the kernel cannot resolve the path)", out, err, dir)
		}
		err := WriteFile(out, []byte("x"), 0o644)
		if err == nil || strings.Contains(err.Error(), ".tmp") {
			t.Errorf("WriteFile(%s) = %v, want an error that does not name a temporary file", out, err)
		}
		if got := names(t, dir); len(got) != 0 {
			t.Errorf("%s holds %v, want nothing", dir, got)
		}
	})
	t.Run("symlink to another file system", func(t *testing.T) {
		dir := t.TempDir()
		other, err := os.MkdirTemp("/dev/shm", "atomicfile-")
		if err != nil {
			t.Skipf("skipping: no /dev/shm: %v", err)
		}
		defer os.RemoveAll(other)
		var a, b syscall.Stat_t
		if syscall.Stat(dir, &a) != nil || syscall.Stat(other, &b) != nil || a.Dev == b.Dev {
			t.Skipf("skipping: %s and %s are on one file system", dir, other)
		}
		if err := os.Mkdir(filepath.Join(other, "deep"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(other, "deep"), filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		out := dir + "/link/../out.img" // the kernel's: other/out.img
		if err := CheckFolder(out); err != nil {
			t.Fatalf("CheckFolder(%s) = %v", out, err)
		}
		if err := WriteFile(out, []byte("x"), 0o644); err != nil {
			t.Fatalf("WriteFile(%s) = %v, want it written at %s", out, err, filepath.Join(other, "out.img"))
		}
		checkFile(t, filepath.Join(other, "out.img"), []byte("x"), 0o644)
		if got := names(t, dir); len(got) != 1 {
			t.Errorf("%s holds %v, want only the link", dir, got)
		}
	})
}

package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// RemoveStale removes only names Commit makes for path (.NAME.N.tmp): a
// file of the operator's beside the output whose name merely ends in
// digits and .tmp ("5.tmp") is not one, and stays.
func TestRemoveStaleOnlyItsOwnNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.img")
	keep := []string{"5.tmp", "42.tmp", ".42.tmp", "out.img.42.tmp", ".out.img..tmp", ".out.img.4x.tmp", ".other.42.tmp"}
	for _, n := range append([]string{".out.img.42.tmp"}, keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := RemoveStale(path), []string{filepath.Join(dir, ".out.img.42.tmp")}; !slices.Equal(got, want) {
		t.Errorf("RemoveStale(%s) = %q, want %q", path, got, want)
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, not a temporary file of out.img, is gone: %v", n, err)
		}
	}
}

package netcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A resolv.conf that cannot be replaced (here a non-empty directory in its
// place) is an error naming it, and leaves no resolv.conf.tmp behind.
func TestWriteResolvConfRenameFails(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "resolv.conf", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteResolvConf(root, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "etc", "resolv.conf")) {
		t.Fatalf("WriteResolvConf over a directory: %v, want an error naming resolv.conf", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc", "resolv.conf.tmp")); !os.IsNotExist(err) {
		t.Errorf("resolv.conf.tmp left behind after a failed write (Lstat: %v)", err)
	}
}

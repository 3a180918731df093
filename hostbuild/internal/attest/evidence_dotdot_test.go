package attest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// --evidence-out with ".." after a folder name is resolved by the kernel,
// folder by folder. CheckEvidenceDir, which attest runs before it asks
// the guest (a report is spent once fetched), looked at the lexical parent
// (filepath.Clean) and passed "missing/../ev", whose rename then failed
// once the report was fetched and verified: the evidence was lost. And the
// temporary folder was made in the lexical parent, so through a symlink
// to another file system the rename failed with EXDEV.
func TestEvidenceDirThroughDotDot(t *testing.T) {
	t.Run("missing folder", func(t *testing.T) {
		dir := t.TempDir()
		ev := dir + "/missing/../ev"
		if err := CheckEvidenceDir(ev); err == nil || !strings.Contains(err.Error(), "the folder "+dir+"/missing/.. does not exist") {
			t.Errorf("CheckEvidenceDir(%s) = %v, want it refused: the kernel cannot resolve it", ev, err)
		}
	})
	t.Run("symlink to another file system", func(t *testing.T) {
		in, _, dir := verifiedEvidence(t)
		other, err := os.MkdirTemp("/dev/shm", "evidence-")
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
		ev := dir + "/link/../ev" // the kernel's: other/ev
		if err := CheckEvidenceDir(ev); err != nil {
			t.Fatalf("CheckEvidenceDir(%s) = %v", ev, err)
		}
		if err := WriteEvidence(ev, in); err != nil {
			t.Fatalf("WriteEvidence(%s) = %v, want the folder written at %s", ev, err, filepath.Join(other, "ev"))
		}
		if _, err := os.Stat(filepath.Join(other, "ev", FileResponse)); err != nil {
			t.Error(err)
		}
		if ents, _ := filepath.Glob(filepath.Join(dir, ".ev.*")); len(ents) != 0 {
			t.Errorf("left %v", ents)
		}
	})
}

package attest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckEvidenceDir is what attest checks before it asks the guest, and
// what WriteEvidence refuses: an existing folder, a missing parent, a
// parent that is a file. A refused folder is not created, and nothing is
// left beside it.
func TestCheckEvidenceDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{filepath.Join(dir, "new"), ""},
		{dir, dir + " already exists; give a new folder"},
		{file, file + " already exists"},
		{filepath.Join(dir, "no", "ev"), "the folder " + filepath.Join(dir, "no") + " does not exist; create it first"},
		{filepath.Join(file, "ev"), file + " is not a folder"},
	} {
		err := CheckEvidenceDir(tc.dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", tc.dir, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), tc.dir)):
			t.Errorf("%s: %v, want an error starting with the folder and containing %q", tc.dir, err, tc.want)
		case tc.want != "":
			if werr := WriteEvidence(tc.dir, EvidenceIn{}); werr == nil || !strings.Contains(werr.Error(), tc.want) {
				t.Errorf("WriteEvidence(%s): %v, want the same refusal", tc.dir, werr)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the checks left files in %s: %v (want only the file)", dir, ents)
	}
}

package attest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The evidence folder is a new folder for others to re-check (verify):
// made as mkdir makes one, its mode is 0777 less the umask, as its files'
// are 0644 less it. It was always 0700 (os.MkdirTemp's mode, kept by the
// rename), whatever the umask: another user (an auditor) could not read
// evidence whose files were all readable to them.
func TestEvidenceFolderModeFollowsUmask(t *testing.T) {
	in, _, dir := verifiedEvidence(t)
	for _, tc := range []struct{ umask, dir, file os.FileMode }{{0o022, 0o755, 0o644}, {0o077, 0o700, 0o600}} {
		old := syscall.Umask(int(tc.umask))
		ev := filepath.Join(dir, "ev"+tc.umask.String())
		err := WriteEvidence(ev, in)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(ev); err != nil || fi.Mode().Perm() != tc.dir {
			t.Errorf("umask %#o: evidence folder %v (%v), want %v", tc.umask, fi.Mode().Perm(), err, tc.dir)
		}
		if fi, err := os.Stat(filepath.Join(ev, FileReport)); err != nil || fi.Mode().Perm() != tc.file {
			t.Errorf("umask %#o: %s %v (%v), want %v", tc.umask, FileReport, fi.Mode().Perm(), err, tc.file)
		}
	}
}

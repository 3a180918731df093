package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/stracetest"
)

// TestSyncChild is the child of TestCommitSyncsFileThenFolder: it writes
// one file with WriteFile, under strace.
func TestSyncChild(t *testing.T) {
	path := os.Getenv("ATOMICFILE_SYNC_CHILD")
	if path == "" {
		t.Skip("child of TestCommitSyncsFileThenFolder")
	}
	forceNamed = os.Getenv("ATOMICFILE_SYNC_NAMED") != ""
	if err := WriteFile(path, []byte("durable"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Durability is what the atomic write is for: the file's data are synced
// before the rename makes them visible at the path, and the folder is
// synced after it (else a crash can leave the old file, or an empty new
// one, at the path). No test can see that from the file system, so this
// one reads the system calls (strace).
func TestCommitSyncsFileThenFolder(t *testing.T) {
	for _, named := range []bool{false, true} {
		name := "unnamed"
		if named {
			name = "named"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if !named {
				unnamed(t, dir)
			}
			out := filepath.Join(dir, "out.img")
			cmd := exec.Command(os.Args[0], "-test.run=^TestSyncChild$")
			cmd.Env = append(os.Environ(), "ATOMICFILE_SYNC_CHILD="+out)
			if named {
				cmd.Env = append(cmd.Env, "ATOMICFILE_SYNC_NAMED=1")
			}
			calls := stracetest.Run(t, "openat,fsync,fdatasync,linkat,rename,renameat,renameat2,close", cmd)
			if got, err := os.ReadFile(out); err != nil || string(got) != "durable" {
				t.Fatalf("child wrote %q, %v", got, err)
			}
			// Follow the file's and the folder's descriptors through the calls.
			openRe := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]*)", ([^)]*)\) = (\d+)`)
			fsyncRe := regexp.MustCompile(`\bfsync\((\d+)\) += 0`)
			// A new path gets the file by linkat, an existing one by rename.
			renameRe := regexp.MustCompile(`(?:rename(?:at2?)?|linkat)\(.*"` + regexp.QuoteMeta(out) + `"`)
			fileFD, dirFDs := "", map[string]bool{}
			fileSynced, renamed, dirSyncedAfter := false, false, false
			for _, l := range calls {
				if m := openRe.FindStringSubmatch(l); m != nil {
					switch {
					case strings.Contains(m[2], "O_TMPFILE") || strings.Contains(m[1], ".out.img."):
						fileFD = m[3]
					case m[1] == dir:
						dirFDs[m[3]] = true
					}
					continue
				}
				if m := fsyncRe.FindStringSubmatch(l); m != nil {
					if m[1] == fileFD && !renamed {
						fileSynced = true
					}
					if dirFDs[m[1]] && renamed {
						dirSyncedAfter = true
					}
					continue
				}
				if renameRe.MatchString(l) && strings.Contains(l, "= 0") {
					renamed = true
				}
			}
			if !fileSynced || !renamed || !dirSyncedAfter {
				t.Errorf("file synced before the rename: %v; renamed: %v; folder synced after it: %v\nstrace:\n%s",
					fileSynced, renamed, dirSyncedAfter, filterLog(calls, dir))
			}
		})
	}
}

func filterLog(calls []string, dir string) string {
	var out []string
	for _, l := range calls {
		if strings.Contains(l, dir) || strings.Contains(l, "fsync") || strings.Contains(l, "rename") || strings.Contains(l, "linkat") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// renameChecked is RenameNoReplace where the file system lacks
// RENAME_NOREPLACE (EINVAL): it must refuse an existing file or empty
// folder as RenameNoReplace does. Only the fallback's own test can see it:
// the file systems tests run on all have RENAME_NOREPLACE.
func TestRenameCheckedRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, existing := range []string{"file", "empty-folder"} {
		dst := filepath.Join(dir, existing)
		if existing == "file" {
			os.WriteFile(dst, []byte("keep"), 0o644)
		} else {
			os.Mkdir(dst, 0o755)
		}
		if err := renameChecked(src, dst); !errors.Is(err, fs.ErrExist) {
			t.Errorf("renameChecked onto an existing %s: %v, want fs.ErrExist", existing, err)
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("onto an existing %s: the source is gone: %v", existing, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "keep" {
		t.Errorf("the existing file now holds %q", b)
	}
	if err := renameChecked(src, filepath.Join(dir, "new")); err != nil {
		t.Errorf("renameChecked to a new name: %v", err)
	}
}

// CheckFolder refuses a missing folder and a path whose "folder" is a
// file, and accepts an existing folder.
func TestCheckFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "out"), ""},
		{filepath.Join(dir, "missing", "out"), "cannot be used"},
		{filepath.Join(file, "out"), "is not a folder"},
	} {
		err := CheckFolder(tc.path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckFolder(%s) = %v, want %q", tc.path, err, tc.want)
		}
	}
}

// A symlink at the path is replaced (rename sees the link, not its
// target), even one to a folder or a device: the target is left alone.
func TestWriteFileReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "folder")
	os.Mkdir(target, 0o755)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("x"), 0o644); err != nil {
		t.Fatalf("WriteFile over a symlink to a folder: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("path after WriteFile: %v, %v; want a regular file", fi, err)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("the symlink's target: %v, %v; want the folder left alone", fi, err)
	}
}

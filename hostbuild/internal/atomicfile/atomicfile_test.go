package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestMain runs the child of TestKilledWriterLeavesNothing when asked.
func TestMain(m *testing.M) {
	if path := os.Getenv("ATOMICFILE_TEST_COMMIT_CHILD"); path != "" {
		commitChild(path)
	}
	if path := os.Getenv("ATOMICFILE_TEST_CHILD"); path != "" {
		f, err := Create(path, 0o644)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if _, err := f.Write(bytes.Repeat([]byte{'x'}, 4<<20)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("written")
		select {} // until killed
	}
	os.Exit(m.Run())
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func checkFile(t *testing.T, path string, want []byte, perm os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", path, st.Mode(), perm)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func TestNoEntryBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	unnamed(t, dir)
	old := syscall.Umask(0o077) // the mode is exact, whatever the umask
	defer syscall.Umask(old)
	path := filepath.Join(dir, "out.img")
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("folder while writing holds %v, want nothing", got)
	}
	if _, err := f.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"out.img"}) {
		t.Errorf("folder after commit holds %v, want [out.img]", got)
	}
	checkFile(t, path, []byte("hello world"), 0o644)
	f.Abort() // no effect after Commit
	checkFile(t, path, []byte("hello world"), 0o644)
}

// Both ways (unnamed and the named fallback) give the same results.
func TestCommitAbortReplace(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			forceNamed = named
			defer func() { forceNamed = false }()
			dir := t.TempDir()
			path := filepath.Join(dir, "cache.bin")

			// Abort leaves nothing, and keeps what was at the path.
			f, err := Create(path, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("partial"))
			f.Abort()
			if got := names(t, dir); len(got) != 0 {
				t.Errorf("folder after Abort holds %v", got)
			}
			if err := WriteFile(path, []byte("first"), 0o600); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, []byte("first"), 0o600)
			if f, err = Create(path, 0o600); err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("second, aborted"))
			f.Abort()
			checkFile(t, path, []byte("first"), 0o600)
			if err := f.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}

			// Commit replaces the file.
			if err := WriteFile(path, []byte("second"), 0o640); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, []byte("second"), 0o640)

			// A rename over a folder fails and leaves no temporary file.
			if err := os.Mkdir(filepath.Join(dir, "taken"), 0o755); err != nil {
				t.Fatal(err)
			}
			taken := filepath.Join(dir, "taken")
			if err := WriteFile(taken, []byte("x"), 0o644); err == nil || err.Error() != taken+" is a folder; give a file path" {
				t.Errorf("WriteFile over a folder: %v, want %q", err, taken+" is a folder; give a file path")
			}
			// Refused by Create already, before the caller's work.
			if _, err := Create(taken, 0o644); err == nil || !strings.Contains(err.Error(), "is a folder; give a file path") {
				t.Errorf("Create over a folder: %v", err)
			}
			// A folder made after Create: Commit says the same.
			later := filepath.Join(dir, "later")
			f, err = Create(later, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(later, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err == nil || err.Error() != later+" is a folder; give a file path" {
				t.Errorf("Commit over a folder made after Create: %v", err)
			}
			os.Remove(later)
			if got := names(t, dir); !slices.Equal(got, []string{"cache.bin", "taken"}) {
				t.Errorf("folder after a failed commit holds %v, want [cache.bin taken]", got)
			}

			// Into a missing folder: an error naming the path.
			missing := filepath.Join(dir, "missing", "x")
			if err := WriteFile(missing, nil, 0o644); err == nil || !bytes.Contains([]byte(err.Error()), []byte(missing)) {
				t.Errorf("WriteFile into a missing folder: %v, want an error naming %s", err, missing)
			}
		})
	}
}

// A writer killed by SIGKILL before Commit leaves no directory entry.
func TestKilledWriterLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	unnamed(t, dir)
	cmd, line := startChild(t, "ATOMICFILE_TEST_CHILD="+filepath.Join(dir, "initrd.img"))
	if line != "written\n" {
		t.Fatalf("child said %q, want \"written\"", line)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("folder while the child writes holds %v, want nothing", got)
	}
	killChild(t, cmd)
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("folder after the writer was killed holds %v, want nothing", got)
	}
}

// RenameNoReplace never replaces what is at the new path, an empty folder
// included (which rename(2) would replace), and renames otherwise.
func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	for _, existing := range []string{"empty-folder", "file"} {
		dst := filepath.Join(dir, existing)
		if existing == "file" {
			os.WriteFile(dst, nil, 0o644)
		} else {
			os.Mkdir(dst, 0o755)
		}
		if err := RenameNoReplace(src, dst); !errors.Is(err, fs.ErrExist) {
			t.Errorf("onto an existing %s: %v, want fs.ErrExist", existing, err)
		}
		if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
			t.Errorf("onto an existing %s: the source is gone: %v", existing, err)
		}
	}
	dst := filepath.Join(dir, "new")
	if err := RenameNoReplace(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
		t.Errorf("after the rename: %q, %v", b, err)
	}
}

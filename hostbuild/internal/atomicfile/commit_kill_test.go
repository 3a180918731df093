package atomicfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// commitChild is TestMain's child for TestKilledCommitOfNewPathLeavesNoTemporary:
// it writes path, commits it and blocks at the seam before the rename (if
// Commit gets there) or after Commit, saying which, until killed.
func commitChild(path string) {
	forceNamed = os.Getenv("ATOMICFILE_TEST_NAMED") == "1"
	f, err := Create(path, 0o644)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if _, err := f.Write(bytes.Repeat([]byte{'y'}, 1<<20)); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	beforeRename = func() {
		fmt.Println("linked")
		select {} // until killed
	}
	if err := f.Commit(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("committed")
	select {}
}

// startCommitChild starts commitChild on path and returns it with the
// first line it said.
func startCommitChild(t *testing.T, path string, named bool) (*exec.Cmd, string) {
	t.Helper()
	env := []string{"ATOMICFILE_TEST_COMMIT_CHILD=" + path}
	if named {
		env = append(env, "ATOMICFILE_TEST_NAMED=1")
	}
	return startChild(t, env...)
}

// startChild starts this test binary, running no test, with env added
// (a child TestMain or an init acts on), and returns it with the first
// line it said; the test's end kills it.
func startChild(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	return cmd, line
}

// killChild sends cmd SIGKILL and waits for it to end (at most 10 s).
func killChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGKILL)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("child still runs 10 s after SIGKILL")
	}
}

// A run killed between linking its file under a temporary name and
// renaming it over the previous file leaves .NAME.N.tmp; RemoveStale, as
// the next run writing the path calls it, removes that file, but not the
// temporary file of a run still writing (it holds the file's lock).
func TestRemoveStaleKeepsLiveRemovesKilled(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			dir := t.TempDir()
			if !named {
				unnamed(t, dir)
			}
			path := filepath.Join(dir, "out.img")
			if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd, line := startCommitChild(t, path, named)
			if line != "linked\n" {
				t.Fatalf("child said %q, want \"linked\"", line)
			}
			got := names(t, dir)
			if len(got) != 2 {
				t.Fatalf("folder while the child commits holds %v, want out.img and its temporary file", got)
			}
			if removed := RemoveStale(path); len(removed) != 0 {
				t.Errorf("RemoveStale removed %v, the temporary file of a run still writing", removed)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			removed := RemoveStale(path)
			if len(removed) != 1 || !strings.HasPrefix(filepath.Base(removed[0]), ".out.img.") {
				t.Errorf("RemoveStale after the kill removed %v, want the killed run's .out.img.N.tmp", removed)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"out.img"}) {
				t.Errorf("folder after RemoveStale holds %v, want [out.img]", got)
			}
			checkFile(t, path, []byte("previous"), 0o644)
		})
	}
}

// A run killed while it commits a file to a path that did not exist yet
// leaves the complete file at the path or nothing, never a hidden
// .NAME.N.tmp beside it: the unnamed file is linked straight to the path
// (linkat does not replace), so no temporary name exists to be left.
func TestKilledCommitOfNewPathLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	unnamed(t, dir)
	path := filepath.Join(dir, "initrd.img")
	cmd, line := startCommitChild(t, path, false)
	killChild(t, cmd)
	if got := names(t, dir); !slices.Equal(got, []string{"initrd.img"}) {
		t.Fatalf("folder after the child was killed in Commit (it said %q) holds %v, want [initrd.img]", line, got)
	}
	checkFile(t, path, bytes.Repeat([]byte{'y'}, 1<<20), 0o644)
}

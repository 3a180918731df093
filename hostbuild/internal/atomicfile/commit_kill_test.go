package atomicfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// commitChild is TestMain's child for TestKilledCommitOfNewPathLeavesNoTemporary:
// it writes path, commits it and blocks at the seam before the rename (if
// Commit gets there) or after Commit, saying which, until killed.
func commitChild(path string) {
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

// A run killed while it commits a file to a path that did not exist yet
// leaves the complete file at the path or nothing, never a hidden
// .NAME.N.tmp beside it: the unnamed file is linked straight to the path
// (linkat does not replace), so no temporary name exists to be left.
func TestKilledCommitOfNewPathLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	unnamed(t, dir)
	path := filepath.Join(dir, "initrd.img")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_TEST_COMMIT_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Signal(syscall.SIGKILL)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("child still runs 10 s after SIGKILL")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"initrd.img"}) {
		t.Fatalf("folder after the child was killed in Commit (it said %q) holds %v, want [initrd.img]", line, got)
	}
	checkFile(t, path, bytes.Repeat([]byte{'y'}, 1<<20), 0o644)
}

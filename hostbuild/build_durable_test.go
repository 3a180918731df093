package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A build into a folder that did not exist makes it (and its missing
// parents); the files in it are synced and so is the folder after the
// renames, but a folder's own entry is durable only once its parent is
// synced: after a crash soon after "exit 0" the new folder, and every
// file in it, could be gone. No test can see that from the file system,
// so this one reads the system calls (strace).
func TestBuildSyncsTheFoldersItMakes(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("skipping: no strace on PATH, which reads the system calls (apt-get install strace, or make deps)")
	}
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command(strace, "-f", "-qq", "-o", log, "-e", "trace=openat,fsync,mkdirat",
		os.Args[0], "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", abs("new/launch"))
	cmd.Env = append(os.Environ(), "HOSTBUILD_TEST_MAIN=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "ptrace") || strings.Contains(string(b), "Operation not permitted") {
			t.Skipf("skipping: strace cannot trace here: %s", b)
		}
		t.Fatalf("build: %v\n%s", err, b)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	openRe := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]*)", [^)]*\) = (\d+)`)
	fsyncRe := regexp.MustCompile(`\bfsync\((\d+)\) += 0`)
	fds := map[string]string{} // descriptor: the path it was opened on, while open
	synced := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := openRe.FindStringSubmatch(l); m != nil {
			fds[m[2]] = m[1]
		} else if m := fsyncRe.FindStringSubmatch(l); m != nil {
			synced[fds[m[1]]] = true
		}
	}
	for _, made := range []string{abs("new/launch"), abs("new")} {
		if parent := filepath.Dir(made); !synced[parent] {
			t.Errorf("build made %s but never synced %s, which holds its entry", made, parent)
		}
	}
}

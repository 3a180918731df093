package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/stracetest"
)

// A build into a folder that did not exist makes it (and its missing
// parents); the files in it are synced and so is the folder after the
// renames, but a folder's own entry is durable only once its parent is
// synced: after a crash soon after "exit 0" the new folder, and every
// file in it, could be gone. No test can see that from the file system,
// so this one reads the system calls (strace).
func TestBuildSyncsTheFoldersItMakes(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	cmd := exec.Command(os.Args[0], "build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", abs("new/launch"))
	cmd.Env = append(os.Environ(), "HOSTBUILD_TEST_MAIN=1")
	calls := stracetest.Run(t, "openat,fsync,mkdirat", cmd)
	openRe := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]*)", [^)]*\) = (\d+)`)
	fsyncRe := regexp.MustCompile(`\bfsync\((\d+)\) += 0`)
	fds := map[string]string{} // descriptor: the path it was opened on, while open
	synced := map[string]bool{}
	for _, l := range calls {
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

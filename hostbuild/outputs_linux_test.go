//go:build linux

package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// An output entry of build that is a folder (here OUTDIR/cmdline) is
// refused before any work, naming it, and nothing is written: it was
// found only at the rename, "rename ...: file exists", after the new
// initrd.img had been moved in (and, for initrd.img a folder, after the
// previous manifest.json had been removed), exit 1.
func TestBuildOutputEntryIsAFolder(t *testing.T) {
	for _, name := range []string{buildInitrd, buildCmdline} {
		t.Run(name, func(t *testing.T) {
			dir, ovmf := stageBuild(t)
			build := func() (string, int) {
				_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
					"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out")
				return errOut, code
			}
			if errOut, code := build(); code != exitOK {
				t.Fatalf("good build: exit %d\n%s", code, errOut)
			}
			before := map[string][]byte{}
			for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
				b, _ := os.ReadFile(filepath.Join(dir, "out", n))
				before[n] = b
			}
			p := filepath.Join(dir, "out", name)
			os.Remove(p)
			delete(before, name)
			if err := os.MkdirAll(filepath.Join(p, "keep"), 0o755); err != nil {
				t.Fatal(err)
			}
			// Another payload: a build that got through would write another initrd.
			os.WriteFile(filepath.Join(dir, "katana2"), append(must(os.ReadFile(filepath.Join(dir, "katana"))), 0), 0o755)
			_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana2", "--kernel-modules", "k",
				"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out")
			if code != exitFail || !strings.Contains(errOut, p+" is a folder") && !strings.Contains(errOut, "out/"+name+" is a folder") {
				t.Errorf("exit %d, want %d naming %s as a folder:\n%s", code, exitFail, p, errOut)
			}
			for n, b := range before {
				got, err := os.ReadFile(filepath.Join(dir, "out", n))
				if err != nil || string(got) != string(b) {
					t.Errorf("%s changed or removed (%v)", n, err)
				}
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// libvirt -o and --serial-log naming one file is refused: the domain's
// serial console, opened with truncation when it starts, would overwrite
// the domain XML written there (it was written, exit 0).
func TestLibvirtOutputIsSerialLog(t *testing.T) {
	f := newRunFixture(t)
	out := filepath.Join(t.TempDir(), "katana.xml")
	_, stderr, code := runHB(t, "libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cid", "3", "--serial-log", out, "-o", out)
	if code != exitFail || !strings.Contains(stderr, "--serial-log") {
		t.Errorf("exit %d, want %d naming --serial-log:\n%s", code, exitFail, stderr)
	}
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}

// A command whose output goes to stdout ("hostbuild cmdline > cmdline",
// "hostbuild libvirt ... > katana.xml") fails when stdout cannot be
// written (a full disk): it exited 0, leaving an empty file, as inspect
// and ovmf already do not.
func TestStdoutWriteErrorFails(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("skipping: no /dev/full to write stdout to (%v); run on Linux with a devtmpfs /dev", err)
	}
	defer full.Close()
	cmd := exec.Command(os.Args[0], "cmdline")
	cmd.Env = append(os.Environ(), "HOSTBUILD_TEST_MAIN=1")
	cmd.Stdout = full
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
		t.Errorf("hostbuild cmdline > /dev/full: %v, want exit %d", err, exitFail)
	}
}

// A write error of the initrd (a full disk; here the file size limit, so
// no mount is needed) names the output file: it read "writing init: write
// DIR: file too large", naming the folder and an entry, as if an input
// could not be written.
func TestPackWriteErrorNamesOutput(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	// A payload over the packer's 1 MiB write buffer, so that the write
	// fails while the archive is written, not at the final flush.
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big"), testelf.Executable("", big), 0o755); err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 1 << 20 // the child inherits it: its initrd cannot grow past 1 MiB
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "big", "--compress", "none", "--payload-encoding", "inline", "--kernel-modules", "k", "-o", "x.img")
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	out := filepath.Join("x.img")
	t.Logf("exit %d: %s", code, errOut)
	if code != exitFail || !strings.Contains(errOut, out) {
		t.Errorf("exit %d, want %d naming %s:\n%s", code, exitFail, out, errOut)
	}
}

// build -o an existing folder it cannot write (a read-only mount) names -o
// and the fix before any work; it said "mkdir OUT/.build-NNN.tmp:
// read-only file system" after the checks.
func TestBuildUnwritableOutDirNamesFlag(t *testing.T) {
	dir, ovmf := stageBuild(t)
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Skipf("skipping: cannot mount a read-only tmpfs (%v); run the tests as root (CI does)", err)
	}
	defer syscall.Unmount(ro, 0)
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "ro")
	if code != exitFail || !strings.Contains(errOut, "-o ro: the output folder cannot be written to") || strings.Contains(errOut, ".build-") {
		t.Errorf("exit %d; want 1 naming -o ro and the fix, not the temporary folder:\n%s", code, errOut)
	}
}

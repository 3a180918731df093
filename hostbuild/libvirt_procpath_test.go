package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibvirtRefusesProcessRelativePaths: /dev/stdin, /dev/fd/N and
// /proc/self/fd/N name a file of the process that opens them. hostbuild
// checks the file they name in its own process; libvirt's QEMU, which opens
// the path again, gets its own stdin or descriptor N: another file than the
// one checked (or none). Such a path is refused (exit 2), and nothing is
// written.
func TestLibvirtRefusesProcessRelativePaths(t *testing.T) {
	f := newRunFixture(t)
	kernel, err := os.Open(f.kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	initrd, err := os.Open(f.initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer initrd.Close()
	out := filepath.Join(f.dir, "domain.xml")
	for _, c := range []struct{ flag, path string }{
		{"--kernel", fmt.Sprintf("/proc/self/fd/%d", kernel.Fd())},
		{"--initrd", fmt.Sprintf("/dev/fd/%d", initrd.Fd())},
	} {
		t.Run(c.flag, func(t *testing.T) {
			args := withFlags([]string{"libvirt", "--manifest", f.manifest, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
				"--cid", "3", "-o", out}, c.flag, c.path)
			_, stderr, code := runHB(t, args...)
			if code != exitUsage || !strings.Contains(stderr, c.path) || !strings.Contains(stderr, "/proc") {
				t.Errorf("%s %s: exit %d, want %d naming the path and /proc\n%s", c.flag, c.path, code, exitUsage, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				b, _ := os.ReadFile(out)
				t.Errorf("a domain was written naming %s, which libvirt's QEMU opens as its own descriptor:\n%s", c.path, b)
				os.Remove(out)
			}
		})
	}
}

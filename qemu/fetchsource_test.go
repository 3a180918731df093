package qemu

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make kernel-source is idempotent by VERSION alone: a checkout whose
// kernelharness/files names a file the cache lacks (the list grew) must
// extract again, not say "nothing to do" (build.sh then fails, telling
// the user to run make kernel-source).
func TestFetchKernelSourceRefetchesWhenTheListGrew(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH: this test needs dpkg-deb, tar and xz (./.ci/deps.sh installs xz-utils; the others come with Debian)", tool)
		}
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
	}
	f, err := os.Open("../shared/bootcfg/testdata/kernelharness/files")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for s := bufio.NewScanner(f); s.Scan(); {
		list = append(list, s.Text())
	}
	f.Close()
	deb := func(pkgDir, name, version string, files map[string]string) string {
		os.MkdirAll(filepath.Join(pkgDir, "DEBIAN"), 0o755)
		os.WriteFile(filepath.Join(pkgDir, "DEBIAN/control"), []byte("Package: "+name+"\nVersion: "+version+"\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"), 0o644)
		for p, c := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(pkgDir, p)), 0o755)
			os.WriteFile(filepath.Join(pkgDir, p), []byte(c), 0o644)
		}
		out := filepath.Join(dir, name+"_"+version+"_all.deb")
		run("dpkg-deb", "-b", "--root-owner-group", pkgDir, out)
		return out
	}
	os.MkdirAll(filepath.Join(dir, "kernel"), 0o755)
	os.WriteFile(filepath.Join(dir, "kernel/release"), []byte("6.1.0-99-amd64\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "debs"), 0o755)
	img := deb(filepath.Join(dir, "img"), "linux-image-6.1.0-99-amd64", "6.1.999-1", nil)
	os.Rename(img, filepath.Join(dir, "debs", filepath.Base(img)))
	src := filepath.Join(dir, "t/linux-source-6.1")
	for _, p := range list {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte("/* "+p+" */\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "srcpkg/usr/src"), 0o755)
	run("tar", "-C", filepath.Join(dir, "t"), "-cJf", filepath.Join(dir, "srcpkg/usr/src/linux-source-6.1.tar.xz"), "linux-source-6.1")
	srcDeb := deb(filepath.Join(dir, "srcpkg"), "linux-source-6.1", "6.1.999-1", nil)
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "apt-get"), []byte("#!/bin/sh\ncp '"+srcDeb+"' .\n"), 0o755)
	// A cache of the same version from before the list grew: all but the last file.
	dest := filepath.Join(dir, "kernel-source")
	for _, p := range list[:len(list)-1] {
		os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755)
		os.WriteFile(filepath.Join(dest, p), nil, 0o644)
	}
	os.WriteFile(filepath.Join(dest, "VERSION"), []byte("linux-source-6.1 6.1.999-1\n"), 0o644)
	cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch-kernel-source.sh: %v\n%s", err, out)
	}
	for _, p := range list {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("after make kernel-source, the cache lacks %s, which kernelharness/files lists (%s)", p, strings.TrimSpace(string(out)))
		}
	}
}

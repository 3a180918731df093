package qemu

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fetchSourceFixture is a kernel folder for release 6.1.0-99-amd64 whose
// debs/ holds linux-image .debs of imageVersions, and a bin/ with an
// apt-get that hands out linux-source-6.1 only at srcVersion (a source
// tree of every file kernelharness/files lists, each holding its path
// and srcVersion) and fails for any other.
func fetchSourceFixture(t *testing.T, srcVersion string, imageVersions ...string) (dir string, list []string, env []string) {
	t.Helper()
	return fetchSourceFixtureSeries(t, "6.1", nil, srcVersion, imageVersions...)
}

// fetchSourceFixtureSeries is fetchSourceFixture for the kernel series
// series (release series.0-99-amd64, package linux-source-series), whose
// source tree also holds the files extra names.
func fetchSourceFixtureSeries(t *testing.T, series string, extra []string, srcVersion string, imageVersions ...string) (dir string, list []string, env []string) {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH: this test needs dpkg-deb, tar and xz (./.ci/deps.sh installs xz-utils; the others come with Debian)", tool)
		}
	}
	dir = t.TempDir()
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
	for s := bufio.NewScanner(f); s.Scan(); {
		list = append(list, s.Text())
	}
	f.Close()
	deb := func(pkgDir, name, version string) string {
		os.MkdirAll(filepath.Join(pkgDir, "DEBIAN"), 0o755)
		// dpkg-deb -b refuses a control folder below 0755 (what MkdirAll
		// makes under umask 077).
		os.Chmod(filepath.Join(pkgDir, "DEBIAN"), 0o755)
		os.WriteFile(filepath.Join(pkgDir, "DEBIAN/control"), []byte("Package: "+name+"\nVersion: "+version+"\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"), 0o644)
		out := filepath.Join(dir, name+"_"+version+"_all.deb")
		run("dpkg-deb", "-b", "--root-owner-group", pkgDir, out)
		return out
	}
	os.MkdirAll(filepath.Join(dir, "kernel"), 0o755)
	release := series + ".0-99-amd64"
	os.WriteFile(filepath.Join(dir, "kernel/release"), []byte(release+"\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "debs"), 0o755)
	for i, v := range imageVersions {
		img := deb(filepath.Join(dir, "img"+string(rune('a'+i))), "linux-image-"+release, v)
		os.Rename(img, filepath.Join(dir, "debs", filepath.Base(img)))
	}
	src := filepath.Join(dir, "t/linux-source-"+series)
	for _, p := range append(slices.Clip(list), extra...) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte("/* "+p+" "+srcVersion+" */\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "srcpkg/usr/src"), 0o755)
	run("tar", "-C", filepath.Join(dir, "t"), "-cJf", filepath.Join(dir, "srcpkg/usr/src/linux-source-"+series+".tar.xz"), "linux-source-"+series)
	srcDeb := deb(filepath.Join(dir, "srcpkg"), "linux-source-"+series, srcVersion)
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "apt-get"), []byte("#!/bin/sh\ncase \" $* \" in\n*' linux-source-"+series+"="+srcVersion+" '*) cp '"+srcDeb+"' . ;;\n*) echo \"apt-get: no $*\" >&2; exit 100 ;;\nesac\n"), 0o755)
	// debs/ beside the kernel folder, whatever KERNEL_DEB_CACHE the caller has.
	env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "KERNEL_DEB_CACHE=")
	return dir, list, env
}

// The source is fetched at the version of the newest linux-image .deb in
// debs/ (fetch-kernel.sh leaves older ones there after an upgrade), and a
// complete cache of another version is replaced.
func TestFetchKernelSourceVersion(t *testing.T) {
	dir, list, env := fetchSourceFixture(t, "6.1.999-1", "6.1.998-1", "6.1.999-1")
	dest := filepath.Join(dir, "kernel-source")
	// A complete cache of the older version.
	for _, p := range list {
		os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755)
		os.WriteFile(filepath.Join(dest, p), []byte("old"), 0o644)
	}
	os.WriteFile(filepath.Join(dest, "VERSION"), []byte("linux-source-6.1 6.1.998-1\n"), 0o644)
	cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch-kernel-source.sh: %v\n%s", err, out)
	}
	if v, _ := os.ReadFile(filepath.Join(dest, "VERSION")); string(v) != "linux-source-6.1 6.1.999-1\n" {
		t.Errorf("VERSION %q, want linux-source-6.1 6.1.999-1 (%s)", v, strings.TrimSpace(string(out)))
	}
	for _, p := range list {
		if b, _ := os.ReadFile(filepath.Join(dest, p)); !strings.Contains(string(b), "6.1.999-1") {
			t.Errorf("%s holds %q, not the 6.1.999-1 source", p, b)
		}
	}
}

// A kernel folder whose release file is not a kernel release is refused
// as such, before anything is looked up or fetched.
func TestFetchKernelSourceRefusesBadRelease(t *testing.T) {
	dir, _, env := fetchSourceFixture(t, "6.1.999-1", "6.1.999-1")
	os.WriteFile(filepath.Join(dir, "kernel/release"), []byte("garbage\n"), 0o644)
	cmd := exec.Command("./fetch-kernel-source.sh", filepath.Join(dir, "kernel-source"), filepath.Join(dir, "kernel"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a kernel release") {
		t.Errorf("release \"garbage\": %v\n%s\nwant a refusal naming it not a kernel release", err, out)
	}
}

// make kernel-source is idempotent by VERSION and the listed files: a
// checkout whose kernelharness/files names a file the cache lacks (the
// list grew) extracts again, not "nothing to do" (build.sh then failed,
// telling the user to run make kernel-source; found by review).
func TestFetchKernelSourceRefetchesWhenTheListGrew(t *testing.T) {
	dir, list, env := fetchSourceFixture(t, "6.1.999-1", "6.1.999-1")
	// A cache of the same version from before the list grew: all but the last file.
	dest := filepath.Join(dir, "kernel-source")
	for _, p := range list[:len(list)-1] {
		os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755)
		os.WriteFile(filepath.Join(dest, p), nil, 0o644)
	}
	os.WriteFile(filepath.Join(dest, "VERSION"), []byte("linux-source-6.1 6.1.999-1\n"), 0o644)
	cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
	cmd.Env = env
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

// Linux 6.8 moved get_last_crashkernel(), which the differential test
// compiles, from kernel/crash_core.c to kernel/crash_reserve.c: for a 6.12
// kernel (Debian 13's, bookworm-backports') make kernel-source brings that
// file too, and a 6.12 cache without it is fetched again. (Before, the
// cache lacked it and build.sh failed: "no match for
// get_last_crashkernel in kernel/crash_core.c".)
func TestFetchKernelSourceCrashReserve(t *testing.T) {
	dir, _, env := fetchSourceFixtureSeries(t, "6.12", []string{"kernel/crash_reserve.c"}, "6.12.999-1", "6.12.999-1")
	dest := filepath.Join(dir, "kernel-source")
	for i := 0; i < 2; i++ { // the second run: a cache of that version without the file
		cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fetch-kernel-source.sh: %v\n%s", err, out)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "kernel/crash_reserve.c")); err != nil || !strings.Contains(string(b), "6.12.999-1") {
			t.Errorf("run %d: kernel/crash_reserve.c of the 6.12 cache: %q, %v (%s)", i+1, b, err, strings.TrimSpace(string(out)))
		}
		os.Remove(filepath.Join(dest, "kernel/crash_reserve.c"))
	}
}

// Without a debs/ folder beside the kernel folder (a kernel unpacked by
// hand), the version
// comes from apt-cache show, as the script says. (Before, find's failure
// on the missing folder ended the script under set -e and pipefail: exit
// status 1 and not a word.)
func TestFetchKernelSourceWithoutDebsFolder(t *testing.T) {
	dir, _, env := fetchSourceFixture(t, "6.1.999-1", "6.1.999-1")
	os.RemoveAll(filepath.Join(dir, "debs"))
	os.WriteFile(filepath.Join(dir, "bin", "apt-cache"), []byte("#!/bin/sh\n[ \"$*\" = 'show linux-image-6.1.0-99-amd64' ] && printf 'Package: linux-image-6.1.0-99-amd64\\nVersion: 6.1.999-1\\n' && exit 0\nexit 100\n"), 0o755)
	dest := filepath.Join(dir, "kernel-source")
	cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch-kernel-source.sh without debs/: %v\n%q", err, out)
	}
	if v, _ := os.ReadFile(filepath.Join(dest, "VERSION")); string(v) != "linux-source-6.1 6.1.999-1\n" {
		t.Errorf("VERSION %q, want linux-source-6.1 6.1.999-1 (%s)", v, strings.TrimSpace(string(out)))
	}
}

// fetch-kernel.sh keeps its .debs in KERNEL_DEB_CACHE when that is set:
// the source is fetched at the version of the .deb there, the kernel
// make kernel unpacked, not at whatever apt's candidate is by now.
func TestFetchKernelSourceDebCacheElsewhere(t *testing.T) {
	dir, _, env := fetchSourceFixture(t, "6.1.998-1", "6.1.998-1")
	cache := filepath.Join(dir, "deb cache")
	if err := os.Rename(filepath.Join(dir, "debs"), cache); err != nil {
		t.Fatal(err)
	}
	// apt's candidate has moved on since the kernel was fetched.
	os.WriteFile(filepath.Join(dir, "bin", "apt-cache"), []byte("#!/bin/sh\n[ \"$*\" = 'show linux-image-6.1.0-99-amd64' ] && printf 'Package: linux-image-6.1.0-99-amd64\\nVersion: 6.1.999-1\\n' && exit 0\nexit 100\n"), 0o755)
	dest := filepath.Join(dir, "kernel-source")
	cmd := exec.Command("./fetch-kernel-source.sh", dest, filepath.Join(dir, "kernel"))
	cmd.Env = append(env, "KERNEL_DEB_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch-kernel-source.sh with KERNEL_DEB_CACHE=%s: %v\n%s", cache, err, out)
	}
	if v, _ := os.ReadFile(filepath.Join(dest, "VERSION")); string(v) != "linux-source-6.1 6.1.998-1\n" {
		t.Errorf("VERSION %q, want linux-source-6.1 6.1.998-1, the version of the .deb in KERNEL_DEB_CACHE (%s)", v, strings.TrimSpace(string(out)))
	}
}

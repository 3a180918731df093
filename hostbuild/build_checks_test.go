package main

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// moveFixture makes an output folder (with the previous three files when
// previous) and a build's temporary folder in it holding the new three.
func moveFixture(t *testing.T, previous bool) (out, tmp string) {
	t.Helper()
	out = t.TempDir()
	if previous {
		for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
			if err := os.WriteFile(filepath.Join(out, n), []byte("old "+n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp, err := os.MkdirTemp(out, buildTmpPrefix+"*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		if err := os.WriteFile(filepath.Join(tmp, n), []byte("new "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { buildRename = os.Rename })
	return out, tmp
}

func readOr(p, missing string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return missing
	}
	return string(b)
}

func injected(o, n string) error {
	return &os.LinkError{Op: "rename", Old: o, New: n, Err: errors.New("injected")}
}

// A special file (a FIFO) where an output goes is refused before anything
// moves, as a folder is.
func TestMoveOutputsRefusesSpecialFile(t *testing.T) {
	out, tmp := moveFixture(t, true)
	fifo := filepath.Join(out, buildCmdline)
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	err := moveOutputs(tmp, out)
	if err == nil || !strings.Contains(err.Error(), "is a special file") {
		t.Fatalf("moveOutputs over a FIFO: %v", err)
	}
	if got := readOr(filepath.Join(out, buildInitrd), "missing"); got != "old "+buildInitrd {
		t.Errorf("initrd.img is %q: something moved before the refusal", got)
	}
}

// A symlink where an output goes is replaced (the link, not its target),
// not refused.
func TestMoveOutputsReplacesSymlink(t *testing.T) {
	out, tmp := moveFixture(t, true)
	target := filepath.Join(t.TempDir(), "elsewhere")
	os.WriteFile(target, []byte("not ours"), 0o644)
	link := filepath.Join(out, buildInitrd)
	os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := moveOutputs(tmp, out); err != nil {
		t.Fatalf("moveOutputs over a symlink: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() || readOr(link, "") != "new "+buildInitrd {
		t.Errorf("initrd.img not replaced by the new file (%v)", err)
	}
	if readOr(target, "") != "not ours" {
		t.Error("the symlink's target changed")
	}
}

// The previous manifest that cannot be moved aside (other than for being
// absent) stops the move before anything else moves.
func TestMoveOutputsManifestAsideFails(t *testing.T) {
	out, tmp := moveFixture(t, true)
	mpath := filepath.Join(out, buildManifest)
	buildRename = func(o, n string) error {
		if o == mpath {
			return injected(o, n)
		}
		return os.Rename(o, n)
	}
	err := moveOutputs(tmp, out)
	if err == nil || !strings.Contains(err.Error(), "moving the previous manifest aside") {
		t.Fatalf("moveOutputs: %v", err)
	}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		if got := readOr(filepath.Join(out, n), "missing"); got != "old "+n {
			t.Errorf("%s is %q, want the previous one", n, got)
		}
	}
}

// Each previous file stays where it is until the new one replaces it (it
// is kept as a hard link, not renamed away first), and the new manifest
// comes in last, once the new initrd and cmdline are in and the previous
// manifest is out.
func TestMoveOutputsOrder(t *testing.T) {
	out, tmp := moveFixture(t, true)
	var problems []string
	buildRename = func(o, n string) error {
		if filepath.Dir(o) == tmp && filepath.Dir(n) == out {
			name := filepath.Base(o)
			switch name {
			case buildInitrd, buildCmdline:
				if got := readOr(n, "missing"); got != "old "+name {
					problems = append(problems, name+" was "+got+" just before the new one came in")
				}
				if _, err := os.Lstat(filepath.Join(out, buildManifest)); err == nil {
					problems = append(problems, "a manifest was in place while "+name+" was replaced")
				}
			case buildManifest:
				for _, other := range []string{buildInitrd, buildCmdline} {
					if got := readOr(filepath.Join(out, other), "missing"); got != "new "+other {
						problems = append(problems, "the new manifest came in beside "+other+" "+got)
					}
				}
			}
		}
		return os.Rename(o, n)
	}
	if err := moveOutputs(tmp, out); err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// A previous file renamed aside (no hard link possible) is put back when
// its own new file's rename fails.
func TestMoveOutputsRenamedAsideRestoredOnItsOwnFailure(t *testing.T) {
	out, tmp := moveFixture(t, true)
	os.WriteFile(filepath.Join(tmp, buildInitrd+".previous"), nil, 0o644) // os.Link fails
	buildRename = func(o, n string) error {
		if o == filepath.Join(tmp, buildInitrd) {
			return injected(o, n)
		}
		return os.Rename(o, n)
	}
	err := moveOutputs(tmp, out)
	if err == nil || !strings.Contains(err.Error(), "are as they were") {
		t.Fatalf("moveOutputs: %v", err)
	}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		if got := readOr(filepath.Join(out, n), "missing"); got != "old "+n {
			t.Errorf("%s is %q, want the previous one", n, got)
		}
	}
}

// A first build (no previous files) that fails half-way leaves none of its
// new files behind.
func TestMoveOutputsFirstBuildFailureLeavesNothing(t *testing.T) {
	out, tmp := moveFixture(t, false)
	buildRename = func(o, n string) error {
		if o == filepath.Join(tmp, buildCmdline) {
			return injected(o, n)
		}
		return os.Rename(o, n)
	}
	if err := moveOutputs(tmp, out); err == nil {
		t.Fatal("moveOutputs succeeded")
	}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		if _, err := os.Lstat(filepath.Join(out, n)); err == nil {
			t.Errorf("%s left behind by the failed first build", n)
		}
	}
}

// A build's temporary folder, once locked, is marked so: a build killed
// while holding it (the lock released by the kernel) leaves a folder the
// next build removes; while held it is left alone.
func TestLockBuildDirMarksForRemoval(t *testing.T) {
	out := t.TempDir()
	d := filepath.Join(out, buildTmpPrefix+"x.tmp")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockBuildDir(d)
	if err != nil {
		t.Fatal(err)
	}
	removeStaleBuildDirs(out, t.Logf)
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("a locked build folder was removed: %v", err)
	}
	unlock()
	removeStaleBuildDirs(out, t.Logf)
	if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder of a build that no longer runs is still there (%v)", err)
	}
}

// Only build's own temporary folders (.build-*.tmp) are removed, whatever
// else in OUTDIR holds a file named like the marker.
func TestRemoveStaleBuildDirsOnlyBuildFolders(t *testing.T) {
	out := t.TempDir()
	for _, name := range []string{"mine.tmp", buildTmpPrefix + "x", buildTmpPrefix + "y.tmp"} {
		if err := os.MkdirAll(filepath.Join(out, name), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(out, name, buildLockMarker), nil, 0o644)
	}
	removeStaleBuildDirs(out, t.Logf)
	for name, kept := range map[string]bool{"mine.tmp": true, buildTmpPrefix + "x": true, buildTmpPrefix + "y.tmp": false} {
		if _, err := os.Stat(filepath.Join(out, name)); (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", name, err == nil, kept)
		}
	}
}

// bzImageHeader is a boot header of protocol version with setup sectors
// setup and syssize paragraphs, in a file of size bytes.
func bzImageHeader(version uint16, setup byte, syssize uint32, size int) []byte {
	b := fakeBzImage("")
	b[0x1f1] = setup
	binary.LittleEndian.PutUint16(b[0x206:], version)
	binary.LittleEndian.PutUint32(b[0x1f4:], syssize)
	if size > len(b) {
		b = append(b, make([]byte, size-len(b))...)
	}
	return b[:size]
}

// checkBzImage's size check: from protocol 2.04 itself (the first with
// syssize), and with setup_sects 0 meaning 4; an empty file is "too short".
func TestCheckBzImageBoundaries(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		b    []byte
		want string // "" accepted
	}{
		{"2.04 cut short", bzImageHeader(0x204, 1, 100, 2*512+1600-16), "a truncated bzImage"},
		{"2.04 whole", bzImageHeader(0x204, 1, 100, 2*512+1600), ""},
		{"setup_sects 0 (4) cut short", bzImageHeader(0x20f, 0, 10, 5*512+160-1), "says 2720"},
		{"setup_sects 0 (4) whole", bzImageHeader(0x20f, 0, 10, 5*512+160), ""},
		{"empty", nil, "0 bytes, too short for a Linux kernel's boot header"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		if err := os.WriteFile(p, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkBzImage(p)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: checkBzImage = %v, want %q", c.name, err, c.want)
		}
	}
}

// Every release the modules name is compared with the kernel's, not the
// first alone (an initrd may hold modules of two releases).
func TestCheckKernelReleaseEveryRelease(t *testing.T) {
	k := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(k, fakeBzImageRelease("6.9.0-t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkKernelRelease(k, "--initrd x", "6.9.0-t"); err != nil {
		t.Fatalf("the kernel's own release: %v", err)
	}
	if err := checkKernelRelease(k, "--initrd x", "6.9.0-t", "6.9.1-t"); err == nil || !strings.Contains(err.Error(), "built for release 6.9.1-t") {
		t.Errorf("a second release: %v, want it refused", err)
	}
}

// An output opened with truncation (QEMU's serial log) follows a symlink:
// one to an input is that input.
func TestOpenedOutputSymlinkToInput(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, fakeBzImage("k"), 0o644)
	link := filepath.Join(dir, "serial.log")
	if err := os.Symlink(kernel, link); err != nil {
		t.Fatal(err)
	}
	err := checkOpenedOutput("--serial-log", link, input{flag: "--kernel", path: kernel})
	if err == nil || !strings.Contains(err.Error(), "is the same file as --kernel "+kernel) {
		t.Errorf("checkOpenedOutput(symlink to --kernel) = %v, want it refused", err)
	}
}

// An output whose folder cannot be written to (a read-only mount: root
// writes anywhere else) is refused before any work.
func TestCheckOutputFolderReadOnly(t *testing.T) {
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Skipf("skipping: cannot mount a read-only tmpfs (%v); run the tests as root (CI does)", err)
	}
	defer syscall.Unmount(ro, 0)
	out := filepath.Join(ro, "x.img")
	if err := checkOutputFolder("-o", out); err == nil || !strings.Contains(err.Error(), "cannot be written to") {
		t.Errorf("checkOutputFolder(-o on a read-only mount) = %v, want it refused", err)
	}
}

// An output path that is a folder is refused by the check itself, before
// any work (TestOutputIsAFolder sees the same words from the final write).
func TestCheckOutputFolderRefusesFolderPath(t *testing.T) {
	out := t.TempDir()
	if err := checkOutputFolder("-o", out); err == nil || !strings.Contains(err.Error(), "-o "+out+" is a folder; give a file path") {
		t.Errorf("checkOutputFolder(-o a folder) = %v, want it refused", err)
	}
}

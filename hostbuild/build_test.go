package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	ovmfpkg "github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// stageBuild stages build's inputs in a new folder (init, payload, module
// tree "k", and any file as the kernel "vmlinuz": the measurement only
// hashes it) and returns it with an OVMF image's absolute path: the
// fixture (an AmdSevX64 build's last 4 KiB) behind 0xff fill to 4 MiB, a
// size QEMU's -bios takes (the measurement depends on the footer alone).
func stageBuild(t *testing.T) (dir, ovmf string) {
	t.Helper()
	dir = t.TempDir()
	stage(t, dir, false)
	goInit(t, filepath.Join(dir, "guestinit"))
	suffix, err := os.ReadFile("testdata/ovmf_AmdSev_suffix.bin")
	if err != nil {
		t.Fatal(err)
	}
	ovmf = filepath.Join(dir, "OVMF.fd")
	if err := os.WriteFile(ovmf, append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), fakeBzImage("not really a kernel"), 0o644)
	return dir, ovmf
}

// fakeBzImage is body behind a Linux boot header's "HdrS" magic: all
// that build looks at in a kernel (the measurement only hashes it).
func fakeBzImage(body string) []byte {
	b := make([]byte, 0x400)
	copy(b[0x202:], "HdrS")
	return append(b, body...)
}

// fakeBzImageRelease is a boot header (protocol 2.15) whose kernel_version
// names release, as Debian's vmlinuz does ("6.1.0-57-amd64 (debian-kernel@...) #1 ...").
func fakeBzImageRelease(release string) []byte {
	b := fakeBzImage("")
	b[0x1f1] = 1 // one setup sector: the header's size is the file's
	binary.LittleEndian.PutUint16(b[0x206:], 0x20f)
	binary.LittleEndian.PutUint16(b[0x20e:], 0x100) // the string at 0x300
	copy(b[0x300:], release+" (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC\x00")
	return b
}

// Kernel modules of another release than the kernel's are refused by
// build (against --kernel-modules, before any work) and by manifest
// (against the initrd's lib/modules/<release>): the kernel would refuse
// them and the guest stop at the first (an operator walkthrough built and
// measured 6.1.0-57's modules beside 6.1.0-50's kernel, exit 0).
func TestKernelReleaseMismatch(t *testing.T) {
	dir, ovmf := stageBuild(t)
	os.WriteFile(filepath.Join(dir, "same"), fakeBzImageRelease("6.9.0-t"), 0o644)
	os.WriteFile(filepath.Join(dir, "other"), fakeBzImageRelease("6.9.1-t"), 0o644)
	// A tree whose modules carry their vermagic, as real ones do.
	mod := filepath.Join(dir, "kv/lib/modules/6.9.0-t/kernel/virtio.ko")
	os.MkdirAll(filepath.Dir(mod), 0o755)
	os.WriteFile(mod, testelf.Module("depends=", "name=virtio", "vermagic=6.9.0-t SMP preempt mod_unload modversions "), 0o644)
	build := func(kernel, tree, out string) (string, int) {
		_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", tree,
			"--module", "virtio", "--kernel", kernel, "--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out)
		return errOut, code
	}
	if errOut, code := build("same", "kv", "ok"); code != exitOK {
		t.Fatalf("build with the modules' release: exit %d\n%s", code, errOut)
	}
	errOut, code := build("other", "kv", "bad")
	const want = "hostbuild build: --kernel other is kernel release 6.9.1-t (its boot header), but --kernel-modules kv holds modules built for release 6.9.0-t"
	if code != exitFail || !strings.Contains(errOut, want) {
		t.Errorf("build with another release: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Errorf("build refused the kernel but made its output folder")
	}
	// Modules without a vermagic: the folder's name, checked as early.
	if errOut, code := build("other", "k", "bad2"); code != exitFail || !strings.Contains(errOut, "but --kernel-modules k holds modules built for release 6.9.0-t") {
		t.Errorf("build with another release, modules without vermagic: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad2")); err == nil {
		t.Errorf("build refused the kernel but made its output folder")
	}
	for kernel, wantCode := range map[string]int{"same": exitOK, "other": exitFail, "vmlinuz": exitOK} {
		_, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", kernel, "--initrd", "ok/initrd.img",
			"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m-"+kernel+".json")
		if code != wantCode {
			t.Errorf("manifest --kernel %s: exit %d, want %d\n%s", kernel, code, wantCode, errOut)
		}
		if code != exitOK && !strings.Contains(errOut, "but --initrd ok/initrd.img holds modules built for release 6.9.0-t") {
			t.Errorf("manifest --kernel %s: stderr %q", kernel, errOut)
		}
	}
	// Another builder's initrd (no content list) is recorded by its bytes
	// alone, whatever folders it has.
	os.WriteFile(filepath.Join(dir, "foreign.img"), []byte("not ours"), 0o644)
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "other", "--initrd", "foreign.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", "m-foreign.json"); code != exitOK {
		t.Errorf("manifest of another builder's initrd: exit %d\n%s", code, errOut)
	}
}

// build writes the initrd, the cmdline and a manifest whose measurements
// equal what `hostbuild measure` computes for those exact files.
func TestBuildAgreesWithMeasure(t *testing.T) {
	dir, ovmf := stageBuild(t)
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "--args", "--http.addr 0.0.0.0 --name 'a b' *", "--agent", "tcp:0.0.0.0:1024",
		"--vcpus", "1,4", "--vcpu-type", "EPYC-v4,EPYC-Genoa", "-o", "out")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	line, err := os.ReadFile(filepath.Join(dir, "out", "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := bootcfg.Parse(string(line))
	if err != nil {
		t.Fatalf("the init would refuse the built cmdline %q: %v", line, err)
	}
	if got := strings.Join(cfg.Args, "|"); got != "--http.addr|0.0.0.0|--name|a b|*" {
		t.Errorf("args read back as %q", got)
	}
	m, err := manifest.Load(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cmdline != string(line) || len(m.Measurements) != 4 {
		t.Fatalf("manifest cmdline %q (file %q), %d measurements", m.Cmdline, line, len(m.Measurements))
	}
	for _, e := range m.Measurements {
		out, errOut, code := hostbuild(t, dir, nil, "measure", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "out/initrd.img",
			"--append", string(line), "--vcpus", strconv.Itoa(e.VCPUs), "--vcpu-type", e.VCPUType)
		if code != 0 {
			t.Fatalf("measure: exit %d\n%s", code, errOut)
		}
		if got := strings.TrimSpace(out); got != e.Measurement {
			t.Errorf("vcpus=%d %s: manifest says %s, measure says %s", e.VCPUs, e.VCPUType, e.Measurement, got)
		}
	}
	// --kernel-param replaces console=ttyS0 panic=-1: a warning says so,
	// with -q too (it silences progress only).
	_, errOut, code = hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz",
		"--ovmf", ovmf, "--kernel-param", "console=ttyS0", "--kernel-param", "quiet", "-o", "out2")
	if code != exitOK || !strings.Contains(errOut, "hostbuild build: warning: --kernel-param replaces") ||
		!strings.Contains(errOut, "panic=-1 is missing") || strings.Contains(errOut, "console=ttyS0 is missing") {
		t.Errorf("build --kernel-param quiet: exit %d, %s", code, errOut)
	}
	// A refused setting leaves no manifest behind.
	_, errOut, code = hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel", "vmlinuz",
		"--ovmf", ovmf, "--args", "it's", "-o", "out")
	if code != exitUsage || !strings.Contains(errOut, "unbalanced single quote") {
		t.Errorf("bad --args: exit %d, %s", code, errOut)
	}
}

// A build refused for a setting, or failing at a later step, leaves the
// previous build's files byte for byte and adds none.
func TestBuildFailureKeepsPreviousOutputs(t *testing.T) {
	dir, ovmf := stageBuild(t)
	// The fixture with its hashes table GUID renamed: no measured direct boot.
	fw, err := os.ReadFile(ovmf)
	if err != nil {
		t.Fatal(err)
	}
	g := ovmfpkg.SEVHashTableGUID
	if !bytes.Contains(fw, g[:]) {
		t.Fatal("the OVMF fixture has no hashes table GUID")
	}
	os.WriteFile(filepath.Join(dir, "nohashes.fd"), bytes.Replace(fw, g[:], make([]byte, len(g)), 1), 0o644)
	os.WriteFile(filepath.Join(dir, "short"), []byte("tiny\n"), 0o644)
	// A boot header (protocol 2.15) that says the image is 2 setup
	// sectors, the boot sector and 100 paragraphs: 3136 bytes; the file
	// stops 16 bytes short, as a copy that failed would.
	cut := fakeBzImage("")
	cut[0x1f1] = 2
	binary.LittleEndian.PutUint16(cut[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(cut[0x1f4:], 100)
	cut = append(cut, make([]byte, 3136-16-len(cut))...)
	os.WriteFile(filepath.Join(dir, "cut"), cut, 0o644)
	build := func(extra ...string) (string, int) {
		args := withFlags([]string{"build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
			"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"}, extra...)
		_, errOut, code := hostbuild(t, dir, nil, args...)
		return errOut, code
	}
	snapshot := func() map[string]string {
		files := map[string]string{}
		ents, err := os.ReadDir(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, "out", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = string(b)
		}
		return files
	}
	if errOut, code := build("--vcpus", "1,2"); code != exitOK {
		t.Fatalf("good build: exit %d\n%s", code, errOut)
	}
	before := snapshot()
	if len(before) != 3 {
		t.Fatalf("good build wrote %d files", len(before))
	}
	tests := []struct {
		name  string
		flags []string
		code  int
		want  string
	}{
		{"duplicate vcpus", []string{"--vcpus", "1,1"}, exitUsage, `--vcpus "1,1": 1 given twice`},
		{"duplicate vcpu types", []string{"--vcpu-type", "EPYC-v4,EPYC-v4"}, exitUsage, `--vcpu-type "EPYC-v4,EPYC-v4": EPYC-v4 given twice`},
		{"too many vcpus", []string{"--vcpus", "5000"}, exitUsage, "out of range"},
		{"unknown vcpu type", []string{"--vcpu-type", "EPYC-Zen9"}, exitUsage, "unknown vCPU type"},
		{"invalid policy", []string{"--policy", "0x10000"}, exitUsage, "guest policy 0x10000"},
		{"policy 0 (once read as the default)", []string{"--policy", "0"}, exitUsage, "--policy 0: guest policy 0x0: policy[17] is reserved, must be 1"},
		// Go's base 0 read "0_630000" as octal 0x33000, a valid policy.
		{"policy 0_630000", []string{"--policy", "0_630000"}, exitUsage, `"0_630000": a number with a leading 0 is ambiguous`},
		{"features without SNPActive", []string{"--guest-features", "0x2"}, exitUsage, "bit 0"},
		{"features 0", []string{"--guest-features", "0"}, exitUsage, "bit 0"},
		{"bad vmm type", []string{"--vmm-type", "kvm"}, exitUsage, "unknown VMM type"},
		{"bad args", []string{"--args", "it's"}, exitUsage, "unbalanced single quote"},
		{"not an OVMF", []string{"--ovmf", "vmlinuz"}, exitFail, "OVMF image vmlinuz"},
		// A kernel QEMU would not build the measured hashes table for.
		{"kernel an ELF (vmlinux)", []string{"--kernel", "katana"}, exitFail, "--kernel katana: an ELF file (an uncompressed vmlinux?), not a bzImage"},
		{"kernel without a boot header", []string{"--kernel", ovmf}, exitFail, `not a Linux bzImage (no "HdrS" boot header at 0x202)`},
		{"kernel too short", []string{"--kernel", "short"}, exitFail, "--kernel short: 5 bytes, too short for a Linux kernel's boot header"},
		{"kernel cut short", []string{"--kernel", "cut"}, exitFail, "--kernel cut: 3120 bytes, but its boot header says 3136: a truncated bzImage"},
		{"OVMF without direct boot", []string{"--ovmf", "nohashes.fd"}, exitFail, "kernel specified but OVMF footer table has no SEV_HASH_TABLE_RV"},
		// Found before the initrd is packed (build reads the build info first).
		{"init is not Go", []string{"--init", "katana"}, exitFail, "Go build info"},
		// Found by the pack itself, in build's temporary folder.
		{"payload not an ELF", []string{"--payload", "vmlinuz"}, exitFail, "payload vmlinuz: not an ELF executable"},
		{"unknown module", []string{"--module", "no_such_mod"}, exitFail, `module "no_such_mod" is not in`},
		{"positional argument", []string{"extra"}, exitUsage, `unexpected argument "extra" (Katana's arguments go in --args)`},
		// Once "mkdir vmlinuz: not a directory", naming neither flag nor fix.
		{"-o a file", []string{"-o", "vmlinuz"}, exitFail, "-o vmlinuz is a regular file: give a folder (build writes initrd.img, cmdline and manifest.json into it)"},
		{"-o under a file", []string{"-o", "vmlinuz/sub"}, exitFail, "-o vmlinuz/sub: cannot create the output folder (not a directory): give a folder you can write to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errOut, code := build(tc.flags...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, errOut)
			}
			after := snapshot()
			for name, b := range before {
				if after[name] != b {
					t.Errorf("%s changed", name)
				}
			}
			for name := range after {
				if _, ok := before[name]; !ok {
					t.Errorf("left %s behind", name)
				}
			}
		})
	}
}

// A build over a previous one replaces the three files, and leaves nothing
// else; it prints one line per measurement on stdout, progress on stderr
// unless -q.
func TestBuildReplacesPreviousOutputs(t *testing.T) {
	dir, ovmf := stageBuild(t)
	build := func(extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"build", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
			"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"}, extra...)
		out, errOut, code := hostbuild(t, dir, nil, args...)
		if code != exitOK {
			t.Fatalf("hostbuild %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out, errOut
	}
	check := func(stdout string, wantMeasurements int) (cmdline string) {
		t.Helper()
		ents, err := os.ReadDir(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if got, want := strings.Join(names, " "), "cmdline initrd.img manifest.json"; got != want {
			t.Errorf("out holds %s, want %s", got, want)
		}
		m, err := manifest.Load(filepath.Join(dir, "out", buildManifest))
		if err != nil {
			t.Fatal(err)
		}
		line, err := os.ReadFile(filepath.Join(dir, "out", buildCmdline))
		if err != nil {
			t.Fatal(err)
		}
		if m.Cmdline != string(line) {
			t.Errorf("the manifest's cmdline %q is not the cmdline file's %q", m.Cmdline, line)
		}
		if want := fileSHA256(t, filepath.Join(dir, "out", buildInitrd)); m.Components.Initrd.SHA256 != want {
			t.Errorf("the manifest's initrd SHA-256 %s is not the initrd file's %s", m.Components.Initrd.SHA256, want)
		}
		var want strings.Builder
		for _, e := range m.Measurements {
			fmt.Fprintf(&want, "%s  vcpus=%d vcpu-type=%s\n", e.Measurement, e.VCPUs, e.VCPUType)
		}
		if len(m.Measurements) != wantMeasurements || stdout != want.String() {
			t.Errorf("stdout %q, want %d measurement lines %q", stdout, wantMeasurements, want.String())
		}
		return string(line)
	}
	out, errOut := build("-q")
	if errOut = withoutNoSEVGuest(errOut); errOut != "" {
		t.Errorf("build -q printed %q, want nothing (no warning applies but stage's tree lacking sev-guest)", errOut)
	}
	first := check(out, 1)
	out, errOut = build("--vcpus", "1,2", "--args", "--name x")
	for _, w := range []string{"hostbuild build: pack: ", "hostbuild build: measuring 2 vCPU count(s) x 1 vCPU type(s)", "hostbuild build: wrote out/initrd.img, out/cmdline, out/manifest.json"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("build's stderr does not contain %q:\n%s", w, errOut)
		}
	}
	if second := check(out, 2); second == first || !strings.Contains(second, "--name x") {
		t.Errorf("the second build's cmdline is %q, want the new --args (the first was %q)", second, first)
	}
}

// goInit builds the stand-in as a static Go binary: the manifest records
// the init's Go build info, so the init must be a Go program.
func goInit(t *testing.T, dst string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", dst, "./testdata/standin-katana")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, out)
	}
}

// A build killed before its renames leaves its temporary folder; the next
// build in that folder removes it, but not the folder of a build that still
// runs (it holds the folder's lock, whatever its PID namespace or host), nor
// a folder not marked as locked yet (a build setting up, or an old version).
func TestBuildRemovesKilledBuildsFolders(t *testing.T) {
	dir, ovmf := stageBuild(t)
	out := filepath.Join(dir, "launch")
	mk := func(name string, marked bool) string {
		d := filepath.Join(out, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "initrd.img"), []byte("partial"), 0o644)
		if marked {
			os.WriteFile(filepath.Join(d, buildLockMarker), nil, 0o644)
		}
		return d
	}
	killed := mk(buildTmpPrefix+"1.tmp", true) // marked, lock not held
	setup := mk(buildTmpPrefix+"2.tmp", false)
	live := mk(buildTmpPrefix+"3.tmp", false)
	unlock, err := lockBuildDir(live) // as a running build holds it
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, errOut, code := hostbuild(t, dir, nil, "build", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "launch")
	if code != exitOK {
		t.Fatalf("build: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(killed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed build's folder %s is still there (%v)", killed, err)
	}
	for _, d := range []string{setup, live} {
		if _, err := os.Stat(filepath.Join(d, "initrd.img")); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if !strings.Contains(errOut, "left by a build that was killed") {
		t.Errorf("build did not say it removed the folder:\n%s", errOut)
	}
}

// The manifest records the payload and init that were packed: one
// rewritten between packing and measuring (a compiler writing the same
// path) fails the build, naming it, and the previous files stay.
func TestBuildInputChangedWhileRead(t *testing.T) {
	dir, ovmf := stageBuild(t)
	abs := func(name string) string { return filepath.Join(dir, name) }
	args := []string{"build", "-q", "--init", abs("guestinit"), "--payload", abs("katana"), "--kernel-modules", abs("k"),
		"--kernel", abs("vmlinuz"), "--ovmf", ovmf, "-o", abs("out")}
	if code, _, errOut := runCmd(t, "", args...); code != exitOK {
		t.Fatalf("good build: exit %d\n%s", code, errOut)
	}
	before := map[string][]byte{}
	for _, n := range []string{buildInitrd, buildCmdline, buildManifest} {
		before[n], _ = os.ReadFile(filepath.Join(dir, "out", n))
	}
	for _, tc := range []struct{ file, want string }{
		{"katana", "is not the payload of --initrd"},
		{"guestinit", "is not the /init of --initrd"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			orig, err := os.ReadFile(abs(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(abs(tc.file), orig, 0o755)
			buildPacked = func() { os.WriteFile(abs(tc.file), append(bytes.Clone(orig), 0), 0o755) }
			defer func() { buildPacked = func() {} }()
			code, _, errOut := runCmd(t, "", args...)
			if code != exitFail || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "did an input change while the build read it?") {
				t.Errorf("build with %s rewritten after packing: exit %d\n%s", tc.file, code, errOut)
			}
			for n, b := range before {
				if after, _ := os.ReadFile(filepath.Join(dir, "out", n)); !bytes.Equal(after, b) {
					t.Errorf("%s changed", n)
				}
			}
		})
	}
}

// Two builds into one folder at once could interleave their renames (one's
// manifest beside the other's initrd, both exit 0): while one holds the
// folder, another is refused and writes nothing.
func TestBuildOneAtATimePerFolder(t *testing.T) {
	dir, ovmf := stageBuild(t)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockOutDir(out)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out")
	if code != exitFail || !strings.Contains(errOut, "another hostbuild build is writing to out: wait for it to end, or give another -o") {
		t.Errorf("build while another holds the folder: exit %d\n%s", code, errOut)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("refused build left %d entries in the folder", len(ents))
	}
	unlock()
	if _, errOut, code := hostbuild(t, dir, nil, "build", "-q", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k",
		"--kernel", "vmlinuz", "--ovmf", ovmf, "-o", "out"); code != exitOK {
		t.Errorf("build once the folder is free: exit %d\n%s", code, errOut)
	}
}

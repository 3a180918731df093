package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `run --dry-run` prints the QEMU command line, to be read or run by hand.
// The QMP socket (and the default serial log) go in the scratch folder run
// makes at launch, which does not exist yet: QEMU creates no folder
// (chardev/char-file.c opens with O_CREAT only), so the line says where
// they go and how to make the folder first.
func TestDryRunNamesItsScratchFolder(t *testing.T) {
	f := newRunFixture(t)
	for _, tc := range []struct {
		mode []string
		what string
	}{
		{[]string{"--plain"}, "the QMP socket and the serial log go"},
		{[]string{"--plain", "--serial-log", filepath.Join(f.dir, "serial.log")}, "the QMP socket goes"},
		{[]string{"--ovmf", f.ovmf, "--cid", "42"}, "the QMP socket and the serial log go"},
	} {
		args := append([]string{"run", "--dry-run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd}, tc.mode...)
		stdout, stderr, code := runHB(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s", tc.mode, code, stderr)
		}
		for _, m := range regexp.MustCompile(`-chardev \S*path=([^,\s]+)`).FindAllStringSubmatch(stdout, -1) {
			dir := filepath.Dir(m[1])
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			if want := "in this line " + tc.what + " in " + dir + ", which stands for the scratch folder run makes at launch: to run the line by hand, make it first (mkdir -m 700 " + dir + ")"; !strings.Contains(stderr, want) {
				t.Errorf("%v: the printed QEMU line names %s, whose folder does not exist, and stderr does not say so (want %q):\n%s", tc.mode, m[1], want, stderr)
			}
		}
	}
}

// Help asked for with `CMD -h` goes to stdout, as `hostbuild help CMD`
// prints it (it went to stderr: `hostbuild run -h | grep memory` found
// nothing).
func TestHelpOnStdout(t *testing.T) {
	for name := range commands {
		if name == "version" {
			continue
		}
		stdout, _, code := runHB(t, name, "-h")
		if code != exitOK || !strings.Contains(stdout, "Usage: hostbuild "+name) {
			t.Errorf("hostbuild %s -h: exit %d, %d bytes of help on stdout (want the usage on stdout, as 'hostbuild help %s' prints it)", name, code, len(stdout), name)
		}
	}
}

// attest --cid against a manifest whose cmdline sets katana.agent=none or
// tcp:... dialled vsock port 1024 anyway and waited out --timeout with a
// hint about vhost_vsock; the manifest says why it cannot work.
func TestAttestManifestWithoutVsockAgent(t *testing.T) {
	for _, tc := range []struct{ agent, want string }{
		{"katana.agent=none", "the manifest's cmdline has katana.agent=none: this guest runs no attestation agent"},
		{"katana.agent=tcp:0.0.0.0:6024", "the manifest's cmdline serves the agent over TCP (katana.agent=tcp:0.0.0.0:6024), not vsock: give --addr tcp:HOST:PORT"},
	} {
		dir := t.TempDir()
		mpath := writeTestManifest(t, dir)
		b, _ := os.ReadFile(mpath)
		b = []byte(strings.Replace(string(b), testCmdline, "x "+tc.agent+" katana.args=--dev", 1))
		os.WriteFile(mpath, b, 0o644)
		start := time.Now()
		code, stdout, stderr := runCmd(t, "", "attest", "--cid", "42", "--manifest", mpath, "--min-tcb", "none", "--timeout", "20s")
		if code != exitUsage || !strings.Contains(stderr, tc.want) || time.Since(start) > 10*time.Second {
			t.Errorf("attest --cid with %s: exit %d after %v:\n%s%s\nwant exit %d with %q", tc.agent, code, time.Since(start).Round(time.Millisecond), stdout, stderr, exitUsage, tc.want)
		}
	}
}

// --cid 0 was reported as a missing flag ("--cid or --addr is required",
// "--cid is required") instead of a reserved value.
func TestCidZero(t *testing.T) {
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)
	code, _, stderr := runCmd(t, "", "attest", "--cid", "0", "--manifest", mpath, "--min-tcb", "none")
	if code != exitUsage || !strings.Contains(stderr, "--cid 0: want 3 to 4294967294") {
		t.Errorf("attest --cid 0: exit %d: %s(want: --cid 0 is reserved, want 3 to 4294967294)", code, stderr)
	}
	f := newRunFixture(t)
	for _, cmd := range [][]string{
		{"run", "--dry-run", "--plain"},
		{"run", "--dry-run", "--ovmf", f.ovmf},
		{"libvirt", "--ovmf", f.ovmf},
	} {
		args := append(cmd, "--cid", "0", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd)
		if _, stderr, code := runHB(t, args...); code != exitUsage || !strings.Contains(stderr, "--cid 0: CIDs 0 to 2 and 4294967295 are reserved") {
			t.Errorf("%v --cid 0: exit %d: %s", cmd, code, stderr)
		}
	}
}

// With a manifest for two vCPU types, leaving out --vcpu-type exited 3,
// "refused (does not match the manifest)", though nothing mismatched: the
// operator must pick a type, a usage error (2), as --cid missing is.
func TestMissingVCPUTypeIsUsage(t *testing.T) {
	f := newRunFixture(t)
	m2 := filepath.Join(f.dir, "m2.json")
	if _, stderr, code := runHB(t, "manifest", "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd,
		"--cmdline", runFixtureCmdline, "--vcpus", "1", "--vcpu-type", "EPYC-v4,EPYC-Genoa", "-o", m2); code != exitOK {
		t.Fatal(stderr)
	}
	for _, cmd := range [][]string{
		{"run", "--dry-run", "--cid", "42"},
		{"libvirt", "--cid", "42"},
	} {
		args := append(cmd, "--manifest", m2, "--ovmf", f.ovmf, "--kernel", f.kernel, "--initrd", f.initrd)
		_, stderr, code := runHB(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "the manifest allows the vCPU types EPYC-Genoa, EPYC-v4: choose with --vcpu-type") {
			t.Errorf("%s without --vcpu-type: exit %d, want %d\n%s", cmd[0], code, exitUsage, stderr)
		}
	}
}

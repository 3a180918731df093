package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// make test hands the tests absolute paths of the checkout's folders
// (KERNEL_DIR, OUT_DIR, KERNEL_SOURCE, the unpacked QEMU 10 and libvirt
// schemas): in a checkout whose path has a space or a quote, each must
// arrive whole.
// The test runs the Makefile's test recipe in such a copy, with stand-ins
// for the scripts it runs first and a go that records what it is given.
func TestMakeTestPathsWithSpace(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH (apt-get install make; .ci/deps.sh does)")
	}
	root := filepath.Join(t.TempDir(), "o'brien's checkout")
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"Makefile", "go.mod"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		write(f, string(b), 0o644)
	}
	for _, s := range []string{".ci/deps.sh", "qemu/fetch-kernel.sh", "qemu/fetch-kernel-source.sh", "qemu/fetch-qemu-snp.sh"} {
		write(s, "#!/bin/sh\nexit 0\n", 0o755)
	}
	write(".cache/qemu-snp/usr/bin/qemu-system-x86_64", "#!/bin/sh\n", 0o755)
	write(".cache/qemu-snp/usr/share/libvirt/schemas/domain.rng", "", 0o644)
	// The stand-in go (at a path without a space: GO is one word) logs
	// the variables each `go test` gets.
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	fake := "#!/bin/sh\n[ \"$1\" = test ] || exit 0\n" +
		"printf '%s|KERNEL_DIR=%s|OUT_DIR=%s|KERNEL_SOURCE=%s|SNPBOOT_QEMU_SNP=%s|SNPBOOT_LIBVIRT_SCHEMAS=%s\\n' \"$2\" \"$KERNEL_DIR\" \"$OUT_DIR\" \"$KERNEL_SOURCE\" \"$SNPBOOT_QEMU_SNP\" \"$SNPBOOT_LIBVIRT_SCHEMAS\" >>" + log + "\n"
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(makeBin, "-s", "GO="+filepath.Join(bin, "go"), "test")
	cmd.Dir = root
	cmd.Env = os.Environ()
	for _, v := range []string{"KERNEL_DIR", "OUT_DIR", "KERNEL_SOURCE", "SNPBOOT_QEMU_SNP", "SNPBOOT_QEMU_SNP_DATA", "SNPBOOT_LIBVIRT_SCHEMAS", "SNPBOOT_SNP"} {
		cmd.Env = append(cmd.Env, v+"=")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make test in %q: %v\n%s", root, err, out)
	}
	got, _ := os.ReadFile(log)
	lines := strings.Split(string(got), "\n")
	kdir, ksrc := root+"/.cache/kernel", root+"/.cache/kernel-source"
	for _, want := range []string{
		// go test ./..., every test.
		"-count=1|KERNEL_DIR=" + kdir + "|OUT_DIR=" + root + "/out|KERNEL_SOURCE=" + ksrc +
			"|SNPBOOT_QEMU_SNP=" + root + "/.cache/qemu-snp/usr/bin/qemu-system-x86_64|SNPBOOT_LIBVIRT_SCHEMAS=" + root + "/.cache/qemu-snp/usr/share/libvirt/schemas",
		// The concurrent packages under -race.
		"-race|KERNEL_DIR=" + kdir + "|OUT_DIR=|KERNEL_SOURCE=" + ksrc + "|SNPBOOT_QEMU_SNP=|SNPBOOT_LIBVIRT_SCHEMAS=",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("make test in %q: no go test run got\n%s\nthe runs got:\n%s", root, want, got)
		}
	}
}

// make in a stripped environment (env -i: no HOME, which the Makefile
// takes from the passwd database, and no PATH) still finds the system's
// tools: the PATH it exports appends /usr/local/go/bin to the shell's
// default, not to nothing.
func TestMakeWithoutEnvironment(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH (apt-get install make; .ci/deps.sh does)")
	}
	cmd := exec.Command(makeBin, "-s", "help")
	cmd.Dir = ".."
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "  test ") {
		t.Errorf("env -i make help: %v\n%s\nwant the list of targets", err, out)
	}
}

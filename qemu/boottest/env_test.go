package boottest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/zstd"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/qemu"
	"github.com/katana-tee/snpboot/qemu/qemutest"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Stable console markers of the init (guestinit's package doc) and the
// kernel, and of the stand-in Katana (hostbuild/testdata/standin-katana).
const (
	markKatanaStarted = "guestinit: katana started"
	markKatanaExited  = "guestinit: katana exited status="
	markBootError     = "guestinit: boot error: "
	markPoweringOff   = "guestinit: powering off"
	markPowerDown     = "reboot: Power down"
	markPanic         = "Kernel panic"
	markStandinArgv   = "standin-katana: argv="
	markStandinTerm   = "standin-katana: got terminated"
	chainID           = "0x4b4154414e41" // "KATANA", what the stand-in answers
	katanaPort        = 5050
	agentPort         = 1024
)

// bootTimeout bounds one boot from QEMU start to power-off. A TCG boot
// takes ~10 s on an idle 2-core machine; CI shares the cores.
const bootTimeout = 150 * time.Second

// baseParams are the kernel parameters every test boot uses: the serial
// console, and panic=-1 so that a panic reboots, which -no-reboot turns into
// a QEMU exit instead of a hang.
var baseParams = []string{"console=ttyS0", "panic=-1"}

// env is what the boot tests need, from KERNEL_DIR and OUT_DIR.
type env struct {
	kernelDir string // unpacked linux-image package
	release   string // e.g. 6.1.0-57-amd64
	vmlinuz   string
	hostbuild string
	init      string
	standin   string
	ovmf      string // measurement-only: plain mode boots without it
}

var (
	workDir     string // shared scratch folder for initrds, removed after the tests
	defaultOnce sync.Once
	defaultImg  string
	defaultErr  error
	missingOnce sync.Once
	missingImg  [2]string // [unlisted, listed]
	missingErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "boottest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "boottest:", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needEnv skips the test when the boot-test environment is not asked for,
// and fails it when it is asked for but incomplete: under `make test` a
// missing file is a build failure, not a reason to skip.
func needEnv(t *testing.T) env {
	t.Helper()
	kdir, out := os.Getenv("KERNEL_DIR"), os.Getenv("OUT_DIR")
	if kdir == "" || out == "" {
		t.Skip("boot tests need KERNEL_DIR and OUT_DIR: run 'make test' (it runs 'make build kernel' first), " +
			"or set KERNEL_DIR=<folder from qemu/fetch-kernel.sh> OUT_DIR=<absolute path of out/ after make build>")
	}
	e := env{
		kernelDir: kdir,
		vmlinuz:   filepath.Join(kdir, "vmlinuz"),
		hostbuild: filepath.Join(out, "hostbuild"),
		init:      filepath.Join(out, "guestinit"),
		standin:   filepath.Join(out, "standin-katana"),
	}
	// hostbuild manifest needs an AmdSevX64 OVMF to measure; plain mode
	// never boots it, so its last 4 KiB serve: the repository's copy (the
	// demo's), so that the boot tests need no ../shared.
	e.ovmf = filepath.Join("..", "..", "hostbuild", "testdata", "ovmf_AmdSev_suffix.bin")
	rel, err := os.ReadFile(filepath.Join(kdir, "release"))
	if err != nil {
		t.Fatalf("KERNEL_DIR=%s has no release file (make it with qemu/fetch-kernel.sh %s): %v", kdir, kdir, err)
	}
	e.release = strings.TrimSpace(string(rel))
	for _, f := range []string{e.vmlinuz, e.hostbuild, e.init, e.standin, e.ovmf} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("boot test input missing (run 'make build kernel'): %v", err)
		}
	}
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		t.Fatalf("%s not found (apt-get install qemu-system-x86): %v", qemu.DefaultBinary, err)
	}
	return e
}

// pack runs out/hostbuild pack with the default module set, and the
// stand-in as the payload unless extra gives one (pack refuses --payload
// given twice).
func pack(e env, out string, extra ...string) error {
	args := []string{"pack", "-q", "--init", e.init, "--kernel-modules", e.kernelDir, "-o", out}
	if !slices.Contains(extra, "--payload") {
		args = append(args, "--payload", e.standin)
	}
	args = append(args, extra...)
	cmd := exec.Command(e.hostbuild, args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hostbuild %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// operatorFile is an operator's file (pack --file) in the default initrd,
// which the stand-in reports with its SHA-256.
const (
	operatorFile     = "/etc/katana/chain/config.toml"
	operatorFileData = "chain_id = \"KATANA\"\n"
)

// defaultInitrd is the initrd most boots share: the init, the stand-in,
// the default modules and operatorFile, packed once. The stand-in is padded to 36 MiB (the
// ELF loader maps only its segments) so that its payload is several frames
// that the init decodes on both vCPUs, as with a real Katana.
func defaultInitrd(t *testing.T, e env) string {
	t.Helper()
	defaultOnce.Do(func() {
		defaultImg = filepath.Join(workDir, "initrd.img")
		padded := filepath.Join(workDir, "katana-padded")
		if defaultErr = padPayload(e.standin, padded, 36<<20); defaultErr != nil {
			return
		}
		cfg := filepath.Join(workDir, "config.toml")
		if defaultErr = os.WriteFile(cfg, []byte(operatorFileData), 0o600); defaultErr != nil {
			return
		}
		defaultErr = pack(e, defaultImg, "--payload", padded, "--file", cfg+":"+operatorFile)
	})
	if defaultErr != nil {
		t.Fatal(defaultErr)
	}
	return defaultImg
}

// vsockInitrd is the default module set but sev_guest plus vsock_loopback,
// the kernel's transport for vsock connections inside the guest (CID 1),
// and algif_aead, with the stand-in unpadded: TestBootAgent/vsock reaches
// the agent's vsock port through it, and builds through AF_ALG the AES-GCM
// that the sev-guest driver builds as it probes, with the modules packed
// for it. The module names come from the default initrd's load list, so the
// two load the same modules but those (and this one carries no operator
// file). sev_guest is left out: with it, outside SEV-SNP, the init would
// leave out what only it needs, the modules under test.
func vsockInitrd(t *testing.T, e env) string {
	t.Helper()
	img, err := os.ReadFile(defaultInitrd(t, e))
	if err != nil {
		t.Fatal(err)
	}
	files, err := readInitrdFiles(img, initrdlayout.ModulesLoad)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, l := range strings.Split(strings.TrimSpace(string(files[initrdlayout.ModulesLoad])), "\n") {
		name, _, _ := strings.Cut(l, " ")
		if name != "sev_guest" {
			extra = append(extra, "--module", name)
		}
	}
	if len(extra) == 0 {
		t.Fatalf("the default initrd's %s lists no module", initrdlayout.ModulesLoad)
	}
	out := filepath.Join(t.TempDir(), "initrd-vsock.img")
	if err := pack(e, out, append(extra, "--module", "vsock_loopback", "--module", "algif_aead")...); err != nil {
		t.Fatal(err)
	}
	return out
}

// padPayload writes src followed by bytes that compress like code (a
// deterministic mix of repeats and noise) up to size bytes.
func padPayload(src, out string, size int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	for len(b) < size {
		if r.IntN(4) == 0 && len(b) > 4096 {
			at := r.IntN(len(b) - 4096)
			b = append(b, b[at:at+64+r.IntN(1024)]...)
		} else {
			b = append(b, byte(r.IntN(256)))
		}
	}
	return os.WriteFile(out, b[:size], 0o755)
}

// missingModule is the name the missing-module initrd lists but lacks.
const missingModule = "snpboot_missing"

// missingModuleInitrd is the default initrd with a second, uncompressed cpio
// archive appended (the kernel unpacks concatenated archives in order, later
// files replacing earlier ones) that rewrites the module load list to name
// a module the initrd does not contain. With listed, the content list names
// the module's file too (as if the packer had listed a file the unpack
// lost); without, the content list matches the new load list only.
func missingModuleInitrd(t *testing.T, e env, listed bool) string {
	t.Helper()
	base := defaultInitrd(t, e)
	missingOnce.Do(func() {
		for i, l := range []bool{false, true} {
			missingImg[i] = filepath.Join(workDir, fmt.Sprintf("initrd-missing-module-%d.img", i))
			if missingErr = appendMissingModule(base, missingImg[i], e.release, l); missingErr != nil {
				return
			}
		}
	})
	if missingErr != nil {
		t.Fatal(missingErr)
	}
	if listed {
		return missingImg[1]
	}
	return missingImg[0]
}

func appendMissingModule(base, out, release string, listed bool) error {
	img, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	depPath := path.Join(initrdlayout.ModulesRoot(release), initrdlayout.ModulesDepName)
	files, err := readInitrdFiles(img, initrdlayout.ContentsPath, initrdlayout.ModulesLoad, depPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", base, err)
	}
	contents, err := initrdlayout.ParseContents(bytes.NewReader(files[initrdlayout.ContentsPath]))
	if err != nil {
		return fmt.Errorf("reading %s: %w", base, err)
	}
	modPath := fmt.Sprintf("%s/kernel/%s.ko", initrdlayout.ModulesRoot(release), missingModule)
	load := append(files[initrdlayout.ModulesLoad], fmt.Sprintf("%s %s\n", missingModule, modPath)...)
	if _, err := initrdlayout.ParseModuleList(bytes.NewReader(load)); err != nil {
		return fmt.Errorf("the edited module list does not parse: %w", err)
	}
	// The module's line in modules.dep too, as the packer writes it: the
	// init reads modules.dep outside SEV-SNP (to leave out what only
	// sev_guest needs) and refuses a list it does not describe.
	deps, err := initrdlayout.ParseModulesDep(bytes.NewReader(files[depPath]))
	if err != nil {
		return fmt.Errorf("reading %s's modules.dep: %w", base, err)
	}
	dep := initrdlayout.FormatModulesDep(append(deps, initrdlayout.ModuleDeps{Path: "kernel/" + missingModule + ".ko"}))
	contents[initrdlayout.ModulesLoad] = sha256.Sum256(load)
	contents[depPath] = sha256.Sum256(dep)
	if listed {
		contents[modPath] = sha256.Sum256([]byte("a module the unpack lost"))
	}

	return appendArchive(img, out, []initrdFile{
		{name: initrdlayout.ContentsPath, data: contents.Format()},
		{name: initrdlayout.ModulesLoad, data: load},
		{name: depPath, data: dep},
	})
}

var (
	appendedOnce sync.Once
	appendedImg  string
	appendedErr  error
)

// appendedFileInitrd is the default initrd with a second archive appended
// that adds /etc/ld.so.preload, a file its content list does not name: what
// whoever can append to an initrd could leave where Katana reads it.
func appendedFileInitrd(t *testing.T, e env) string {
	t.Helper()
	base := defaultInitrd(t, e)
	appendedOnce.Do(func() {
		appendedImg = filepath.Join(workDir, "initrd-appended-file.img")
		img, err := os.ReadFile(base)
		if err != nil {
			appendedErr = err
			return
		}
		appendedErr = appendArchive(img, appendedImg, []initrdFile{{name: "etc/ld.so.preload", data: []byte("/tmp/evil.so\n")}})
	})
	if appendedErr != nil {
		t.Fatal(appendedErr)
	}
	return appendedImg
}

type initrdFile struct {
	name string
	data []byte
	exec bool // mode 0755 instead of 0644
}

// appendArchive writes img followed by an uncompressed newc archive of
// files: the kernel unpacks it after img, replacing those files.
func appendArchive(img []byte, out string, files []initrdFile) error {
	var buf bytes.Buffer
	buf.Write(img)
	// The kernel looks for a cpio magic only at 4-byte aligned offsets and
	// skips zero bytes between archives.
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	w := cpio.NewWriter(&buf)
	for i, f := range files {
		mode := cpio.FileMode(0o644)
		if f.exec {
			mode = 0o755
		}
		hdr := &cpio.Header{Name: f.name, Mode: cpio.TypeReg | mode, Size: int64(len(f.data)), Links: 1, Inode: int64(100000 + i)}
		if err := w.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

var (
	tamperedOnce sync.Once
	tamperedImg  [2]string // framed, inline
	tamperedErr  error
)

// tamperedPayloadInitrd is a default initrd with its payload damaged after
// packing, its content list untouched: what a damaged unpack or a swapped
// file looks like to the init. Framed (the default encoding): one byte of
// the last frame of bin/katana.zst flipped in place. Inline (packed with
// --payload-encoding inline): /bin/katana replaced by an appended archive
// with its last byte flipped.
func tamperedPayloadInitrd(t *testing.T, e env, inline bool) string {
	t.Helper()
	base := defaultInitrd(t, e)
	tamperedOnce.Do(func() {
		tamperedImg[0] = filepath.Join(workDir, "initrd-tampered-frames.img")
		tamperedImg[1] = filepath.Join(workDir, "initrd-tampered-inline.img")
		img, err := os.ReadFile(base)
		if err != nil {
			tamperedErr = err
			return
		}
		// The packed payload is the only file of the last, uncompressed
		// archive: its data follows its name, padded to 4 bytes.
		name := []byte(initrdlayout.PackedPayloadPath + "\x00")
		at := bytes.LastIndex(img, name)
		if at < 110 {
			tamperedErr = fmt.Errorf("%s: no %s entry in the payload archive", base, initrdlayout.PackedPayloadPath)
			return
		}
		data := (at + len(name) + 3) &^ 3
		size, err := strconv.ParseUint(string(img[at-110+54:at-110+62]), 16, 32)
		if err != nil || data+int(size) > len(img) {
			tamperedErr = fmt.Errorf("%s: cannot read the size of %s (%v)", base, initrdlayout.PackedPayloadPath, err)
			return
		}
		framed := bytes.Clone(img)
		framed[data+int(size)-10] ^= 0xff
		if tamperedErr = os.WriteFile(tamperedImg[0], framed, 0o644); tamperedErr != nil {
			return
		}

		inlineBase := filepath.Join(workDir, "initrd-inline.img")
		if tamperedErr = pack(e, inlineBase, "--payload-encoding", "inline"); tamperedErr != nil {
			return
		}
		if img, tamperedErr = os.ReadFile(inlineBase); tamperedErr != nil {
			return
		}
		payload, err := os.ReadFile(e.standin)
		if err != nil {
			tamperedErr = err
			return
		}
		// Same size, last byte flipped: only the hash can tell.
		payload[len(payload)-1] ^= 0xff
		tamperedErr = appendArchive(img, tamperedImg[1], []initrdFile{{name: initrdlayout.PayloadPath, data: payload, exec: true}})
	})
	if tamperedErr != nil {
		t.Fatal(tamperedErr)
	}
	if inline {
		return tamperedImg[1]
	}
	return tamperedImg[0]
}

// readInitrdFiles returns the named regular files of the first archive of
// a zstd, gzip or uncompressed initrd.
func readInitrdFiles(img []byte, names ...string) (map[string][]byte, error) {
	var r io.Reader = bytes.NewReader(img)
	switch {
	case bytes.HasPrefix(img, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(img, []byte{0x1f, 0x8b}):
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		g.Multistream(false)
		r = g
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string][]byte{}
	cr := cpio.NewReader(r)
	for {
		hdr, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if want[hdr.Name] {
			b, err := io.ReadAll(cr)
			if err != nil {
				return nil, err
			}
			got[hdr.Name] = b
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("initrd has no %s", n)
		}
	}
	return got, nil
}

// cmdline formats a command line with bootcfg.Format, as hostbuild does.
func cmdline(t *testing.T, c bootcfg.Config) string {
	t.Helper()
	s, err := bootcfg.Format(c, baseParams)
	if err != nil {
		t.Fatalf("bootcfg.Format: %v", err)
	}
	return s
}

// guest is one boot through `hostbuild run --plain`, the operator's path:
// the test writes a manifest for the initrd and cmdline with `hostbuild
// manifest`, then runs hostbuild run, which checks the files against it,
// builds the QEMU argv with package qemu and streams the serial console to
// a file that the test follows.
type guest struct {
	cmd    *exec.Cmd
	serial string
	out    *qemutest.LockedBuffer // hostbuild run's stdout and stderr
	done   chan struct{}
	code   int
}

// boot starts `hostbuild run --plain` (TCG) for initrd and cmdline,
// forwarding a free host port to each guest port. The run is interrupted
// (and QEMU with it) when the test ends; the serial console and run's own
// output are printed if the test failed (or BOOTTEST_VERBOSE is set).
func boot(t *testing.T, e env, initrd, appendLine string, guestPorts ...int) (*guest, map[int]int) {
	t.Helper()
	return bootMemory(t, e, initrd, appendLine, defaultMemory, guestPorts...)
}

// defaultMemory is the guest memory of the boot tests, in MiB.
const defaultMemory = "1024"

// bootMemory is boot with the guest's memory in MiB.
func bootMemory(t *testing.T, e env, initrd, appendLine, memory string, guestPorts ...int) (*guest, map[int]int) {
	t.Helper()
	return bootWith(t, e, initrd, appendLine, memory, nil, guestPorts...)
}

// bootWith is bootMemory with more hostbuild run flags (--qemu, say).
func bootWith(t *testing.T, e env, initrd, appendLine, memory string, runFlags []string, guestPorts ...int) (*guest, map[int]int) {
	t.Helper()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	writeManifest(t, e, e.ovmf, initrd, appendLine, "EPYC-v4", manifest)
	ports := map[int]int{}
	args := []string{"run", "--plain", "--manifest", manifest, "--kernel", e.vmlinuz, "--initrd", initrd,
		"--memory", memory, "--serial-log", filepath.Join(dir, "serial.log"), "--ready-timeout", bootTimeout.String()}
	for _, gp := range guestPorts {
		hp := freePort(t)
		ports[gp] = hp
		args = append(args, "--forward", fmt.Sprintf("127.0.0.1:%d:%d", hp, gp))
	}
	args = append(args, runFlags...)
	t.Logf("booting: hostbuild %s\n  -append %q", strings.Join(args, " "), appendLine)
	return startRun(t, e, args, filepath.Join(dir, "serial.log")), ports
}

// writeManifest runs `hostbuild manifest` for 1 vCPU of type vtype.
//
// hostbuild manifest refuses a cmdline the init's parser refuses, yet
// TestBootErrors must boot one to see the init refuse it on the console:
// such a cmdline replaces, in a manifest written for a valid one, the
// "cmdline" field. Plain runs without --ovmf recompute no digest, so the
// stale measurement does not matter there.
func writeManifest(t *testing.T, e env, ovmf, initrd, cmdline, vtype, out string) {
	t.Helper()
	measured := cmdline
	if _, err := bootcfg.Parse(cmdline); err != nil {
		measured = strings.Join(baseParams, " ")
	}
	// Likewise hostbuild manifest refuses an initrd whose content list
	// does not vouch for it, which TestBootErrors boots to see the init
	// refuse it: its size and SHA-256 replace, in a manifest written for
	// the good initrd, those of the "initrd" component.
	measuredInitrd := initrd
	mf := exec.Command(e.hostbuild, "manifest", "--ovmf", ovmf, "--kernel", e.vmlinuz, "--initrd", initrd,
		"--cmdline", measured, "--vcpus", "1", "--vcpu-type", vtype, "-o", out)
	if b, err := mf.CombinedOutput(); err != nil {
		if !strings.Contains(string(b), "holds what its content list does not vouch for") {
			t.Fatalf("hostbuild manifest: %v\n%s", err, b)
		}
		measuredInitrd = defaultInitrd(t, e)
		mf = exec.Command(e.hostbuild, "manifest", "--ovmf", ovmf, "--kernel", e.vmlinuz, "--initrd", measuredInitrd,
			"--cmdline", measured, "--vcpus", "1", "--vcpu-type", vtype, "-o", out)
		if b, err := mf.CombinedOutput(); err != nil {
			t.Fatalf("hostbuild manifest: %v\n%s", err, b)
		}
	}
	if measured == cmdline && measuredInitrd == initrd {
		return
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if doc["cmdline"], err = json.Marshal(cmdline); err != nil {
		t.Fatal(err)
	}
	if measuredInitrd != initrd {
		img, err := os.ReadFile(initrd)
		if err != nil {
			t.Fatal(err)
		}
		var comps map[string]json.RawMessage
		if err := json.Unmarshal(doc["components"], &comps); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		sum := sha256.Sum256(img)
		if comps["initrd"], err = json.Marshal(map[string]any{"name": filepath.Base(initrd), "size": len(img), "sha256": hex.EncodeToString(sum[:])}); err != nil {
			t.Fatal(err)
		}
		if doc["components"], err = json.Marshal(comps); err != nil {
			t.Fatal(err)
		}
	}
	if b, err = json.MarshalIndent(doc, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRun starts out/hostbuild with args (a run command writing its serial
// console to serial). The run is interrupted (and QEMU with it) when the
// test ends; the serial console and run's own output are printed if the
// test failed (or BOOTTEST_VERBOSE is set).
func startRun(t *testing.T, e env, args []string, serial string) *guest {
	t.Helper()
	return startProc(t, e.hostbuild, args, serial)
}

// startProc is startRun for any program that writes the guest's serial
// console to serial (QEMU itself, say).
func startProc(t *testing.T, bin string, args []string, serial string) *guest {
	t.Helper()
	g := &guest{serial: serial, out: &qemutest.LockedBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		err := g.cmd.Wait()
		g.code = g.cmd.ProcessState.ExitCode()
		if err != nil && g.code == 0 {
			g.code = -1
		}
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-g.done:
			case <-time.After(30 * time.Second):
				g.cmd.Process.Kill()
				<-g.done
			}
		}
		if t.Failed() || os.Getenv("BOOTTEST_VERBOSE") != "" {
			t.Logf("%s (exit %d):\n%s\nserial console:\n%s", filepath.Base(bin), g.code, g.out.String(), g.Log())
		}
	})
	return g
}

// Lines returns the serial console so far.
func (g *guest) Lines() []string { return g.lines(true) }

// lines returns the serial console's lines; unless all, only those already
// ended by a newline: QEMU may still be printing the last one.
func (g *guest) lines(all bool) []string {
	b, _ := os.ReadFile(g.serial)
	s := strings.ReplaceAll(string(b), "\r", "")
	if !all {
		s = s[:strings.LastIndexByte(s, '\n')+1]
	}
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Log returns the serial console so far as one string.
func (g *guest) Log() string { return strings.Join(g.Lines(), "\n") + "\n" }

// WaitForRegexp waits for a console line matching re; it fails when the
// run ends without one.
func (g *guest) WaitForRegexp(ctx context.Context, re *regexp.Regexp) (string, []string, error) {
	next := 0
	for {
		exited := false
		select {
		case <-g.done:
			exited = true // one last full read below
		default:
		}
		// Only whole lines: a half-written last line may match the
		// pattern before the rest of it arrives (seen: a boot error line
		// cut after "memory ava"). Once run has exited, the last line is
		// final, whole or not.
		lines := g.lines(exited)
		for i := next; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return lines[i], m, nil
			}
		}
		next = len(lines)
		if exited {
			return "", nil, fmt.Errorf("waiting for /%s/ on the serial console: hostbuild run exited with status %d; last lines:\n%s", re, g.code, tail(lines, 10))
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("waiting for /%s/ on the serial console: %w; last lines:\n%s", re, ctx.Err(), tail(g.Lines(), 10))
		case <-g.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitForLine waits for a console line containing substr.
func (g *guest) WaitForLine(ctx context.Context, substr string) (string, error) {
	l, _, err := g.WaitForRegexp(ctx, regexp.MustCompile(regexp.QuoteMeta(substr)))
	return l, err
}

// WaitUntil polls probe until it succeeds, the run ends or ctx ends.
func (g *guest) WaitUntil(ctx context.Context, interval time.Duration, probe func(context.Context) error) error {
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-g.done:
			return fmt.Errorf("hostbuild run exited (status %d) before the probe succeeded; last probe error: %w", g.code, err)
		case <-ctx.Done():
			return fmt.Errorf("probe did not succeed: %w; last probe error: %w", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// PowerDown is what an operator does: SIGINT to hostbuild run, which
// presses the ACPI power button (QMP system_powerdown).
func (g *guest) PowerDown() error { return g.cmd.Process.Signal(syscall.SIGINT) }

// Wait waits for hostbuild run to end and returns its exit status.
func (g *guest) Wait(ctx context.Context) (int, error) {
	select {
	case <-g.done:
		return g.code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for hostbuild run to end: %w", ctx.Err())
	}
}

// Output is what hostbuild run printed so far (stdout and stderr).
func (g *guest) Output() string { return g.out.String() }

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// chainIDProbe asks the stand-in for starknet_chainId on the forwarded port.
func chainIDProbe(hostPort int) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		body := `{"jsonrpc":"2.0","method":"starknet_chainId","params":[],"id":1}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			Result string `json:"result"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&r); err != nil {
			return fmt.Errorf("decoding the starknet_chainId answer: %w", err)
		}
		if r.Result != chainID {
			return fmt.Errorf("starknet_chainId = %q, want %q", r.Result, chainID)
		}
		return nil
	}
}

// hostbuild run exit codes (hostbuild run -h).
const (
	runExitClean     = 0
	runExitBootError = 4
	runExitKatana    = 5
)

// expectPowerOff waits for the guest to power off by itself and checks
// that it did so cleanly: the init's power-off marker, the kernel's, no
// kernel panic anywhere, and hostbuild run's exit status for the outcome.
func expectPowerOff(ctx context.Context, t *testing.T, g *guest, wantCode int) {
	t.Helper()
	for _, m := range []string{markPoweringOff, markPowerDown} {
		if _, err := g.WaitForLine(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	code, err := g.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Errorf("hostbuild run exited with status %d, want %d; its output:\n%s", code, wantCode, g.Output())
	}
	if l := findLine(g, markPanic); l != "" {
		t.Errorf("the kernel panicked: %q", l)
	}
}

// findLine returns the first console line containing s, or "".
func findLine(g *guest, s string) string {
	for _, l := range g.Lines() {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// lineIndex returns the index of the first console line containing s, or -1.
func lineIndex(g *guest, s string) int {
	for i, l := range g.Lines() {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

package boottest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/zstd"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/qemu"
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
}

var (
	workDir     string // shared scratch folder for initrds, removed after the tests
	defaultOnce sync.Once
	defaultImg  string
	defaultErr  error
	missingOnce sync.Once
	missingImg  string
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
	rel, err := os.ReadFile(filepath.Join(kdir, "release"))
	if err != nil {
		t.Fatalf("KERNEL_DIR=%s has no release file (make it with qemu/fetch-kernel.sh %s): %v", kdir, kdir, err)
	}
	e.release = strings.TrimSpace(string(rel))
	for _, f := range []string{e.vmlinuz, e.hostbuild, e.init, e.standin} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("boot test input missing (run 'make build kernel'): %v", err)
		}
	}
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		t.Fatalf("%s not found (apt-get install qemu-system-x86): %v", qemu.DefaultBinary, err)
	}
	return e
}

// pack runs out/hostbuild pack with the default module set.
func pack(e env, out string, extra ...string) error {
	args := append([]string{"pack", "-q", "--init", e.init, "--payload", e.standin,
		"--kernel-modules", e.kernelDir, "-o", out}, extra...)
	cmd := exec.Command(e.hostbuild, args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hostbuild %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// defaultInitrd is the initrd most boots share: the init, the stand-in and
// the default modules, packed once.
func defaultInitrd(t *testing.T, e env) string {
	t.Helper()
	defaultOnce.Do(func() {
		defaultImg = filepath.Join(workDir, "initrd.img")
		defaultErr = pack(e, defaultImg)
	})
	if defaultErr != nil {
		t.Fatal(defaultErr)
	}
	return defaultImg
}

// missingModule is the name the missing-module initrd lists but lacks.
const missingModule = "snpboot_missing"

// missingModuleInitrd is the default initrd with a second, uncompressed cpio
// archive appended (the kernel unpacks concatenated archives in order, later
// files replacing earlier ones) that rewrites the module load list to name
// a module the initrd does not contain, and the content list to match, so
// that the module loader, not the integrity check of the list, meets it.
func missingModuleInitrd(t *testing.T, e env) string {
	t.Helper()
	base := defaultInitrd(t, e)
	missingOnce.Do(func() {
		missingImg = filepath.Join(workDir, "initrd-missing-module.img")
		missingErr = appendMissingModule(base, missingImg, e.release)
	})
	if missingErr != nil {
		t.Fatal(missingErr)
	}
	return missingImg
}

func appendMissingModule(base, out, release string) error {
	img, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	files, err := readInitrdFiles(img, initrdlayout.ContentsPath, initrdlayout.ModulesLoad)
	if err != nil {
		return fmt.Errorf("reading %s: %w", base, err)
	}
	contents, err := initrdlayout.ParseContents(bytes.NewReader(files[initrdlayout.ContentsPath]))
	if err != nil {
		return fmt.Errorf("reading %s: %w", base, err)
	}
	load := append(files[initrdlayout.ModulesLoad],
		fmt.Sprintf("%s %s/kernel/%s.ko\n", missingModule, initrdlayout.ModulesRoot(release), missingModule)...)
	if _, err := initrdlayout.ParseModuleList(bytes.NewReader(load)); err != nil {
		return fmt.Errorf("the edited module list does not parse: %w", err)
	}
	contents[initrdlayout.ModulesLoad] = sha256.Sum256(load)

	var buf bytes.Buffer
	buf.Write(img)
	// The kernel looks for a cpio magic only at 4-byte aligned offsets and
	// skips zero bytes between archives.
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	w := cpio.NewWriter(&buf)
	for i, f := range []struct {
		name string
		data []byte
	}{
		{initrdlayout.ContentsPath, contents.Format()},
		{initrdlayout.ModulesLoad, load},
	} {
		hdr := &cpio.Header{Name: f.name, Mode: cpio.TypeReg | 0o644, Size: int64(len(f.data)), Links: 1, Inode: int64(100000 + i)}
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

// boot starts QEMU (TCG) with the spec, forwarding a free host port to
// each guest port in guestPorts. The VM is killed when the test ends, and
// its whole serial log is printed if the test failed.
func boot(t *testing.T, e env, initrd, appendLine string, guestPorts ...int) (*qemu.VM, map[int]int) {
	t.Helper()
	dir := t.TempDir()
	sock, err := os.MkdirTemp(workDir, "q")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[int]int{}
	var fw []qemu.Forward
	for _, gp := range guestPorts {
		hp := freePort(t)
		ports[gp] = hp
		fw = append(fw, qemu.Forward{HostPort: hp, GuestPort: gp})
	}
	o := qemu.Options{
		Accel:           qemu.TCG,
		VCPUs:           1,
		MemoryMiB:       1024,
		Kernel:          e.vmlinuz,
		Initrd:          initrd,
		Append:          appendLine,
		SerialLog:       filepath.Join(dir, "serial.log"),
		QMPSocket:       filepath.Join(sock, "qmp.sock"),
		Forwards:        fw,
		RestrictNetwork: true, // the guest reaches nothing but the forwarded ports
	}
	vm, err := qemu.Start(context.Background(), o, qemu.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booting: -append %q, forwards %v", appendLine, ports)
	t.Cleanup(func() {
		exit := vm.Kill()
		if t.Failed() || os.Getenv("BOOTTEST_VERBOSE") != "" {
			t.Logf("serial console (%v):\n%s", exit, vm.Log())
		}
	})
	return vm, ports
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

// expectCleanPowerOff waits for the guest to power off by itself and checks
// that it did so cleanly: the init's power-off marker, the kernel's, a QEMU
// exit status 0, and no kernel panic anywhere.
func expectCleanPowerOff(ctx context.Context, t *testing.T, vm *qemu.VM) {
	t.Helper()
	for _, m := range []string{markPoweringOff, markPowerDown} {
		if _, err := vm.WaitForLine(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	exit, err := vm.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !exit.Clean() {
		t.Errorf("QEMU: %v; want a clean exit (status 0) after the guest powered off", exit)
	}
	if l := findLine(vm, markPanic); l != "" {
		t.Errorf("the kernel panicked: %q", l)
	}
}

// findLine returns the first console line containing s, or "".
func findLine(vm *qemu.VM, s string) string {
	for _, l := range vm.Lines() {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// lineIndex returns the index of the first console line containing s, or -1.
func lineIndex(vm *qemu.VM, s string) int {
	for i, l := range vm.Lines() {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

package launch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

// minimalManifest is a valid manifest whose OVMF, kernel and initrd are all
// the one byte "x": enough for Prepare to reach and hash the files.
func minimalManifest() *manifest.Manifest {
	f := manifest.File{Name: "x", Size: 1, SHA256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"} // SHA-256("x")
	return &manifest.Manifest{
		Schema: manifest.Schema, Tool: manifest.Tool{Name: "hostbuild"},
		Components: manifest.Components{OVMF: f, Kernel: f, Initrd: f},
		VMMType:    "QEMU", GuestFeatures: "0x1", GuestPolicy: "0x30000",
		Measurements: []manifest.Measurement{{VCPUs: 1, VCPUType: "EPYC-v4", Measurement: strings.Repeat("0", 96)}},
	}
}

// TestPrepareRefusesNonRegularFiles: a FIFO, a device or a folder is not
// the bytes that were hashed. Each is refused, and a FIFO at once: the
// open used to wait for a writer for ever (this test then hung until go
// test's -timeout).
func TestPrepareRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"kernel a FIFO", Options{Plain: true, Kernel: fifo, Initrd: regular}, "the kernel " + fifo + " is not a regular file (p"},
		{"initrd a FIFO", Options{Plain: true, Kernel: regular, Initrd: fifo}, "the initrd " + fifo + " is not a regular file (p"},
		{"OVMF a FIFO", Options{OVMF: fifo, CID: 3, Kernel: regular, Initrd: regular}, "the OVMF " + fifo + " is not a regular file (p"},
		{"kernel a device", Options{Plain: true, Kernel: os.DevNull, Initrd: regular}, "the kernel " + os.DevNull + " is not a regular file (Dc"},
		{"initrd a folder", Options{Plain: true, Kernel: regular, Initrd: dir}, "the initrd " + dir + " is not a regular file (d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Manifest = minimalManifest()
			p, err := Prepare(context.Background(), tc.o)
			if err == nil {
				p.Close()
				t.Fatalf("Prepare: a plan, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Prepare: %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestPrepareInheritsBlockingFiles: the files are opened without blocking
// (so that a FIFO is refused at once); the regular files QEMU inherits are
// back in blocking mode.
func TestPrepareInheritsBlockingFiles(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(context.Background(), Options{Manifest: minimalManifest(), Plain: true, Kernel: regular, Initrd: regular,
		SerialLog: filepath.Join(dir, "serial.log")})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	defer p.Close()
	if len(p.Files) != 2 {
		t.Fatalf("Files = %v, want the kernel and the initrd", p.Files)
	}
	for i, f := range p.Files {
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
		if errno != 0 || fl&syscall.O_NONBLOCK != 0 {
			t.Errorf("Files[%d]: flags %#x (%v), want O_NONBLOCK clear", i, fl, errno)
		}
	}
}

package qemu

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestRealQEMUKernelOnly boots the Debian kernel under real QEMU with the
// plain-mode argv and no initrd: it must print its banner, answer QMP, and
// (with panic=-1 and -no-reboot) make QEMU exit with status 0 after the
// "no root" panic. This pins the argv to what the installed QEMU accepts;
// the full boots with the init are in qemu/boottest.
func TestRealQEMUKernelOnly(t *testing.T) {
	kdir := os.Getenv("KERNEL_DIR")
	if kdir == "" {
		t.Skip("KERNEL_DIR is not set: run 'make test' (it fetches the Debian kernel with 'make kernel'), or set KERNEL_DIR to an unpacked kernel package")
	}
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		t.Skipf("%s not found (apt-get install qemu-system-x86): %v", DefaultBinary, err)
	}
	dir := t.TempDir()
	o := Options{
		Kernel:    filepath.Join(kdir, "vmlinuz"),
		Append:    "console=ttyS0 panic=-1",
		SerialLog: filepath.Join(dir, "serial.log"),
		QMPSocket: filepath.Join(dir, "qmp.sock"),
		Forwards:  []Forward{{HostPort: freePort(t), GuestPort: 5050}},
	}
	v, err := Start(context.Background(), o, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := v.WaitForLine(ctx, "Linux version"); err != nil {
		t.Fatal(err)
	}
	raw, err := QMP(ctx, o.QMPSocket, "query-status")
	if err != nil {
		t.Fatalf("QMP query-status on real QEMU: %v", err)
	}
	var st struct {
		Running bool `json:"running"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || !st.Running {
		t.Errorf("query-status = %s (%v), want running", raw, err)
	}
	if _, err := v.WaitForLine(ctx, "Kernel panic - not syncing"); err != nil {
		t.Fatal(err)
	}
	exit, err := v.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !exit.Clean() {
		t.Errorf("exit = %v, want status 0 (panic=-1 reboots, -no-reboot turns that into an exit)", exit)
	}
}

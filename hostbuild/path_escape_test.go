package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
)

// The path an operator gives may be a name someone else chose (a glob over
// downloaded files): inspect's summary line and ovmf's "file:" line show
// it with its control characters escaped, as every other line does, so
// that it cannot drive the terminal or forge a line.
func TestInspectAndOVMFEscapeTheirPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "\x1b[2Jdl\r\u009b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	if err := w.WriteHeader(&newc.Header{Name: "bin", Mode: newc.TypeDir | 0o755, NLink: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(img, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fw, err := os.ReadFile(filepath.Join(sharedMeasureDir(t), "fixtures", "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	fd := filepath.Join(dir, "OVMF.fd")
	if err := os.WriteFile(fd, fw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", img}, {"ovmf", fd}} {
		stdout, stderr, code := runHB(t, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
		}
		if i := strings.IndexFunc(stdout, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x9b }); i >= 0 {
			t.Errorf("%s: raw control character at byte %d of stdout: %q", args[0], i, stdout)
		}
		if !strings.Contains(stdout, `\x1b[2Jdl\r\u009b`) {
			t.Errorf("%s: the path is not shown escaped:\n%s", args[0], stdout)
		}
	}
}

package initrd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// A payload cut short (an interrupted copy or download) whose
// ELF has no section header table at its end (sstrip'd, or packed by a
// tool that drops it) passes CheckStaticELF: its PT_LOAD segment reaches
// past the end of the file, which execve in the guest would refuse (or
// fault on), after the initrd has been measured.
func TestTruncatedELFRefused(t *testing.T) {
	full := testelf.Executable("", bytes.Repeat([]byte{0x90}, 1<<16))
	if err := CheckStaticELF(full); err != nil {
		t.Fatalf("full executable refused: %v", err)
	}
	for _, n := range []int{len(full) / 2, 100, 60} {
		cut := full[:n]
		if err := CheckStaticELF(cut); err == nil || !strings.Contains(err.Error(), "an ELF file cut short") {
			t.Errorf("executable cut to %d of %d bytes: %v; want it refused as cut short", len(cut), len(full), err)
		}
	}
	for _, b := range [][]byte{nil, []byte("MZ"), []byte("\x7fEL")} {
		if err := CheckStaticELF(b); err == nil || !strings.Contains(err.Error(), "not an ELF executable") {
			t.Errorf("%q: %v, want not an ELF executable", b, err)
		}
	}
}

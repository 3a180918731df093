package measure

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Mode snp:ovmf-hash checks no SEV-SNP launch (no CheckSNP), so the page
// multiple check of openOVMF is all that stands between a firmware image
// with a partial last page and a digest that silently leaves those bytes
// out (pages are measured whole). That digest would then seed mode snp
// (SnpOVMFHash) without covering the whole firmware.
func TestOVMFHashModeRefusesPartialPage(t *testing.T) {
	f := makeFiles(t)
	suffix, err := os.ReadFile(f.amdsev)
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(f.dir, "odd.fd")
	if err := os.WriteFile(odd, append([]byte{0}, suffix...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Compute(context.Background(), Options{Mode: ModeOVMFHash, OVMF: f.amdsev}); err != nil {
		t.Fatalf("ovmf-hash of the page-aligned fixture: %v", err)
	}
	res, err := Compute(context.Background(), Options{Mode: ModeOVMFHash, OVMF: odd})
	if err == nil {
		t.Fatalf("ovmf-hash of a %d-byte image succeeded (%s), want a refusal: the last %d bytes would not be measured",
			len(suffix)+1, res.Hex(), (len(suffix)+1)%pageSize)
	}
	checkRefusal(t, err, false, false, "not a multiple of 4096")
}

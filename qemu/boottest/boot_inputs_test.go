package boottest

import (
	"os"
	"testing"
)

// TestBootInputsWithoutSharedFolder: the boot tests, the SEV-SNP hardware
// tier among them, need only the checkout, KERNEL_DIR and OUT_DIR. The
// measurement-only OVMF they give hostbuild is in the repository
// (hostbuild/testdata, the demo's); taken from ../shared instead, a
// checkout without that folder (an operator's clone on an SEV-SNP host)
// failed every boot test, where README promises that only the tests of
// ../shared's vectors and scripts skip. Boots nothing.
func TestBootInputsWithoutSharedFolder(t *testing.T) {
	t.Setenv("SHARED_DIR", t.TempDir()) // an empty shared folder
	e := needEnv(t)
	if _, err := os.Stat(e.ovmf); err != nil {
		t.Fatalf("the boot tests' OVMF: %v", err)
	}
}

package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// The kernel makes no sev-guest device outside SEV-SNP, and none in an
// SEV-SNP guest whose launch gave it no secrets page either (Linux's
// snp_init_platform_device): the reason logged for leaving sev_guest out
// must not tell the operator of such a guest, on SEV-SNP hardware, that
// it is not one.
func TestSEVGuestLeftOutReasonNamesBothCauses(t *testing.T) {
	const rel = "lib/modules/6.1.0-test"
	mods := []initrdlayout.Module{{Name: "sev_guest", Path: rel + "/kernel/sev-guest.ko"}}
	dep := "kernel/sev-guest.ko:\n"
	root := t.TempDir()
	depFile := rel + "/" + initrdlayout.ModulesDepName
	if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, depFile), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	list := initrdlayout.Contents{depFile: sha256.Sum256([]byte(dep))}
	absent, _, err := sevGuestOnly(list, mods, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	why := absent["sev_guest"]
	if why == nil {
		t.Fatal("sev_guest not left out without the device")
	}
	if msg := why.Error(); strings.HasPrefix(msg, "not an SEV-SNP guest") || !strings.Contains(msg, "secrets page") {
		t.Errorf("sev_guest's reason %q: want it to say the device is missing, outside SEV-SNP or in a guest launched without a secrets page", msg)
	}
}

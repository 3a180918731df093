package main

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	"github.com/katana-tee/snpboot/guestinit/internal/modload"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// Outside SEV-SNP the init leaves out sev_guest and what only it needs
// (by the initrd's modules.dep, checked against the content list); in an
// SEV-SNP guest, or when sysfs cannot tell, it leaves out nothing; a
// modules.dep that does not match the content list, or that does not
// parse, is a boot error naming it.
func TestSEVGuestOnly(t *testing.T) {
	const rel = "lib/modules/6.1.0-test"
	mod := func(name string) initrdlayout.Module {
		return initrdlayout.Module{Name: name, Path: rel + "/kernel/" + name + ".ko"}
	}
	mods := []initrdlayout.Module{mod("af_alg"), mod("algif_hash"), mod("gf128mul"), mod("gcm"), mod("ctr"), mod("sev-guest"), mod("vsock")}
	dep := "kernel/af_alg.ko:\nkernel/algif_hash.ko: kernel/af_alg.ko\nkernel/ctr.ko:\nkernel/gcm.ko: kernel/gf128mul.ko\n" +
		"kernel/gf128mul.ko:\nkernel/sev-guest.ko: kernel/gcm.ko kernel/gf128mul.ko kernel/ctr.ko\nkernel/vsock.ko:\n"
	depFile := rel + "/" + initrdlayout.ModulesDepName
	root := t.TempDir()
	write := func(s string) initrdlayout.Contents {
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, depFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return initrdlayout.Contents{depFile: sha256.Sum256([]byte(s))}
	}
	list := write(dep)
	withDevice := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withDevice, sevGuestDevice), 0o755); err != nil {
		t.Fatal(err)
	}
	without := t.TempDir()

	absent, read, err := sevGuestOnly(list, mods, root, without)
	if err != nil {
		t.Fatal(err)
	}
	kept, skipped := modload.Drop(mods, absent)
	var keptNames, skippedNames []string
	for _, m := range kept {
		keptNames = append(keptNames, m.Name)
	}
	for _, r := range skipped {
		skippedNames = append(skippedNames, r.Name)
		if r.Status != modload.Skipped || r.Skipped == nil {
			t.Errorf("%s: %+v, want skipped with a reason", r.Name, r)
		}
	}
	if want := []string{"af_alg", "algif_hash", "vsock"}; !slices.Equal(keptNames, want) {
		t.Errorf("outside SEV-SNP, loaded %q, want %q", keptNames, want)
	}
	if want := []string{"gf128mul", "gcm", "ctr", "sev-guest"}; !slices.Equal(skippedNames, want) {
		t.Errorf("outside SEV-SNP, left out %q, want %q", skippedNames, want)
	}
	if read != depFile {
		t.Errorf("modules.dep read: %q, want %q (the background check then leaves it out)", read, depFile)
	}
	if why := absent["sev_guest"]; why == nil || !strings.Contains(why.Error(), "the kernel made no "+filepath.Join(without, sevGuestDevice)+" (not an SEV-SNP guest") {
		t.Errorf("sev_guest's reason: %v", why)
	}
	if why := absent["gcm"]; why == nil || !strings.Contains(why.Error(), "only sev_guest needs it (/"+depFile+")") {
		t.Errorf("gcm's reason: %v", why)
	}

	// Under SEV-SNP everything loads; so it does when sysfs cannot tell
	// (sevGuestProbe reports that after the modules), without sev_guest,
	// and without a modules.dep in the content list.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		list initrdlayout.Contents
		mods []initrdlayout.Module
		sys  string
	}{
		{"SEV-SNP guest", list, mods, withDevice},
		{"sysfs unreadable", list, mods, blocked},
		{"no sev_guest", list, slices.Delete(slices.Clone(mods), 5, 6), without},
		{"no modules.dep listed", initrdlayout.Contents{}, mods, without},
	} {
		absent, read, err := sevGuestOnly(c.list, c.mods, root, c.sys)
		if err != nil || len(absent) != 0 || read != "" {
			t.Errorf("%s: left out %v (read %q), err %v; want nothing", c.name, absent, read, err)
		}
	}

	// A modules.dep that is not the one the content list vouches for (a
	// damaged unpack), or that does not parse, or that disagrees with the
	// load list: a boot error naming it, nothing guessed.
	changed := strings.Replace(dep, "kernel/vsock.ko:", "kernel/vsock.ko: kernel/gcm.ko", 1)
	os.WriteFile(filepath.Join(root, depFile), []byte(changed), 0o644)
	if _, _, err := sevGuestOnly(list, mods, root, without); !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), depFile) {
		t.Errorf("modules.dep not matching the content list: %v", err)
	}
	bad := write("kernel/b.ko:\nkernel/a.ko:\n")
	if _, _, err := sevGuestOnly(bad, mods, root, without); err == nil || !strings.Contains(err.Error(), "/"+depFile+": modules.dep line 2") {
		t.Errorf("unsorted modules.dep: %v", err)
	}
	short := write(strings.Replace(dep, "kernel/vsock.ko:\n", "", 1))
	if _, _, err := sevGuestOnly(short, mods, root, without); err == nil || !strings.Contains(err.Error(), "module vsock") || !strings.Contains(err.Error(), "has no line in "+depFile) {
		t.Errorf("modules.dep without a listed module: %v", err)
	}
}

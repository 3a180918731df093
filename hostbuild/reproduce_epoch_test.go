package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An initrd with a content list whose entries do not share one mtime is
// not pack's (repacked by another tool, say) and does not say its
// SOURCE_DATE_EPOCH: manifest records the one it is given, and reproduce
// takes the manifest's, with a note, as for an initrd without a content
// list (README: not compared). A manifest that 'hostbuild manifest' wrote
// from these very files reproduces from them.
func TestReproduceContentListInitrdOfSeveralMTimes(t *testing.T) {
	dir, ovmf := stageBuild(t)
	if _, errOut, code := hostbuild(t, dir, nil, "pack", "-q", "--init", "guestinit", "--payload", "katana",
		"--compress", "none", "--payload-encoding", "inline", "--source-date-epoch", "7", "-o", "packed.img"); code != exitOK {
		t.Fatalf("pack: exit %d\n%s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "packed.img"))
	if err != nil {
		t.Fatal(err)
	}
	// The first entry's mtime (newc: magic, ino, mode, uid, gid, nlink,
	// then mtime, 8 hex digits each), which no list covers.
	if string(b[:6]) != "070701" || string(b[46:54]) != "00000007" {
		t.Fatalf("not an uncompressed newc archive with mtime 7 first: %q", b[:54])
	}
	copy(b[46:54], fmt.Sprintf("%08X", 9))
	if err := os.WriteFile(filepath.Join(dir, "repacked.img"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := hostbuild(t, dir, nil, "manifest", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "repacked.img",
		"--cmdline", "console=ttyS0 panic=-1", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--source-date-epoch", "42", "-o", "m.json"); code != exitOK {
		t.Fatalf("manifest: exit %d\n%s", code, errOut)
	}
	out, errOut, code := hostbuild(t, dir, nil, "reproduce", "--manifest", "m.json", "--ovmf", ovmf, "--kernel", "vmlinuz", "--initrd", "repacked.img")
	if code != exitOK || !strings.Contains(errOut, "note: source_date_epoch 42 is the manifest's") {
		t.Errorf("reproduce of the manifest written from these files: exit %d, want %d and the epoch noted\n%s%s", code, exitOK, out, errOut)
	}
}

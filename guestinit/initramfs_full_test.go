package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
)

// A guest too small for its initrd: the kernel unpacks it into a rootfs of
// at most half the guest's memory, stops with "Initramfs unpacking failed:
// write error" once that is full, and leaves the rest of the file it was
// writing as zeros. The init then finds the payload's hash wrong. That is
// an integrity boot error, which reads as tampering; when the rootfs was
// full as the init started, the boot error says the guest is too small.
func TestExplainInitramfsFull(t *testing.T) {
	mismatch := fmt.Errorf("integrity: bin/katana bytes 83886080-88080384 (sha256 0000, want 1111; truncated initrd unpack? look for \"Initramfs unpacking failed\" above): %w", integrity.ErrMismatch)
	if got := explain(mismatch, false); got != mismatch {
		t.Errorf("explain with room left = %v, want it unchanged", got)
	}
	got := explain(mismatch, true)
	if !errors.Is(got, integrity.ErrMismatch) || !strings.Contains(got.Error(), "the initramfs was full when the init started") ||
		!strings.Contains(got.Error(), "give the VM more memory") {
		t.Errorf("explain with the initramfs full = %v", got)
	}
	// ENOSPC says so once, with the full initramfs named.
	nospc := explain(fmt.Errorf("writing /etc/resolv.conf.tmp: %w", unix.ENOSPC), true)
	if strings.Count(nospc.Error(), "give the VM more memory") != 1 || !strings.Contains(nospc.Error(), "the initramfs was full") {
		t.Errorf("explain(ENOSPC) with the initramfs full = %v", nospc)
	}
}

func TestInitramfsFull(t *testing.T) {
	for _, tt := range []struct {
		blocks, bfree uint64
		want          bool
	}{
		{blocks: 24751, bfree: 0, want: true},
		{blocks: 24751, bfree: 1, want: false},
		{blocks: 0, bfree: 0, want: false}, // ramfs: no size, never full
	} {
		if got := initramfsFull(unix.Statfs_t{Blocks: tt.blocks, Bfree: tt.bfree}); got != tt.want {
			t.Errorf("blocks %d free %d: full %v, want %v", tt.blocks, tt.bfree, got, tt.want)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if initramfsFull(st) {
		t.Errorf("the test's temporary folder reads as a full initramfs: %+v", st)
	}
}

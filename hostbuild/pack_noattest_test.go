package main

import (
	"strings"
	"testing"
)

// A module tree without sev-guest (absent, not built in: no
// modules.builtin names it) packed, exit 0, with no warning: only the
// progress line "skipped (built in or absent): sev-guest tsm ...", which -q
// hides. The guest then has no attestation device at all (the agent
// answers no_snp_device), found out only at attest time.
func TestPackWarnsNoAttestationModule(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false) // virtio, virtio_pci, virtio_net, vsock; no sev-guest, no tsm
	for _, q := range [][]string{nil, {"-q"}} {
		args := append([]string{"pack"}, q...)
		args = append(args, "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "out.img")
		_, errOut, code := hostbuild(t, dir, nil, args...)
		if code != exitOK {
			t.Fatalf("pack: exit %d\n%s", code, errOut)
		}
		if !strings.Contains(errOut, "hostbuild pack: warning: kernel 6.9.0-t has no sev-guest driver (neither a module in --kernel-modules nor built in): the guest gets no SEV-SNP attestation device") {
			t.Errorf("pack %v with no sev-guest or tsm in the tree: no warning that the guest cannot attest:\n%s", q, errOut)
		}
	}
}

package main

import (
	"context"
	"runtime"
	"runtime/debug"

	"github.com/katana-tee/snpboot/guestinit/internal/agent"
	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// startAgent starts the attestation agent (guestinit/internal/agent) on
// katana.agent (vsock:1024 by default, tcp:IP:PORT for plain-QEMU tests,
// none to disable) after the network is up. It returns at once and serves in
// the background until ctx is done. A returned error (no vsock transport,
// address in use) is logged, never a boot error; a missing SEV-SNP device is
// not an error: /v1/attestation then answers 503 no_snp_device. The modules
// it needs (vsock, vmw_vsock_virtio_transport, sev-guest) are loaded by the
// module stage from the packer's list.
func startAgent(ctx context.Context, cfg bootcfg.Config, st *status.Status, ready func() error) error {
	return agent.Start(ctx, cfg, st, agent.StartOptions{InitVersion: initVersion(), Logf: st.Logf, Ready: ready})
}

// initVersion names the init build: module version (when stamped) and Go
// version. The launch measurement identifies the exact bytes; this is for
// humans.
func initVersion() string {
	v := "guestinit"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v += " " + bi.Main.Version
	}
	return v + " (" + runtime.Version() + ")"
}

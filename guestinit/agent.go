package main

import (
	"context"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// startAgent starts the attestation agent (issue 5) after the network is
// up. It must return quickly and serve in the background until ctx is done.
// A returned error is logged, never a boot error. The agent gets everything
// through st: Snapshot for GET /v1/status, RequestStop for POST
// /v1/shutdown, Logf for console lines, Now for boot-relative times.
//
// This placeholder is replaced by the agent's owner (guestinit/internal/agent).
func startAgent(ctx context.Context, cfg bootcfg.Config, st *status.Status) error {
	st.Logf("agent disabled (not built yet)")
	return nil
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// StartOptions are the init's knobs for Start.
type StartOptions struct {
	InitVersion string
	// Logf receives the agent's log lines (nil: discard).
	Logf func(format string, args ...any)
	// Ready is Options.Ready: nil when reports may be given, else why not.
	Ready func() error
	// Quoter overrides DefaultQuoter (tests).
	Quoter Quoter
	// Listen overrides Listen (tests).
	Listen func(spec string) (net.Listener, error)
}

// StatusOf converts the init's status snapshot; boot-relative times become
// wall-clock times using bootWall, the wall-clock time of boot.
func StatusOf(s status.Snapshot, bootWall time.Time, initVersion string) agentapi.Status {
	out := agentapi.Status{InitVersion: initVersion, Stages: make([]agentapi.Stage, 0, len(s.Stages))}
	for _, st := range s.Stages {
		name := st.Name
		if !st.OK {
			name += " (failed)"
		}
		out.Stages = append(out.Stages, agentapi.Stage{Name: name, At: bootWall.Add(st.At).UTC()})
	}
	state := string(s.State)
	if s.StopRequested != "" && s.State != status.Exited {
		state = string(status.Stopping)
	}
	out.Katana = agentapi.PayloadStatus{State: state, PID: s.PID, Restarts: s.Restarts}
	if e := s.LastExit; e != nil {
		out.Katana.LastExit = &agentapi.ExitStatus{Code: e.Code, Signal: e.Signal, At: bootWall.Add(e.At).UTC()}
	}
	return out
}

// configfsDir is where configfs-tsm lives.
const configfsDir = "/sys/kernel/config"

// Start opens the katana.agent listener and serves the agent in the
// background until ctx is done. katana.agent=none starts nothing. An error
// (no vsock transport, address in use) is for the console, never a boot
// error: the caller logs it and boots on. A missing SEV-SNP device is not an
// error at all: attestation requests then get 503 no_snp_device.
func Start(ctx context.Context, cfg bootcfg.Config, st *status.Status, o StartOptions) error {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.Agent.Mode == bootcfg.AgentNone {
		logf("agent: disabled (katana.agent=none)")
		return nil
	}
	mountConfigfs(logf)
	listen := o.Listen
	if listen == nil {
		listen = Listen
	}
	spec := cfg.Agent.String()
	l, err := listen(spec)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	bootWall := time.Now().Add(-st.Now())
	srv := New(Options{
		Quoter:      o.Quoter,
		Config:      agentapi.ConfigOf(cfg.Applied()),
		InitVersion: o.InitVersion,
		Ready:       o.Ready,
		Status:      func() agentapi.Status { return StatusOf(st.Snapshot(), bootWall, o.InitVersion) },
		Shutdown: func() error {
			st.RequestStop("agent: POST /v1/shutdown")
			return nil
		},
		Logf: logf,
	})
	logf("agent: listening on %s (config digest %s)", spec, srv.ConfigDigest())
	// The agent has no authentication: on vsock only the host reaches it
	// (and the host can stop the VM anyway), on TCP anyone on the network.
	if cfg.Agent.Mode == bootcfg.AgentTCP && !cfg.Agent.TCP.Addr().IsLoopback() {
		logf("agent: %s is not a loopback address: anyone who can reach it can POST %s and stop Katana (the agent has no authentication)", spec, agentapi.PathShutdown)
	}
	go func() {
		defer logPanic(logf, "in Serve (the agent has stopped; the boot goes on)")
		if err := srv.Serve(ctx, l); err != nil {
			logf("agent: stopped: %v", err)
		}
	}()
	return nil
}

// mountConfigfs mounts configfs for configfs-tsm when the kernel has it but
// nothing is mounted yet. Failures only cost the configfs-tsm path.
func mountConfigfs(logf func(string, ...any)) {
	if _, err := os.Stat(configfsDir + "/tsm"); err == nil {
		return
	}
	if _, err := os.Stat(configfsDir); err != nil {
		return // no CONFIG_CONFIGFS_FS: the ioctl path remains
	}
	if err := mountConfigfsAt(configfsDir); err != nil && !errors.Is(err, errAlreadyMounted) {
		logf("agent: mounting configfs at %s (configfs-tsm unavailable, /dev/sev-guest remains): %v", configfsDir, err)
	}
}

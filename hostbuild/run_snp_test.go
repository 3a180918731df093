package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A guest that ends by a GHCB termination request
// (an SNP guest kernel that refuses a SEV feature such as DebugSwap,
// snp_check_features -> sev_es_terminate) reaches QEMU 9.1+ as
// KVM_EXIT_SYSTEM_EVENT type KVM_SYSTEM_EVENT_SEV_TERM, which x86's
// kvm_arch_handle_exit does not handle: QEMU prints "KVM: unknown exit
// reason 24" (10.0; nothing in 10.1+), dumps the vCPU and stops the VM in
// RUN_STATE_INTERNAL_ERROR. It does not exit.
//
// Before "ready": run waits the whole --ready-timeout, then reports only
// "katana did not start", without QEMU's stderr.
func TestRunReadyTimeoutShowsQEMUStderr(t *testing.T) {
	f := newRunFixture(t)
	dir := t.TempDir()
	fake := fakeQEMUScript(t, dir, `echo 'KVM: unknown exit reason 24' >&2
exec sleep 600
`)
	_, stderr, code := runHB(t, "run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--ovmf", f.ovmf, "--cid", "3", "--qemu", fake, "--serial-log", filepath.Join(dir, "serial.log"), "--ready-timeout", "1s")
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stderr, "unknown exit reason 24") {
		t.Errorf("run does not show QEMU's stderr when the guest never becomes ready (QEMU paused in internal-error):\n%s", stderr)
	}
}

// After "ready": run waits for QEMU to exit, which a paused QEMU never does:
// the node is dead and run (and the systemd unit around it) runs on. run
// should ask QMP query-status (or watch the STOP event) and end on
// internal-error / guest-panicked with QEMU's stderr.
func TestRunEndsWhenQEMUStopsTheVM(t *testing.T) {
	f := newRunFixture(t)
	r := startFakeRun(t, f, fakeQEMUInternalErrorEnv+"=1", fakeQEMUNoPowerOffEnv+"=1", "SNPBOOT_FAKE_QMP_STATUS=internal-error")
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("hostbuild run still waits 20s after QEMU stopped the VM in internal-error:\n%s", r.stderr.String())
	}
	stderr := r.stderr.String()
	if code := r.cmd.ProcessState.ExitCode(); code == exitOK {
		t.Errorf("exit %d for a VM that QEMU stopped on an internal error", code)
	}
	if !strings.Contains(stderr, "unknown exit reason 24") {
		t.Errorf("run does not show QEMU's stderr:\n%s", stderr)
	}
}

// QEMU 9.1-10.x on an SNP host whose KVM/firmware refuses the guest
// policy at SNP_LAUNCH_START prints the launch error, then
// "failed to initialize kvm: Operation not permitted" (vl.c's
// do_configure_accelerator): run's hint must not say that the host lacks
// SEV-SNP.
func TestRunLaunchRefusalHint(t *testing.T) {
	f := newRunFixture(t)
	dir := t.TempDir()
	fake := fakeQEMUScript(t, dir, `cat >&2 <<'E'
qemu-system-x86_64: sev_snp_launch_start: SNP_LAUNCH_START ret=-1 fw_error=7 'Policy is not allowed'
qemu-system-x86_64: sev_common_kvm_init: failed to create encryption context
qemu-system-x86_64: failed to initialize kvm: Operation not permitted
E
exit 1
`)
	_, stderr, code := runHB(t, "run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd,
		"--ovmf", f.ovmf, "--cid", "3", "--qemu", fake, "--serial-log", filepath.Join(dir, "serial.log"), "--ready-timeout", "10s")
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stderr, "SNP_LAUNCH_START ret=-1 fw_error=7") {
		t.Errorf("QEMU's launch error not shown:\n%s", stderr)
	}
	if strings.Contains(stderr, "this host's KVM cannot run an SEV-SNP guest") {
		t.Errorf("run blames the host's SEV-SNP support for a launch the firmware refused (policy):\n%s", stderr)
	}
}

// attest --cid without --port dials agentapi.DefaultPort (1024) whatever
// the manifest's katana.agent says, although --manifest is required and
// run's own hint derives the port from it: a guest whose agent listens on
// vsock:2000 answers with a reset, reported as "is vhost_vsock loaded ...?".
// No vsock is needed: the dial fails here too, and the error names the
// address that was dialled.
func TestAttestPortFromManifest(t *testing.T) {
	f := newRunFixtureCmdline(t, "console=ttyS0 panic=-1 katana.agent=vsock:2000")
	_, stderr, code := runHB(t, "attest", "--cid", "3", "--manifest", f.manifest, "--min-tcb", "none", "--timeout", "2s")
	if code != 3 {
		t.Fatalf("exit %d, want 3 (transport)\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "vsock:3:2000") {
		t.Errorf("attest did not dial the manifest's agent port 2000:\n%s", stderr)
	}
}

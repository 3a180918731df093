package boottest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// TestBootAgent runs the attestation agent in a real guest on both of its
// transports: TCP (what plain-QEMU tests and the demo use), and vsock, the
// production one, which the host here cannot reach directly (no
// /dev/vhost-vsock): the stand-in relays a forwarded TCP port to the
// guest's own vsock port through the kernel's vsock_loopback transport, so
// the agent accepts and serves real AF_VSOCK connections. On each:
// /v1/status describes the running Katana, `hostbuild attest` gets the
// agent's no_snp_device answer outside SEV-SNP (exit 3), and POST
// /v1/shutdown stops Katana gracefully and powers the guest off.
func TestBootAgent(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { testBootAgent(t, false) })
	t.Run("vsock", func(t *testing.T) { testBootAgent(t, true) })
}

// relayPort is the guest TCP port the stand-in relays to the agent's vsock
// port in TestBootAgent/vsock.
const relayPort = 1025

func testBootAgent(t *testing.T, overVsock bool) {
	e := needEnv(t)
	c := bootcfg.Default()
	c.Args = []string{"--http.addr", "0.0.0.0", "--http.port", strconv.Itoa(katanaPort)}
	initrd, guestAgentPort, listening := "", agentPort, ""
	if overVsock {
		c.Agent = bootcfg.Agent{Mode: bootcfg.AgentVsock, VsockPort: agentPort}
		c.Args = append(c.Args, "--vsock-relay", fmt.Sprintf("%d:%d", relayPort, agentPort), "--crypto-alg", "aead:gcm(aes)")
		initrd, guestAgentPort = vsockInitrd(t, e), relayPort
		listening = fmt.Sprintf("guestinit: agent: listening on vsock:%d ", agentPort)
	} else {
		c.Agent = bootcfg.Agent{Mode: bootcfg.AgentTCP, TCP: netip.AddrPortFrom(netip.IPv4Unspecified(), agentPort)}
		initrd = defaultInitrd(t, e)
		listening = fmt.Sprintf("guestinit: agent: listening on tcp:0.0.0.0:%d ", agentPort)
	}
	line := cmdline(t, c)
	g, ports := boot(t, e, initrd, line, katanaPort, guestAgentPort)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	if _, err := g.WaitForLine(ctx, listening); err != nil {
		t.Fatal(err)
	}
	_, m, err := g.WaitForRegexp(ctx, reKatanaStarted)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(m[1])
	if !overVsock {
		// Outside SEV-SNP the init leaves out sev_guest and what only it
		// needs (modules.dep), each with its reason.
		for _, want := range []string{
			"guestinit: module sev_guest: the kernel made no /sys/bus/platform/devices/sev-guest (not an SEV-SNP guest",
			"guestinit: module gcm: only sev_guest needs it (/lib/modules/",
			"guestinit: module ghash_generic: only sev_guest needs it",
		} {
			if l := findLine(g, want); l == "" {
				t.Errorf("no line %q:\n%s", want, tail(g.Lines(), 40))
			}
		}
		if l := findLine(g, "guestinit: module times: "); strings.Contains(l, "sev_guest=") || strings.Contains(l, " gcm=") {
			t.Errorf("sev_guest or gcm loaded outside SEV-SNP: %q", l)
		}
	}
	if overVsock {
		// On SEV-SNP hardware, Linux 6.1's sev-guest builds gcm(aes) with
		// the crypto API as it probes; the guest has no modprobe, so the
		// packer loads gcm, ctr and ghash before it. Outside SEV-SNP the
		// init leaves them out with sev_guest; this initrd lists them
		// without sev_guest (vsockInitrd), so they load, and the stand-in
		// builds the same algorithm through AF_ALG with them.
		if l := findLine(g, "only sev_guest needs it"); l != "" {
			t.Errorf("a module left out for sev_guest, which this initrd does not list: %q", l)
		}
		l, _, err := g.WaitForRegexp(ctx, regexp.MustCompile(`standin-katana: crypto aead gcm\(aes\) (ok|failed.*)`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(strings.TrimSpace(l), "gcm(aes) ok") {
			t.Errorf("the guest cannot build gcm(aes), which sev-guest needs to probe on SEV-SNP hardware: %q", l)
		}
		// And the one it gets is AES-NI's (TCG's -cpu max has AES-NI
		// and PCLMULQDQ), not the template over the table-based
		// aes-generic and ghash-generic: aesni_intel loads before
		// sev-guest.
		l, _, err = g.WaitForRegexp(ctx, regexp.MustCompile(`standin-katana: crypto aead gcm\(aes\) driver=`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(strings.TrimSpace(l), "driver=generic-gcm-aesni") {
			t.Errorf("the stand-in's gcm(aes) came from %q, want generic-gcm-aesni (aesni_intel loaded before sev-guest):\n%s", l, tail(g.Lines(), 30))
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[guestAgentPort])
	base := "http://" + addr

	// Katana serves first (the agent listened before it started), so the
	// later shutdown meets a stand-in with its SIGTERM handler in place.
	if err := g.WaitUntil(ctx, 200*time.Millisecond, chainIDProbe(ports[katanaPort])); err != nil {
		t.Fatalf("starknet_chainId: %v", err)
	}
	var st agentapi.Status
	err = g.WaitUntil(ctx, 200*time.Millisecond, func(ctx context.Context) error {
		code, body, err := httpDo(ctx, http.MethodGet, base+agentapi.PathStatus)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", agentapi.PathStatus, code, body)
		}
		st = agentapi.Status{}
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("GET %s: decoding %s: %w", agentapi.PathStatus, body, err)
		}
		if st.Katana.State != "running" {
			return fmt.Errorf("katana state %q, want running", st.Katana.State)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.APIVersion != agentapi.APIVersion || st.Katana.PID != pid || st.Katana.Restarts != 0 || st.Katana.LastExit != nil {
		t.Errorf("status %+v: want api_version %d, katana pid %d (from the console), no restarts, no last exit", st, agentapi.APIVersion, pid)
	}
	if len(st.ConfigDigest) != 64 {
		t.Errorf("status config_digest %q is not a SHA-256 in hex", st.ConfigDigest)
	}
	stages := map[string]bool{}
	for _, s := range st.Stages {
		stages[s.Name] = true
	}
	for _, want := range []string{"mounts", "modules", "network"} {
		if !stages[want] {
			t.Errorf("status stages %+v lack %q", st.Stages, want)
		}
	}

	nonce := strings.Repeat("ab", 32)
	code, body, err := httpDo(ctx, http.MethodGet, base+agentapi.PathAttestation+"?nonce="+nonce)
	if err != nil {
		t.Fatal(err)
	}
	var er agentapi.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatalf("GET %s: decoding %s: %v", agentapi.PathAttestation, body, err)
	}
	if code != http.StatusServiceUnavailable || er.Error.Code != agentapi.CodeNoSNPDevice {
		t.Errorf("GET %s outside SEV-SNP = %d %s, want 503 %s", agentapi.PathAttestation, code, body, agentapi.CodeNoSNPDevice)
	}

	// The operator's tool, against the same agent: it asks with a fresh
	// nonce and reports the agent's error as a transport failure (exit 3).
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	writeManifest(t, e, e.ovmf, initrd, line, "EPYC-v4", manifest)
	att := exec.CommandContext(ctx, e.hostbuild, "attest", "--min-tcb", "none", "--addr", "tcp:"+addr, "--manifest", manifest, "--timeout", "30s")
	out, err := att.CombinedOutput()
	if code := att.ProcessState.ExitCode(); code != 3 || !strings.Contains(string(out), agentapi.CodeNoSNPDevice) {
		t.Errorf("hostbuild attest outside SEV-SNP: exit %d (%v), output %q; want exit 3 and %s", code, err, out, agentapi.CodeNoSNPDevice)
	}

	// Katana is still serving after all that.
	if err := chainIDProbe(ports[katanaPort])(ctx); err != nil {
		t.Errorf("starknet_chainId after the agent calls: %v", err)
	}

	code, body, err = httpDo(ctx, http.MethodPost, base+agentapi.PathShutdown)
	if err != nil {
		t.Fatal(err)
	}
	var sr agentapi.ShutdownResponse
	if code != http.StatusAccepted || json.Unmarshal(body, &sr) != nil || sr.State != "stopping" {
		t.Errorf("POST %s = %d %s, want 202 with state stopping", agentapi.PathShutdown, code, body)
	}
	if _, err := g.WaitForLine(ctx, markStandinTerm); err != nil {
		t.Fatalf("the stand-in got no SIGTERM after POST %s: %v", agentapi.PathShutdown, err)
	}
	_, m, err = g.WaitForRegexp(ctx, reKatanaExited)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "0" {
		t.Errorf("katana exit status %s after the agent's shutdown, want 0", m[1])
	}
	expectPowerOff(ctx, t, g, runExitClean)
}

func httpDo(ctx context.Context, method, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

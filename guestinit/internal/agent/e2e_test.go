package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	test "github.com/google/go-sev-guest/testing"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// buildHostbuild builds the hostbuild CLI from this checkout (the agent and
// the verifier live on two sides of the internal/ wall, so the end-to-end
// test drives the real binary, exit codes included).
func buildHostbuild(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("the go tool is not in PATH (%v); needed to build hostbuild for the end-to-end test", err)
	}
	bin := filepath.Join(t.TempDir(), "hostbuild")
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "./hostbuild")
	cmd.Dir = filepath.Join("..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building hostbuild: %v\n%s", err, out)
	}
	return bin
}

// rewrite is a man in the middle: it lets the agent answer, then edits the
// JSON attestation response.
func rewrite(h http.Handler, edit func(r *agentapi.AttestationResponse)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || req.URL.Path != agentapi.PathAttestation {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		var r agentapi.AttestationResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		edit(&r)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r)
	})
}

// replay answers every request with the first response it saw.
func replay(h http.Handler) http.Handler {
	var mu sync.Mutex
	var first []byte
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			first = rec.Body.Bytes()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(first)
	})
}

func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "tcp:" + l.Addr().String()
}

// TestEndToEnd runs the agent in process over TCP loopback with go-sev-guest's
// fake device and fake AMD signer, and `hostbuild attest` against it: the
// honest agent passes, and each single mutation is rejected with its own
// exit code.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hostbuild; run without -short")
	}
	bin := buildHostbuild(t)
	dir := t.TempDir()
	s := testSigner(t)
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := test.DefaultAmdKeys()
	keys.Vcek = otherKey
	now := time.Now().Add(-time.Hour)
	other, err := (&test.AmdSignerBuilder{Keys: keys, ProductName: "Milan", CSPID: "x", ArkCreationTime: now, AskCreationTime: now, AsvkCreationTime: now, VcekCreationTime: now, VlekCreationTime: now}).TestOnlyCertChain()
	if err != nil {
		t.Fatal(err)
	}
	otherTable, err := other.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}

	// The fake platform's roots, and a manifest expecting the fake launch.
	roots := filepath.Join(dir, "roots.pem")
	pemOf := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	if err := os.WriteFile(roots, append(pemOf(s.Ask.Raw), pemOf(s.Ark.Raw)...), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := strings.Repeat("0", 64)
	man := map[string]any{
		"schema": "katana-snp-manifest/v1", "tool": map[string]string{"name": "test", "version": "0"},
		"source_date_epoch": 0,
		"components": map[string]any{
			"ovmf":   map[string]any{"name": "OVMF.fd", "size": 1, "sha256": zero},
			"kernel": map[string]any{"name": "vmlinuz", "size": 1, "sha256": zero},
			"initrd": map[string]any{"name": "initrd.img", "size": 1, "sha256": zero},
		},
		"cmdline": string(testConfig.Cmdline), "vmm_type": "QEMU", "guest_features": "0x1", "guest_policy": "0x30000",
		"measurements": []map[string]any{{"vcpus": 2, "vcpu_type": "EPYC-v4", "measurement": hex.EncodeToString(testMeasurement[:])}},
	}
	mb, _ := json.MarshalIndent(man, "", "  ")
	manifestPath := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(manifestPath, mb, 0o644); err != nil {
		t.Fatal(err)
	}

	agentWith := func(edit func(r []byte)) *Server {
		f := newFakeSNP(t, s)
		f.edit = edit
		return New(Options{Quoter: &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}, Config: testConfig})
	}
	honest := func() http.Handler { return agentWith(nil).Handler() }

	ovmf := filepath.Join(os.Getenv("SHARED_DIR"), "measure", "fixtures", "ovmf_AmdSev_suffix.bin")
	if os.Getenv("SHARED_DIR") == "" {
		ovmf = filepath.Join("..", "..", "..", "..", "shared", "measure", "fixtures", "ovmf_AmdSev_suffix.bin")
	}
	kfile := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kfile, []byte("kernel"), 0o644)
	for _, tc := range []struct {
		name     string
		handler  http.Handler
		noRoots  bool
		extra    []string
		wantOut  string
		wantExit int
	}{
		{name: "honest agent passes", handler: honest(), wantExit: 0},
		{name: "no SNP device", handler: New(Options{Quoter: failing{"sev-guest-ioctl"}}).Handler(), wantExit: 3},
		{name: "measurement", handler: agentWith(func(r []byte) { r[0x90] ^= 0xff }).Handler(), wantExit: 6},
		{name: "measurement with --explain", handler: agentWith(func(r []byte) { r[0x90] ^= 0xff }).Handler(), wantExit: 6,
			extra: []string{"--explain", "--ovmf", ovmf, "--kernel", kfile, "--initrd", kfile}, wantOut: `"likely": "no launch variant matches, and local files differ from the manifest`},
		{name: "REPORT_DATA (config changed in transit)", handler: rewrite(honest(), func(r *agentapi.AttestationResponse) {
			r.Config.Argv = append(r.Config.Argv, "--evil")
		}), wantExit: 5},
		{name: "nonce reuse (replayed report)", handler: replay(honest()), wantExit: 5},
		{name: "policy debug bit", handler: agentWith(func(r []byte) { r[0x0A] |= 1 << 3 }).Handler(), wantExit: 7},
		{name: "VMPL", handler: agentWith(func(r []byte) { r[0x30] = 1 }).Handler(), wantExit: 7},
		{name: "one signature byte", handler: rewrite(honest(), func(r *agentapi.AttestationResponse) { r.Report[0x2A0] ^= 1 }), wantExit: 4},
		{name: "swapped VCEK", handler: rewrite(honest(), func(r *agentapi.AttestationResponse) { r.CertTable = otherTable }), wantExit: 4},
		{name: "untrusted root", handler: honest(), noRoots: true, wantExit: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveHandler(t, tc.handler)
			// --min-tcb none: the fake platform's TCB is all zero.
			args := []string{"attest", "--addr", addr, "--manifest", manifestPath, "--min-tcb", "none", "--json", "--timeout", "20s"}
			if !tc.noRoots {
				args = append(args, "--roots", roots)
			}
			if tc.extra != nil {
				if _, err := os.Stat(ovmf); err != nil {
					t.Skipf("OVMF fixture %s missing (%v); set SHARED_DIR", ovmf, err)
				}
				args = append(args, tc.extra...)
			}
			if tc.name == "nonce reuse (replayed report)" {
				// Prime the replay cache with an earlier exchange.
				exec.Command(bin, args...).Run()
			}
			evidence := filepath.Join(t.TempDir(), "ev")
			if tc.wantExit == 0 {
				args = append(args, "--evidence-out", evidence)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(context.Background(), bin, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != tc.wantExit {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tc.wantExit, stdout.String(), stderr.String())
			}
			var res struct {
				OK       bool   `json:"ok"`
				ExitCode int    `json:"exit_code"`
				Class    string `json:"failure_class"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("--json output: %v\n%s", err, stdout.String())
			}
			if res.OK != (tc.wantExit == 0) || res.ExitCode != tc.wantExit {
				t.Errorf("JSON result %+v", res)
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, stdout.String())
			}
			t.Logf("exit %d: %s", tc.wantExit, strings.TrimSpace(stderr.String()))
			if tc.wantExit != 0 {
				return
			}
			// The human summary.
			human, err := exec.Command(bin, "attest", "--addr", addr, "--manifest", manifestPath, "--min-tcb", "none", "--roots", roots).Output()
			if err != nil || !strings.HasPrefix(string(human), "attestation OK\n") || !strings.Contains(string(human), "2 vCPUs of type EPYC-v4") {
				t.Errorf("human summary (%v):\n%s", err, human)
			}
			t.Logf("human summary:\n%s", human)
			// The evidence re-verifies offline, and the report decodes.
			for _, a := range [][]string{
				{"verify", evidence, "--manifest", manifestPath, "--min-tcb", "none", "--roots", roots},
				{"report", filepath.Join(evidence, "report.bin")},
				{"report", "--json", filepath.Join(evidence, "report.bin")},
			} {
				out, err := exec.Command(bin, a...).CombinedOutput()
				if err != nil {
					t.Errorf("hostbuild %s: %v\n%s", strings.Join(a, " "), err, out)
				}
			}
			// A tampered evidence folder is rejected by verify: with
			// response.json edited alone the folder contradicts itself
			// (config.json restates the config: 1); with config.json
			// edited to match, the REPORT_DATA binding breaks (5).
			resp, _ := os.ReadFile(filepath.Join(evidence, "response.json"))
			var r agentapi.AttestationResponse
			json.Unmarshal(resp, &r)
			r.Config.Argv = []string{"--tampered"}
			b, _ := json.Marshal(r)
			os.WriteFile(filepath.Join(evidence, "response.json"), b, 0o644)
			for _, step := range []struct {
				edit func()
				want int
			}{
				{func() {}, 1},
				{func() {
					c, _ := json.MarshalIndent(r.Config, "", "  ")
					os.WriteFile(filepath.Join(evidence, "config.json"), append(c, '\n'), 0o644)
				}, 5},
			} {
				step.edit()
				cmd = exec.Command(bin, "verify", evidence, "--manifest", manifestPath, "--min-tcb", "none", "--roots", roots)
				out, _ := cmd.CombinedOutput()
				if got := cmd.ProcessState.ExitCode(); got != step.want {
					t.Errorf("verify of tampered evidence: exit %d, want %d\n%s", got, step.want, out)
				}
			}
		})
	}
}

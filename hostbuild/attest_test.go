package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-sev-guest/verify/testdata"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	old := os.Stdin
	if stdin != "" {
		f := filepath.Join(t.TempDir(), "stdin")
		os.WriteFile(f, []byte(stdin), 0o644)
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		os.Stdin = in
		defer func() { os.Stdin = old }()
	}
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// attest -h documents every exit code.
func TestAttestHelpDocumentsExitCodes(t *testing.T) {
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "-h")
	if code != exitOK {
		t.Errorf("attest -h: exit %d", code)
	}
	for _, want := range []string{"0  verified", "2  usage", "3  transport", "4  AMD certificate chain", "5  REPORT_DATA", "6  launch measurement", "7  guest policy", "-evidence-out", "-explain", "-allow-debug", "-min-tcb", "-certs", "-kds", "-roots"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("attest -h does not mention %q", want)
		}
	}
}

func TestAttestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no address", []string{"attest", "--min-tcb", "none", "--manifest", "m.json"}},
		{"cid and addr", []string{"attest", "--min-tcb", "none", "--cid", "3", "--addr", "tcp:h:1", "--manifest", "m.json"}},
		{"cid too small", []string{"attest", "--min-tcb", "none", "--cid", "2", "--manifest", "m.json"}},
		{"bad addr", []string{"attest", "--min-tcb", "none", "--addr", "udp:1:2", "--manifest", "m.json"}},
		{"no manifest", []string{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1"}},
		{"nonce size", []string{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", "m.json", "--nonce-size", "16"}},
		{"bad min-tcb", []string{"attest", "--addr", "tcp:127.0.0.1:1", "--manifest", "m.json", "--min-tcb", "bl=x"}},
		{"vmpl", []string{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", "m.json", "--vmpl", "4"}},
		{"extra argument", []string{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", "m.json", "x"}},
		{"unknown flag", []string{"attest", "--min-tcb", "none", "--bogus"}},
		{"verify without dir", []string{"verify", "--min-tcb", "none", "--manifest", "m.json"}},
		{"verify two dirs", []string{"verify", "--min-tcb", "none", dir, dir, "--manifest", "m.json"}},
		{"report no file", []string{"report"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
		})
	}
}

// Something other than the agent at --addr (Katana's JSON-RPC port, which
// answers 200 to any path) is named as such, with the agent's port.
func TestAttestNotTheAgent(t *testing.T) {
	mpath := writeTestManifest(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`)
	})}
	go srv.Serve(l)
	defer srv.Close()
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:"+l.Addr().String(), "--manifest", mpath)
	if want := "answered, but not as the snpboot agent does"; code != 3 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "guest port 1024") {
		t.Errorf("a JSON-RPC server at --addr: exit %d, stderr %q; want 3 and %q naming guest port 1024", code, stderr, want)
	}
}

// An unreachable agent and an agent error are transport failures (3).
func TestAttestTransport(t *testing.T) {
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(agentapi.ErrorResponse{Error: agentapi.Error{Code: agentapi.CodeNoSNPDevice, Message: "no device"}})
	})}
	go srv.Serve(l)
	defer srv.Close()

	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:"+l.Addr().String(), "--manifest", mpath, "--json")
	if code != 3 || !strings.Contains(stderr, agentapi.CodeNoSNPDevice) {
		t.Errorf("agent error: exit %d, stderr %q", code, stderr)
	}
	var res struct {
		ExitCode int    `json:"exit_code"`
		Class    string `json:"failure_class"`
		Nonce    string `json:"nonce"`
	}
	// The nonce sent is said even when no answer came.
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.ExitCode != 3 || res.Class != "transport" || len(res.Nonce) != 2*agentapi.MaxNonceSize {
		t.Errorf("--json: %v %+v\n%s", err, res, stdout)
	}
	srv.Close()
	code, _, stderr = runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:"+l.Addr().String(), "--manifest", mpath, "--timeout", "2s")
	if code != 3 {
		t.Errorf("closed port: exit %d, stderr %q", code, stderr)
	}
	// A missing manifest is a plain failure (1), not a usage error.
	code, _, _ = runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", filepath.Join(dir, "missing.json"))
	if code != exitFail {
		t.Errorf("missing manifest: exit %d", code)
	}
}

// An agent that accepts but never answers: exit 3 at --timeout, naming
// the flag and what to check. One that redirects: its 3xx is the answer,
// refused, and the place it points to is never asked.
func TestAttestSilentAndRedirectingAgent(t *testing.T) {
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)
	// Held open, never answered, until the test ends.
	silent := rawAgent(t, func(net.Conn) { <-t.Context().Done() })
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", silent, "--manifest", mpath, "--timeout", "300ms")
	if code != 3 || !strings.Contains(stderr, "no complete answer within 300ms (--timeout)") || !strings.Contains(stderr, "raise --timeout") {
		t.Errorf("silent agent: exit %d, stderr %q; want 3 naming --timeout", code, stderr)
	}

	var followed atomic.Bool
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentapi.PathAttestation {
			followed.Store(true)
		}
		http.Redirect(w, r, agentapi.PathShutdown, http.StatusFound)
	})}
	go srv.Serve(l)
	defer srv.Close()
	code, _, stderr = runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:"+l.Addr().String(), "--manifest", mpath, "--timeout", "5s")
	if code != 3 || !strings.Contains(stderr, "302 Found") {
		t.Errorf("redirecting agent: exit %d, stderr %q; want 3 and the 302 named", code, stderr)
	}
	if followed.Load() {
		t.Error("attest followed the agent's redirect")
	}
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "report.bin")
	os.WriteFile(bin, testdata.AttestationBytes, 0o644)
	code, out, stderr := runCmd(t, "", "report", bin)
	if code != exitOK || !strings.Contains(out, "measurement:") || !strings.Contains(out, "b07af9620f3b839b") {
		t.Errorf("report FILE: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCmd(t, hex.EncodeToString(testdata.AttestationBytes)+"\n", "report", "--json", "-")
	var info map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &info) != nil || info["measurement"] != "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01" {
		t.Errorf("report --json -: exit %d\n%s%s", code, out, stderr)
	}
	os.WriteFile(bin, []byte("short"), 0o644)
	if code, _, _ := runCmd(t, "", "report", bin); code != exitFail {
		t.Errorf("short report: exit %d", code)
	}
}

// TestAttestChecksBeforeFetching: what can be known before the guest is
// asked is checked first (exit 2): a report is spent once fetched, and
// evidence that cannot be written is lost. Here no agent answers, so a
// check made only after fetching would show as exit 3.
func TestAttestChecksBeforeFetching(t *testing.T) {
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)
	existing := t.TempDir()
	base := []string{"attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", mpath, "--timeout", "2s"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--evidence-out", existing}, "--evidence-out " + existing + " already exists; give a new folder"},
		{[]string{"--evidence-out", filepath.Join(dir, "no", "ev")}, "the folder " + filepath.Join(dir, "no") + " does not exist"},
		{[]string{"--evidence-out", filepath.Join(mpath, "ev")}, mpath + " is not a folder"},
		{[]string{"--explain"}, "--explain needs the local files the manifest describes: --ovmf, --kernel and --initrd"},
		{[]string{"--explain", "--ovmf", mpath}, "--explain needs"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCmd(t, "", append(base, tt.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the checks left files in %s: %v", dir, ents)
	}

	// No agent: the transport error names the command and the address,
	// not Go's request URL, and says what to check.
	code, _, stderr := runCmd(t, "", base...)
	if code != 3 || !strings.HasPrefix(stderr, "hostbuild attest: transport: asking the agent at tcp:127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused (is the guest running and the port forwarded") || strings.Contains(stderr, "http://") {
		t.Errorf("no agent: exit %d, stderr %q", code, stderr)
	}

	// verify on a folder that is not evidence says so.
	code, _, stderr = runCmd(t, "", "verify", "--min-tcb", "none", existing, "--manifest", mpath)
	if code != exitFail || !strings.Contains(stderr, existing+" is not an evidence folder (from hostbuild attest --evidence-out)") {
		t.Errorf("verify on an empty folder: exit %d, stderr %q", code, stderr)
	}
}

// attest --json without a report (no agent) says nothing of the report's
// fields: "vmpl": 0 once claimed a VMPL no report gave.
func TestAttestJSONWithoutReport(t *testing.T) {
	mpath := writeTestManifest(t, t.TempDir())
	code, stdout, _ := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", "tcp:127.0.0.1:1", "--manifest", mpath, "--timeout", "2s", "--json")
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("exit %d, stdout %q: %v", code, stdout, err)
	}
	if code != 3 || res["failure_class"] != "transport" {
		t.Errorf("exit %d, %v", code, res)
	}
	if v, ok := res["vmpl"]; ok {
		t.Errorf("vmpl %v in the JSON of an attestation that got no report", v)
	}
}

// testCmdline is the test manifest's cmdline, which the fake agent's init
// applied.
const testCmdline = "x katana.env=RUST_LOG=debug katana.args=--dev"

// writeTestManifest writes a valid manifest (all zero digests) to dir/m.json.
func writeTestManifest(t *testing.T, dir string) string {
	t.Helper()
	zero := strings.Repeat("0", 64)
	m := map[string]any{
		"schema": "katana-snp-manifest/v1", "tool": map[string]string{"name": "t", "version": "0"}, "source_date_epoch": 0,
		"components": map[string]any{
			"ovmf":   map[string]any{"name": "o", "size": 1, "sha256": zero},
			"kernel": map[string]any{"name": "k", "size": 1, "sha256": zero},
			"initrd": map[string]any{"name": "i", "size": 1, "sha256": zero},
		},
		"cmdline": testCmdline, "vmm_type": "QEMU", "guest_features": "0x1", "guest_policy": "0x30000",
		"measurements": []map[string]any{{"vcpus": 1, "vcpu_type": "EPYC-v4", "measurement": strings.Repeat("0", 96)}},
	}
	b, _ := json.Marshal(m)
	mpath := filepath.Join(dir, "m.json")
	if err := os.WriteFile(mpath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return mpath
}

// TestReportInputLimit: report reads at most maxReportInput bytes; a binary
// report followed by a certificate table up to that size decodes, one byte
// more is refused (not truncated and decoded).
func TestReportInputLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		size    int
		want    int
		wantErr string
	}{
		{maxReportInput, exitOK, ""},
		{maxReportInput + 1, exitFail, "hostbuild report: " + filepath.Join(dir, "report.bin") + ": larger than 1048576 bytes, more than a report and its certificate table\n"},
	} {
		t.Run(strconv.Itoa(tc.size), func(t *testing.T) {
			b := make([]byte, tc.size)
			copy(b, testdata.AttestationBytes)
			f := filepath.Join(dir, "report.bin")
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCmd(t, "", "report", f)
			if code != tc.want || stderr != tc.wantErr {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, stderr, tc.want, tc.wantErr)
			}
			if ok := strings.Contains(stdout, "b07af9620f3b839b"); ok != (tc.want == exitOK) {
				t.Errorf("decoded %v, want %v:\n%s", ok, tc.want == exitOK, stdout)
			}
		})
	}
}

// A file that is not a report is named in the error (it once said only
// "report is neither 1184+ binary bytes nor hex: ..."), stdin as "stdin".
func TestReportErrorNamesTheInput(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(f, []byte("console=ttyS0"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "report", f)
	if want := "hostbuild report: " + f + ": report is 13 bytes and not hex text"; code != exitFail || !strings.HasPrefix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitFail, want)
	}
}

// A flag that only qualifies another one is refused without it, naming
// both, rather than ignored in silence; so is a timeout that could never
// be met.
func TestAttestQualifyingFlags(t *testing.T) {
	dir := t.TempDir()
	tcp := []string{"--addr", "tcp:127.0.0.1:1", "--manifest", "m.json"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"port with addr", []string{"attest", "--min-tcb", "none", "--addr", "vsock:3:1024", "--port", "2000", "--manifest", "m.json"}, "--port goes with --cid; with --addr, give the port in the address"},
		{"zero timeout", append([]string{"attest", "--min-tcb", "none", "--timeout", "0s"}, tcp...), "--timeout must be positive, got 0s"},
		{"negative timeout", append([]string{"attest", "--min-tcb", "none", "--timeout", "-1s"}, tcp...), "--timeout must be positive, got -1s"},
		{"roots-product without roots", append([]string{"attest", "--min-tcb", "none", "--roots-product", "Genoa"}, tcp...), "--roots-product names the product line of --roots; give --roots too"},
		{"kds-cache without kds", append([]string{"attest", "--min-tcb", "none", "--kds-cache", dir}, tcp...), "--kds-cache is where --kds keeps what it fetches; give --kds too"},
		{"verify: kds-cache without kds", []string{"verify", "--min-tcb", "none", dir, "--manifest", "m.json", "--kds-cache", dir}, "--kds-cache is where --kds keeps"},
		{"check-crl without kds", append([]string{"attest", "--min-tcb", "none", "--check-crl"}, tcp...), "--check-crl fetches AMD's revocation list from KDS; give --kds too"},
		{"verify: check-crl without kds", []string{"verify", "--min-tcb", "none", dir, "--manifest", "m.json", "--check-crl"}, "--check-crl fetches AMD's revocation list"},
		{"verify: roots-product without roots", []string{"verify", "--min-tcb", "none", dir, "--manifest", "m.json", "--roots-product", "Turin"}, "--roots-product names the product line of --roots"},
		{"unknown --platform word", append([]string{"attest", "--min-tcb", "none", "--platform", "no-smt,nosmt"}, tcp...), `--platform: unknown requirement "nosmt"; want a comma-separated list of no-smt, ecc,`},
		{"verify: short --chip-id", []string{"verify", "--min-tcb", "none", dir, "--manifest", "m.json", "--chip-id", "abcd"}, `--chip-id "abcd": want the 64-byte CHIP_ID as 128 hex digits`},
		{"zero --chip-id", append([]string{"attest", "--min-tcb", "none", "--chip-id", strings.Repeat("0", 128)}, tcp...), "--chip-id is all zero"},
		// No floor is said, not assumed: an OK without one would pass
		// firmware with known vulnerabilities.
		{"no --min-tcb", append([]string{"attest"}, tcp...), "--min-tcb is required: give the minimum TCB of AMD's latest security bulletin"},
		{"verify: no --min-tcb", []string{"verify", dir, "--manifest", "m.json"}, "or --min-tcb none to accept any firmware"},
		{"--min-mit-vector not hex", append([]string{"attest", "--min-tcb", "none", "--min-mit-vector", "5"}, tcp...), `--min-mit-vector "5": want 0xHEX`},
		{"--min-tcb part left out", append([]string{"attest", "--min-tcb", "bl=3,tee=0,snp=8"}, tcp...), `--min-tcb "bl=3,tee=0,snp=8": ucode missing: give all four parts`},
		{"--min-tcb part twice", append([]string{"attest", "--min-tcb", "bl=3,snp=22,snp=0"}, tcp...), `--min-tcb "bl=3,snp=22,snp=0": snp given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tc.want)
			}
		})
	}
	// With their partner they are accepted (no agent here: a transport
	// failure, 3, not a usage error).
	for _, args := range [][]string{
		{"--cid", "3", "--port", "2000", "--timeout", "100ms"},
		{"--addr", "tcp:127.0.0.1:1", "--kds", "--kds-cache", dir},
		{"--addr", "tcp:127.0.0.1:1", "--roots", filepath.Join(dir, "none.pem"), "--roots-product", "Genoa"},
	} {
		code, _, stderr := runCmd(t, "", append(append([]string{"attest"}, args...), "--manifest", writeTestManifest(t, t.TempDir()), "--min-tcb", "none")...)
		if code == exitUsage {
			t.Errorf("attest %q: a usage error, want it accepted: %s", args, stderr)
		}
	}
}

// The decimal-only int and uint flags print their defaults in -h like the
// flag package's own (and the zero value prints nothing, without a panic).
func TestDecimalFlagsHelpDefaults(t *testing.T) {
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "-h")
	if code != exitOK {
		t.Fatalf("attest -h: exit %d", code)
	}
	for _, want := range []string{"minimum report version (default 2)", "agent vsock port (default 1024)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("attest -h lacks %q:\n%s", want, stderr)
		}
	}
	for _, bad := range []string{"panic", "required VMPL of the report (default 0)"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("attest -h has %q:\n%s", bad, stderr)
		}
	}
}

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// fakeAgent answers GET /v1/attestation as the init's agent does on fake
// SEV-SNP hardware (go-sev-guest's fake AMD signer): a version 3 Milan
// report with guest policy 0x30000 and the all-zero measurement
// writeTestManifest expects, binding the request's nonce and cfg. report
// edits the raw report before it is signed, resp the response after;
// before runs first (to change the world while attest waits).
type fakeAgent struct {
	s      *test.AmdSigner
	nonce  []byte // when set, signed instead of the request's (a stale report)
	report func(r []byte)
	config *agentapi.AppliedConfig // signed instead of testAgentConfig
	resp   func(r *agentapi.AttestationResponse)
	before func()
}

// otherWarnings is stdout without the warnings every attest with the fake
// signer prints (its --roots, no --min-tcb).
func otherWarnings(stdout string) string {
	var keep []string
	for _, l := range strings.SplitAfter(stdout, "\n") {
		if !strings.Contains(l, "warning: no minimum TCB was checked") && !strings.Contains(l, "warning: the AMD chain was checked against --roots") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// testAgentConfig is what the fake init applied; its cmdline is
// writeTestManifest's, so an honest answer carries no warning.
var testAgentConfig = func() agentapi.AppliedConfig {
	c, err := bootcfg.Parse(testCmdline)
	if err != nil {
		panic(err)
	}
	return agentapi.ConfigOf(c.Applied())
}()

func (f *fakeAgent) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if f.before != nil {
		f.before()
	}
	nonce, err := hex.DecodeString(req.URL.Query().Get(agentapi.NonceQueryParam))
	if err != nil || req.URL.Path != agentapi.PathAttestation {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if f.nonce != nil {
		nonce = f.nonce
	}
	cfg := testAgentConfig
	if f.config != nil {
		cfg = *f.config
	}
	d := agentapi.ConfigDigest(cfg)
	rd, pre, err := agentapi.ReportData(nonce, d)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	full := test.CreateRawReport(&test.TestReportOptions{ReportData: rd[:], Version: 3, FMS: 0x00a00f11})
	raw := full[:abi.ReportSize]
	binary.LittleEndian.PutUint64(raw[0x08:], 0x30000)
	if f.report != nil {
		f.report(raw)
	}
	r, s, err := f.s.Sign(abi.SignedComponent(raw))
	if err == nil {
		err = abi.SetSignature(r, s, raw)
	}
	certs, err2 := f.s.CertTableBytes()
	if err != nil || err2 != nil {
		http.Error(w, "signing", http.StatusInternalServerError)
		return
	}
	resp := &agentapi.AttestationResponse{
		APIVersion: agentapi.APIVersion, Provider: agentapi.ProviderSevGuest, Nonce: hex.EncodeToString(nonce),
		Report: bytes.Clone(raw), CertTable: certs, ReportDataPreimage: pre, ReportData: hex.EncodeToString(rd[:]),
		Config: cfg, ConfigDigest: hex.EncodeToString(d[:]),
	}
	if f.resp != nil {
		f.resp(resp)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// serveAgent serves h on a loopback port and returns it as an --addr.
func serveAgent(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "tcp:" + l.Addr().String()
}

// fakeSigner is a fake AMD platform; vcek replaces its VCEK's key when set.
func fakeSigner(t *testing.T, vcek *ecdsa.PrivateKey) *test.AmdSigner {
	t.Helper()
	keys := test.DefaultAmdKeys()
	if vcek != nil {
		keys.Vcek = vcek
	}
	now := time.Now().Add(-time.Hour)
	s, err := (&test.AmdSignerBuilder{Keys: keys, ProductName: "Milan", CSPID: "go-sev-guest",
		ArkCreationTime: now, AskCreationTime: now, AsvkCreationTime: now, VcekCreationTime: now, VlekCreationTime: now}).TestOnlyCertChain()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attestFixture writes the test manifest and the fake signer's roots in a
// new dir, and another platform's signer (same ARK and ASK, another VCEK
// key) with its vcek.pem in otherDir, as --certs takes it.
func attestFixture(t *testing.T) (dir, mpath string, s *test.AmdSigner, roots string, other *test.AmdSigner, otherDir string) {
	t.Helper()
	dir = t.TempDir()
	mpath = writeTestManifest(t, dir)
	s = fakeSigner(t, nil)
	roots = writePEM(t, filepath.Join(dir, "roots.pem"), s.Ask, s.Ark)
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other = fakeSigner(t, otherKey)
	otherDir = filepath.Join(dir, "other-certs")
	if err := os.Mkdir(otherDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(otherDir, "vcek.pem"), other.Vcek)
	return dir, mpath, s, roots, other, otherDir
}

func writePEM(t *testing.T, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type attestJSON struct {
	OK          bool   `json:"ok"`
	ExitCode    int    `json:"exit_code"`
	Class       string `json:"failure_class"`
	Report      string `json:"report"`
	Measurement string `json:"measurement"`
}

// TestAttestExitCodes: against an agent on fake SEV-SNP hardware, attest
// succeeds (0) only for a report that matches the manifest and the flags,
// and each mismatch exits with the code of its failure class, in the human
// summary, in --json and on stderr.
func TestAttestExitCodes(t *testing.T) {
	dir, mpath, s, roots, other, otherDir := attestFixture(t)
	vcekDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(vcekDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(vcekDir, "vcek.pem"), s.Vcek)
	noTable := func(r *agentapi.AttestationResponse) { r.CertTable = nil }

	for _, tc := range []struct {
		name      string
		agent     fakeAgent
		noRoots   bool
		args      []string
		want      int
		wantClass string
		wantErr   string // on stderr
	}{
		{name: "honest", want: 0},
		{name: "measurement", agent: fakeAgent{report: func(r []byte) { r[0x90] ^= 1 }}, want: 6, wantClass: "measurement", wantErr: "is not in the manifest"},
		{name: "last measurement byte", agent: fakeAgent{report: func(r []byte) { r[0xBF] ^= 0x80 }}, want: 6, wantClass: "measurement"},
		{name: "config changed after signing", agent: fakeAgent{resp: func(r *agentapi.AttestationResponse) { r.Config.Argv = append(r.Config.Argv, "--evil") }}, want: 5, wantClass: "report_data", wantErr: "config altered after signing"},
		{name: "stale report for another nonce", agent: fakeAgent{nonce: bytes.Repeat([]byte{7}, 64)}, want: 5, wantClass: "report_data", wantErr: "nonce reuse"},
		{name: "REPORT_DATA not signed", agent: fakeAgent{report: func(r []byte) { r[0x50] ^= 1 }}, want: 5, wantClass: "report_data"},
		{name: "debug policy", agent: fakeAgent{report: func(r []byte) { r[0x0A] |= 1 << 3 }}, want: 7, wantClass: "policy", wantErr: "allows debugging"},
		{name: "debug policy with --allow-debug", agent: fakeAgent{report: func(r []byte) { r[0x0A] |= 1 << 3 }}, args: []string{"--allow-debug"}, want: 0},
		{name: "other policy", agent: fakeAgent{report: func(r []byte) { r[0x0A] |= 1 << 4 }}, args: []string{"--allow-debug"}, want: 7, wantClass: "policy", wantErr: "differs from the manifest's"},
		{name: "VMPL 1", agent: fakeAgent{report: func(r []byte) { r[0x30] = 1 }}, want: 7, wantClass: "policy", wantErr: "VMPL 1, want 0"},
		{name: "VMPL 1 with --vmpl 1", agent: fakeAgent{report: func(r []byte) { r[0x30] = 1 }}, args: []string{"--vmpl", "1"}, want: 0},
		{name: "VMPL 0 with --vmpl 3", args: []string{"--vmpl", "3"}, want: 7, wantClass: "policy", wantErr: "VMPL 0, want 3"},
		{name: "VMPL 3 with --vmpl 3", agent: fakeAgent{report: func(r []byte) { r[0x30] = 3 }}, args: []string{"--vmpl", "3"}, want: 0},
		{name: "--min-tcb above the report's", args: []string{"--min-tcb", "bl=1,tee=0,snp=0,ucode=0"}, want: 7, wantClass: "policy"},
		{name: "--min-report-version 3", args: []string{"--min-report-version", "3"}, want: 0},
		{name: "--min-report-version 4", args: []string{"--min-report-version", "4"}, want: 7, wantClass: "policy", wantErr: "report version 3 is below the minimum 4"},
		{name: "signature byte", agent: fakeAgent{resp: func(r *agentapi.AttestationResponse) { r.Report[0x2A0] ^= 1 }}, want: 4, wantClass: "chain"},
		{name: "untrusted roots", noRoots: true, want: 4, wantClass: "chain"},
		{name: "another platform's VCEK in the table", agent: fakeAgent{resp: func(r *agentapi.AttestationResponse) { r.CertTable, _ = other.CertTableBytes() }}, want: 4, wantClass: "chain"},
		{name: "no certificate table", agent: fakeAgent{resp: noTable}, want: 4, wantClass: "chain", wantErr: "no VCEK certificate"},
		{name: "no certificate table, --certs", agent: fakeAgent{resp: noTable}, args: []string{"--certs", vcekDir}, want: 0},
		{name: "--certs replaces the guest's VCEK", args: []string{"--certs", otherDir}, want: 4, wantClass: "chain"},
		{name: "--roots of another product line", args: []string{"--roots-product", "Genoa"}, want: 4, wantClass: "chain"},
		{name: "--platform no-smt on an SMT host", agent: fakeAgent{report: func(r []byte) { r[0x40] |= 1 }}, args: []string{"--platform", "no-smt"}, want: 7, wantClass: "policy", wantErr: "the host's PLATFORM_INFO is 0x1 (SMT enabled), which does not meet --platform no-smt"},
		{name: "--platform no-smt,rapl-disabled met", agent: fakeAgent{report: func(r []byte) { r[0x40] |= 1 << 3 }}, args: []string{"--platform", "no-smt,rapl-disabled"}, want: 0},
		{name: "--chip-id with CHIP_ID masked", args: []string{"--chip-id", strings.Repeat("ab", 64)}, want: 7, wantClass: "policy", wantErr: "CHIP_ID is zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.agent.s = s
			addr := serveAgent(t, &tc.agent)
			args := []string{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--timeout", "20s"}
			if !tc.noRoots {
				args = append(args, "--roots", roots)
			}
			args = withFlags(args, tc.args...)
			code, stdout, stderr := runCmd(t, "", args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, stdout, stderr)
			}
			if tc.want == 0 {
				if !strings.HasPrefix(stdout, "attestation OK\n") || !strings.Contains(stdout, "  matches:        1 vCPUs of type EPYC-v4\n") ||
					!strings.Contains(stdout, "  vcpu type:      measured by its signature 0x800f12 only: EPYC, EPYC-IBPB, EPYC-v1, EPYC-v2, EPYC-v3 give this measurement too\n") || !strings.Contains(stdout, "  katana argv:    [\"--dev\"]\n") || !strings.Contains(stdout, "  katana env:     RUST_LOG=debug\n") ||
					strings.Contains(otherWarnings(stdout), "warning") != strings.Contains(strings.Join(tc.args, " "), "--allow-debug") || !strings.Contains(stdout, "  platform:       0x") || stderr != "" {
					t.Errorf("human summary:\n%s\nstderr: %q", stdout, stderr)
				}
			} else {
				prefix := "attestation FAILED (" + tc.wantClass + ", exit " + string(rune('0'+tc.want)) + "): "
				if !strings.HasPrefix(stdout, prefix) {
					t.Errorf("human summary does not start with %q:\n%s", prefix, stdout)
				}
				if !strings.HasPrefix(stderr, "hostbuild attest: attestation rejected: "+tc.wantClass+": ") || !strings.Contains(stderr, tc.wantErr) {
					t.Errorf("stderr %q, want the rejection, its class %s and %q", stderr, tc.wantClass, tc.wantErr)
				}
			}
			if strings.Contains(stdout, "explain:") {
				t.Errorf("explained without --explain:\n%s", stdout)
			}
			code, stdout, _ = runCmd(t, "", append(args, "--json")...)
			var res attestJSON
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout)
			}
			if code != tc.want || res.OK != (tc.want == 0) || res.ExitCode != tc.want || res.Class != tc.wantClass {
				t.Errorf("--json: exit %d, %+v; want exit %d, class %q", code, res, tc.want, tc.wantClass)
			}
			// The raw report is in the record, refused or not: its
			// MEASUREMENT (offset 0x90) is the one shown.
			if raw, err := hex.DecodeString(res.Report); err != nil || len(raw) != abi.ReportSize {
				t.Errorf("--json report: %v, %d bytes, want the %d-byte report", err, len(raw), abi.ReportSize)
			} else if res.Measurement != "" && hex.EncodeToString(raw[0x90:0xc0]) != res.Measurement {
				t.Errorf("--json report's measurement %x, shown %s", raw[0x90:0xc0], res.Measurement)
			}
		})
	}
}

// TestAttestEvidenceAndVerify: attest --evidence-out writes the evidence of
// a verified and of a rejected report; verify re-checks the folder offline
// with the same exit codes, against the manifest and flags it is given;
// evidence that cannot be written fails a verified attest (exit 1, no "OK").
// TestAttestArgvAndEnv: Katana's argv and katana.env are shown only for
// the manifest's guest (not on a measurement failure), and a report that
// binds another argv or other settings than the measured cmdline gives
// (asked for by another process in the guest) fails as a REPORT_DATA
// failure, naming the difference.
func TestAttestArgvAndEnv(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	other := testAgentConfig
	other.Argv = []string{"--other"}
	otherEnv := testAgentConfig
	otherEnv.Settings = maps.Clone(testAgentConfig.Settings)
	otherEnv.Settings["katana.env"] = "A=1"
	otherNet := testAgentConfig
	otherNet.Settings = maps.Clone(testAgentConfig.Settings)
	otherNet.Settings["katana.net"] = "none"
	missing := testAgentConfig
	missing.Settings = maps.Clone(testAgentConfig.Settings)
	delete(missing.Settings, "katana.on_exit")
	extra := testAgentConfig
	extra.Settings = maps.Clone(testAgentConfig.Settings)
	extra.Settings["katana.debug"] = "1"
	for _, tc := range []struct {
		name       string
		agent      fakeAgent
		want       int
		show, none []string
	}{
		{"honest", fakeAgent{}, 0, []string{"  katana argv:    [\"--dev\"]\n", "  katana env:     RUST_LOG=debug\n"}, []string{"warning: the guest's policy"}},
		{"measurement failure", fakeAgent{report: func(r []byte) { r[0x90] ^= 1 }}, 6, nil, []string{"katana argv", "katana env"}},
		{"policy failure (debugging allowed)", fakeAgent{report: func(r []byte) { r[0x0A] |= 1 << 3 }}, 7, nil, []string{"katana argv", "katana env"}},
		{"another argv", fakeAgent{config: &other}, 5, []string{`the report binds a config the measured cmdline does not give (argv ["--other"], expected ["--dev"])`}, []string{"katana argv", "katana env", "OK"}},
		{"another env", fakeAgent{config: &otherEnv}, 5, []string{`(katana.env "A=1", expected "RUST_LOG=debug")`}, []string{"katana argv", "katana env", "OK"}},
		{"another setting", fakeAgent{config: &otherNet}, 5, []string{`(katana.net "none", expected "10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3")`}, []string{"katana argv", "OK"}},
		{"a setting missing", fakeAgent{config: &missing}, 5, []string{`(no katana.on_exit setting, expected "poweroff")`}, []string{"katana argv", "OK"}},
		{"an unknown setting", fakeAgent{config: &extra}, 5, []string{`(a setting "katana.debug", which this tool does not know)`}, []string{"katana argv", "OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.agent.s = s
			code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", serveAgent(t, &tc.agent), "--manifest", mpath, "--roots", roots, "--timeout", "20s")
			if code != tc.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.want, stdout, stderr)
			}
			for _, w := range tc.show {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.none {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestAttestEvidenceAndVerify(t *testing.T) {
	dir, mpath, s, roots, _, otherDir := attestFixture(t)
	// A manifest expecting another measurement.
	otherDirM := filepath.Join(dir, "other")
	os.Mkdir(otherDirM, 0o755)
	otherManifest := writeTestManifest(t, otherDirM)
	b, _ := os.ReadFile(otherManifest)
	os.WriteFile(otherManifest, bytes.Replace(b, []byte(strings.Repeat("0", 96)), []byte(strings.Repeat("1", 96)), 1), 0o644)

	addr := serveAgent(t, &fakeAgent{s: s})
	ev := filepath.Join(dir, "ev")
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev)
	if code != 0 || !strings.HasPrefix(stdout, "attestation OK\n") {
		t.Fatalf("attest --evidence-out: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, name := range []string{"report.bin", "nonce.hex", "response.json", "result.json", "manifest.sha256", "vcek.pem"} {
		if _, err := os.Stat(filepath.Join(ev, name)); err != nil {
			t.Errorf("evidence: %v", err)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"verified", []string{ev, "--manifest", mpath, "--roots", roots}, 0},
		{"flags before DIR", []string{"--manifest", mpath, "--roots", roots, ev}, 0},
		{"another manifest", []string{ev, "--manifest", otherManifest, "--roots", roots}, 6},
		{"--vmpl 1", []string{ev, "--manifest", mpath, "--roots", roots, "--vmpl", "1"}, 7},
		{"--min-report-version 4", []string{ev, "--manifest", mpath, "--roots", roots, "--min-report-version", "4"}, 7},
		{"AMD's roots", []string{ev, "--manifest", mpath}, 4},
		{"--certs replaces the recorded VCEK", []string{ev, "--manifest", mpath, "--roots", roots, "--certs", otherDir}, 4},
		{"--vmpl 4", []string{ev, "--manifest", mpath, "--vmpl", "4"}, 2},
		{"missing manifest", []string{ev, "--manifest", filepath.Join(dir, "missing.json")}, 1},
		{"missing --certs", []string{ev, "--manifest", mpath, "--certs", filepath.Join(dir, "missing")}, 1},
		{"missing --roots", []string{ev, "--manifest", mpath, "--roots", filepath.Join(dir, "missing.pem")}, 1},
	} {
		t.Run("verify "+tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", append([]string{"verify", "--min-tcb", "none"}, tc.args...)...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, stdout, stderr)
			}
			if ok := strings.HasPrefix(stdout, "attestation OK\n"); ok != (tc.want == 0) {
				t.Errorf("stdout says OK %v, want %v:\n%s", ok, tc.want == 0, stdout)
			}
		})
	}

	// verify against a manifest other than the one attest recorded: the
	// same expectations in other bytes verify, with a warning naming both
	// digests; the recorded one gives none.
	respaced := filepath.Join(dir, "respaced.json")
	mb, _ := os.ReadFile(mpath)
	os.WriteFile(respaced, append(mb, '\n'), 0o644)
	recorded := fmt.Sprintf("%x", sha256.Sum256(mb))
	for _, tc := range []struct {
		manifest string
		warn     bool
	}{{mpath, false}, {respaced, true}} {
		code, stdout, stderr := runCmd(t, "", "verify", "--min-tcb", "none", ev, "--manifest", tc.manifest, "--roots", roots)
		warned := strings.Contains(stdout, "warning: attest verified this evidence against a manifest with SHA-256 "+recorded+" (manifest.sha256), not --manifest "+respaced)
		if code != 0 || warned != tc.warn || !strings.Contains(stdout, "warning: freshness not checked: the nonce is the folder's (nonce.hex)") {
			t.Errorf("verify --manifest %s: exit %d, warned %v (want %v)\n%s%s", tc.manifest, code, warned, tc.warn, stdout, stderr)
		}
	}
	badEv := filepath.Join(t.TempDir(), "bad")
	os.Mkdir(badEv, 0o755)
	ents, _ := os.ReadDir(ev)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(ev, e.Name()))
		if e.Name() == "manifest.sha256" {
			b = bytes.ToUpper(b)
		}
		os.WriteFile(filepath.Join(badEv, e.Name()), b, 0o644)
	}
	if code, stdout, stderr := runCmd(t, "", "verify", "--min-tcb", "none", badEv, "--manifest", mpath, "--roots", roots); code != exitFail || !strings.Contains(stderr, "manifest.sha256 does not start with a SHA-256 in lowercase hex") {
		t.Errorf("verify with a malformed manifest.sha256: exit %d\n%s%s", code, stdout, stderr)
	}

	// A config edited in the folder breaks the REPORT_DATA binding (5)
	// when config.json is edited to match; with config.json left as it
	// was, the folder contradicts itself and is refused before that (1).
	for _, tc := range []struct {
		name       string
		configJSON bool // edit config.json to match
		want       int
		says       string
	}{
		{"response.json and config.json", true, 5, "config altered after signing"},
		{"response.json alone", false, exitFail, "config.json differs from the config in response.json"},
	} {
		tampered := filepath.Join(t.TempDir(), "tampered")
		os.Mkdir(tampered, 0o755)
		ents, _ := os.ReadDir(ev)
		var r agentapi.AttestationResponse
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(ev, e.Name()))
			if e.Name() == "response.json" {
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				r.Config.Argv = []string{"--tampered"}
				b, _ = json.Marshal(r)
			}
			os.WriteFile(filepath.Join(tampered, e.Name()), b, 0o644)
		}
		if tc.configJSON {
			b, _ := json.MarshalIndent(r.Config, "", "  ")
			os.WriteFile(filepath.Join(tampered, "config.json"), append(b, '\n'), 0o644)
		}
		if code, stdout, stderr := runCmd(t, "", "verify", "--min-tcb", "none", tampered, "--manifest", mpath, "--roots", roots); code != tc.want || !strings.Contains(stdout+stderr, tc.says) {
			t.Errorf("verify with %s edited: exit %d, want %d saying %q\n%s%s", tc.name, code, tc.want, tc.says, stdout, stderr)
		}
	}

	// The evidence of a rejected report is written too, with its result.
	bad := serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { r[0x90] ^= 1 }})
	ev2 := filepath.Join(dir, "ev2")
	if code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", bad, "--manifest", mpath, "--roots", roots, "--evidence-out", ev2); code != 6 {
		t.Fatalf("attest of a wrong measurement: exit %d, want 6\n%s%s", code, stdout, stderr)
	}
	var res attestJSON
	if b, err := os.ReadFile(filepath.Join(ev2, "result.json")); err != nil || json.Unmarshal(b, &res) != nil || res.OK || res.ExitCode != 6 || res.Class != "measurement" {
		t.Errorf("result.json of the rejected report: %v %+v", err, res)
	}
	if code, _, stderr := runCmd(t, "", "verify", "--min-tcb", "none", ev2, "--manifest", mpath, "--roots", roots); code != 6 {
		t.Errorf("verify of the rejected report's evidence: exit %d, want 6\n%s", code, stderr)
	}

	// A manifest replaced while the guest is asked changes nothing: the
	// evidence names the bytes verified against.
	moved := filepath.Join(dir, "moved")
	os.Mkdir(moved, 0o755)
	gm := writeTestManifest(t, moved)
	orig, err := os.ReadFile(gm)
	if err != nil {
		t.Fatal(err)
	}
	rm := serveAgent(t, &fakeAgent{s: s, before: func() { os.WriteFile(gm, []byte("{}"), 0o644) }})
	ev3 := filepath.Join(dir, "ev3")
	if code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", rm, "--manifest", gm, "--roots", roots, "--evidence-out", ev3); code != exitOK {
		t.Fatalf("attest while the manifest is replaced: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(ev3, "manifest.sha256")); string(b) != fmt.Sprintf("%x  %s\n", sha256.Sum256(orig), filepath.Base(gm)) {
		t.Errorf("manifest.sha256 = %q, want the digest of the manifest verified against", b)
	}

	// Evidence that cannot be written (its parent folder is gone by then)
	// fails a verified attest: exit 1, nothing on stdout, no folder.
	parent := filepath.Join(dir, "parent")
	ev4 := filepath.Join(parent, "ev4")
	rp := serveAgent(t, &fakeAgent{s: s, before: func() { os.RemoveAll(parent) }})
	for _, extra := range [][]string{nil, {"--json"}} {
		os.Mkdir(parent, 0o755)
		code, stdout, stderr = runCmd(t, "", append([]string{"attest", "--min-tcb", "none", "--addr", rp, "--manifest", mpath, "--roots", roots, "--evidence-out", ev4}, extra...)...)
		if code != exitFail || stdout != "" || !strings.HasPrefix(stderr, "hostbuild attest: ") || !strings.Contains(stderr, ev4) {
			t.Errorf("unwritable evidence %v: exit %d, want %d, stdout %q, stderr %q", extra, code, exitFail, stdout, stderr)
		}
		if _, err := os.Lstat(parent); !os.IsNotExist(err) {
			t.Errorf("unwritable evidence %v: %s: %v, want nothing there", extra, parent, err)
		}
	}
}

// TestAttestFlagBounds: each bound of --cid, --port, --nonce-size and
// --vmpl on both sides, and --explain with and without each of the files
// it needs; an accepted value gets as far as asking the agent
// (no agent here: exit 3), a refused one is a usage error (2).
func TestAttestFlagBounds(t *testing.T) {
	mpath := writeTestManifest(t, t.TempDir())
	tcp := []string{"--addr", "tcp:127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--cid", "3", "--port", "1"}, 3},
		{[]string{"--cid", "4294967294", "--port", "4294967294"}, 3},
		{[]string{"--cid", "4294967295"}, 2},
		{[]string{"--cid", "3", "--port", "0"}, 2},
		{[]string{"--cid", "3", "--port", "4294967295"}, 2},
		{append([]string{"--nonce-size", "32"}, tcp...), 3},
		{append([]string{"--nonce-size", "64"}, tcp...), 3},
		{append([]string{"--nonce-size", "31"}, tcp...), 2},
		{append([]string{"--nonce-size", "65"}, tcp...), 2},
		{append([]string{"--vmpl", "0"}, tcp...), 3},
		{append([]string{"--vmpl", "3"}, tcp...), 3},
		{append([]string{"--vmpl", "-1"}, tcp...), 2},
		{append([]string{"--vmpl", "4"}, tcp...), 2},
		{append([]string{"--explain", "--ovmf", "o", "--kernel", "k", "--initrd", "i"}, tcp...), 3},
		{append([]string{"--explain", "--kernel", "k", "--initrd", "i"}, tcp...), 2},
		{append([]string{"--explain", "--ovmf", "o", "--initrd", "i"}, tcp...), 2},
		{append([]string{"--explain", "--ovmf", "o", "--kernel", "k"}, tcp...), 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"attest", "--min-tcb", "none", "--manifest", mpath, "--timeout", "2s"}, tc.args...)
			code, _, stderr := runCmd(t, "", args...)
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr)
			}
		})
	}
}

// TestAttestMinReportVersion: --min-report-version is a uint32 bound; a
// value outside 1 to 2^32-1 is a usage error, never wrapped into a smaller
// bound that a version 3 report passes (4294967299 used to exit 0), and
// never turned into a policy rejection (-1 used to exit 7). verify
// shares the check.
func TestAttestMinReportVersion(t *testing.T) {
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)
	s := fakeSigner(t, nil)
	roots := writePEM(t, filepath.Join(dir, "roots.pem"), s.Ask, s.Ark)
	addr := serveAgent(t, &fakeAgent{s: s})
	for _, tc := range []struct {
		min     string
		want    int
		wantErr string
	}{
		{"1", 0, ""},
		{"3", 0, ""},
		{"4", 7, "report version 3 is below the minimum 4"},
		{"4294967295", 7, "report version 3 is below the minimum 4294967295"},
		{"4294967296", 2, "--min-report-version must be 1 to 4294967295, got 4294967296"},
		{"4294967299", 2, "--min-report-version must be 1 to 4294967295, got 4294967299"},
		{"0", 2, "--min-report-version must be 1 to 4294967295, got 0"},
		{"-1", 2, "--min-report-version must be 1 to 4294967295, got -1"},
	} {
		t.Run(tc.min, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--min-report-version", tc.min)
			if code != tc.want || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q\nstdout: %s", code, stderr, tc.want, tc.wantErr, stdout)
			}
		})
	}
	ev := filepath.Join(dir, "ev")
	if code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev); code != 0 {
		t.Fatalf("attest --evidence-out: exit %d\n%s", code, stderr)
	}
	code, _, stderr := runCmd(t, "", "verify", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots, "--min-report-version", "4294967299")
	if code != exitUsage || !strings.Contains(stderr, "hostbuild verify: --min-report-version must be 1 to 4294967295") {
		t.Errorf("verify --min-report-version 4294967299: exit %d, stderr %q", code, stderr)
	}
}

// TestAttestExplain: --explain recomputes the launch variants from the local
// files on a measurement mismatch only, and says which input drifted in
// the human summary (--json: absent on other failures; the JSON of an
// explanation is pinned by guestinit/internal/agent's TestEndToEnd); the
// exit code stays the measurement's. Each explanation takes seconds.
func TestAttestExplain(t *testing.T) {
	_, mpath, s, roots, explain := explainFixture(t)
	const likely = "no launch variant matches, and local files differ from the manifest"
	for _, tc := range []struct {
		name    string
		agent   fakeAgent
		json    bool
		want    int
		explain bool
	}{
		{name: "measurement", agent: fakeAgent{report: func(r []byte) { r[0x90] ^= 1 }}, want: 6, explain: true},
		{name: "honest", want: 0},
		{name: "policy", agent: fakeAgent{report: func(r []byte) { r[0x30] = 1 }}, want: 7},
		{name: "policy --json", agent: fakeAgent{report: func(r []byte) { r[0x30] = 1 }}, json: true, want: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.agent.s = s
			args := append([]string{"attest", "--min-tcb", "none", "--addr", serveAgent(t, &tc.agent), "--manifest", mpath, "--roots", roots}, explain...)
			if tc.json {
				args = append(args, "--json")
			}
			code, stdout, stderr := runCmd(t, "", args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, stdout, stderr)
			}
			if strings.Contains(stderr, "explain:") {
				t.Errorf("explain failed: %s", stderr)
			}
			var got bool
			if tc.json {
				var out struct {
					Explain *struct {
						Likely string `json:"likely"`
					} `json:"explain"`
				}
				if err := json.Unmarshal([]byte(stdout), &out); err != nil {
					t.Fatalf("--json: %v\n%s", err, stdout)
				}
				got = out.Explain != nil && strings.HasPrefix(out.Explain.Likely, likely)
				if out.Explain != nil && !got {
					t.Errorf("explain.likely %q, want %q", out.Explain.Likely, likely)
				}
			} else {
				got = strings.Contains(stdout, "\n  explain:        "+likely)
				if got != strings.Contains(stdout, "explain:") {
					t.Errorf("explain line without %q:\n%s", likely, stdout)
				}
			}
			if got != tc.explain {
				t.Errorf("explained %v, want %v:\n%s", got, tc.explain, stdout)
			}
		})
	}
}

// explainFixture is a test manifest, a fake signer and its roots, and
// the --explain flags with local files that differ from the manifest's
// (the measurement-only OVMF, a stand-in kernel as kernel and initrd).
func explainFixture(t *testing.T) (dir, mpath string, s *test.AmdSigner, roots string, explain []string) {
	t.Helper()
	dir = t.TempDir()
	mpath = writeTestManifest(t, dir)
	s = fakeSigner(t, nil)
	roots = writePEM(t, filepath.Join(dir, "roots.pem"), s.Ask, s.Ark)
	ovmfPath := filepath.Join(sharedMeasureDir(t), "fixtures", "ovmf_AmdSev_suffix.bin")
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, mpath, s, roots, []string{"--explain", "--ovmf", ovmfPath, "--kernel", kernel, "--initrd", kernel}
}

// TestAttestUntrustedTextIsEscaped: the host can put any text in the
// agent's answer outside the signed report (provider, nonce, report_data,
// config_digest, an error's code and message, the HTTP status line). Raw,
// a terminal runs its control sequences: erase the FAILED line, print
// "attestation OK", hide the rest. attest prints such text escaped, on
// stdout and stderr, and the exit status stays the failure's.
func TestAttestUntrustedTextIsEscaped(t *testing.T) {
	const spoof = "\x1b[1A\x1b[2K\rattestation OK\x1b[8m\u009b"
	dir := t.TempDir()
	mpath := writeTestManifest(t, dir)
	s := fakeSigner(t, nil)
	roots := writePEM(t, filepath.Join(dir, "roots.pem"), s.Ask, s.Ark)
	stale := bytes.Repeat([]byte{9}, 64)
	rawStatus := func(status, body string) string {
		return rawAgent(t, func(c net.Conn) {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Read(make([]byte, 4096))
			fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)
		})
	}
	errBody, _ := json.Marshal(agentapi.ErrorResponse{Error: agentapi.Error{Code: "busy" + spoof, Message: spoof}})
	// A VCEK in the host's certificate table, signed by the ASK, whose
	// subject carries the sequence: go-sev-guest names the subject in its
	// error, unquoted.
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject: pkix.Name{Country: []string{"US"}, Locality: []string{"Santa Clara"}, Province: []string{"CA"},
			Organization: []string{"Advanced Micro Devices"}, OrganizationalUnit: []string{"Engineering"}, CommonName: "SEV-VCEK" + spoof},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}, s.Ask, &key.PublicKey, s.Keys.Ask)
	if err != nil {
		t.Fatal(err)
	}
	forged := *s
	if forged.Vcek, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	forgedTable, err := forged.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		addr string
		want int
	}{
		// An unknown provider is refused (malformed answer), quoted.
		{"provider, on a measurement failure", serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { r[0x90] ^= 1 },
			resp: func(r *agentapi.AttestationResponse) { r.Provider = spoof }}), 3},
		{"provider, on success", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.Provider = spoof }}), 3},
		{"nonce of a stale report", serveAgent(t, &fakeAgent{s: s, nonce: stale, resp: func(r *agentapi.AttestationResponse) { r.Nonce = spoof }}), 5},
		{"report_data", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.ReportData = spoof }}), 5},
		{"config_digest", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.ConfigDigest = spoof }}), 5},
		{"argv of a config altered after signing", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.Config.Argv = []string{spoof} }}), 5},
		{"env of a config altered after signing", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) {
			r.Config.Settings = map[string]string{"katana.env": spoof}
		}}), 5},
		{"agent error code and message", rawStatus("503 Service Unavailable", string(errBody)), 3},
		{"HTTP status line", rawStatus("502 Bad"+spoof, "x"), 3},
		{"VCEK subject, in go-sev-guest's error", serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.CertTable = forgedTable }}), 4},
	} {
		for _, extra := range [][]string{nil, {"--json"}} {
			t.Run(fmt.Sprint(tc.name, extra), func(t *testing.T) {
				code, stdout, stderr := runCmd(t, "", append([]string{"attest", "--min-tcb", "none", "--addr", tc.addr, "--manifest", mpath, "--roots", roots}, extra...)...)
				if code != tc.want {
					t.Errorf("exit %d, want %d\n%s%s", code, tc.want, stdout, stderr)
				}
				for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
					if i := strings.IndexFunc(out, func(r rune) bool { return r == 0x1b || r == 0x9b }); i >= 0 {
						t.Errorf("%s carries a raw control character at byte %d: %q", name, i, out)
					}
				}
			})
		}
	}
}

// kdsWithCRL answers the revocation list's URL with crl and every other
// KDS URL from next, counting the revocation list's requests.
type kdsWithCRL struct {
	crl  []byte
	next trust.HTTPSGetter
	asks int
}

func (k *kdsWithCRL) Get(url string) ([]byte, error) {
	if strings.HasSuffix(url, "/crl") {
		k.asks++
		return k.crl, nil
	}
	return k.next.Get(url)
}

// TestAttestCheckCRL: --kds --check-crl fetches AMD's revocation list
// through --kds's transport on every run and refuses (exit 4) a list that
// revokes the ASK or is out of date; --kds alone never asks for it.
func TestAttestCheckCRL(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	fakeKDS, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	crl := func(next time.Time, revoked ...*x509.Certificate) []byte {
		t.Helper()
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: next.Add(-30 * 24 * time.Hour), NextUpdate: next, SignatureAlgorithm: x509.SHA384WithRSAPSS}
		for _, c := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: next.Add(-48 * time.Hour)})
		}
		b, err := x509.CreateRevocationList(rand.Reader, tmpl, s.Ark, s.Keys.Ark)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	current, stale := time.Now().Add(24*time.Hour), time.Now().Add(-time.Hour)
	old := kdsTransport
	defer func() { kdsTransport = old }()
	addr := serveAgent(t, &fakeAgent{s: s})
	for _, tc := range []struct {
		name     string
		crl      []byte
		checkCRL bool
		want     int
		wantErr  string
	}{
		{"current list", crl(current), true, 0, ""},
		{"ASK revoked", crl(current, s.Ask), true, 4, "ASK was revoked"},
		{"out-of-date list", crl(stale), true, 4, "is out of date"},
		{"not asked without --check-crl", crl(stale, s.Ask), false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &kdsWithCRL{crl: tc.crl, next: fakeKDS}
			kdsTransport = k
			args := []string{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--kds", "--kds-cache", t.TempDir(), "--timeout", "20s"}
			if tc.checkCRL {
				args = append(args, "--check-crl")
			}
			code, stdout, stderr := runCmd(t, "", args...)
			if code != tc.want || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.want, tc.wantErr, stdout, stderr)
			}
			if want := map[bool]int{false: 0, true: 1}[tc.checkCRL]; k.asks != want {
				t.Errorf("the revocation list was asked for %d times, want %d", k.asks, want)
			}
		})
	}
}

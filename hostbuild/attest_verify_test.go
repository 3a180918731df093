package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-sev-guest/verify/testdata"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// Decisions of the CLI's verification layer (attest.go, verify.go,
// report.go) that no other test pins.

// --min-mit-vector reaches the checks: on a version 3 report (no
// mitigation vectors) it is refused, not dropped after parsing.
func TestMinMitVectorIsChecked(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	addr := serveAgent(t, &fakeAgent{s: s})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--timeout", "20s", "--min-mit-vector", "0x1")
	if code != 7 || !strings.Contains(stderr, "--min-mit-vector 0x1: the report is version 3") {
		t.Errorf("--min-mit-vector 0x1 on a version 3 report: exit %d, want 7\n%s%s", code, stdout, stderr)
	}
}

// A migration agent (MIGRATE_MA) is refused even when the manifest's
// policy has the bit, and accepted with --allow-migration-agent only.
func TestAllowMigrationAgent(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	maManifest := filepath.Join(dir, "m-ma.json")
	if err := os.WriteFile(maManifest, bytes.Replace(b, []byte(`"guest_policy":"0x30000"`), []byte(`"guest_policy":"0x70000"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { r[0x0A] |= 1 << 2 }}) // policy bit 18
	for _, tc := range []struct {
		args []string
		want int
		says string
	}{
		{nil, 7, "allows a migration agent (MIGRATE_MA, bit 18)"},
		{[]string{"--allow-migration-agent"}, 0, ""},
	} {
		code, stdout, stderr := runCmd(t, "", append([]string{"attest", "--min-tcb", "none", "--addr", addr, "--manifest", maManifest, "--roots", roots, "--timeout", "20s"}, tc.args...)...)
		if code != tc.want || !strings.Contains(stderr, tc.says) {
			t.Errorf("MIGRATE_MA report, manifest policy 0x70000, %q: exit %d, want %d with %q\n%s%s", tc.args, code, tc.want, tc.says, stdout, stderr)
		}
	}
}

// verify uses the certificates recorded in the folder: evidence of a guest
// that sent no certificate table (attest had --certs) verifies without
// --certs, from the folder's vcek.pem.
func TestVerifyUsesRecordedCerts(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	vcekDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(vcekDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(vcekDir, "vcek.pem"), s.Vcek)
	addr := serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { r.CertTable = nil }})
	ev := filepath.Join(dir, "ev")
	if code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--certs", vcekDir, "--evidence-out", ev, "--timeout", "20s"); code != 0 {
		t.Fatalf("attest --certs --evidence-out: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCmd(t, "", "verify", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots); code != 0 || !strings.HasPrefix(stdout, "attestation OK\n") {
		t.Errorf("verify of evidence whose VCEK is only in the folder: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
}

// Evidence that cannot be written does not change a rejection's exit
// code: the failure's class (6), not 1, with the write error on stderr.
func TestUnwritableEvidenceKeepsRejectionCode(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	parent := filepath.Join(dir, "parent")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	ev := filepath.Join(parent, "ev")
	addr := serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { r[0x90] ^= 1 }, before: func() { os.RemoveAll(parent) }})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev, "--timeout", "20s")
	if code != 6 || !strings.HasPrefix(stdout, "attestation FAILED (measurement, exit 6)") || !strings.Contains(stderr, ev) {
		t.Errorf("rejected report, unwritable evidence: exit %d, want 6\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// The human summary gives the VMPL, 0 included (line() drops a "0").
func TestHumanSummaryShowsVMPL(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	addr := serveAgent(t, &fakeAgent{s: s})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--timeout", "20s")
	if code != 0 || !strings.Contains(stdout, "\n  vmpl:           0\n") {
		t.Errorf("exit %d, want 0 and a vmpl: 0 line\n%s%s", code, stdout, stderr)
	}
}

// verify of a folder without manifest.sha256 (nothing recorded) warns of
// no other manifest.
func TestVerifyNoRecordedManifestNoWarning(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	addr := serveAgent(t, &fakeAgent{s: s})
	ev := filepath.Join(dir, "ev")
	if code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--evidence-out", ev, "--timeout", "20s"); code != 0 {
		t.Fatalf("attest --evidence-out: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := os.Remove(filepath.Join(ev, "manifest.sha256")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", "verify", "--min-tcb", "none", ev, "--manifest", mpath, "--roots", roots)
	if code != 0 || strings.Contains(stdout, "attest verified this evidence against a manifest") {
		t.Errorf("verify without manifest.sha256: exit %d, want 0 without a manifest warning\n%s%s", code, stdout, stderr)
	}
}

// report refuses (1) a report that decodes but that it cannot describe
// (an unknown version), rather than exit 0 with nothing shown.
func TestReportUndescribable(t *testing.T) {
	b := bytes.Clone(testdata.AttestationBytes)
	b[0] = 7 // version 7
	f := filepath.Join(t.TempDir(), "report.bin")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", "report", f)
	if code != exitFail || !strings.Contains(stderr, "hostbuild report: "+f+": ") || !strings.Contains(stderr, "version 7") {
		t.Errorf("report of a version 7 report: exit %d, want %d\nstdout: %s\nstderr: %s", code, exitFail, stdout, stderr)
	}
}

// decodeReport fails (1) when its input cannot be read or its text
// output cannot be written.
func TestDecodeReportIOErrors(t *testing.T) {
	var stderr bytes.Buffer
	if code := decodeReport("stdin", iotest.ErrReader(errors.New("EIO")), false, &bytes.Buffer{}, &stderr); code != exitFail || !strings.Contains(stderr.String(), "hostbuild report: reading stdin: EIO") {
		t.Errorf("unreadable input: exit %d, stderr %q", code, stderr.String())
	}
	if code := decodeReport("r", bytes.NewReader(testdata.AttestationBytes), false, failWriter{}, &bytes.Buffer{}); code != exitFail {
		t.Errorf("unwritable stdout: exit %d, want %d", code, exitFail)
	}
}

// Katana's argv and env in the human summary come from a manifest's
// cmdline, which any manifest may carry control characters in: shown
// escaped, never raw.
func TestArgvAndEnvEscaped(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	const cmdline = "x katana.env=A=\x1b[2K katana.args=--dev\x1b[1A\u009b"
	c, err := bootcfg.Parse(cmdline)
	if err != nil {
		t.Skipf("bootcfg refuses the cmdline: %v", err)
	}
	cfg := agentapi.ConfigOf(c.Applied())
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cmdline)
	esc := filepath.Join(dir, "m-esc.json")
	if err := os.WriteFile(esc, bytes.Replace(b, []byte(`"cmdline":"`+testCmdline+`"`), []byte(`"cmdline":`+string(js)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, &fakeAgent{s: s, config: &cfg})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", esc, "--roots", roots, "--timeout", "20s")
	if code != 0 || !strings.Contains(stdout, "katana argv:") || !strings.Contains(stdout, "katana env:") {
		t.Fatalf("exit %d, want 0 with argv and env shown\n%s%s", code, stdout, stderr)
	}
	if strings.ContainsAny(stdout, "\x1b\u009b") {
		t.Errorf("stdout carries a raw control character: %q", stdout)
	}
}

// The "vcpu type" line of the human summary: what the measurement covers
// of the manifest's vCPU type, by its VMM type; nothing for a type no
// other gives the measurement of.
func TestVCPUTypeLine(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, &fakeAgent{s: s})
	for _, tc := range []struct {
		name, from, to string
		want           string // "" for no vcpu type line
	}{
		{"gce", `"vmm_type":"QEMU"`, `"vmm_type":"gce"`, "  vcpu type:      not measured by this VMM type: any vCPU model gives this measurement\n"},
		{"turin", `"vcpu_type":"EPYC-v4"`, `"vcpu_type":"EPYC-Turin"`, ""},
	} {
		m := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(m, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", m, "--roots", roots, "--timeout", "20s")
		if code != 0 {
			t.Errorf("%s: exit %d, want 0\n%s%s", tc.name, code, stdout, stderr)
			continue
		}
		if tc.want == "" && strings.Contains(stdout, "vcpu type:") || tc.want != "" && !strings.Contains(stdout, tc.want) {
			t.Errorf("%s: want vcpu type line %q:\n%s", tc.name, tc.want, stdout)
		}
	}
}

// --explain is given the report's measurement: a report measured from the
// local files (not the manifest's) is named as such, not "no launch
// variant matches".
func TestExplainUsesReportedMeasurement(t *testing.T) {
	dir, mpath, s, roots, _, _ := attestFixture(t)
	ovmfPath := filepath.Join(sharedMeasureDir(t), "fixtures", "ovmf_AmdSev_suffix.bin")
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(mpath)
	if err != nil {
		t.Fatal(err)
	}
	o, err := m.MeasureOptions(ovmfPath, kernel, kernel, 1, "EPYC-v4")
	if err != nil {
		t.Fatal(err)
	}
	local, err := measure.Compute(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, &fakeAgent{s: s, report: func(r []byte) { copy(r[0x90:0xC0], local.Digest[:]) }})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots,
		"--explain", "--ovmf", ovmfPath, "--kernel", kernel, "--initrd", kernel)
	if code != 6 || !strings.Contains(stdout, "\n  explain:") || strings.Contains(stdout, "no launch variant matches") {
		t.Errorf("exit %d, want 6 with the local files' variant named\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// The human summary leaves out what the report did not give (a field
// whose value prints as "0"), VMPL aside: an unsigned, malformed report
// shows no "report version: 0".
func TestHumanSummaryOmitsZero(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	addr := serveAgent(t, &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) { clear(r.Report[:4]) }})
	code, stdout, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--timeout", "20s")
	if code == 0 || !strings.HasPrefix(stdout, "attestation FAILED") {
		t.Fatalf("exit %d, want a rejection\n%s%s", code, stdout, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasSuffix(l, " 0") && !strings.HasPrefix(l, "  vmpl:") {
			t.Errorf("line %q of a zero value:\n%s", l, stdout)
		}
	}
}

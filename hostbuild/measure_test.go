package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// withFlags is base with extra's flags given instead of base's: hostbuild
// refuses a flag taking one value given twice. extra is flag-value pairs,
// or a flag alone when the next word is another flag (a boolean).
func withFlags(base []string, extra ...string) []string {
	valued := map[string]bool{}
	for i := 0; i < len(extra); i++ {
		if i+1 < len(extra) && !strings.HasPrefix(extra[i+1], "-") {
			valued[extra[i]] = true
			i++
		}
	}
	var out []string
	for i := 0; i < len(base); i++ {
		if valued[base[i]] && i+1 < len(base) {
			i++ // the flag and its value: extra gives its own
			continue
		}
		out = append(out, base[i])
	}
	return append(out, extra...)
}

// runHB runs hostbuild in process.
func runHB(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func sharedMeasureDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SHARED_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	dir = filepath.Join(dir, "measure")
	if _, err := os.Stat(filepath.Join(dir, "vectors.json")); err != nil {
		t.Skipf("skipping: %v; set SHARED_DIR to the shared folder (make test does) to run the parity vectors", err)
	}
	return dir
}

type cliVector struct {
	ID         string   `json:"id"`
	Args       []string `json:"args"`
	InputFiles map[string]struct {
		SHA256 string `json:"sha256"`
	} `json:"input_files"`
	ExitCode    int    `json:"exit_code"`
	ExpectedHex string `json:"expected_hex"`
	Stderr      string `json:"stderr"`
}

// vectorInput generates (once) the input named rel in a vector's args.
func vectorInput(t *testing.T, shared, tmp, rel, wantSHA string) string {
	t.Helper()
	if rel == "/dev/null" {
		return rel
	}
	if strings.HasPrefix(rel, "fixtures/") {
		p := filepath.Join(shared, rel)
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: fixture %s is not in the shared folder (%v); the vector runs where the shared folder ships it", rel, err)
		}
		return p
	}
	p := filepath.Join(tmp, filepath.Base(rel))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	var data []byte
	switch rel {
	case "inputs/k.bin":
		data = bytes.Repeat([]byte{'k'}, 1_000_000)
	case "inputs/i.bin":
		data = bytes.Repeat([]byte{'i'}, 2_000_000)
	case "inputs/empty.bin":
		data = []byte{}
	case "inputs/kernel15m.bin":
		data = bytes.Repeat([]byte{'K'}, 15<<20)
	case "inputs/initrd60m.bin":
		data = bytes.Repeat([]byte{'I'}, 60<<20)
	case "inputs/ovmf_AmdSev_4MiB_synthetic.fd":
		suffix, err := os.ReadFile(filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin"))
		if err != nil {
			t.Fatal(err)
		}
		data = append(bytes.Repeat([]byte{0xff}, 4190208), suffix...)
	default:
		t.Fatalf("no generator for vector input %q", rel)
	}
	if sum := sha256.Sum256(data); wantSHA != "" && hex.EncodeToString(sum[:]) != wantSHA {
		t.Fatalf("generated %s has SHA-256 %x, vectors.json says %s", rel, sum, wantSHA)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMeasureVectors runs every vector of vectors.json through the CLI with
// sev-snp-measure's own arguments and compares stdout, exit code and stderr.
func TestMeasureVectors(t *testing.T) {
	shared := sharedMeasureDir(t)
	b, err := os.ReadFile(filepath.Join(shared, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []cliVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			if slices.Contains(v.Args, "snp:svsm") {
				t.Skip("skipping: mode snp:svsm (Coconut SVSM) is outside this tool's scope (QEMU direct boot: snp, snp:ovmf-hash), and its fixtures are not in the shared folder")
			}
			args := []string{"measure"}
			for i := 0; i < len(v.Args); i++ {
				a := v.Args[i]
				args = append(args, a)
				switch a {
				case "--ovmf", "--kernel", "--initrd":
					i++
					args = append(args, vectorInput(t, shared, tmp, v.Args[i], v.InputFiles[v.Args[i]].SHA256))
				case "--append", "--mode", "--vcpus", "--vcpu-type", "--vcpu-sig", "--vcpu-family", "--vcpu-model",
					"--vcpu-stepping", "--vmm-type", "--guest-features", "--output-format", "--snp-ovmf-hash":
					i++
					args = append(args, v.Args[i])
				default:
					t.Fatalf("unhandled argument %q", a)
				}
			}
			stdout, stderr, code := runHB(t, args...)
			if code != v.ExitCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, v.ExitCode, stderr)
			}
			if v.ExitCode != 0 {
				if stdout != "" {
					t.Errorf("stdout %q on failure, want nothing", stdout)
				}
				want := strings.ToLower(strings.TrimPrefix(v.Stderr, "Error: "))
				if !strings.Contains(strings.ToLower(stderr), want) || !strings.Contains(stderr, "unmeasured") {
					t.Errorf("stderr %q: want the reference's %q and why it matters", stderr, v.Stderr)
				}
				return
			}
			if stdout != v.ExpectedHex+"\n" {
				t.Errorf("stdout %q, want %q", stdout, v.ExpectedHex+"\n")
			}
		})
	}
}

func TestMeasureUsageErrors(t *testing.T) {
	shared := sharedMeasureDir(t)
	amd := filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin")
	tmp := t.TempDir()
	k := vectorInput(t, shared, tmp, "inputs/k.bin", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no ovmf", []string{"--vcpus", "1", "--vcpu-type", "EPYC"}, exitUsage, "--ovmf is required"},
		{"no vcpus", []string{"--vcpu-type", "EPYC", "--ovmf", amd}, exitUsage, "missing --vcpus"},
		{"no sig", []string{"--vcpus", "1", "--ovmf", amd}, exitUsage, "missing --vcpu-type or --vcpu-sig"},
		{"bad type", []string{"--vcpus", "1", "--vcpu-type", "EPYC-Zen9", "--ovmf", amd}, exitUsage, "unknown vCPU type"},
		{"bad vmm", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--vmm-type", "kvm", "--ovmf", amd}, exitUsage, "unknown VMM type"},
		{"bad mode", []string{"--mode", "tdx", "--ovmf", amd}, exitUsage, "--mode"},
		{"sev mode", []string{"--mode", "sev", "--ovmf", amd}, exitUsage, "not supported"},
		{"initrd without kernel", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", amd, "--initrd", k}, exitUsage, "--kernel required"},
		{"append without kernel", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", amd, "--append", "x"}, exitUsage, "--kernel required"},
		{"family alone", []string{"--vcpus", "1", "--vcpu-family", "25", "--ovmf", amd}, exitUsage, "go together"},
		{"bad sig", []string{"--vcpus", "1", "--vcpu-sig", "0xZZ", "--ovmf", amd}, exitUsage, "--vcpu-sig"},
		{"bad features", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "x", "--ovmf", amd}, exitUsage, "--guest-features"},
		{"features 0", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "0", "--ovmf", amd}, exitUsage, "SNPActive"},
		// Python's int(s, 0) refuses "021"; Go's base 0 would read octal.
		{"features with a leading 0", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "021", "--ovmf", amd}, exitUsage, "leading 0 is ambiguous"},
		{"sig with a leading 0", []string{"--vcpus", "1", "--vcpu-sig", "0800", "--ovmf", amd}, exitUsage, "leading 0 is ambiguous"},
		// The digit after the 0 at both ends of its range.
		{"features 001", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "001", "--ovmf", amd}, exitUsage, `"001": a number with a leading 0 is ambiguous`},
		{"features 09", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "09", "--ovmf", amd}, exitUsage, `"09": a number with a leading 0 is ambiguous`},
		// An underscore after the leading 0 too: Go read "0_100" as octal 64.
		{"features 0_101", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "0_101", "--ovmf", amd}, exitUsage, `"0_101": a number with a leading 0 is ambiguous`},
		{"sig 0_100", []string{"--vcpus", "1", "--vcpu-sig", "0_100", "--ovmf", amd}, exitUsage, `"0_100": a number with a leading 0 is ambiguous`},
		{"vcpus in hex", []string{"--vcpus", "0x2", "--vcpu-type", "EPYC", "--ovmf", amd}, exitUsage, "not a decimal number"},
		{"bad output format", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--output-format", "raw", "--ovmf", amd}, exitUsage, "hex or base64"},
		{"bad seed", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--snp-ovmf-hash", "00", "--ovmf", amd}, exitUsage, "96 hex"},
		{"positional", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", amd, "extra"}, exitUsage, "unexpected argument"},
		{"unknown flag", []string{"--no-such-flag", "x"}, exitUsage, "flag provided but not defined"},
		{"missing ovmf file", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", filepath.Join(tmp, "nope")}, exitFail, "no such file"},
		{"policy without manifest", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", amd, "--policy", "0x30000"}, exitUsage, "add --manifest-out"},
		// A manifest is what run launches from: its cmdline must be one the init accepts.
		{"manifest with a cmdline the init refuses", []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--kernel", k, "--initrd", k,
			"--append", "katana.bogus=1", "--manifest-out", filepath.Join(tmp, "m.json")}, exitUsage, "unknown katana.* key"},
		// --manifest is what the other commands read: measure refuses it
		// rather than replace build's manifest.
		{"--manifest instead of --manifest-out", []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--kernel", k, "--initrd", k,
			"--manifest", filepath.Join(tmp, "m.json")}, exitUsage, "--manifest is not a flag of measure"},
		{"manifest without initrd", []string{"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", amd, "--kernel", k, "--manifest-out", filepath.Join(tmp, "m.json")}, exitUsage, "--manifest-out needs --kernel and --initrd"},
		// --payload and --init are inputs of the manifest: a wrong path is named
		// with its flag before any file is read, as for the other inputs.
		{"manifest with a missing payload", []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--kernel", k, "--initrd", k,
			"--payload", filepath.Join(tmp, "nope"), "--manifest-out", filepath.Join(tmp, "m.json")}, exitFail, "--payload " + filepath.Join(tmp, "nope") + ": no such file or directory (check the path)"},
		{"manifest with a missing init", []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--kernel", k, "--initrd", k,
			"--init", filepath.Join(tmp, "nope"), "--manifest-out", filepath.Join(tmp, "m.json")}, exitFail, "--init " + filepath.Join(tmp, "nope") + ": no such file or directory (check the path)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runHB(t, append([]string{"measure"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "m.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed measure --manifest-out left a file: %v", err)
	}
}

func TestMeasureJSONAndVerbose(t *testing.T) {
	shared := sharedMeasureDir(t)
	amd := filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin")
	tmp := t.TempDir()
	k := vectorInput(t, shared, tmp, "inputs/k.bin", "")
	i := vectorInput(t, shared, tmp, "inputs/i.bin", "")
	args := []string{"measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--kernel", k, "--initrd", i, "--append", "console=ttyS0 loglevel=7"}
	const want = "ee52b264be38d9a54982d65fd9ed8e8164cf0a7e586cfa1d09b4f1f065c4a815395646abda8722a96013c6c4ff5f6fba"

	stdout, stderr, code := runHB(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Measurement string `json:"measurement"`
		VCPUSig     string `json:"vcpu_sig"`
		Cmdline     string `json:"cmdline"`
		Inputs      struct {
			Kernel struct{ SHA256 string } `json:"kernel"`
			Initrd struct{ SHA256 string } `json:"initrd"`
		} `json:"inputs"`
		Steps []struct {
			Name   string `json:"name"`
			Digest string `json:"digest"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("decoding --json output: %v\n%s", err, stdout)
	}
	got := []string{doc.Measurement, doc.VCPUSig, doc.Cmdline, doc.Inputs.Kernel.SHA256, doc.Inputs.Initrd.SHA256, doc.Steps[len(doc.Steps)-1].Digest}
	wantFields := []string{want, "0x800f12", "console=ttyS0 loglevel=7",
		"7eab2f295cd4dce0cc490ca925b6ea40e4e63a0d1dc9e89ba92c111f8ff3ea0f",
		"4167d90c3ba1ef34498197249ca740826094960050f7e031e77b94ca229fa9b8", want}
	if diff := cmp.Diff(wantFields, got); diff != "" {
		t.Errorf("--json fields (-want +got):\n%s", diff)
	}
	stdout, _, code = runHB(t, append(args, "-v")...)
	if code != 0 || stdout != "Calculated SEV_SNP guest measurement: "+want+"\n" {
		t.Errorf("-v: exit %d, stdout %q", code, stdout)
	}
}

// Counts and CPUID fields are decimal, leading zeros included, as
// sev-snp-measure reads them (argparse type=int): "--vcpus 010" is ten
// vCPUs, never octal eight, and family 025 model 017 is EPYC-Genoa's
// signature (25, 17).
func TestMeasureDecimalFlags(t *testing.T) {
	shared := sharedMeasureDir(t)
	amd := filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin")
	measure := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runHB(t, append([]string{"measure", "--ovmf", amd}, args...)...)
		if code != 0 {
			t.Fatalf("measure %q: exit %d: %s", args, code, stderr)
		}
		return strings.TrimSpace(stdout)
	}
	if a, b := measure("--vcpus", "010", "--vcpu-type", "EPYC-v4"), measure("--vcpus", "10", "--vcpu-type", "EPYC-v4"); a != b {
		t.Errorf("--vcpus 010 gives %s, --vcpus 10 gives %s", a, b)
	}
	if a, b := measure("--vcpus", "1", "--vcpu-family", "025", "--vcpu-model", "017", "--vcpu-stepping", "00"), measure("--vcpus", "1", "--vcpu-type", "EPYC-Genoa"); a != b {
		t.Errorf("family 025 model 017 gives %s, EPYC-Genoa gives %s", a, b)
	}
	if a, b := measure("--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "0x0_1"), measure("--vcpus", "1", "--vcpu-type", "EPYC"); a != b {
		t.Errorf("--guest-features 0x0_1 gives %s, the default 0x1 gives %s", a, b)
	}
}

// --vcpu-family, --vcpu-model and --vcpu-stepping at both ends of the
// ranges a CPUID(1).EAX can hold (family 0 to 0xff+0xf, model 0 to 0xff,
// stepping 0 to 0xf): the ends give the signature they encode, one past
// them is refused.
func TestMeasureVCPUFamilyModelSteppingRange(t *testing.T) {
	shared := sharedMeasureDir(t)
	amd := filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin")
	measure := func(args ...string) (string, string, int) {
		t.Helper()
		stdout, stderr, code := runHB(t, append([]string{"measure", "--ovmf", amd, "--vcpus", "1"}, args...)...)
		return strings.TrimSpace(stdout), stderr, code
	}
	fms := func(family, model, stepping string) []string {
		return []string{"--vcpu-family", family, "--vcpu-model", model, "--vcpu-stepping", stepping}
	}
	for _, tc := range []struct {
		family, model, stepping string
		sig                     string // the same signature as --vcpu-sig
	}{
		{"0", "0", "0", "0"},
		// Family 0xf+0xff: base family 0xf, extended family 0xff.
		{"270", "255", "15", "0x0fff0fff"},
	} {
		got, stderr, code := measure(fms(tc.family, tc.model, tc.stepping)...)
		if code != exitOK {
			t.Errorf("family %s, model %s, stepping %s: exit %d: %s", tc.family, tc.model, tc.stepping, code, stderr)
			continue
		}
		want, stderr, code := measure("--vcpu-sig", tc.sig)
		if code != exitOK {
			t.Fatalf("--vcpu-sig %s: exit %d: %s", tc.sig, code, stderr)
		}
		if got != want {
			t.Errorf("family %s, model %s, stepping %s gives %s, --vcpu-sig %s gives %s", tc.family, tc.model, tc.stepping, got, tc.sig, want)
		}
	}
	for _, args := range [][]string{fms("271", "0", "0"), fms("0", "256", "0"), fms("0", "0", "16"), fms("-1", "0", "0"), fms("0", "-1", "0"), fms("0", "0", "-1")} {
		stdout, stderr, code := measure(args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "out of range") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and out of range", args, code, stdout, stderr, exitUsage)
		}
	}
}

// sev-snp-measure's options for what this tool does not do are refused
// with the reason, not as unknown flags.
func TestMeasureRefusesUnsupportedSevSnpMeasureFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "snp:svsm", "--svsm", "svsm.bin"}, "--svsm: SVSM (sev-snp-measure's mode snp:svsm) is not supported"},
		{[]string{"--vars-size", "0x1000"}, "--vars-size: SVSM"},
		{[]string{"--vars-file", "v.fd"}, "--vars-file: SVSM"},
		{[]string{"--dump-vmsa"}, "--dump-vmsa is not supported"},
		{[]string{"--mode", "snp:svsm"}, "--mode snp:svsm is not supported"},
	} {
		_, stderr, code := runHB(t, append([]string{"measure", "--ovmf", "o", "--vcpus", "1", "--vcpu-type", "EPYC-v4"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

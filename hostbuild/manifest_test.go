package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

type manifestInputs struct {
	dir, ovmf, kernel, initrd, payload string
}

func makeManifestInputs(t *testing.T) manifestInputs {
	t.Helper()
	shared := sharedMeasureDir(t)
	dir := t.TempDir()
	in := manifestInputs{
		dir:     dir,
		ovmf:    filepath.Join(shared, "fixtures", "ovmf_AmdSev_suffix.bin"),
		kernel:  vectorInput(t, shared, dir, "inputs/k.bin", ""),
		initrd:  vectorInput(t, shared, dir, "inputs/i.bin", ""),
		payload: filepath.Join(dir, "katana"),
	}
	if err := os.WriteFile(in.payload, []byte("payload"), 0o755); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestManifestCommand(t *testing.T) {
	in := makeManifestInputs(t)
	const cmdline = `console=ttyS0 katana.args="--http.addr 0.0.0.0"`
	args := func(out string) []string {
		return []string{"manifest", "--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd,
			"--cmdline", cmdline, "--payload", in.payload, "--vcpus", "1,2,4", "--vcpu-type", "EPYC-v4,EPYC-Genoa",
			"--source-date-epoch", "42", "-o", out}
	}
	a, b := filepath.Join(in.dir, "a.json"), filepath.Join(in.dir, "b.json")
	for _, out := range []string{a, b} {
		stdout, stderr, code := runHB(t, args(out)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "6 measurements") {
			t.Errorf("stdout %q", stdout)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two runs with the same inputs wrote different bytes")
	}
	m, err := manifest.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{m.Cmdline, m.SourceDateEpoch, m.GuestPolicy, m.GuestFeatures, m.VMMType, m.Tool.Name, m.Components.Payload.Name, len(m.Measurements)}
	want := []any{cmdline, int64(42), "0x30000", "0x1", "QEMU", "hostbuild", "katana", 6}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest fields (-want +got):\n%s", diff)
	}
	// vectors.json A-QEMU-2-EPYC-v4-0x1-k_i_cmd has the same inputs with another cmdline;
	// measure must agree with the manifest entry for the same configuration.
	stdout, stderr, code := runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", cmdline)
	if code != exitOK {
		t.Fatal(stderr)
	}
	if e, ok := m.Allows(strings.TrimSpace(stdout)); !ok || e.VCPUs != 2 || e.VCPUType != "EPYC-v4" {
		t.Errorf("measure printed %s, manifest entry %+v, %v", stdout, e, ok)
	}

	// measure --manifest: the single-entry manifest carries what it printed.
	single := filepath.Join(in.dir, "single.json")
	t.Setenv("SOURCE_DATE_EPOCH", "7")
	stdout2, stderr, code := runHB(t, "measure", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", in.ovmf,
		"--kernel", in.kernel, "--initrd", in.initrd, "--append", cmdline, "--manifest", single)
	if code != exitOK || stdout2 != stdout {
		t.Fatalf("measure --manifest: exit %d, stdout %q (want %q), stderr %s", code, stdout2, stdout, stderr)
	}
	sm, err := manifest.Load(single)
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.Measurements) != 1 || sm.Measurements[0].Measurement != strings.TrimSpace(stdout) || sm.SourceDateEpoch != 7 {
		t.Errorf("single manifest: %+v, epoch %d", sm.Measurements, sm.SourceDateEpoch)
	}
}

func TestManifestCommandErrors(t *testing.T) {
	in := makeManifestInputs(t)
	out := filepath.Join(in.dir, "m.json")
	base := []string{"--ovmf", in.ovmf, "--kernel", in.kernel, "--initrd", in.initrd, "--cmdline", "console=ttyS0 panic=-1",
		"--vcpus", "1", "--vcpu-type", "EPYC-v4", "-o", out}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	without := func(flag string) []string {
		var r []string
		for i := 0; i < len(base); i += 2 {
			if base[i] != flag {
				r = append(r, base[i], base[i+1])
			}
		}
		return r
	}
	x64 := filepath.Join(filepath.Dir(in.ovmf), "ovmf_OvmfX64_suffix.bin")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no output", without("-o"), exitUsage, "-o is required"},
		{"no kernel", without("--kernel"), exitUsage, "-kernel is required"},
		// The init refuses an unknown katana.* key at boot: so must manifest.
		{"no cmdline", without("--cmdline"), exitUsage, "--cmdline is required"},
		{"unknown katana key", with("--cmdline", "console=ttyS0 panic=-1 katana.bogus=1"), exitUsage, `unknown katana.* key: "katana.bogus=1"`},
		{"bad katana value", with("--cmdline", "katana.on_exit=halt"), exitUsage, "want poweroff, reboot or restart"},
		{"bad vcpus", with("--vcpus", "1,x"), exitUsage, "comma-separated list"},
		{"zero vcpus", with("--vcpus", "0"), exitUsage, "positive counts"},
		{"empty type", with("--vcpu-type", "EPYC-v4,"), exitUsage, "empty type"},
		{"unknown type", with("--vcpu-type", "EPYC-Zen9"), exitUsage, "unknown vCPU type"},
		{"bad policy", with("--policy", "0x1"), exitUsage, "reserved, must be 1"},
		{"bad epoch env", nil, exitUsage, "SOURCE_DATE_EPOCH"},
		{"plain firmware", with("--ovmf", x64), exitFail, "unmeasured"},
		{"missing init", with("--init", filepath.Join(in.dir, "nope")), exitFail, "opening init"},
		{"init not Go", with("--init", in.kernel), exitFail, "Go build info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "bad epoch env" {
				t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
				args = base
			}
			_, stderr, code := runHB(t, append([]string{"manifest"}, args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed run left %s (%v)", out, err)
			}
		})
	}
}

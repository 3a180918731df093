package measure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

// vector is one entry of $SHARED_DIR/measure/vectors.json: the arguments
// given to sev-snp-measure 0.0.13 and what it printed.
type vector struct {
	ID         string   `json:"id"`
	Group      string   `json:"group"`
	Args       []string `json:"args"`
	InputFiles map[string]struct {
		SHA256 string `json:"sha256"`
		Desc   string `json:"desc"`
	} `json:"input_files"`
	ExitCode    int    `json:"exit_code"`
	ExpectedHex string `json:"expected_hex"`
	Stderr      string `json:"stderr"`
}

func sharedDir() string {
	if d := os.Getenv("SHARED_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared")
}

func loadVectors(t *testing.T) ([]vector, string) {
	t.Helper()
	dir := filepath.Join(sharedDir(), "measure")
	b, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("skipping: %s/vectors.json is absent; set SHARED_DIR to the shared folder (make test does) to run the parity vectors", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("decoding vectors.json: %v", err)
	}
	if len(vs) < 300 {
		t.Fatalf("vectors.json has %d vectors, want about 308", len(vs))
	}
	return vs, dir
}

// inputGen makes the generated inputs of vectors.json once per test binary.
type inputGen struct {
	mu   sync.Mutex
	dir  string
	made map[string]string
}

var gen = &inputGen{made: map[string]string{}}

func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// path returns a local path for rel (as written in a vector's args),
// generating the file if needed and checking its SHA-256.
func (g *inputGen) path(t *testing.T, fixtures, rel, wantSHA string) string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.made[rel]; ok {
		return p
	}
	if g.dir == "" {
		d, err := os.MkdirTemp("", "measure-vectors-")
		if err != nil {
			t.Fatal(err)
		}
		g.dir = d
	}
	var data []byte
	p := filepath.Join(g.dir, filepath.Base(rel))
	switch rel {
	case "inputs/k.bin":
		data = fill(1_000_000, 'k')
	case "inputs/i.bin":
		data = fill(2_000_000, 'i')
	case "inputs/empty.bin":
		data = []byte{}
	case "inputs/kernel15m.bin":
		data = fill(15<<20, 'K')
	case "inputs/initrd60m.bin":
		data = fill(60<<20, 'I')
	case "inputs/ovmf_AmdSev_4MiB_synthetic.fd":
		suffix, err := os.ReadFile(filepath.Join(fixtures, "fixtures", "ovmf_AmdSev_suffix.bin"))
		if err != nil {
			t.Fatal(err)
		}
		data = append(fill(4190208, 0xff), suffix...)
	default:
		if strings.HasPrefix(rel, "fixtures/") {
			p = filepath.Join(fixtures, rel)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("skipping: fixture %s is not in the shared folder (%v); the vector runs where the shared folder ships it (TestVectorCount lists the vectors this one skips)", rel, err)
			}
			data = nil
		} else if rel == "/dev/null" {
			return rel
		} else {
			t.Fatalf("vector input %q: no generator", rel)
		}
	}
	if data != nil {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if wantSHA != "" {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != wantSHA {
			t.Fatalf("generated %s has SHA-256 %x, vectors.json says %s", rel, sum, wantSHA)
		}
	}
	g.made[rel] = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if gen.dir != "" {
		os.RemoveAll(gen.dir)
	}
	os.Exit(code)
}

// optionsFromArgs maps sev-snp-measure arguments onto Options (the CLI in
// package main has its own flag parser; its test runs the same vectors).
func optionsFromArgs(t *testing.T, v vector, fixtures string) (o Options, base64Out bool, skip string) {
	t.Helper()
	args := v.Args
	var family, model, stepping *uint32
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			i++
			return args[i]
		}
		num := func(s string) uint64 {
			n, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			return n
		}
		file := func(s string) string {
			want := ""
			if f, ok := v.InputFiles[s]; ok {
				want = f.SHA256
			}
			return gen.path(t, fixtures, s, want)
		}
		switch a {
		case "--mode":
			o.Mode = next()
			if o.Mode == "snp:svsm" {
				return o, false, "mode snp:svsm (Coconut SVSM) is outside this tool's scope: QEMU direct boot uses modes snp and snp:ovmf-hash"
			}
		case "--vmm-type":
			o.VMMType = next()
		case "--vcpus":
			o.VCPUs = int(num(next()))
		case "--vcpu-type":
			o.VCPUType = next()
		case "--vcpu-sig":
			o.VCPUSig, o.VCPUSigSet = uint32(num(next())), true
		case "--vcpu-family":
			n := uint32(num(next()))
			family = &n
		case "--vcpu-model":
			n := uint32(num(next()))
			model = &n
		case "--vcpu-stepping":
			n := uint32(num(next()))
			stepping = &n
		case "--guest-features":
			o.GuestFeatures = num(next())
		case "--ovmf":
			o.OVMF = file(next())
		case "--kernel":
			o.Kernel = file(next())
		case "--initrd":
			o.Initrd = file(next())
		case "--append":
			o.Append = next()
		case "--snp-ovmf-hash":
			o.SnpOVMFHash = next()
		case "--output-format":
			base64Out = next() == "base64"
		default:
			t.Fatalf("unhandled argument %q", a)
		}
	}
	if family != nil {
		o.VCPUSig, o.VCPUSigSet = CPUSig(*family, *model, *stepping), true
	}
	return o, base64Out, ""
}

func TestVectors(t *testing.T) {
	vs, dir := loadVectors(t)
	ctx := context.Background()
	ran := 0
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			o, base64Out, skip := optionsFromArgs(t, v, dir)
			if skip != "" {
				t.Skip("skipping: " + skip)
			}
			res, err := Compute(ctx, o)
			if v.ExitCode != 0 {
				if err == nil {
					t.Fatalf("Compute succeeded with %s, want an error like %q", res.Hex(), v.Stderr)
				}
				want := strings.TrimPrefix(v.Stderr, "Error: ")
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
					t.Errorf("error %q does not contain the reference's %q", err, want)
				}
				if !errors.Is(err, ovmf.ErrNoKernelHashes) {
					t.Errorf("error %v is not ovmf.ErrNoKernelHashes", err)
				}
				ran++
				return
			}
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			got := res.Hex()
			if base64Out {
				got = base64.StdEncoding.EncodeToString(res.Digest[:])
			}
			if got != v.ExpectedHex {
				t.Errorf("digest\n got %s\nwant %s", got, v.ExpectedHex)
			}
			ran++
		})
	}
	t.Logf("%d of %d vectors ran", ran, len(vs))
}

func TestVectorCount(t *testing.T) {
	vs, dir := loadVectors(t)
	var svsm, missing []string
	for _, v := range vs {
		if slices.Contains(v.Args, "snp:svsm") {
			svsm = append(svsm, v.ID)
		}
		for rel := range v.InputFiles {
			if strings.HasPrefix(rel, "fixtures/") {
				if _, err := os.Stat(filepath.Join(dir, rel)); err != nil && !slices.Contains(missing, v.ID) {
					missing = append(missing, v.ID)
				}
			}
		}
	}
	slices.Sort(missing)
	// The vectors skipped: SVSM mode's (not supported), and those whose
	// firmware the shared folder does not ship (svsm_ovmf.fd, svsm.bin):
	// today the same two plus one snp:ovmf-hash vector of an SVSM OVMF.
	// If the file grows more of either, this makes it visible.
	if len(svsm) != 2 {
		t.Errorf("snp:svsm vectors %q, want 2", svsm)
	}
	// A shared folder that ships more fixtures runs more vectors: only
	// a vector skipped beyond these is an error.
	known := []string{"D-ovmfhash-svsm_ovmf", "U-test_snp_svsm_2_vcpus", "U-test_snp_svsm_4_vcpus"}
	for _, id := range missing {
		if !slices.Contains(known, id) {
			t.Errorf("vector %s is skipped: its fixture is not in the shared folder (known to lack one: %q)", id, known)
		}
	}
	t.Logf("vectors skipped for a fixture the shared folder lacks: %q", missing)
}

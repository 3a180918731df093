package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
)

// ExplainOptions name local copies of the manifest's files.
type ExplainOptions struct {
	Manifest             *manifest.Manifest
	OVMF, Kernel, Initrd string
	// Got is the measurement from the report (96 hex characters).
	Got string
	// MaxVCPUs bounds the vCPU counts tried (default 64, plus the manifest's).
	MaxVCPUs int
}

// Explanation is what --explain found.
type Explanation struct {
	// Likely names the most likely drifted input, or says none was found.
	Likely string `json:"likely"`
	// Files lists local files whose SHA-256 differs from the manifest.
	Files []string `json:"file_mismatches,omitempty"`
	// Match is the variant that reproduces the reported measurement.
	Match *Variant `json:"match,omitempty"`
	// Tried counts the variants computed.
	Tried int `json:"variants_tried"`
}

// Variant is one recomputed configuration.
type Variant struct {
	Input       string `json:"input"` // the input that differs from the manifest
	Description string `json:"description"`
	Measurement string `json:"measurement"`
}

// sha256File hashes the file at path, what in errors. infile.Open refuses
// anything but a regular file, a FIFO at once (a plain open would wait for
// a writer for ever); the file is streamed, so any size is fine.
func sha256File(what, path string) (string, error) {
	f, err := infile.Open(what, path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", what, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrExplainNeedsFiles is Explain's refusal without the local files; the CLI
// gives it before fetching a report.
var ErrExplainNeedsFiles = errors.New("--explain needs the local files the manifest describes: --ovmf, --kernel and --initrd")

// Explain recomputes variants of the manifest's launch (vCPU counts, every
// vCPU type, guest features 0x1 and 0x21, cmdline with and without
// surrounding whitespace, firmware only, other VMM types) and names the one
// that reproduces the reported measurement.
func Explain(ctx context.Context, o ExplainOptions) (*Explanation, error) {
	m := o.Manifest
	if o.OVMF == "" || o.Kernel == "" || o.Initrd == "" {
		return nil, ErrExplainNeedsFiles
	}
	ex := &Explanation{}
	// The files' hashes, as compared with the manifest's: every variant
	// is measured from the paths again, and must have read these bytes.
	hashed := map[string]string{}
	for _, f := range []struct {
		what, path string
		want       manifest.File
	}{{"OVMF", o.OVMF, m.Components.OVMF}, {"kernel", o.Kernel, m.Components.Kernel}, {"initrd", o.Initrd, m.Components.Initrd}} {
		got, err := sha256File("the "+f.what, f.path)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		hashed[f.what] = got
		if got != f.want.SHA256 {
			ex.Files = append(ex.Files, fmt.Sprintf("%s %s has SHA-256 %s, the manifest says %s", f.what, f.path, got, f.want.SHA256))
		}
	}
	got := strings.ToLower(o.Got)
	maxN := o.MaxVCPUs
	if maxN <= 0 {
		maxN = 64
	}
	var counts []int
	for n := 1; n <= maxN; n++ {
		counts = append(counts, n)
	}
	for _, e := range m.Measurements {
		if !slices.Contains(counts, e.VCPUs) {
			counts = append(counts, e.VCPUs)
		}
	}
	types := measure.VCPUTypes()
	feat, err := m.GuestFeaturesValue()
	if err != nil {
		return nil, err
	}
	base, err := m.MeasureOptions(o.OVMF, o.Kernel, o.Initrd, 1, types[0])
	if err != nil {
		return nil, err
	}
	type variant struct {
		input, desc string
		opts        measure.Options
	}
	// Every variant is measured from the local files. When they differ from
	// the manifest's, a match means the host launched the local files: say
	// so, instead of blaming the vCPU count or type or another setting.
	baseInput, baseDesc := "vCPU count or type", "the manifest's files and cmdline"
	if len(ex.Files) > 0 {
		baseInput, baseDesc = "files", "the local files (not the manifest's) with the manifest's cmdline"
	}
	variants := []variant{{baseInput, baseDesc, base}}
	for _, f := range []uint64{0x1, 0x21} {
		if f != feat {
			v := base
			v.GuestFeatures = f
			variants = append(variants, variant{"guest features", fmt.Sprintf("guest features 0x%x instead of 0x%x", f, feat), v})
		}
	}
	for _, c := range []struct{ desc, s string }{
		{"cmdline with surrounding whitespace trimmed", strings.TrimSpace(m.Cmdline)},
		{"cmdline with a trailing space", m.Cmdline + " "},
		{"cmdline with a trailing newline", m.Cmdline + "\n"},
		{"cmdline with a leading space", " " + m.Cmdline},
		{"empty cmdline", ""},
	} {
		if c.s != m.Cmdline {
			v := base
			v.Append = c.s
			variants = append(variants, variant{"cmdline", c.desc, v})
		}
	}
	for _, vmm := range []string{"QEMU", "ec2", "gce"} {
		if vmm != m.VMMType {
			v := base
			v.VMMType = vmm
			variants = append(variants, variant{"VMM type", "VMM type " + vmm + " instead of " + m.VMMType, v})
		}
	}
	fw := base
	fw.Kernel, fw.Initrd, fw.Append = "", "", ""
	variants = append(variants, variant{"firmware only", "firmware only (no kernel hashes: the host booted without kernel-hashes=on or without -kernel)", fw})

	for i, v := range variants {
		explainMeasuring()
		entries, in, err := measure.Matrix(ctx, v.opts, counts, types)
		if err != nil {
			return nil, fmt.Errorf("explain: %s: %w", v.desc, err)
		}
		for _, r := range []struct {
			what, path string
			in         *measure.Input
		}{{"OVMF", o.OVMF, &in.OVMF}, {"kernel", o.Kernel, in.Kernel}, {"initrd", o.Initrd, in.Initrd}} {
			if r.in != nil && r.in.SHA256 != hashed[r.what] {
				return nil, fmt.Errorf("explain: the %s %s changed while it was read (SHA-256 %s, then %s): nothing can be concluded; run again once nothing writes it", r.what, r.path, hashed[r.what], r.in.SHA256)
			}
		}
		ex.Tried += len(entries)
		var hits []measure.MatrixEntry
		for _, e := range entries {
			if hex.EncodeToString(e.Digest[:]) == got {
				hits = append(hits, e)
			}
		}
		if len(hits) == 0 {
			continue
		}
		// vCPU types that share a signature give the same digest: prefer a
		// type the manifest uses, and name the aliases.
		best := hits[0]
		for _, h := range hits {
			if slices.ContainsFunc(m.Measurements, func(x manifest.Measurement) bool { return x.VCPUType == h.VCPUType }) {
				best = h
				break
			}
		}
		var aliases []string
		for _, h := range hits {
			if h.VCPUs == best.VCPUs && h.VCPUType != best.VCPUType {
				aliases = append(aliases, h.VCPUType)
			}
		}
		what := fmt.Sprintf("%d vCPUs of type %s", best.VCPUs, best.VCPUType)
		if len(aliases) > 0 {
			what += " (same signature: " + strings.Join(aliases, ", ") + ")"
		}
		input, desc := v.input, v.desc+", "+what
		if _, ok := m.Lookup(best.VCPUs, best.VCPUType); !ok && i == 0 {
			if len(ex.Files) == 0 {
				desc = what + ", which the manifest does not list"
			} else {
				input, desc = "files and the vCPU count or type", v.desc+", "+what+", which the manifest does not list either"
			}
		}
		ex.Match = &Variant{Input: input, Description: desc, Measurement: got}
		ex.Likely = fmt.Sprintf("the %s drifted: the report matches %s", input, desc)
		if len(ex.Files) > 0 {
			ex.Likely += "; local files that differ from the manifest: " + strings.Join(ex.Files, "; ")
		}
		return ex, nil
	}
	switch {
	case len(ex.Files) > 0:
		ex.Likely = "no launch variant matches, and local files differ from the manifest: " + strings.Join(ex.Files, "; ")
	default:
		ex.Likely = fmt.Sprintf("no variant of %d matches: the host launched different file contents (initrd, kernel or firmware) or an unlisted setting", ex.Tried)
	}
	return ex, nil
}

// explainMeasuring runs before each variant is measured: a test seam (a
// file replaced there).
var explainMeasuring = func() {}

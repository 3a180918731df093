package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

func init() {
	register(command{name: "reproduce", summary: "check that a manifest is what its files give: every measurement and hash recomputed", run: runReproduce})
}

const reproduceUsage = `Usage: hostbuild reproduce --manifest FILE --ovmf F --kernel K --initrd I
         [--payload P] [--init I]

Checks that a manifest is exactly what these files give: it writes the
manifest again in memory from the files and the manifest's own settings
(cmdline, vCPU counts and types, guest features and policy, VMM type), as
'hostbuild manifest' would, and compares the two. attest trusts the
manifest it is given: its measurements decide what passes, while its
file hashes, payload, init, operator's files and build info are only what
its writer recorded. A manifest that reproduces from the files you built
(or rebuilt: the same inputs give the same bytes) ties those records to
its measurements. The tool's name and version are not compared (another
version of hostbuild wrote it: a note says so). --payload and --init are
needed when the manifest records them.

Exit status: 0 the manifest reproduces; 1 the files cannot be read or
measured; 2 usage; 3 it does not reproduce (the differences are printed).

Flags:
`

func runReproduce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reproduce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mpath := fs.String("manifest", "", "the manifest `file` to check (required)")
	ovmfPath := fs.String("ovmf", "", "OVMF firmware `file` (required)")
	kernel := fs.String("kernel", "", "kernel `file` (required)")
	initrd := fs.String("initrd", "", "initrd `file` (required)")
	payload := fs.String("payload", "", "the payload `file` (needed when the manifest records one)")
	initBin := fs.String("init", "", "the init `file` (needed when the manifest records one)")
	fs.Usage = func() {
		fmt.Fprint(stderr, reproduceUsage)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageFail := usageErrorf(stderr, "reproduce")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, req := range []string{"manifest", "ovmf", "kernel", "initrd"} {
		if !set[req] {
			return usageFail("--%s is required", req)
		}
	}
	m, err := manifest.Load(*mpath)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	if m.Components.Payload != nil && *payload == "" {
		return usageFail("%s records a payload (%s, SHA-256 %s): give it with --payload FILE", *mpath, m.Components.Payload.Name, m.Components.Payload.SHA256)
	}
	if m.Components.Init != nil && *initBin == "" {
		return usageFail("%s records an init (%s, SHA-256 %s): give it with --init FILE", *mpath, m.Components.Init.Name, m.Components.Init.SHA256)
	}
	if m.Components.Payload == nil && *payload != "" {
		return usageFail("%s records no payload: drop --payload (its writer gave none; the initrd's hash covers it)", *mpath)
	}
	if m.Components.Init == nil && *initBin != "" {
		return usageFail("%s records no init: drop --init (its writer gave none; the initrd's hash covers it)", *mpath)
	}
	g, err := generateOptionsOf(m)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %s: %v\n", *mpath, err)
		return exitFail
	}
	g.OVMF, g.Kernel, g.Initrd, g.Payload, g.Init = *ovmfPath, *kernel, *initrd, *payload, *initBin
	if err := checkInputs(inputsOf(g)...); err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "hostbuild reproduce: measuring %d configurations of %s from the files\n", len(m.Measurements), *mpath)
	again, err := manifest.Generate(ctx, g)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	if err := checkContents(g.Initrd, g.Payload, g.Init, g.Kernel, again); err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	if again.Components.Files == nil {
		// An initrd without a content list (not pack's) says no
		// SOURCE_DATE_EPOCH: the writer's environment gave it, and no
		// file can say what it was. Pack's initrds say theirs (their
		// entries' mtime, read by checkContents), 0 included.
		again.SourceDateEpoch = m.SourceDateEpoch
	}
	if m.Tool != again.Tool {
		fmt.Fprintf(stderr, "hostbuild reproduce: note: %s was written by %s %s, not by this %s %s (not compared)\n", *mpath, m.Tool.Name, m.Tool.Version, again.Tool.Name, again.Tool.Version)
		again.Tool = m.Tool
	}
	a, errA := manifest.Marshal(m)
	b, errB := manifest.Marshal(again)
	if errA != nil || errB != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", errors.Join(errA, errB))
		return exitFail
	}
	if !bytes.Equal(a, b) {
		fmt.Fprintf(stdout, "%s does NOT reproduce from these files (- the manifest, + what the files give):\n%s", *mpath, lineDiff(string(a), string(b), 3))
		fmt.Fprintf(stderr, "hostbuild reproduce: %s does not reproduce from these files: it is not what they give (see the differences above)\n", *mpath)
		return exitRunRefused
	}
	fmt.Fprintf(stdout, "%s reproduces from these files: %d measurements, the OVMF, kernel and initrd hashes%s match\n", *mpath, len(m.Measurements), reproducedExtras(m))
	return exitOK
}

// generateOptionsOf gives the settings m was generated with, the files
// aside: its cmdline, VMM type, guest features and policy, and the vCPU
// counts and types of its measurement matrix.
func generateOptionsOf(m *manifest.Manifest) (manifest.GenerateOptions, error) {
	feat, err := m.GuestFeaturesValue()
	if err != nil {
		return manifest.GenerateOptions{}, err
	}
	pol, err := m.GuestPolicyValue()
	if err != nil {
		return manifest.GenerateOptions{}, err
	}
	g := manifest.GenerateOptions{
		Cmdline:       m.Cmdline,
		VMMType:       m.VMMType,
		GuestFeatures: feat,
		GuestPolicy:   pol,
		ToolName:      "hostbuild",
		ToolVersion:   version,
	}
	for _, e := range m.Measurements {
		if !slices.Contains(g.VCPUs, e.VCPUs) {
			g.VCPUs = append(g.VCPUs, e.VCPUs)
		}
		if !slices.Contains(g.VCPUTypes, e.VCPUType) {
			g.VCPUTypes = append(g.VCPUTypes, e.VCPUType)
		}
	}
	return g, nil
}

// reproducedExtras names what else a reproduced manifest records.
func reproducedExtras(m *manifest.Manifest) string {
	var s string
	if m.Components.Payload != nil {
		s += ", the payload"
	}
	if m.Components.Init != nil {
		s += ", the init and its build info"
	}
	if f := m.Components.Files; f != nil {
		switch len(*f) {
		case 0:
			s += ", the (empty) list of operator's files"
		case 1:
			s += ", the operator's file"
		default:
			s += ", the " + strconv.Itoa(len(*f)) + " operator's files"
		}
	}
	return s
}

// lineDiff shows the lines of a and b that differ (a longest common
// subsequence of lines), "-" for a's, "+" for b's, with ctx lines of
// context around each change and "..." between distant ones. Manifests are
// a few hundred lines: the quadratic table is small.
func lineDiff(a, b string, ctx int) string {
	lines := func(s string) []string {
		l := strings.SplitAfter(s, "\n")
		if l[len(l)-1] == "" {
			l = l[:len(l)-1]
		}
		return l
	}
	x, y := lines(a), lines(b)
	// lcs[i][j]: the longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var all []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			all = append(all, line{' ', x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			all = append(all, line{'-', x[i]})
			i++
		default:
			all = append(all, line{'+', y[j]})
			j++
		}
	}
	var out strings.Builder
	last := -1 // the last line written
	for k, l := range all {
		if l.op == ' ' {
			continue
		}
		for c := max(k-ctx, last+1); c < k; c++ {
			if c == max(k-ctx, last+1) && last >= 0 && c > last+1 {
				out.WriteString("  ...\n")
			}
			out.WriteString("  " + all[c].text)
		}
		out.WriteString(string(l.op) + " " + l.text)
		last = k
		// Context after: written by the next change, or here at the end.
		next := slices.IndexFunc(all[k+1:], func(l line) bool { return l.op != ' ' })
		if next < 0 || next > 2*ctx {
			for c := k + 1; c <= min(k+ctx, len(all)-1); c++ {
				out.WriteString("  " + all[c].text)
				last = c
			}
		}
	}
	return out.String()
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
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
its measurements. Not compared, each with a note: the tool's name and
version (another version of hostbuild wrote it), the files' names (the
base names of the paths its writer gave), and what no file can confirm:
the guest policy, which is not in the measurement (attest checks the
report's policy against the manifest's), and the SOURCE_DATE_EPOCH of an
initrd hostbuild pack did not make. --payload and --init are needed when
the manifest records them.

Exit status: 0 the manifest reproduces; 1 the files cannot be read or
measured; 2 usage; 3 it does not reproduce (the differences are printed).

Flags:
`

func runReproduce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reproduce", reproduceUsage, stderr)
	mpath := fs.String("manifest", "", "the manifest `file` to check (required)")
	ovmfPath := fs.String("ovmf", "", "OVMF firmware `file` (required)")
	kernel := fs.String("kernel", "", "kernel `file` (required)")
	initrd := fs.String("initrd", "", "initrd `file` (required)")
	payload := fs.String("payload", "", "the payload `file` (needed when the manifest records one)")
	initBin := fs.String("init", "", "the init `file` (needed when the manifest records one)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	// The manifest is its writer's text: escaped, a terminal does not run
	// its control sequences (a tool version that prints a fake "reproduces"
	// line and hides the rest).
	stderr = printable.NewWriter(stderr)
	stdout = printable.NewWriter(stdout)
	usageFail := usageErrorf(stderr, "reproduce")
	if fs.NArg() > 0 {
		return usageFail("unexpected argument %q", fs.Arg(0))
	}
	if m := unsetFlags(flagsSet(fs), "manifest", "ovmf", "kernel", "initrd"); m != "" {
		return usageFail("%s", m)
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
	// What 'hostbuild manifest' would refuse to write does not reproduce,
	// whatever the files give: a cmdline the init refuses or that steers
	// it (rdinit=, kgdboc=), a matrix that is not every count × type.
	if err := checkBootCmdline(m.Cmdline); err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %s does not reproduce: 'hostbuild manifest' would refuse its cmdline: %v\n", *mpath, err)
		return exitRunRefused
	}
	g, err := generateOptionsOf(m)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %s: %v\n", *mpath, err)
		return exitFail
	}
	if n := len(g.VCPUs) * len(g.VCPUTypes); len(m.Measurements) != n {
		fmt.Fprintf(stderr, "hostbuild reproduce: %s does not reproduce: its %d measurements are not the %d of every vCPU count (%d) × type (%d), as hostbuild writes them\n", *mpath, len(m.Measurements), n, len(g.VCPUs), len(g.VCPUTypes))
		return exitRunRefused
	}
	g.OVMF, g.Kernel, g.Initrd, g.Payload, g.Init = *ovmfPath, *kernel, *initrd, *payload, *initBin
	if err := checkInputs(inputsOf(g)...); err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "hostbuild reproduce: measuring %d configurations of %s from the files\n", len(m.Measurements), *mpath)
	again, in, err := manifest.GenerateInputs(ctx, g)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	manifestGenerated()
	epochStated, err := checkContentsEpoch(ctx, g.Initrd, g.Payload, g.Init, measuredKernel(in), again, func(w string) { fmt.Fprintf(stderr, "hostbuild reproduce: warning: %s\n", w) })
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild reproduce: %v\n", err)
		return exitFail
	}
	// What no file can confirm is taken from the manifest, and said.
	// The guest policy is not in the launch digest: the report carries
	// it, and attest compares the two.
	fmt.Fprintf(stderr, "hostbuild reproduce: note: guest policy %s is the manifest's (not part of the measurement: attest checks the report's against it)\n", m.GuestPolicy)
	warnDebugPolicy(stderr, "reproduce", g.GuestPolicy)
	if !epochStated {
		// An initrd without a content list, or whose entries have
		// several mtimes (not pack's), says no SOURCE_DATE_EPOCH: the
		// writer's flag or environment gave it, and no file can say
		// what it was. Pack's initrds say theirs (their entries' one
		// mtime, read by checkContentsEpoch), 0 included.
		again.SourceDateEpoch = m.SourceDateEpoch
		fmt.Fprintf(stderr, "hostbuild reproduce: note: source_date_epoch %d is the manifest's (this initrd does not say it: no content list, or its entries have several mtimes)\n", m.SourceDateEpoch)
	}
	// A file's name is the base name of the path its writer gave: the
	// same bytes under another name are the same file.
	for _, f := range []struct {
		what string
		rec  *manifest.File
		here *manifest.File
	}{
		{"--ovmf", &m.Components.OVMF, &again.Components.OVMF},
		{"--kernel", &m.Components.Kernel, &again.Components.Kernel},
		{"--initrd", &m.Components.Initrd, &again.Components.Initrd},
		{"--payload", m.Components.Payload, again.Components.Payload},
		{"--init", m.Components.Init, again.Components.Init},
	} {
		if f.rec != nil && f.here != nil && f.rec.Name != f.here.Name && f.rec.Size == f.here.Size && f.rec.SHA256 == f.here.SHA256 {
			fmt.Fprintf(stderr, "hostbuild reproduce: note: %s %s has the bytes the manifest records as %q (names are not compared)\n", f.what, f.here.Name, f.rec.Name)
			f.here.Name = f.rec.Name
		}
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

// lineDiff shows the lines of a and b that differ, "-" for a's, "+" for
// b's, with ctx lines of context around each change and "..." where equal
// lines are left out. Between the lines the two share at their start and
// end it aligns them by a longest common subsequence; past maxDiffCells
// (manifests of thousands of rows) it shows that middle part as removed,
// then added, rather than take quadratic memory.
func lineDiff(a, b string, ctx int) string {
	lines := func(s string) []string {
		l := strings.SplitAfter(s, "\n")
		if l[len(l)-1] == "" {
			l = l[:len(l)-1]
		}
		return l
	}
	x, y := lines(a), lines(b)
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	type line struct {
		op   byte
		text string
	}
	var all []line
	for _, l := range x[:pre] {
		all = append(all, line{' ', l})
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	if (len(mx)+1)*(len(my)+1) > maxDiffCells {
		for _, l := range mx {
			all = append(all, line{'-', l})
		}
		for _, l := range my {
			all = append(all, line{'+', l})
		}
	} else {
		// lcs[i][j]: the longest common subsequence of mx[i:] and my[j:].
		w := len(my) + 1
		lcs := make([]int32, (len(mx)+1)*w)
		for i := len(mx) - 1; i >= 0; i-- {
			for j := len(my) - 1; j >= 0; j-- {
				if mx[i] == my[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(mx) || j < len(my) {
			switch {
			case i < len(mx) && j < len(my) && mx[i] == my[j]:
				all = append(all, line{' ', mx[i]})
				i, j = i+1, j+1
			case i < len(mx) && (j == len(my) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
				all = append(all, line{'-', mx[i]})
				i++
			default:
				all = append(all, line{'+', my[j]})
				j++
			}
		}
	}
	for _, l := range x[len(x)-suf:] {
		all = append(all, line{' ', l})
	}
	// Show every change and the ctx lines around it; "..." stands for
	// the equal lines left out between two shown ones.
	show := make([]bool, len(all))
	for k, l := range all {
		if l.op != ' ' {
			for c := max(k-ctx, 0); c <= min(k+ctx, len(all)-1); c++ {
				show[c] = true
			}
		}
	}
	var out strings.Builder
	last := -1
	for k, l := range all {
		if !show[k] {
			continue
		}
		if last >= 0 && k > last+1 {
			out.WriteString("  ...\n")
		}
		out.WriteString(string(l.op) + " " + l.text)
		last = k
	}
	return out.String()
}

// maxDiffCells bounds lineDiff's table (4 bytes a cell: 64 MiB).
const maxDiffCells = 16 << 20

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

func init() {
	register(command{name: "ovmf", summary: "inspect an OVMF image: footer table, SEV metadata, direct-boot verdict", run: runOVMF})
}

const ovmfUsage = `Usage: hostbuild ovmf [--json] FILE

Prints what the SEV-SNP launch measurement reads from an OVMF firmware image:
its size and guest physical address, the GUIDed footer table entries, the SEV
metadata sections (type, GPA, size) in measurement order, the kernel-hashes
table area, the SEV-ES AP reset EIP, and a verdict on whether measured direct
kernel boot (QEMU -kernel with kernel-hashes=on) is possible with it.

Exit status: 0 parsed (whatever the verdict), 1 unreadable or malformed
image, or not an OVMF image (no OVMF footer table, or a size that is not a
multiple of 4096), 2 usage error.

Flags:
`

type ovmfEntryJSON struct {
	GUID   string `json:"guid"`
	Name   string `json:"name,omitempty"`
	Offset string `json:"offset"`
	Size   int    `json:"size"`
	Data   string `json:"data"`
}

type ovmfSectionJSON struct {
	Type string `json:"type"`
	GPA  string `json:"gpa"`
	Size string `json:"size"`
}

type ovmfReport struct {
	File            string            `json:"file"`
	Size            int64             `json:"size"`
	SHA256          string            `json:"sha256"`
	GPA             string            `json:"gpa"`
	FooterFound     bool              `json:"footer_found"`
	Entries         []ovmfEntryJSON   `json:"footer_entries"`
	MetadataOffset  string            `json:"sev_metadata_offset,omitempty"`
	Sections        []ovmfSectionJSON `json:"sev_metadata_sections"`
	HashTableGPA    string            `json:"hashes_table_gpa,omitempty"`
	HashTableSize   string            `json:"hashes_table_size,omitempty"`
	ResetEIP        string            `json:"sev_es_reset_eip,omitempty"`
	DirectBoot      bool              `json:"measured_direct_boot"`
	DirectBootWhy   string            `json:"measured_direct_boot_reason,omitempty"`
	PageAligned     bool              `json:"page_aligned"`
	SNPMeasurable   bool              `json:"snp_measurable"`
	SNPMeasurableNo string            `json:"snp_measurable_reason,omitempty"`
	// LaunchNo says why QEMU cannot start an SEV-SNP guest on the image
	// even where it can be measured ("" when it can).
	LaunchNo string `json:"launch_reason,omitempty"`
}

// parseInterspersed parses flags that may come before or after positionals.
// "--" ends the flags: everything after it is positional, also what starts
// with "-".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		if n := len(args) - fs.NArg(); n > 0 && args[n-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runOVMF(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ovmf", ovmfUsage, stderr)
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, code, ok := parseFlagsInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "hostbuild ovmf: want exactly one FILE; run 'hostbuild ovmf -h'")
		return exitUsage
	}
	path := pos[0]
	rep, err := inspectOVMF(path)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild ovmf: %v\n", err)
		return exitFail
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "hostbuild ovmf: writing JSON: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	printOVMF(stdout, rep)
	return exitOK
}

func inspectOVMF(path string) (*ovmfReport, error) {
	// Parsed and hashed through one open file: the report describes one
	// file even if the path is replaced meanwhile.
	im, sum, err := ovmf.ParseFileDigest(path)
	if err != nil {
		return nil, err
	}
	// A file that is not firmware at all (a README, a variable store) has
	// nothing this report could describe: an error, not a verdict that
	// advises another OVMF build.
	switch {
	case im.Size%ovmf.PageSize != 0:
		return nil, fmt.Errorf("%s: not an OVMF image: its size, %d bytes, is not a multiple of %d (firmware images are whole pages); give an OVMF code image, e.g. an AmdSevX64 OVMF.fd", path, im.Size, ovmf.PageSize)
	case !im.FooterFound:
		return nil, fmt.Errorf("%s: not an OVMF image: no OVMF footer table GUID before the reset vector (a variable store, or not firmware); give an OVMF code image, e.g. an AmdSevX64 OVMF.fd", path)
	}
	rep := &ovmfReport{
		File:        path,
		Size:        im.Size,
		SHA256:      hex.EncodeToString(sum[:]),
		GPA:         fmt.Sprintf("0x%x", im.GPA()),
		FooterFound: im.FooterFound,
		Entries:     []ovmfEntryJSON{},
		Sections:    []ovmfSectionJSON{},
		PageAligned: im.Size%ovmf.PageSize == 0,
	}
	for _, e := range im.Entries {
		rep.Entries = append(rep.Entries, ovmfEntryJSON{
			GUID: e.GUID.String(), Name: ovmf.GUIDName(e.GUID),
			Offset: fmt.Sprintf("0x%x", e.Offset), Size: len(e.Data), Data: hex.EncodeToString(e.Data),
		})
	}
	if im.HasMetadata {
		rep.MetadataOffset = fmt.Sprintf("0x%x", im.MetadataOffset)
	}
	for _, s := range im.Metadata {
		rep.Sections = append(rep.Sections, ovmfSectionJSON{Type: s.Type.String(), GPA: fmt.Sprintf("0x%x", s.GPA), Size: fmt.Sprintf("0x%x", s.Size)})
	}
	if im.HashTable != nil {
		rep.HashTableGPA = fmt.Sprintf("0x%x", im.HashTable.Base)
		rep.HashTableSize = fmt.Sprintf("0x%x", im.HashTable.Size)
	}
	if im.HasResetEIP {
		rep.ResetEIP = fmt.Sprintf("0x%x", im.ResetEIP)
	}
	// The checks measure and manifest apply, and what QEMU needs
	// besides to start the guest.
	if err := im.CheckSNP(); err != nil {
		rep.SNPMeasurableNo = err.Error()
	} else {
		rep.SNPMeasurable = true
	}
	if err := im.CheckLaunch(); err != nil {
		rep.LaunchNo = err.Error()
	}
	if err := im.CheckDirectBoot(); err != nil {
		rep.DirectBootWhy = err.Error()
	} else if rep.SNPMeasurable {
		rep.DirectBoot = true
	} else {
		rep.DirectBootWhy = "the image cannot be measured for SEV-SNP: " + rep.SNPMeasurableNo
	}
	return rep, nil
}

func printOVMF(w io.Writer, r *ovmfReport) {
	fmt.Fprintf(w, "file:              %s\n", printable.Escape(r.File))
	fmt.Fprintf(w, "size:              %d bytes (0x%x, %d pages)\n", r.Size, r.Size, r.Size/ovmf.PageSize)
	fmt.Fprintf(w, "sha256:            %s\n", r.SHA256)
	fmt.Fprintf(w, "gpa:               %s (4 GiB - size)\n", r.GPA)
	if !r.FooterFound {
		fmt.Fprintln(w, "footer table:      none (no OVMF table footer GUID before the reset vector)")
	} else {
		fmt.Fprintf(w, "footer table:      %d entries\n", len(r.Entries))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  offset\tguid\tname\tdata")
		for _, e := range r.Entries {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Offset, e.GUID, e.Name, e.Data)
		}
		tw.Flush()
	}
	if r.MetadataOffset == "" {
		fmt.Fprintln(w, "sev metadata:      none")
	} else {
		fmt.Fprintf(w, "sev metadata:      %d sections at %s from the end, in measurement order\n", len(r.Sections), r.MetadataOffset)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\ttype\tgpa\tsize")
		for i, s := range r.Sections {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i, s.Type, s.GPA, s.Size)
		}
		tw.Flush()
	}
	if r.HashTableGPA == "" {
		fmt.Fprintln(w, "hashes table:      none")
	} else {
		fmt.Fprintf(w, "hashes table:      gpa %s, size %s\n", r.HashTableGPA, r.HashTableSize)
	}
	if r.ResetEIP == "" {
		fmt.Fprintln(w, "sev-es reset eip:  none")
	} else {
		fmt.Fprintf(w, "sev-es reset eip:  %s\n", r.ResetEIP)
	}
	switch {
	case !r.SNPMeasurable:
		fmt.Fprintf(w, "sev-snp launch:    not measurable: %s\n", r.SNPMeasurableNo)
	case r.LaunchNo != "":
		fmt.Fprintf(w, "sev-snp launch:    measurable, but QEMU cannot start it: %s\n", r.LaunchNo)
	default:
		fmt.Fprintln(w, "sev-snp launch:    measurable")
	}
	if r.DirectBoot {
		fmt.Fprintln(w, "verdict:           measured direct kernel boot is possible (QEMU kernel-hashes=on puts kernel, initrd and cmdline into the measurement)")
	} else {
		fmt.Fprintf(w, "verdict:           measured direct kernel boot is NOT possible: %s\n", r.DirectBootWhy)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
)

func init() {
	register(command{name: "report", summary: "decode a raw SEV-SNP attestation report (binary or hex) for humans or as JSON", run: runReport})
}

const reportUsage = `Usage: hostbuild report [--json] FILE|-

Decodes a raw 1184-byte SEV-SNP ATTESTATION_REPORT, binary (a certificate
table may follow) or hex text, read from FILE or stdin ("-"), with
go-sev-guest's ABI parser (non-zero reserved fields are refused). It does
not verify anything: use 'hostbuild verify' for that.

Exit status: 0 decoded, 1 not a valid report, 2 usage error.

Flags:
`

// maxReportInput bounds what report reads (a report plus a large cert table, as hex).
const maxReportInput = 1 << 20

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", reportUsage, stderr)
	jsonOut := fs.Bool("json", false, "print JSON instead of text")
	// Flags may follow the arguments, as in ovmf and verify.
	pos, code, ok := parseFlagsInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "hostbuild report: want exactly one FILE or -; run 'hostbuild report -h' for usage")
		return exitUsage
	}
	var r io.Reader
	name := pos[0]
	if name == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		// infile.Open refuses a FIFO at once (a plain open would wait for
		// a writer for ever); decodeReport bounds what is read.
		f, err := infile.Open("the report", name)
		if err != nil {
			reason := withoutPath(err)
			var nr *infile.NotRegularError
			if errors.As(err, &nr) {
				if nr.Mode.IsDir() {
					fmt.Fprintf(stderr, "hostbuild report: %s is a folder; give the report file in it (e.g. %s), or 'hostbuild verify %s' for an evidence folder\n", name, filepath.Join(name, attest.FileReport), name)
					return exitFail
				}
				reason = errors.New(nr.Reason())
			}
			fmt.Fprintf(stderr, "hostbuild report: cannot read the report %s: %v; give a file holding a raw report (binary or hex, e.g. report.bin from 'hostbuild attest --evidence-out'), or - for stdin\n", name, reason)
			return exitFail
		}
		defer f.Close()
		r = f
	}
	return decodeReport(name, r, *jsonOut, stdout, stderr)
}

// decodeReport decodes the report read from r; name (a path, or stdin)
// starts each error.
func decodeReport(name string, r io.Reader, jsonOut bool, stdout, stderr io.Writer) int {
	b, err := io.ReadAll(io.LimitReader(r, maxReportInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild report: reading %s: %v\n", name, withoutPath(err))
		return exitFail
	}
	if len(b) > maxReportInput {
		fmt.Fprintf(stderr, "hostbuild report: %s: larger than %d bytes, more than a report and its certificate table\n", name, maxReportInput)
		return exitFail
	}
	raw, err := attest.DecodeRawReport(b)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild report: %s: %v\n", name, err)
		return exitFail
	}
	info, err := attest.DescribeReport(raw)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild report: %s: %v\n", name, err)
		return exitFail
	}
	if jsonOut {
		out, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return exitOK
	}
	if err := attest.WriteReportText(stdout, info); err != nil {
		return exitFail
	}
	return exitOK
}

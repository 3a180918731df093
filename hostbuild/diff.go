package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

func init() {
	register(command{name: "diff", summary: "entry-level differences between two initrds (exit 0 same, 1 differ, 2 error)", run: runDiff})
}

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	// Errors name entries of the archive, which are its author's text.
	stderr = printable.NewWriter(stderr)
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild diff [--json] A B

Compares two initrds entry by entry: added, removed, type, mode, owner,
content (with both SHA-256s), symlink target, device numbers, mtime, nlink.
If every entry matches but the files differ, it says what else does
(compression, archive count). Run it when two builds of the same inputs
disagree.

Names (and symlink targets) are escaped as inspect's listing escapes them.
--json writes a path or description (a, b) that is valid UTF-8 as it is;
one that is not (which JSON cannot hold) as the text shows it, with its
bytes in base64 in path_base64, a_base64 or b_base64 beside it.

Exit status: 0 identical, 1 different, 2 error (unreadable or malformed input).

Flags:
`)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments, as in ovmf and verify.
	pos, code, ok := parseFlagsInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "hostbuild diff: want two initrds, A and B, got %d; run 'hostbuild diff -h' for usage\n", len(pos))
		return exitUsage
	}
	var arch [2]*initrd.Archive
	for i := range arch {
		a, err := initrd.ReadFileContext(ctx, pos[i])
		if err != nil {
			fmt.Fprintf(stderr, "hostbuild diff: %v\n", err)
			return 2
		}
		arch[i] = a
	}
	changes := initrd.Diff(arch[0], arch[1])
	// A write that failed is an error (2), whatever the comparison
	// found: 1 would say "different" of two identical initrds.
	ew := &errWriter{w: stdout}
	stdout = ew
	defer func() {
		if ew.err != nil {
			fmt.Fprintf(stderr, "hostbuild diff: writing to stdout: %v\n", ew.err)
			code = 2
		}
	}()
	if *asJSON {
		if changes == nil {
			changes = []initrd.Change{}
		}
		// Entry names are the initrds': escaped as inspect --json's are.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.Encode(changes)
		stdout.Write(printable.JSON(buf.Bytes()))
	} else if len(changes) == 0 {
		fmt.Fprintf(stdout, "identical: %s and %s (sha256 %s)\n", pos[0], pos[1], arch[0].SHA256)
	} else {
		initrd.WriteDiff(stdout, changes)
		fmt.Fprintf(stdout, "# %d difference(s)\n", len(changes))
	}
	if len(changes) > 0 {
		return 1
	}
	return exitOK
}

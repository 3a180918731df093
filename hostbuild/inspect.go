package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
)

func init() {
	register(command{name: "inspect", summary: "list every entry of an initrd (mode, owner, size, SHA-256, path)", run: runInspect})
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a listing")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild inspect [--json] INITRD

Lists every entry: mode, uid/gid, size (major,minor for devices), SHA-256 of
regular files, and path. The compression (gzip, zstd, xz or none) is detected
from the file itself; several concatenated cpio archives are read in order.
Malformed archives are rejected with the offset of the problem.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	a, err := initrd.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			File string `json:"file"`
			*initrd.Archive
		}{fs.Arg(0), a}); err != nil {
			fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if err := a.WriteListing(stdout); err != nil {
		fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "# %s: %s, %d bytes, %d entries in %d archive(s), sha256 %s\n",
		fs.Arg(0), a.Compression, a.Size, len(a.Entries), a.Archives, a.SHA256)
	return exitOK
}

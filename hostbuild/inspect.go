package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/katana-tee/snpboot/hostbuild/internal/initrd"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

func init() {
	register(command{name: "inspect", summary: "list every entry of an initrd (mode, owner, size, SHA-256, path)", run: runInspect})
}

// vouched is what inspect says of the content list: it vouches for every
// entry (OK, with the operator's files), or what it does not vouch for.
type vouched struct {
	OK            bool     `json:"ok"`
	OperatorFiles []string `json:"operator_files,omitempty"`
	// OperatorFilesBase64 holds, when a name in OperatorFiles is not
	// valid UTF-8 (then written as the listing escapes it), every name's
	// bytes, in the same order (--json).
	OperatorFilesBase64 [][]byte `json:"operator_files_base64,omitempty"`
	Error               string   `json:"error,omitempty"`
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Errors name entries of the archive, which are its author's text.
	stderr = printable.NewWriter(stderr)
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a listing")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild inspect [--json] INITRD

Lists every entry: mode, uid/gid, size (major,minor for devices), SHA-256 of
regular files, and path. The compression (gzip, zstd, xz or none) is detected
from the file itself; several concatenated cpio archives are read in order.
The last two lines give the initrd's compression, size, entry and archive
counts and SHA-256, then the payload's size and SHA-256 (the manifest's payload
digest): the payload the init takes from its content list
(etc/guestinit/contents.sha256), inline or in frames; when the list covers
both or neither, or the file it names differs from it, the init refuses to
boot and the line says so. In frames (bin/katana.zst), every
frame is checked against etc/guestinit/payload.frames as the init checks
it, and decoded with the init's decoder to the digest the list gives; a
mismatch is an error naming the frame and its bytes. Names are
read as the kernel resolves them ("./bin/katana" is bin/katana); when an
entry's name has a ".." component or passes through a symlink, only the
kernel can tell which file it replaces, so the payload line says unknown
and why (likewise for a payload file with hard links). Before those two
lines, for an initrd with a content list, one says that the list covers
every file and names the operator's files (--file, --exec, --ca-bundle), or, in
capitals, what it does not vouch for: a file it does not cover or that
hostbuild pack does not make there, an entry the layout does not make, a
hard link, anything under /etc/katana/ or /usr/local/bin/ that is not a
folder or a covered file (--json: "vouched"). The exit status stays 0:
hostbuild manifest refuses such an initrd. Malformed archives are
rejected with the offset of the problem.

Names are the archive's text: the listing escapes what a terminal would
act on or that is not UTF-8 (\x1b, \u009b, \xff for such a byte). --json
writes a name that is valid UTF-8 as it is; one that is not (which JSON
cannot hold) as the listing shows it, with its bytes in base64 in a field
beside it: path_base64, link_base64 (a symlink's target), and under
"vouched" operator_files_base64 (every operator file's bytes, in order).

Exit status: 0 listed; 1 unreadable or malformed initrd (or not an initrd:
a folder, another kind of file), or the payload fails its checks; 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments, as in ovmf and verify.
	pos, code, ok := parseFlagsInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "hostbuild inspect: want exactly one INITRD, got %d; run 'hostbuild inspect -h' for usage\n", len(pos))
		return exitUsage
	}
	a, err := initrd.ReadFileContext(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
		return exitFail
	}
	// What the content list vouches for, when the guest's files can be
	// told (the payload line says why not) and there is a list.
	var v *vouched
	if a.PayloadUnknown == "" {
		switch es, err := a.OperatorFiles(); {
		case errors.Is(err, initrd.ErrNoContentList):
		case err != nil:
			v = &vouched{Error: err.Error()}
		default:
			v = &vouched{OK: true, OperatorFiles: []string{}}
			for _, e := range es {
				v.OperatorFiles = append(v.OperatorFiles, "/"+e.Path)
			}
		}
	}
	if *asJSON {
		// Names that are not UTF-8, which encoding/json would write as
		// U+FFFD, are written as the listing escapes them, their bytes
		// beside them (as the entries' path_base64).
		if v != nil && slices.ContainsFunc(v.OperatorFiles, func(p string) bool { return !utf8.ValidString(p) }) {
			jv := *v
			jv.OperatorFiles = nil
			for _, p := range v.OperatorFiles {
				jv.OperatorFiles = append(jv.OperatorFiles, printable.Escape(p))
				jv.OperatorFilesBase64 = append(jv.OperatorFilesBase64, []byte(p))
			}
			v = &jv
		}
		// Entry names are the initrd's: C1 controls and format runes,
		// which encoding/json leaves raw, are escaped for the terminal.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			File string `json:"file"`
			*initrd.Archive
			Vouched *vouched `json:"vouched,omitempty"`
		}{pos[0], a, v}); err != nil {
			fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
			return exitFail
		}
		stdout.Write(printable.JSON(buf.Bytes()))
		return exitOK
	}
	if err := a.WriteListing(stdout); err != nil {
		fmt.Fprintf(stderr, "hostbuild inspect: %v\n", err)
		return exitFail
	}
	switch {
	case v == nil:
	case !v.OK:
		fmt.Fprintf(stdout, "# NOT VOUCHED FOR: %s\n", printable.Escape(v.Error))
	default:
		list := "none"
		if len(v.OperatorFiles) > 0 {
			list = strings.Join(v.OperatorFiles, ", ")
		}
		fmt.Fprintf(stdout, "# content list: covers every file; operator's files (--file, --exec, --ca-bundle): %s\n", printable.Escape(list))
	}
	fmt.Fprintf(stdout, "# %s: %s, %d bytes, %d entries in %d archive(s), sha256 %s\n",
		printable.Escape(pos[0]), a.Compression, a.Size, len(a.Entries), a.Archives, a.SHA256)
	if a.PayloadUnknown != "" {
		fmt.Fprintf(stdout, "# payload /bin/katana: unknown: %s\n", printable.Escape(a.PayloadUnknown))
	} else if p := a.Payload; p != nil && p.Encoding == "frames" {
		fmt.Fprintf(stdout, "# payload /bin/katana: %d bytes, sha256 %s, stored as %s (%d zstd frames, %d bytes) for the init to check and decode\n",
			p.Size, p.SHA256, p.Stored, p.Frames, p.Packed)
	} else if p != nil {
		fmt.Fprintf(stdout, "# payload /bin/katana: %d bytes, sha256 %s, stored inline\n", p.Size, p.SHA256)
	}
	return exitOK
}

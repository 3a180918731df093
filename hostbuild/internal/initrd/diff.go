package initrd

import (
	"fmt"
	"io"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// Change is one entry-level difference between two initrds.
type Change struct {
	Kind string `json:"kind"` // added, removed, type, mode, owner, content, link, device, mtime, nlink, archive
	Path string `json:"path,omitempty"`
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
}

// String is c on one line, its paths and descriptions (the archives'
// text) with unprintable runes escaped.
func (c Change) String() string {
	c.Path, c.A, c.B = printable.Escape(c.Path), printable.Escape(c.A), printable.Escape(c.B)
	switch c.Kind {
	case "added":
		return fmt.Sprintf("added    %s (%s)", c.Path, c.B)
	case "removed":
		return fmt.Sprintf("removed  %s (%s)", c.Path, c.A)
	case "archive":
		return fmt.Sprintf("archive  %s: %s -> %s", c.Path, c.A, c.B)
	}
	return fmt.Sprintf("%-8s %s: %s -> %s", c.Kind, c.Path, c.A, c.B)
}

func describe(e Entry) string {
	switch e.Type {
	case "file":
		return fmt.Sprintf("file %s %d bytes sha256 %s", e.Mode, e.Size, e.SHA256)
	case "symlink":
		return "symlink -> " + e.Link
	case "chardev", "blockdev":
		return fmt.Sprintf("%s %s %s", e.Type, e.Mode, e.Device)
	}
	return e.Type + " " + e.Mode
}

// Diff lists the differences from a to b, in path order. When every entry is
// the same but the files are not, it says what else differs (compression,
// archive count) so that two builds that disagree always get a reason.
func Diff(a, b *Archive) []Change {
	var out []Change
	i, j := 0, 0
	for i < len(a.Entries) || j < len(b.Entries) {
		switch {
		case j == len(b.Entries) || i < len(a.Entries) && a.Entries[i].Path < b.Entries[j].Path:
			out = append(out, Change{Kind: "removed", Path: a.Entries[i].Path, A: describe(a.Entries[i])})
			i++
		case i == len(a.Entries) || b.Entries[j].Path < a.Entries[i].Path:
			out = append(out, Change{Kind: "added", Path: b.Entries[j].Path, B: describe(b.Entries[j])})
			j++
		default:
			out = append(out, entryDiff(a.Entries[i], b.Entries[j])...)
			i++
			j++
		}
	}
	if len(out) == 0 && a.SHA256 != b.SHA256 {
		if a.Compression != b.Compression {
			out = append(out, Change{Kind: "archive", Path: "compression", A: a.Compression, B: b.Compression})
		}
		if a.Archives != b.Archives {
			out = append(out, Change{Kind: "archive", Path: "cpio archives", A: fmt.Sprint(a.Archives), B: fmt.Sprint(b.Archives)})
		}
		if len(out) == 0 {
			out = append(out, Change{Kind: "archive", Path: "bytes", A: "sha256 " + a.SHA256, B: "sha256 " + b.SHA256 + " (same entries: compression settings, entry order or inode numbers differ)"})
		}
	}
	return out
}

func entryDiff(x, y Entry) []Change {
	p := x.Path
	if x.Type != y.Type {
		return []Change{{Kind: "type", Path: p, A: describe(x), B: describe(y)}}
	}
	var out []Change
	if x.Mode != y.Mode {
		out = append(out, Change{Kind: "mode", Path: p, A: x.Mode, B: y.Mode})
	}
	if x.UID != y.UID || x.GID != y.GID {
		out = append(out, Change{Kind: "owner", Path: p, A: fmt.Sprintf("%d:%d", x.UID, x.GID), B: fmt.Sprintf("%d:%d", y.UID, y.GID)})
	}
	if x.SHA256 != y.SHA256 || x.Size != y.Size {
		out = append(out, Change{Kind: "content", Path: p,
			A: fmt.Sprintf("%d bytes sha256 %s", x.Size, x.SHA256), B: fmt.Sprintf("%d bytes sha256 %s", y.Size, y.SHA256)})
	}
	if x.Link != y.Link {
		out = append(out, Change{Kind: "link", Path: p, A: x.Link, B: y.Link})
	}
	if x.Device != y.Device {
		out = append(out, Change{Kind: "device", Path: p, A: x.Device, B: y.Device})
	}
	if x.MTime != y.MTime {
		out = append(out, Change{Kind: "mtime", Path: p, A: fmt.Sprint(x.MTime), B: fmt.Sprint(y.MTime)})
	}
	if x.NLink != y.NLink {
		out = append(out, Change{Kind: "nlink", Path: p, A: fmt.Sprint(x.NLink), B: fmt.Sprint(y.NLink)})
	}
	return out
}

// WriteDiff prints changes one per line.
func WriteDiff(w io.Writer, changes []Change) error {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

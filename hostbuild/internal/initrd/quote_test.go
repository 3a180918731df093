package initrd

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// rawText reports whether s holds a rune a terminal acts on or that
// reorders the line: what the errors below must show escaped.
func rawText(s string) bool { return strings.ContainsAny(s, "\x1b\r\u202e") }

// An initrd's entry names are its author's text: each refusal of
// OperatorFiles (checkVouched, the content list check, checkMetadata)
// and the "ends in /." reason name the entry escaped, in the package's
// own errors and not only behind hostbuild's stderr backstop. A content
// list path cannot hold a C0 control (the init's parser refuses it), but
// can hold U+202E, which reverses the rest of the line.
func TestVouchErrorsEscapeNames(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Compression = "none"
	_, a := packAndRead(t, o)
	img := pack(t, o)
	withList := func(extra map[string]string) entry {
		c := initrdlayout.Contents{}
		for p, s := range a.contents {
			c[p] = s
		}
		for p, data := range extra {
			c[p] = sha256.Sum256([]byte(data))
		}
		return entry{initrdlayout.ContentsPath, newc.TypeReg | 0o644, string(c.Format())}
	}
	const esc = "x\x1b[2K\rOK "
	for _, tc := range []struct {
		name string
		ents []entry
		want string
	}{
		{"not a file pack makes", []entry{{"etc/" + esc, newc.TypeReg | 0o644, "x"}}, "is not a file hostbuild pack makes there"},
		{"not in the content list", []entry{{initrdlayout.OperatorDir + "/" + esc, newc.TypeReg | 0o644, "x"}}, "is not in the content list"},
		{"does not match", []entry{withList(map[string]string{initrdlayout.OperatorDir + "/y\u202e": "listed"}), {initrdlayout.OperatorDir + "/y\u202e", newc.TypeReg | 0o644, "other"}}, "does not match the content list"},
		{"special", []entry{{esc, newc.TypeLink | 0o777, "/dev/null"}}, "the layout does not make"},
		{"listed, not held", []entry{withList(map[string]string{initrdlayout.OperatorDir + "/v\u202e": "absent"})}, "which the initrd does not hold as a file"},
		{"metadata", []entry{{"w" + esc, newc.TypeDir | 0o700, ""}}, "(the init would refuse to boot)"},
	} {
		ar, err := Read(bytes.NewReader(appendArchive(t, img, tc.ents...)))
		if err != nil {
			t.Errorf("%s: Read: %v", tc.name, err)
			continue
		}
		_, err = ar.OperatorFiles()
		if err == nil || !strings.Contains(err.Error(), tc.want) || rawText(err.Error()) {
			t.Errorf("%s: OperatorFiles: %q; want %q, the name escaped", tc.name, err, tc.want)
		}
	}
	ar, err := Read(bytes.NewReader(appendArchive(t, img, entry{esc + "/.", newc.TypeReg | 0o644, "x"})))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ar.PayloadUnknown, "ends in") || rawText(ar.PayloadUnknown) {
		t.Errorf("entry ending in /.: unknown %q; want the reason, the name escaped", ar.PayloadUnknown)
	}
}

// A payload's interpreter path and a Go program's GOOS are the binary's
// own bytes: CheckStaticELF quotes them.
func TestCheckStaticELFQuotesBinaryText(t *testing.T) {
	err := CheckStaticELF(testelf.Executable("/lib/ld\x1b[2K\rOK", []byte("x")))
	if err == nil || !strings.Contains(err.Error(), `interpreter "/lib/ld\x1b[2K\rOK"`) || rawText(err.Error()) {
		t.Errorf("interpreter with ESC: %q; want it quoted", err)
	}
	b := goHello(t, "linux")
	// The build info's "GOOS=linux" setting, rewritten in place (same
	// length, so the length-prefixed blobs stay valid).
	old, evil := []byte("\tGOOS=linux\n"), []byte("\tGOOS=\x1b[2Kx\n")
	if !bytes.Contains(b, old) {
		t.Fatal("no GOOS=linux setting in the build info")
	}
	err = CheckStaticELF(bytes.ReplaceAll(b, old, evil))
	if err == nil || !strings.Contains(err.Error(), `GOOS="\x1b[2Kx"`) || rawText(err.Error()) {
		t.Errorf("GOOS with ESC: %q; want it quoted", err)
	}
}

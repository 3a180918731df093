package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// inspect --json and diff --json keep names that are not UTF-8 apart and
// whole: encoding/json wrote "opt/a\xff" and "opt/a\xfe" both as
// "opt/a\ufffd". The path is then the listing's escaped form, and
// path_base64 holds its bytes.
func TestInspectDiffJSONNamesNotUTF8(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, names ...string) string {
		var b bytes.Buffer
		w := newc.NewWriter(&b)
		w.WriteHeader(&newc.Header{Name: "opt", Mode: newc.TypeDir | 0o755, NLink: 2})
		for _, n := range names {
			if err := w.WriteHeader(&newc.Header{Name: n, Mode: newc.TypeReg | 0o644, NLink: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.img")
	odd := write("odd.img", "opt/a\xfe", "opt/a\xff", `opt/a\xff`)
	type name struct {
		Path       string `json:"path"`
		PathBase64 []byte `json:"path_base64"`
	}
	raw := func(n name) string {
		if n.PathBase64 != nil {
			return string(n.PathBase64)
		}
		return n.Path
	}
	want := []string{"opt/a\\xff", "opt/a\xfe", "opt/a\xff"}
	check := func(what string, got []string, texts []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: names %q, want %q", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: name %d is %q in JSON (shown %q), want %q", what, i, got[i], texts[i], want[i])
			}
		}
	}

	_, stdout, stderr := runCmd(t, "", "inspect", "--json", odd)
	var ins struct {
		Entries []name `json:"entries"`
	}
	if err := json.Unmarshal([]byte(stdout), &ins); err != nil {
		t.Fatalf("inspect --json: %v\n%s%s", err, stdout, stderr)
	}
	var got, texts []string
	for _, e := range ins.Entries[1:] {
		got, texts = append(got, raw(e)), append(texts, e.Path)
	}
	check("inspect --json", got, texts)

	_, stdout, stderr = runCmd(t, "", "diff", "--json", plain, odd)
	var changes []name
	if err := json.Unmarshal([]byte(stdout), &changes); err != nil {
		t.Fatalf("diff --json: %v\n%s%s", err, stdout, stderr)
	}
	got, texts = nil, nil
	for _, c := range changes {
		got, texts = append(got, raw(c)), append(texts, c.Path)
	}
	check("diff --json", got, texts)
}

// The operator's files inspect --json names under "vouched" likewise: a
// content list may name a file that is not UTF-8 (pack refuses one, an
// appended archive need not), and operator_files_base64 gives the names'
// bytes.
func TestInspectJSONOperatorFilesNotUTF8(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	if _, e, code := hostbuild(t, dir, nil, "pack", "-q", "--compress", "none", "--init", "guestinit", "--payload", "katana", "--kernel-modules", "k", "-o", "a.img"); code != 0 {
		t.Fatalf("pack: %s", e)
	}
	img, err := os.ReadFile(filepath.Join(dir, "a.img"))
	if err != nil {
		t.Fatal(err)
	}
	// The content list as packed, and two more files it covers.
	var list []byte
	nr := newc.NewReader(bytes.NewReader(img))
	for {
		h, err := nr.Next()
		if err != nil {
			break
		}
		if h.Name == initrdlayout.ContentsPath {
			list, _ = io.ReadAll(nr)
		}
	}
	if list == nil {
		t.Fatal("no content list in the packed initrd")
	}
	lines := strings.Split(strings.TrimSuffix(string(list), "\n"), "\n")
	extra := []string{"etc/katana/a\xfe", "etc/katana/a\xff"}
	for _, p := range extra {
		sum := sha256.Sum256([]byte("x"))
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+p)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	list = []byte(strings.Join(lines, "\n") + "\n")
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{initrdlayout.ContentsPath, list}, {extra[0], []byte("x")}, {extra[1], []byte("x")}} {
		if err := w.WriteHeader(&newc.Header{Name: f.name, Mode: newc.TypeReg | 0o644, NLink: 1, Size: uint32(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	w.Close()
	for len(img)%4 != 0 {
		img = append(img, 0)
	}
	p := filepath.Join(dir, "b.img")
	if err := os.WriteFile(p, append(img, b.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stdout, stderr := runCmd(t, "", "inspect", "--json", p)
	var got struct {
		Vouched struct {
			OK     bool     `json:"ok"`
			Files  []string `json:"operator_files"`
			Base64 [][]byte `json:"operator_files_base64"`
			Error  string   `json:"error"`
		} `json:"vouched"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("inspect --json: %v\n%s%s", err, stdout, stderr)
	}
	v := got.Vouched
	if !v.OK {
		t.Fatalf("vouched %+v, want ok", v)
	}
	var names []string
	for i, f := range v.Files {
		if i < len(v.Base64) {
			f = string(v.Base64[i])
		}
		names = append(names, f)
	}
	for _, p := range extra {
		if !slices.Contains(names, "/"+p) {
			t.Errorf("operator files %q (from %q, %q): /%q missing", names, v.Files, v.Base64, p)
		}
	}
}

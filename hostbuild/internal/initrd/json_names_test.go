package initrd

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// jsonName is an entry's name (or symlink target, or a change's field) as
// --json gives it: the escaped form, and its bytes when it is not UTF-8.
type jsonName struct {
	text string
	raw  []byte
}

func (n jsonName) bytes() string {
	if n.raw != nil {
		return string(n.raw)
	}
	return n.text
}

// Names that are not valid UTF-8 come out of JSON whole: encoding/json
// writes each such byte as U+FFFD, so "a\xff" and "a\xfe" printed alike
// and neither could be told from the output. They are written as the
// listing escapes them, with their bytes in base64 beside them; valid
// names are written as before, byte for byte.
func TestEntryJSONNamesNotUTF8(t *testing.T) {
	ents := []entry{{"opt", dirMode, ""}, {"opt/a\xff", regExec, "1"}, {"opt/a\xfe", regExec, "2"}, {`opt/a\xff`, regExec, "3"},
		{"opt/l", symlink, "t\xff"}, {"opt/m", symlink, "t\ufffd"}, {"opt/\u009bok", regExec, "4"}}
	a, err := Read(bytes.NewReader(appendArchive(t, nil, ents...)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a.Entries)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Path       string `json:"path"`
		PathBase64 []byte `json:"path_base64"`
		Link       string `json:"link"`
		LinkBase64 []byte `json:"link_base64"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, g := range got {
		e := a.Entries[i]
		path, link := jsonName{g.Path, g.PathBase64}, jsonName{g.Link, g.LinkBase64}
		if path.bytes() != e.Path || link.bytes() != e.Link {
			t.Errorf("entry %q -> %q: JSON gives %q -> %q", e.Path, e.Link, path.bytes(), link.bytes())
		}
		if g.Path != printable.Escape(e.Path) && g.PathBase64 != nil {
			t.Errorf("entry %q: path %q, want the listing's %q", e.Path, g.Path, printable.Escape(e.Path))
		}
		if seen[g.Path+"\x00"+string(g.PathBase64)] {
			t.Errorf("two entries give path %q in JSON", g.Path)
		}
		seen[g.Path+"\x00"+string(g.PathBase64)] = true
	}
	// Valid names: what encoding/json writes of the entry without
	// MarshalJSON.
	type plainEntry Entry
	for _, e := range a.Entries {
		if e.Path == "opt/a\xff" || e.Path == "opt/a\xfe" || e.Path == "opt/l" {
			continue
		}
		x, _ := json.Marshal(e)
		y, _ := json.Marshal(plainEntry(e))
		if !bytes.Equal(x, y) {
			t.Errorf("entry %q: JSON %s, want as before: %s", e.Path, x, y)
		}
	}
}

// Diff's changes likewise: a path, and a description naming a symlink's
// target, that are not UTF-8.
func TestChangeJSONNamesNotUTF8(t *testing.T) {
	x, err := Read(bytes.NewReader(appendArchive(t, nil, entry{"opt", dirMode, ""}, entry{"opt/l", symlink, "t\xff"})))
	if err != nil {
		t.Fatal(err)
	}
	y, err := Read(bytes.NewReader(appendArchive(t, nil, entry{"opt", dirMode, ""}, entry{"opt/a\xff", regExec, "1"}, entry{"opt/a\xfe", regExec, "2"},
		entry{"opt/l", symlink, "t\xfe"})))
	if err != nil {
		t.Fatal(err)
	}
	changes := Diff(x, y)
	b, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Kind       string `json:"kind"`
		Path       string `json:"path"`
		PathBase64 []byte `json:"path_base64"`
		A          string `json:"a"`
		ABase64    []byte `json:"a_base64"`
		B          string `json:"b"`
		BBase64    []byte `json:"b_base64"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(changes) {
		t.Fatalf("%d changes in JSON, want %d: %s", len(got), len(changes), b)
	}
	for i, g := range got {
		c := changes[i]
		if p, a, b := (jsonName{g.Path, g.PathBase64}).bytes(), (jsonName{g.A, g.ABase64}).bytes(), (jsonName{g.B, g.BBase64}).bytes(); p != c.Path || a != c.A || b != c.B {
			t.Errorf("change %+v: JSON gives %q %q %q", c, p, a, b)
		}
	}
	if got[0].Path == got[1].Path {
		t.Errorf("two changes give path %q in JSON", got[0].Path)
	}
	// Valid text: as before.
	type plainChange Change
	c := Change{Kind: "link", Path: "opt/\u009bl", A: "<a>", B: "b"}
	p, _ := json.Marshal(c)
	q, _ := json.Marshal(plainChange(c))
	if !bytes.Equal(p, q) {
		t.Errorf("change %+v: JSON %s, want as before: %s", c, p, q)
	}
}

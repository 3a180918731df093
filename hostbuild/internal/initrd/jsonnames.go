package initrd

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
)

// jsonText returns s for JSON, and its bytes when it is not valid UTF-8:
// encoding/json would write each such byte as U+FFFD, so that two names
// print alike and neither can be told. Such a string is written as the
// listing escapes it (printable.Escape: \xff), its bytes beside it in a
// "<field>_base64" field; valid UTF-8 is written as it is, with none.
func jsonText(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return printable.Escape(s), []byte(s)
}

// MarshalJSON writes e as encoding/json does, but for a path or symlink
// target that is not valid UTF-8 (jsonText): path_base64, link_base64.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	v := struct {
		plain
		PathBase64 []byte `json:"path_base64,omitempty"`
		LinkBase64 []byte `json:"link_base64,omitempty"`
	}{plain: plain(e)}
	v.Path, v.PathBase64 = jsonText(e.Path)
	v.Link, v.LinkBase64 = jsonText(e.Link)
	return json.Marshal(v)
}

// MarshalJSON writes c as encoding/json does, but for a path or
// description that is not valid UTF-8 (jsonText): path_base64, a_base64,
// b_base64.
func (c Change) MarshalJSON() ([]byte, error) {
	type plain Change
	v := struct {
		plain
		PathBase64 []byte `json:"path_base64,omitempty"`
		ABase64    []byte `json:"a_base64,omitempty"`
		BBase64    []byte `json:"b_base64,omitempty"`
	}{plain: plain(c)}
	v.Path, v.PathBase64 = jsonText(c.Path)
	v.A, v.ABase64 = jsonText(c.A)
	v.B, v.BBase64 = jsonText(c.B)
	return json.Marshal(v)
}

package strictjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	C int `json:"c"`
}

type doc struct {
	A       string           `json:"a"`
	B       []inner          `json:"b"`
	M       map[string]inner `json:"m"`
	P       *inner           `json:"p,omitempty"`
	NoTag   int
	Skipped int `json:"-"`
	hidden  int //lint:ignore U1000 an unexported field: not a key
}

var docType = reflect.TypeOf(doc{})

func TestCheckKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" accepted, else in the error
	}{
		{`{"a":"x","b":[{"c":1}],"m":{"any key":{"c":2},"C":{"c":3}},"p":{"c":4},"NoTag":7}`, ""},
		{`{}`, ""},
		{`{"p":null,"b":null,"m":null}`, ""},
		{`{"a":"x","a":"y"}`, `key "a" appears twice in the object at $`},
		// Escapes name the same key: still a repeat.
		{`{"a":"x","\u0061":"y"}`, `key "a" appears twice`},
		{`{"A":"x"}`, `key "A" at $.A is not "a": keys are case-sensitive`},
		{`{"notag":1}`, `key "notag" at $.notag is not "NoTag"`},
		{`{"b":[{"c":1},{"C":2}]}`, `key "C" at $.b[1].C is not "c"`},
		{`{"b":[{"c":1,"c":2}]}`, `key "c" appears twice in the object at $.b[0]`},
		{`{"m":{"k":{"c":1,"c":1}}}`, `appears twice in the object at $.m.k`},
		{`{"m":{"a b":{"x":1}}}`, `unknown key "x" at $.m["a b"].x`},
		{`{"m":{"k":1,"k":2}}`, `key "k" appears twice in the object at $.m`},
		{`{"p":{"C":1}}`, `at $.p.C is not "c"`},
		{`{"Skipped":1}`, `unknown key "Skipped" at $.Skipped`},
		{`{"hidden":1}`, `unknown key "hidden"`},
		{`{"a":{"c":1}}`, `$.a: an object where the schema has string`},
		{`{"b":{"c":1}}`, `$.b: an object where the schema has []strictjson.inner`},
		{`{"a":[1]}`, `$.a: an array where the schema has string`},
		{`{"a":"x"`, `decoding JSON at $`},
		{`{"b":[{"c":1}`, `decoding JSON at $.b`},
	} {
		err := CheckKeys([]byte(tc.in), docType)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one with %q", tc.in, err, tc.want)
		}
	}
	// Deeper than the type: not walked (map values of type int hold no objects).
	if err := CheckKeys([]byte(`{"k":1}`), reflect.TypeOf(map[string]int{})); err != nil {
		t.Errorf("map[string]int: %v", err)
	}
	if err := CheckKeys([]byte(`[{},{"c":1,"c":2}]`), reflect.TypeOf([2]inner{})); err == nil || !strings.Contains(err.Error(), "appears twice in the object at $[1]") {
		t.Errorf("array: %v", err)
	}
	if err := CheckKeys([]byte(`{"k":1}`), reflect.TypeOf((**doc)(nil))); err == nil || !strings.Contains(err.Error(), `unknown key "k"`) {
		t.Errorf("through pointers: %v", err)
	}
}

// FuzzCheckKeys: a document that encoding/json decodes and CheckKeys
// accepts reads the same to a case-sensitive reader that keeps the first
// of a repeated key: every key of it, as that reader sees it, is where
// encoding/json (case-insensitive, last one wins) put its value.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","b":[{"c":1}],"m":{"k":{"c":2}},"p":{"c":4},"NoTag":7}`,
		`{"A":"x"}`, `{"a":"x","a":"y"}`, `{"m":{"K":{"c":1},"k":{"c":2}}}`, `{"b":[{"C":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		if json.Unmarshal(b, &d) != nil {
			return
		}
		if CheckKeys(b, docType) != nil {
			return
		}
		orig, err := firstWins(json.NewDecoder(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("generic decode failed where the typed one did not: %q: %v", b, err)
		}
		var back any
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if path, ok := subset(orig, back, "$"); !ok {
			t.Fatalf("accepted %q, but %s reads differently (re-encoded: %s)", b, path, out)
		}
	})
}

// subset reports whether every key in a is in b with the same value
// (objects compared key by key, arrays and scalars whole, null in a
// matching anything: encoding/json leaves the field as it was).
func subset(a, b any, path string) (string, bool) {
	switch av := a.(type) {
	case nil:
		return "", true
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range av {
			w, ok := bv[k]
			if !ok {
				return path + "." + k, false
			}
			if p, ok := subset(v, w, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) < len(av) {
			return path, false
		}
		for i := range av {
			if p, ok := subset(av[i], bv[i], path); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, reflect.DeepEqual(a, b)
	}
}

// firstWins decodes one JSON value generically, keeping the first of a
// repeated key, as some readers do.
func firstWins(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := firstWins(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.(string)]; !dup {
				m[k.(string)] = v
			}
		}
		_, err = dec.Token()
		return m, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := firstWins(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = dec.Token()
		return a, err
	}
	return tok, nil
}

// isIdent decides whether a key is written $.key or $["key"] in a path:
// letters, '_' and, after the first character, digits; each range at both
// ends and the characters just outside it.
func TestIsIdent(t *testing.T) {
	for _, k := range []string{"a", "z", "A", "Z", "_", "x0", "x9", "_9", "aZ_09"} {
		if !isIdent(k) {
			t.Errorf("isIdent(%q) = false", k)
		}
	}
	for _, k := range []string{"", "0", "9", "`", "{", "@", "[", "/", ":", "x/", "x:", "x`", "x{", "x@", "x[", "a b", "é"} {
		if isIdent(k) {
			t.Errorf("isIdent(%q) = true", k)
		}
	}
}

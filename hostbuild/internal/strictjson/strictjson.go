// Package strictjson refuses JSON documents that readers disagree on:
// encoding/json lets the last of a repeated key win and matches keys to
// struct fields case-insensitively, while jq takes the last, other readers
// the first, and every other reader matches case exactly. A document that
// is verified or launched must read the same to all of them.
package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// CheckKeys refuses b, a JSON value that encoding/json decodes into the Go
// type t without error, if any object in it has a repeated key, or a key
// that is not exactly (case-sensitively) the json name of a field of the
// struct it decodes into (map keys are free-form). The error names the key
// and its JSON path ("$.config.argv"). The walk is as deep as t, no deeper.
func CheckKeys(b []byte, t reflect.Type) error {
	return checkKeys(json.NewDecoder(bytes.NewReader(b)), t, "$")
}

// checkKeys reads one JSON value from dec and refuses any object in it with a
// repeated key, or with a key that is not exactly the json name of a field
// of the Go type t it decodes into (map keys are free-form). path is the
// value's JSON path, for the error.
func checkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decoding JSON at %s: %w", path, err)
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		default:
			return fmt.Errorf("%s: an object where the schema has %v", path, t)
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("decoding JSON at %s: %w", path, err)
			}
			k := tok.(string)
			kpath := path + "." + k
			if !isIdent(k) {
				kpath = path + "[" + strconv.Quote(k) + "]"
			}
			if seen[k] {
				return fmt.Errorf("key %q appears twice in the object at %s (readers disagree on which one counts)", k, path)
			}
			seen[k] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[k]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, k) {
							return fmt.Errorf("key %q at %s is not %q: keys are case-sensitive", k, kpath, name)
						}
					}
					return fmt.Errorf("unknown key %q at %s", k, kpath)
				}
				vt = ft
			}
			if err := checkKeys(dec, vt, kpath); err != nil {
				return err
			}
		}
	case json.Delim('['):
		if t == nil || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array) {
			return fmt.Errorf("%s: an array where the schema has %v", path, t)
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("decoding JSON at %s: %w", path, err)
	}
	return nil
}

// isIdent reports whether a key can follow a dot in a JSON path unquoted.
func isIdent(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return k != ""
}

// jsonFields maps the json names of struct type t's fields to their types,
// as encoding/json names them (tag name, else the Go field name).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

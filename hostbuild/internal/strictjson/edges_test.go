package strictjson

import (
	"reflect"
	"strings"
	"testing"
)

// A field tagged json:"-" is no key of the document: encoding/json never
// fills it, so a key "-" is unknown like any other.
func TestCheckKeysSkippedField(t *testing.T) {
	type doc struct {
		A      string `json:"a"`
		Hidden string `json:"-"`
	}
	if err := CheckKeys([]byte(`{"a":"x"}`), reflect.TypeOf(doc{})); err != nil {
		t.Fatalf("good document: %v", err)
	}
	err := CheckKeys([]byte(`{"a":"x","-":"y"}`), reflect.TypeOf(doc{}))
	if err == nil || !strings.Contains(err.Error(), `unknown key "-"`) {
		t.Errorf(`key "-" for a json:"-" field: %v, want unknown key`, err)
	}
}

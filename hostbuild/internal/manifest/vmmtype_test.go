package manifest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A manifest names its VMM type explicitly. measure.ParseVMMType reads ""
// as QEMU (a default for command-line options), but Generate always writes
// the name, so an empty or missing vmm_type is a manifest no hostbuild
// wrote: Validate must refuse it rather than let the parser's default pick
// the hypervisor model that launch and attest then rely on.
func TestParseRefusesEmptyVMMType(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{"empty", func(m map[string]any) { m["vmm_type"] = "" }},
		{"absent", func(m map[string]any) { delete(m, "vmm_type") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(validJSON(t), &m); err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err == nil {
				t.Fatalf("Parse accepted a manifest with vmm_type %s (read as %q)", tc.name, got.VMMType)
			}
			if want := `vmm_type "": want QEMU, ec2 or gce`; !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("Parse error = %q, want ErrInvalid containing %q", err, want)
			}
		})
	}
}

package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parsedGolden(t *testing.T) *Manifest {
	t.Helper()
	m, err := Parse(validJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A digest field is exactly its length in lowercase hex: one longer (or with
// a suffix) is refused, not accepted as if its first characters were the
// digest.
func TestValidateHexExactLength(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(m *Manifest)
		want string
	}{
		{"sha256 one digit long", func(m *Manifest) { m.Components.Kernel.SHA256 += "0" }, "sha256"},
		{"sha256 doubled", func(m *Manifest) { m.Components.OVMF.SHA256 += m.Components.OVMF.SHA256 }, "sha256"},
		{"measurement one digit long", func(m *Manifest) { m.Measurements[0].Measurement += "a" }, "measurement"},
		{"operator file sha256 long", func(m *Manifest) {
			m.Components.Files = &[]OperatorFile{{Path: "/etc/katana/a", Size: 1, SHA256: strings.Repeat("0", 65)}}
		}, "sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parsedGolden(t)
			tc.mod(m)
			if err := m.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

// A component's name is a base name: a NUL (which JSON carries as \u0000)
// is refused like a '/'.
func TestValidateComponentNameNUL(t *testing.T) {
	m := parsedGolden(t)
	m.Components.Initrd.Name = "initrd\x00.img"
	if err := m.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a base name") {
		t.Errorf("Validate with a NUL in a component name = %v, want ErrInvalid \"not a base name\"", err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	name := `"` + parsedGolden(t).Components.Initrd.Name + `"`
	if !bytes.Contains(b, []byte(name)) {
		t.Fatalf("golden has no %s", name)
	}
	b = bytes.Replace(b, []byte(name), []byte(`"initrd\u0000.img"`), 1)
	if _, err := Parse(b); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse with a NUL in a component name = %v, want ErrInvalid", err)
	}
}

// Lookup matches the vCPU type as well as the count: the golden manifest
// lists EPYC-Genoa and EPYC-v4 for each count, with different digests.
func TestLookupMatchesType(t *testing.T) {
	m := parsedGolden(t)
	for _, want := range m.Measurements {
		got, ok := m.Lookup(want.VCPUs, want.VCPUType)
		if !ok || got != want {
			t.Errorf("Lookup(%d, %s) = %+v, %v; want %+v", want.VCPUs, want.VCPUType, got, ok, want)
		}
	}
	if got, ok := m.Lookup(m.Measurements[0].VCPUs, "EPYC-Milan"); ok {
		t.Errorf("Lookup(%d, EPYC-Milan) = %+v, want none (not in the manifest)", m.Measurements[0].VCPUs, got)
	}
}

// WriteFile never writes what Load would refuse.
func TestWriteFileValidates(t *testing.T) {
	m := parsedGolden(t)
	m.GuestFeatures = "0x20" // no SNPActive
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := WriteFile(p, m); !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteFile of an invalid manifest = %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile of an invalid manifest left %s (stat: %v)", p, err)
	}
}

// Check, which runs before a command writes anything, refuses a guest
// policy that Generate would refuse at its end.
func TestCheckRefusesPolicy(t *testing.T) {
	in := writeInputs(t)
	o := genOptions(in)
	o.GuestPolicy = 0x10000 // bit 17 (reserved, must be one) clear
	if err := o.Check(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "guest policy 0x10000") {
		t.Errorf("Check with policy 0x10000 = %v, want ErrInvalid \"guest policy 0x10000\"", err)
	}
}

// Marshal writes the init's dependencies sorted whatever their order in
// the Manifest (one read from a file need not have them sorted), and
// leaves the caller's slice alone.
func TestMarshalSortsDeps(t *testing.T) {
	m := parsedGolden(t)
	m.InitBuildInfo = &BuildInfo{GoVersion: "go1.26", Path: "p", Main: "p", Deps: []string{"z.example/b@v1", "a.example/a@v1"}, Settings: map[string]string{}}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := bytes.Index(b, []byte("a.example/a@v1")), bytes.Index(b, []byte("z.example/b@v1"))
	if ia < 0 || ib < 0 || ia > ib {
		t.Errorf("Marshal wrote the deps out of order:\n%s", b)
	}
	if m.InitBuildInfo.Deps[0] != "z.example/b@v1" {
		t.Errorf("Marshal reordered the caller's deps: %q", m.InitBuildInfo.Deps)
	}
}

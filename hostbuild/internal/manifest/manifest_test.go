package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

func fixtureOVMF(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SHARED_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	p := filepath.Join(dir, "measure", "fixtures", "ovmf_AmdSev_suffix.bin")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: %v; set SHARED_DIR to the shared folder (make test does)", err)
	}
	return p
}

type inputs struct{ ovmf, kernel, initrd, payload string }

func writeInputs(t *testing.T) inputs {
	t.Helper()
	dir := t.TempDir()
	in := inputs{
		ovmf:    fixtureOVMF(t),
		kernel:  filepath.Join(dir, "vmlinuz"),
		initrd:  filepath.Join(dir, "initrd.img"),
		payload: filepath.Join(dir, "katana"),
	}
	for p, c := range map[string]byte{in.kernel: 'k', in.initrd: 'i', in.payload: 'p'} {
		if err := os.WriteFile(p, bytes.Repeat([]byte{c}, 100_000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func genOptions(in inputs) GenerateOptions {
	return GenerateOptions{
		OVMF: in.ovmf, Kernel: in.kernel, Initrd: in.initrd, Payload: in.payload,
		Cmdline:         `console=ttyS0 katana.args="--http.addr 0.0.0.0 --dev" <&>`,
		VCPUs:           []int{4, 1, 2},
		VCPUTypes:       []string{"EPYC-v4", "EPYC-Genoa"},
		SourceDateEpoch: 1700000000,
		ToolVersion:     "v0.0.0-test",
	}
}

func TestGenerateGolden(t *testing.T) {
	in := writeInputs(t)
	m, err := Generate(context.Background(), genOptions(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	// Every measurement equals a direct measure.Compute.
	for _, e := range m.Measurements {
		r, err := measure.Compute(context.Background(), measure.Options{
			VCPUs: e.VCPUs, VCPUType: e.VCPUType, OVMF: in.ovmf, Kernel: in.kernel, Initrd: in.initrd, Append: m.Cmdline,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Hex() != e.Measurement {
			t.Errorf("%d×%s: manifest %s, Compute %s", e.VCPUs, e.VCPUType, e.Measurement, r.Hex())
		}
	}
}

func TestDeterministic(t *testing.T) {
	in := writeInputs(t)
	o := genOptions(in)
	a, err := Generate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(o.VCPUs)
	slices.Reverse(o.VCPUTypes)
	b, err := Generate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := Marshal(a)
	bb, _ := Marshal(b)
	if !bytes.Equal(ab, bb) {
		t.Errorf("input order changes the bytes:\n%s\n%s", ab, bb)
	}
	// Marshal ∘ Parse is the identity on canonical bytes.
	p, err := Parse(ab)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := Marshal(p)
	if !bytes.Equal(ab, pb) {
		t.Errorf("re-encoding a parsed manifest changes it")
	}
}

func TestGenerateErrors(t *testing.T) {
	in := writeInputs(t)
	tests := []struct {
		name string
		mod  func(*GenerateOptions)
		want string
	}{
		{"no kernel", func(o *GenerateOptions) { o.Kernel = "" }, "needs the OVMF, kernel and initrd"},
		{"invalid utf-8 cmdline", func(o *GenerateOptions) { o.Cmdline = "a\xff" }, "not valid UTF-8"},
		{"nul in cmdline", func(o *GenerateOptions) { o.Cmdline = "a\x00b" }, "NUL"},
		{"non-ASCII cmdline", func(o *GenerateOptions) { o.Cmdline = "katana.args=é" }, "Latin-1"},
		{"newline in cmdline", func(o *GenerateOptions) { o.Cmdline = "a\nb" }, "newline"},
		{"control byte in cmdline", func(o *GenerateOptions) { o.Cmdline = "a\x1bb" }, "control byte 0x1B"},
		{"cmdline too long", func(o *GenerateOptions) { o.Cmdline = strings.Repeat("a", bootcfg.MaxLen+1) }, "2034 bytes, at most 2033"},
		{"policy without bit 17", func(o *GenerateOptions) { o.GuestPolicy = 0x10000 }, "reserved, must be 1"},
		{"duplicate count", func(o *GenerateOptions) { o.VCPUs = []int{1, 1} }, "given twice"},
		{"duplicate type", func(o *GenerateOptions) { o.VCPUTypes = []string{"EPYC", "EPYC"} }, "given twice"},
		{"unknown type", func(o *GenerateOptions) { o.VCPUTypes = []string{"EPYC-Zen9"} }, "unknown vCPU type"},
		{"bad vmm", func(o *GenerateOptions) { o.VMMType = "kvm" }, "unknown VMM type"},
		{"negative epoch", func(o *GenerateOptions) { o.SourceDateEpoch = -1 }, "negative"},
		{"missing payload", func(o *GenerateOptions) { o.Payload = o.Payload + ".nope" }, "opening payload"},
		{"init is not Go", func(o *GenerateOptions) { o.Init = o.Kernel }, "Go build info"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := genOptions(in)
			tc.mod(&o)
			m, err := Generate(context.Background(), o)
			if err == nil {
				t.Fatalf("Generate succeeded: %+v", m)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestReadBuildInfo(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := ReadBuildInfo(exe)
	if err != nil {
		t.Fatal(err)
	}
	if bi.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", bi.GoVersion, runtime.Version())
	}
	if !strings.HasPrefix(bi.Path, "github.com/katana-tee/snpboot/hostbuild/internal/manifest") {
		t.Errorf("Path %q", bi.Path)
	}
	if !slices.IsSorted(bi.Deps) {
		t.Errorf("Deps %v: not sorted", bi.Deps)
	}
	if bi.Settings["GOARCH"] != runtime.GOARCH {
		t.Errorf("Settings[GOARCH] = %q", bi.Settings["GOARCH"])
	}
	for _, tc := range []struct {
		bin, path string
		deps      bool
	}{
		{"guestinit", "github.com/katana-tee/snpboot/guestinit", true},
		{"standin-katana", "github.com/katana-tee/snpboot/hostbuild/testdata/standin-katana", false},
	} {
		t.Run(tc.bin, func(t *testing.T) {
			out := os.Getenv("OUT_DIR")
			bin := filepath.Join(out, tc.bin)
			if _, err := os.Stat(bin); out == "" || err != nil {
				t.Skipf("skipping: set OUT_DIR to a folder holding %s ('make build' then 'make test' do) to check a static guest binary's build info", tc.bin)
			}
			bi, err := ReadBuildInfo(bin)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{bi.Path, bi.Settings["-trimpath"], bi.Settings["CGO_ENABLED"], bi.GoVersion}
			if diff := cmp.Diff([]string{tc.path, "true", "0", runtime.Version()}, got); diff != "" {
				t.Errorf("build info (-want +got):\n%s", diff)
			}
			if !slices.IsSorted(bi.Deps) || tc.deps && len(bi.Deps) == 0 {
				t.Errorf("Deps %v: want a sorted list (non-empty: %v)", bi.Deps, tc.deps)
			}
		})
	}
}

func validJSON(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseErrors(t *testing.T) {
	good := validJSON(t)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	meas := func(m map[string]any) map[string]any { return m["measurements"].([]any)[0].(map[string]any) }
	comp := func(m map[string]any, c string) map[string]any {
		return m["components"].(map[string]any)[c].(map[string]any)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"not json", []byte("{"), "decoding JSON"},
		// encoding/json would read the byte as U+FFFD.
		{"invalid UTF-8", bytes.Replace(good, []byte(`"hostbuild"`), []byte("\"hostbuild\xff\""), 1), "not valid UTF-8 at byte"},
		{"byte order mark", append([]byte("\xef\xbb\xbf"), good...), "byte order mark"},
		{"epoch past 32 bits", edit(func(m map[string]any) { m["source_date_epoch"] = int64(1) << 32 }), "source_date_epoch 4294967296 is out of range"},
		{"epoch at int64's end", bytes.Replace(edit(func(m map[string]any) { m["source_date_epoch"] = 7 }), []byte(`"source_date_epoch":7`), []byte(`"source_date_epoch":9223372036854775807`), 1), "out of range"},
		{"trailing data", append(slices.Clone(good), []byte("{}")...), "trailing data"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), "unknown field"},
		{"other schema", edit(func(m map[string]any) { m["schema"] = "katana-snp-manifest/v2" }), "schema"},
		{"no tool", edit(func(m map[string]any) { m["tool"] = map[string]any{"name": "", "version": ""} }), "tool name"},
		{"bad sha256", edit(func(m map[string]any) { comp(m, "kernel")["sha256"] = "ABC" }), "64 lowercase hex"},
		{"path as name", edit(func(m map[string]any) { comp(m, "ovmf")["name"] = "a/b" }), "base name"},
		{"negative size", edit(func(m map[string]any) { comp(m, "initrd")["size"] = -1 }), "negative size"},
		{"bad vmm", edit(func(m map[string]any) { m["vmm_type"] = "qemu" }), "vmm_type"},
		{"hex features", edit(func(m map[string]any) { m["guest_features"] = "1" }), "canonical hex"},
		{"padded features", edit(func(m map[string]any) { m["guest_features"] = "0x01" }), "canonical hex"},
		{"features without SNPActive", edit(func(m map[string]any) { m["guest_features"] = "0x20" }), "bit 0"},
		{"bad policy", edit(func(m map[string]any) { m["guest_policy"] = "0x10000" }), "guest_policy"},
		{"no measurements", edit(func(m map[string]any) { m["measurements"] = []any{} }), "no measurements"},
		{"zero vcpus", edit(func(m map[string]any) { meas(m)["vcpus"] = 0 }), "vcpus 0"},
		{"unknown vcpu type", edit(func(m map[string]any) { meas(m)["vcpu_type"] = "EPYC-Zen9" }), "unknown vCPU type"},
		{"wrong vcpu sig", edit(func(m map[string]any) { meas(m)["vcpu_sig"] = "0x1" }), "does not match"},
		{"short measurement", edit(func(m map[string]any) { meas(m)["measurement"] = "00" }), "96 lowercase hex"},
		{"duplicate config", edit(func(m map[string]any) {
			l := m["measurements"].([]any)
			m["measurements"] = append(l, l[0])
		}), "listed twice"},
		{"cmdline with NUL", edit(func(m map[string]any) { m["cmdline"] = "a\x00" }), "NUL"},
		{"cmdline with NUL first", edit(func(m map[string]any) { m["cmdline"] = "\x00a" }), "NUL"},
		{"upper-case sha256", edit(func(m map[string]any) {
			comp(m, "kernel")["sha256"] = strings.ToUpper(comp(m, "kernel")["sha256"].(string))
		}), "64 lowercase hex"},
		{"non-hex sha256 of 64 characters", edit(func(m map[string]any) { comp(m, "initrd")["sha256"] = strings.Repeat("g", 64) }), "64 lowercase hex"},
		{"upper-case measurement", edit(func(m map[string]any) {
			meas(m)["measurement"] = strings.ToUpper(meas(m)["measurement"].(string))
		}), "96 lowercase hex"},
		{"too many vcpus", edit(func(m map[string]any) { meas(m)["vcpus"] = measure.MaxVCPUs + 1 }), "vcpus 4097 out of range 1..4096"},
		{"operator file outside /etc/katana", files(edit, opFile("/etc/hosts")), `components.files[0]: path "/etc/hosts" is not a clean path under /etc/katana/`},
		{"operator file relative", files(edit, opFile("etc/katana/a")), "not a clean path"},
		{"operator file the folder itself", files(edit, opFile("/etc/katana/")), "not a clean path"},
		{"operator file not clean", files(edit, opFile("/etc/katana/a/../b")), "not a clean path"},
		{"operator file with a newline", files(edit, opFile("/etc/katana/a\nb")), "not a clean path"},
		{"operator files out of order", files(edit, opFile("/etc/katana/b"), opFile("/etc/katana/a")), `components.files[1]: path "/etc/katana/a" is not after "/etc/katana/b"`},
		{"operator file twice", files(edit, opFile("/etc/katana/a"), opFile("/etc/katana/a")), "sorted, each once"},
		{"operator file negative size", files(edit, map[string]any{"path": "/etc/katana/a", "size": -1, "sha256": strings.Repeat("0", 64)}), "components.files[0]: negative size"},
		{"operator file bad sha256", files(edit, map[string]any{"path": "/etc/katana/a", "size": 1, "sha256": "00"}), "components.files[0]: sha256"},
		{"operator file unknown field", files(edit, map[string]any{"path": "/etc/katana/a", "size": 1, "sha256": strings.Repeat("0", 64), "mode": "0644"}), "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", m)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// opFile is a components.files entry at path.
func opFile(path string) map[string]any {
	return map[string]any{"path": path, "size": 3, "sha256": strings.Repeat("ab", 32)}
}

// files edits a manifest to list fs as its operator's files.
func files(edit func(func(map[string]any)) []byte, fs ...map[string]any) []byte {
	return edit(func(m map[string]any) {
		l := make([]any, len(fs))
		for i, f := range fs {
			l[i] = f
		}
		m["components"].(map[string]any)["files"] = l
	})
}

// The edges of what Validate accepts: SOURCE_DATE_EPOCH 0 (the default), an
// empty component and the largest vCPU count.
func TestParseAcceptsLimits(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(validJSON(t), &doc); err != nil {
		t.Fatal(err)
	}
	doc["source_date_epoch"] = 0
	doc["components"].(map[string]any)["initrd"].(map[string]any)["size"] = 0
	doc["measurements"].([]any)[0].(map[string]any)["vcpus"] = measure.MaxVCPUs
	doc["components"].(map[string]any)["files"] = []any{opFile("/etc/katana/a b/c.toml"), opFile("/etc/katana/z")}
	b, _ := json.Marshal(doc)
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if f := m.Components.Files; f == nil || len(*f) != 2 || (*f)[0].Path != "/etc/katana/a b/c.toml" {
		t.Errorf("Parse = operator files %+v", f)
	}
	if m.SourceDateEpoch != 0 || m.Components.Initrd.Size != 0 || !slices.ContainsFunc(m.Measurements, func(e Measurement) bool { return e.VCPUs == measure.MaxVCPUs }) {
		t.Errorf("Parse = epoch %d, initrd size %d, measurements %+v", m.SourceDateEpoch, m.Components.Initrd.Size, m.Measurements)
	}
}

// Check refuses what Generate would refuse before reading any file other
// than the OVMF, and accepts SOURCE_DATE_EPOCH 0.
func TestCheck(t *testing.T) {
	in := writeInputs(t)
	for _, tc := range []struct {
		name string
		mod  func(*GenerateOptions)
		want string // "" : no error
	}{
		{"good", func(o *GenerateOptions) {}, ""},
		{"epoch 0", func(o *GenerateOptions) { o.SourceDateEpoch = 0 }, ""},
		{"kernel file missing is not Check's business", func(o *GenerateOptions) { o.Kernel += ".nope" }, ""},
		{"negative epoch", func(o *GenerateOptions) { o.SourceDateEpoch = -1 }, "negative"},
		{"duplicate count", func(o *GenerateOptions) { o.VCPUs = []int{2, 2} }, "vCPU count 2 given twice"},
		{"cmdline too long", func(o *GenerateOptions) { o.Cmdline = strings.Repeat("a", bootcfg.MaxLen+1) }, "at most 2033"},
		{"no initrd", func(o *GenerateOptions) { o.Initrd = "" }, "needs the OVMF, kernel and initrd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := genOptions(in)
			tc.mod(&o)
			err := o.Check()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// A manifest whose cmdline the guest would not get byte for byte and whole
// through OVMF (written before Generate checked it) still loads, for plain
// boots and stored evidence; CheckOVMFCmdline, which launch applies in
// SEV-SNP mode, refuses it.
func TestParseKeepsOldCmdlines(t *testing.T) {
	good := validJSON(t)
	for _, tc := range []struct{ name, cmdline, want string }{
		{"non-ASCII", "console=ttyS0 katana.args=é", "Latin-1"},
		{"longer than OVMF leaves", strings.Repeat("a", 2040), "2040 bytes, at most 2033"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(good, &doc); err != nil {
				t.Fatal(err)
			}
			doc["cmdline"] = tc.cmdline
			b, _ := json.Marshal(doc)
			m, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := CheckOVMFCmdline(m.Cmdline); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckOVMFCmdline: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// encoding/json matches keys case-insensitively and keeps the last of a
// repeated key; jq keeps the first. A manifest that readers can disagree on
// (which cmdline boots?) is refused, naming the key and where it is.
func TestParseRefusesAmbiguousKeys(t *testing.T) {
	good := validJSON(t)
	replace := func(old, new string) []byte {
		t.Helper()
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("golden manifest lacks %s", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	replaceNth := func(old, new string, n int) []byte { // n counts from 0
		t.Helper()
		i := -1
		for k := 0; k <= n; k++ {
			j := bytes.Index(good[i+1:], []byte(old))
			if j < 0 {
				t.Fatalf("golden manifest has fewer than %d of %s", n+1, old)
			}
			i += 1 + j
		}
		return append(append(slices.Clone(good[:i]), new...), good[i+len(old):]...)
	}
	// The golden manifest has no build info; its settings map has free-form keys.
	withBuildInfo := func(settings string) []byte {
		i := bytes.LastIndexByte(good, '}')
		return append(slices.Clone(good[:i]), []byte(`, "init_build_info": {"go_version": "go1.24", "path": "p", "main": "m", "deps": [], "settings": {`+settings+`}}}`)...)
	}
	if _, err := Parse(withBuildInfo(`"-trimpath": "true", "CGO_ENABLED": "0", "cgo_enabled": "1"`)); err != nil {
		t.Fatalf("free-form settings keys refused: %v", err)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"cmdline twice", replace(`"cmdline"`, `"cmdline": "console=ttyS0 katana.args=--dev", "cmdline"`), `key "cmdline" appears twice in the object at $`},
		{"CMDLINE and cmdline", replace(`"cmdline"`, `"CMDLINE": "console=ttyS0 katana.args=--dev", "cmdline"`), `key "CMDLINE" at $.CMDLINE is not "cmdline"`},
		{"Cmdline", replace(`"cmdline"`, `"Cmdline"`), `key "Cmdline" at $.Cmdline is not "cmdline"`},
		{"escaped twice", replace(`"cmdline"`, `"cmdline": "x", "cmd\u006cine"`), `key "cmdline" appears twice`},
		{"nested twice", replace(`"sha256"`, `"sha256": "00", "sha256"`), `key "sha256" appears twice in the object at $.components.ovmf`},
		{"nested case", replace(`"vcpu_type"`, `"VCPU_Type"`), `key "VCPU_Type" at $.measurements[0].VCPU_Type is not "vcpu_type"`},
		{"upper-case key", replace(`"guest_features"`, `"GUEST_FEATURES"`), `key "GUEST_FEATURES" at $.GUEST_FEATURES is not "guest_features"`},
		{"upper-case key with digits", replace(`"sha256"`, `"SHA256"`), `key "SHA256" at $.components.ovmf.SHA256 is not "sha256"`},
		{"key that folds to a field", replace(`"schema"`, `"\u017fchema"`), `key "ſchema" at $["ſchema"] is not "schema"`},
		{"case in a later array element", replaceNth(`"vcpu_type"`, `"VCPU_TYPE"`, 2), `key "VCPU_TYPE" at $.measurements[2].VCPU_TYPE is not "vcpu_type"`},
		{"map key twice", withBuildInfo(`"GOOS": "linux", "GOOS": "plan9"`), `key "GOOS" appears twice in the object at $.init_build_info.settings`},
		{"odd map key twice", withBuildInfo(`"a.b": "1", "a.b": "2"`), `key "a.b" appears twice in the object at $.init_build_info.settings`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse succeeded, cmdline %q", m.Cmdline)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadAllowsLookup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.json")
	m, err := Parse(validJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("written file: %v, mode %v", err, st.Mode())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("Load(WriteFile(m)) (-want +got):\n%s", diff)
	}
	want := got.Measurements[2]
	for _, q := range []string{want.Measurement, strings.ToUpper(want.Measurement)} {
		e, ok := got.Allows(q)
		if !ok || e != want {
			t.Errorf("Allows(%s) = %+v, %v; want %+v", q, e, ok, want)
		}
	}
	if _, ok := got.Allows(strings.Repeat("0", 96)); ok {
		t.Error("Allows accepted an unknown measurement")
	}
	if e, ok := got.Lookup(want.VCPUs, want.VCPUType); !ok || e != want {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
	if _, ok := got.Lookup(3, "EPYC-v4"); ok {
		t.Error("Lookup found a configuration that is not in the manifest")
	}
	if _, err := Load(filepath.Join(dir, "nope.json")); err == nil || !strings.Contains(err.Error(), "opening manifest") {
		t.Errorf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(oversized) = %v, want ErrInvalid", err)
	}
	// A valid manifest padded with whitespace to MaxSize loads; one byte more does not.
	for _, size := range []int{MaxSize, MaxSize + 1} {
		valid := validJSON(t)
		padded := append(valid, bytes.Repeat([]byte("\n"), size-len(valid))...)
		if err := os.WriteFile(big, padded, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(big)
		if size == MaxSize && err != nil {
			t.Errorf("Load(%d-byte manifest) = %v, want it loaded", size, err)
		}
		if size > MaxSize && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than")) {
			t.Errorf("Load(%d-byte manifest) = %v, want ErrInvalid saying it is too large", size, err)
		}
	}
	if opts, err := got.MeasureOptions("o", "k", "i", 2, "EPYC-v4"); err != nil || opts.Append != got.Cmdline || opts.VMMType != got.VMMType || opts.GuestFeatures != 1 {
		t.Errorf("MeasureOptions = %+v, %v", opts, err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	m, err := Parse(validJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	// Into a missing folder: error, nothing left behind.
	if err := WriteFile(filepath.Join(dir, "missing", "m.json"), m); err == nil {
		t.Error("WriteFile into a missing folder succeeded")
	}
	// Over a folder: rename fails, the temporary file is removed.
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, m); err == nil {
		t.Error("WriteFile over a folder succeeded")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"taken"}, names); diff != "" {
		t.Errorf("folder after failed writes (-want +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"katana-snp-manifest/v1"}`))
	f.Add([]byte(`[]`))
	// Repeated and case-folded keys, at the top and nested (refused).
	f.Add([]byte(`{"schema":"katana-snp-manifest/v1","cmdline":"a","cmdline":"b"}`))
	f.Add([]byte(`{"SCHEMA":"katana-snp-manifest/v1","components":{"ovmf":{"Name":"o","name":"o"}}}`))
	f.Add([]byte(`{"init_build_info":{"settings":{"k":"1","k":"2"},"deps":["a"]},"measurements":[{"vcpus":1,"VCPUs":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid manifest: %v", err)
		}
		enc, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-parsing the encoding: %v", err)
		}
		enc2, _ := Marshal(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding is not stable")
		}
	})
}

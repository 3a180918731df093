package manifest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-sev-guest/abi"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/measure"
	"github.com/katana-tee/snpboot/hostbuild/internal/strictjson"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// DefaultGuestPolicy is SMT allowed plus the must-be-one bit 17; debug,
// migration agents and everything else off.
const DefaultGuestPolicy = 0x30000

// MaxSize bounds a manifest file read by Load.
const MaxSize = 16 << 20

// GenerateOptions are the inputs of Generate.
type GenerateOptions struct {
	OVMF, Kernel, Initrd string // paths, required
	Cmdline              string // exact kernel cmdline (may be empty)
	Payload, Init        string // optional paths of the files inside the initrd
	VCPUs                []int
	VCPUTypes            []string
	VMMType              string // "" means QEMU
	GuestFeatures        uint64 // 0 means measure.DefaultGuestFeatures
	GuestPolicy          uint64 // 0 means DefaultGuestPolicy
	SourceDateEpoch      int64
	ToolName             string // "" means "hostbuild"
	ToolVersion          string
}

// ErrInvalid marks a manifest (or manifest inputs) that fail validation.
var ErrInvalid = errors.New("invalid manifest")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Generate measures every combination of o.VCPUs × o.VCPUTypes and hashes
// the components. The OVMF, kernel and initrd are read once.
func Generate(ctx context.Context, o GenerateOptions) (*Manifest, error) {
	m, _, err := GenerateInputs(ctx, o)
	return m, err
}

// GenerateInputs is Generate that also returns what the measurement read
// of the OVMF, kernel and initrd (measure.Inputs: the firmware image as
// parsed, the kernel's boot header): a check of those files that the
// manifest's hashes must cover looks at these, not at the paths again.
func GenerateInputs(ctx context.Context, o GenerateOptions) (*Manifest, measure.Inputs, error) {
	var none measure.Inputs
	o, err := o.withDefaults()
	if err != nil {
		return nil, none, err
	}

	// The payload and init are hashed while the matrix is computed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type extra struct {
		payload, init *File
		bi            *BuildInfo
		err           error
	}
	extraC := make(chan extra, 1)
	go func() {
		var e extra
		if o.Payload != "" {
			if e.payload, e.err = HashFile(ctx, "payload", o.Payload); e.err != nil {
				extraC <- e
				return
			}
		}
		if o.Init != "" {
			// One descriptor for the hash and the build info, so that
			// both describe the same bytes even if the path is replaced
			// meanwhile.
			e.init, e.bi, e.err = hashInit(ctx, o.Init)
		}
		extraC <- e
	}()

	entries, in, err := measure.Matrix(ctx, o.measureOptions(), o.VCPUs, o.VCPUTypes)
	if err != nil {
		return nil, none, err
	}
	ex := <-extraC
	if ex.err != nil {
		return nil, none, ex.err
	}
	m := &Manifest{
		Schema:          Schema,
		Tool:            Tool{Name: o.ToolName, Version: o.ToolVersion},
		SourceDateEpoch: o.SourceDateEpoch,
		Components: Components{
			OVMF:    fileOf(in.OVMF),
			Kernel:  fileOf(*in.Kernel),
			Initrd:  fileOf(*in.Initrd),
			Payload: ex.payload,
			Init:    ex.init,
		},
		Cmdline:       o.Cmdline,
		VMMType:       o.VMMType,
		GuestFeatures: fmt.Sprintf("0x%x", o.GuestFeatures),
		GuestPolicy:   fmt.Sprintf("0x%x", o.GuestPolicy),
		InitBuildInfo: ex.bi,
	}
	for _, e := range entries {
		m.Measurements = append(m.Measurements, Measurement{
			VCPUs:       e.VCPUs,
			VCPUType:    e.VCPUType,
			VCPUSig:     fmt.Sprintf("0x%x", e.VCPUSig),
			Measurement: hex.EncodeToString(e.Digest[:]),
		})
	}
	m.normalize()
	if err := m.Validate(); err != nil {
		return nil, none, fmt.Errorf("generated manifest: %w", err)
	}
	return m, in, nil
}

// Check runs the checks of Generate that read neither the kernel, the
// initrd, the payload nor the init: the settings, the vCPU matrix and the
// OVMF image (parsed, and checked for the kernel hashes table a direct
// boot needs). A command that writes several outputs (hostbuild build)
// runs it before it touches any of them, so a usage error loses nothing.
func (o GenerateOptions) Check() error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	return measure.CheckMatrix(o.measureOptions(), o.VCPUs, o.VCPUTypes)
}

// withDefaults validates the settings of o that need no file and fills in
// the defaults (guest features and policy, VMM type, tool name).
func (o GenerateOptions) withDefaults() (GenerateOptions, error) {
	if o.OVMF == "" || o.Kernel == "" || o.Initrd == "" {
		return o, invalid("a manifest needs the OVMF, kernel and initrd paths")
	}
	if err := checkCmdline(o.Cmdline); err != nil {
		return o, err
	}
	if o.GuestFeatures == 0 {
		o.GuestFeatures = measure.DefaultGuestFeatures
	}
	if o.GuestPolicy == 0 {
		o.GuestPolicy = DefaultGuestPolicy
	}
	if _, err := abi.ParseSnpPolicy(o.GuestPolicy); err != nil {
		return o, invalid("guest policy 0x%x: %v", o.GuestPolicy, err)
	}
	if o.SourceDateEpoch < 0 {
		return o, invalid("SOURCE_DATE_EPOCH %d is negative", o.SourceDateEpoch)
	}
	vmm, err := measure.ParseVMMType(o.VMMType)
	if err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	o.VMMType = string(vmm)
	if dup := firstDup(o.VCPUs); dup != nil {
		return o, invalid("vCPU count %d given twice", *dup)
	}
	if dup := firstDup(o.VCPUTypes); dup != nil {
		return o, invalid("vCPU type %q given twice", *dup)
	}
	if o.ToolName == "" {
		o.ToolName = "hostbuild"
	}
	return o, nil
}

// measureOptions are the measure.Options of the matrix Generate computes.
func (o GenerateOptions) measureOptions() measure.Options {
	return measure.Options{
		Mode:          measure.ModeSNP,
		VMMType:       o.VMMType,
		OVMF:          o.OVMF,
		Kernel:        o.Kernel,
		Initrd:        o.Initrd,
		Append:        o.Cmdline,
		GuestFeatures: o.GuestFeatures,
	}
}

func firstDup[T comparable](xs []T) *T {
	seen := map[T]bool{}
	for i, x := range xs {
		if seen[x] {
			return &xs[i]
		}
		seen[x] = true
	}
	return nil
}

func fileOf(in measure.Input) File {
	return File{Name: filepath.Base(in.Path), Size: in.Size, SHA256: in.SHA256}
}

// HashFile streams the file at path through SHA-256 (cancellable) and
// describes it as a manifest component; what names it in errors.
// Anything but a regular file is refused (a FIFO at once: a plain open
// would wait for a writer for ever).
func HashFile(ctx context.Context, what, path string) (*File, error) {
	f, err := infile.Open(what, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return HashOpenFile(ctx, what, f)
}

// HashOpenFile is HashFile on a file already open: it reads f from its
// current offset to the end (naming it f.Name() in the manifest and errors).
func HashOpenFile(ctx context.Context, what string, f *os.File) (*File, error) {
	h := sha256.New()
	n, err := io.Copy(h, infile.ContextReader(ctx, f))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, f.Name(), err)
	}
	return &File{Name: filepath.Base(f.Name()), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// maxInit bounds the init hashInit reads: what a newc cpio entry holds.
const maxInit = 1<<32 - 1

// hashInit hashes the init at path and reads its build information from
// one reading of it, held in memory (as pack holds it to write the
// initrd): both are of the same bytes even if the path is replaced, or the
// file written into, meanwhile.
func hashInit(ctx context.Context, path string) (*File, *BuildInfo, error) {
	f, err := infile.Open("init", path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(infile.ContextReader(ctx, f), maxInit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading init %s: %w", f.Name(), err)
	}
	if len(b) > maxInit {
		return nil, nil, fmt.Errorf("init %s is 4 GiB or larger, more than an initrd entry holds (4294967295 bytes)", path)
	}
	sum := sha256.Sum256(b)
	h := &File{Name: filepath.Base(f.Name()), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	initHashed()
	bi, err := readBuildInfo(bytes.NewReader(b), path)
	if err != nil {
		return nil, nil, err
	}
	return h, bi, nil
}

// ReadBuildInfo reads the Go build information of the binary at path.
func ReadBuildInfo(path string) (*BuildInfo, error) {
	// infile.Open refuses anything but a regular file, a FIFO at once:
	// buildinfo.ReadFile's plain open would wait for a writer for ever.
	f, err := infile.Open("init", path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBuildInfo(f, path)
}

// readBuildInfo reads the Go build information of f (at path), whatever
// f's offset (it reads at offsets).
func readBuildInfo(f io.ReaderAt, path string) (*BuildInfo, error) {
	bi, err := buildinfo.Read(f)
	if err != nil {
		return nil, fmt.Errorf("reading Go build info of init %s (is it a Go binary built with module support?): %w", path, err)
	}
	out := &BuildInfo{
		GoVersion: bi.GoVersion,
		Path:      bi.Path,
		Main:      modString(&bi.Main),
		Deps:      []string{},
		Settings:  map[string]string{},
	}
	for _, d := range bi.Deps {
		out.Deps = append(out.Deps, modString(d))
	}
	slices.Sort(out.Deps)
	for _, s := range bi.Settings {
		// The manifest keeps one value a key: a repeated one would be
		// recorded as its last value alone.
		if _, dup := out.Settings[s.Key]; dup {
			return nil, fmt.Errorf("Go build info of init %s: build setting %q appears twice, which the manifest cannot record", path, s.Key)
		}
		out.Settings[s.Key] = s.Value
	}
	// JSON would write invalid UTF-8 as U+FFFD: the manifest would name
	// other strings than the binary's.
	strs := append([]string{out.GoVersion, out.Path, out.Main}, out.Deps...)
	for k, v := range out.Settings {
		strs = append(strs, k, v)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("Go build info of init %s: %q is not valid UTF-8, which the manifest (JSON) cannot record", path, s)
		}
	}
	return out, nil
}

func modString(m *debug.Module) string {
	s := m.Path
	if m.Version != "" {
		s += "@" + m.Version
	}
	if m.Replace != nil {
		s += " => " + modString(m.Replace)
	}
	return s
}

// checkCmdline is every check of a cmdline for a new manifest.
func checkCmdline(c string) error {
	if err := checkCmdlineJSON(c); err != nil {
		return err
	}
	return CheckOVMFCmdline(c)
}

// checkCmdlineJSON is what any manifest's cmdline must be, also one written
// by an older version (Validate): JSON carries it byte for byte.
func checkCmdlineJSON(c string) error {
	if !utf8.ValidString(c) {
		return invalid("the cmdline is not valid UTF-8, so JSON cannot carry it byte for byte")
	}
	if strings.IndexByte(c, 0) >= 0 {
		return invalid("the cmdline contains a NUL byte")
	}
	return nil
}

// CheckOVMFCmdline refuses a cmdline that the guest would not get byte for
// byte and whole through OVMF (SEV-SNP). Generate applies it, and launch in
// SEV-SNP mode; a manifest that fails it still loads (plain QEMU boots it
// unchanged, and old evidence stays verifiable).
func CheckOVMFCmdline(c string) error {
	// The same rule as bootcfg.Format, for a cmdline written by hand: OVMF
	// converts the cmdline to UTF-16 as Latin-1 and the kernel's EFI stub
	// converts it back as UTF-8, so a non-ASCII byte reaches the guest
	// changed while QEMU measured the original.
	if err := bootcfg.CheckBytes(c); err != nil {
		return invalid("the guest would not get this cmdline byte for byte: %v", err)
	}
	if err := bootcfg.CheckLen(c); err != nil {
		return invalid("the guest would not get the whole cmdline: %v", err)
	}
	return nil
}

// normalize puts the manifest in its canonical order.
func (m *Manifest) normalize() {
	slices.SortStableFunc(m.Measurements, func(a, b Measurement) int {
		return cmp.Or(strings.Compare(a.VCPUType, b.VCPUType), cmp.Compare(a.VCPUs, b.VCPUs))
	})
	if m.InitBuildInfo != nil {
		slices.Sort(m.InitBuildInfo.Deps)
	}
}

// Marshal encodes m deterministically: canonical order, two-space indent,
// no HTML escaping, trailing newline.
func Marshal(m *Manifest) ([]byte, error) {
	c := *m
	c.Measurements = slices.Clone(m.Measurements)
	if m.InitBuildInfo != nil {
		bi := *m.InitBuildInfo
		bi.Deps = slices.Clone(bi.Deps)
		c.InitBuildInfo = &bi
	}
	c.normalize()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse decodes and validates a manifest. Unknown fields, trailing data,
// repeated keys, keys that are not exactly (case-sensitively) a schema field
// and any other schema are refused.
func Parse(b []byte) (*Manifest, error) {
	// encoding/json would take invalid UTF-8 as U+FFFD: the bytes read
	// would not be the bytes of the file.
	if !utf8.Valid(b) {
		return nil, invalid("not valid UTF-8 at byte %d", invalidUTF8At(b))
	}
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		return nil, invalid("starts with a UTF-8 byte order mark: save it without one")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: decoding JSON: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("trailing data after the JSON object")
	}
	// encoding/json matches keys case-insensitively and lets the last of a
	// repeated key win, while jq and Python may read the same file
	// differently (jq's first "cmdline", hostbuild's last). Refuse both so
	// every reader sees the one document that is launched and verified.
	// The decode above succeeded, so the document has the schema's shape
	// and the walk below is as deep as the schema, no deeper.
	if err := strictjson.CheckKeys(b, reflect.TypeOf(m)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load reads and validates the manifest at path.
func Load(path string) (*Manifest, error) {
	m, _, err := LoadDigest(path)
	return m, err
}

// LoadDigest is Load that also returns the SHA-256 of the bytes it parsed:
// what a record of the verification must name (the file at path may be
// replaced afterwards).
func LoadDigest(path string) (*Manifest, [sha256.Size]byte, error) {
	var digest [sha256.Size]byte
	// infile.Open refuses anything but a regular file, a FIFO at once; the
	// read below is bounded by MaxSize.
	f, err := infile.Open("manifest", path)
	if err != nil {
		var nr *infile.NotRegularError
		if errors.As(err, &nr) && nr.Mode.IsDir() {
			return nil, digest, fmt.Errorf("manifest %s is a folder: give the manifest file in it (e.g. %s, as hostbuild build writes it)", path, filepath.Join(path, "manifest.json"))
		}
		return nil, digest, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, digest, fmt.Errorf("reading manifest %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, digest, fmt.Errorf("manifest %s: %w: larger than %d bytes", path, ErrInvalid, MaxSize)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, digest, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, sha256.Sum256(b), nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseHex parses "0x" followed by lowercase hex digits without leading zeros.
func parseHex(field, s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil || !strings.HasPrefix(s, "0x") || fmt.Sprintf("0x%x", v) != s {
		return 0, invalid("%s %q is not canonical hex like \"0x1\"", field, s)
	}
	return v, nil
}

func (f *File) validate(what string) error {
	if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") {
		return invalid("component %s: name %q is not a base name", what, f.Name)
	}
	if f.Size < 0 {
		return invalid("component %s: negative size", what)
	}
	if !isHex(f.SHA256, 64) {
		return invalid("component %s: sha256 %q is not 64 lowercase hex characters", what, f.SHA256)
	}
	return nil
}

// validateFiles checks the operator's files: clean absolute paths under
// /etc/katana/ or /usr/local/bin/, or the CA bundle's, in bytewise order,
// none twice, with sizes and digests.
func validateFiles(files []OperatorFile) error {
	under := func(p, dir string) bool {
		rel, ok := strings.CutPrefix(p, "/"+dir+"/")
		return ok && rel != ""
	}
	for i, f := range files {
		if !under(f.Path, initrdlayout.OperatorDir) && !under(f.Path, initrdlayout.OperatorBinDir) && f.Path != "/"+initrdlayout.CABundlePath ||
			path.Clean(f.Path) != f.Path || !utf8.ValidString(f.Path) || strings.ContainsFunc(f.Path, unicode.IsControl) {
			return invalid("components.files[%d]: path %q is not a clean path under /%s/ or /%s/, nor /%s", i, f.Path, initrdlayout.OperatorDir, initrdlayout.OperatorBinDir, initrdlayout.CABundlePath)
		}
		if i > 0 && files[i-1].Path >= f.Path {
			return invalid("components.files[%d]: path %q is not after %q (sorted, each once)", i, f.Path, files[i-1].Path)
		}
		if f.Size < 0 {
			return invalid("components.files[%d]: negative size", i)
		}
		if !isHex(f.SHA256, 64) {
			return invalid("components.files[%d]: sha256 %q is not 64 lowercase hex characters", i, f.SHA256)
		}
	}
	return nil
}

// Validate checks every field.
func (m *Manifest) Validate() error {
	if m.Schema != Schema {
		return invalid("schema %q, this tool reads %q", m.Schema, Schema)
	}
	if m.Tool.Name == "" {
		return invalid("tool name is empty")
	}
	if m.SourceDateEpoch < 0 || m.SourceDateEpoch > math.MaxUint32 {
		return invalid("source_date_epoch %d is out of range (0 to %d: a newc archive's mtime)", m.SourceDateEpoch, uint32(math.MaxUint32))
	}
	for _, c := range []struct {
		what string
		f    *File
	}{{"ovmf", &m.Components.OVMF}, {"kernel", &m.Components.Kernel}, {"initrd", &m.Components.Initrd}, {"payload", m.Components.Payload}, {"init", m.Components.Init}} {
		if c.f == nil {
			continue
		}
		if err := c.f.validate(c.what); err != nil {
			return err
		}
	}
	if f := m.Components.Files; f != nil {
		if err := validateFiles(*f); err != nil {
			return err
		}
	}
	if err := checkCmdlineJSON(m.Cmdline); err != nil {
		return err
	}
	if _, err := measure.ParseVMMType(m.VMMType); err != nil || m.VMMType == "" {
		return invalid("vmm_type %q: want QEMU, ec2 or gce", m.VMMType)
	}
	feat, err := parseHex("guest_features", m.GuestFeatures)
	if err != nil {
		return err
	}
	if feat&1 == 0 {
		return invalid("guest_features %s lacks bit 0 (SNPActive)", m.GuestFeatures)
	}
	pol, err := parseHex("guest_policy", m.GuestPolicy)
	if err != nil {
		return err
	}
	if _, err := abi.ParseSnpPolicy(pol); err != nil {
		return invalid("guest_policy %s: %v", m.GuestPolicy, err)
	}
	if len(m.Measurements) == 0 {
		return invalid("no measurements")
	}
	type key struct {
		n int
		t string
	}
	seen := map[key]bool{}
	for i, e := range m.Measurements {
		if e.VCPUs < 1 || e.VCPUs > measure.MaxVCPUs {
			return invalid("measurements[%d]: vcpus %d out of range 1..%d", i, e.VCPUs, measure.MaxVCPUs)
		}
		sig, err := measure.VCPUSigOf(e.VCPUType)
		if err != nil {
			return fmt.Errorf("%w: measurements[%d]: %w", ErrInvalid, i, err)
		}
		if e.VCPUSig != "" && e.VCPUSig != fmt.Sprintf("0x%x", sig) {
			return invalid("measurements[%d]: vcpu_sig %q does not match %s (0x%x)", i, e.VCPUSig, e.VCPUType, sig)
		}
		if !isHex(e.Measurement, 96) {
			return invalid("measurements[%d]: measurement %q is not 96 lowercase hex characters", i, e.Measurement)
		}
		k := key{e.VCPUs, e.VCPUType}
		if seen[k] {
			return invalid("measurements[%d]: %d × %s listed twice", i, e.VCPUs, e.VCPUType)
		}
		seen[k] = true
	}
	return nil
}

// GuestFeaturesValue returns guest_features as a number.
func (m *Manifest) GuestFeaturesValue() (uint64, error) {
	return parseHex("guest_features", m.GuestFeatures)
}

// GuestPolicyValue returns guest_policy as a number.
func (m *Manifest) GuestPolicyValue() (uint64, error) {
	return parseHex("guest_policy", m.GuestPolicy)
}

// Allows reports whether measurementHex (any case) is one of the expected
// measurements, and which configuration it belongs to. When several
// configurations share a digest (ec2 and gce ignore the vCPU type) the
// first in canonical order is returned.
func (m *Manifest) Allows(measurementHex string) (Measurement, bool) {
	want := strings.ToLower(measurementHex)
	for _, e := range m.Measurements {
		if e.Measurement == want {
			return e, true
		}
	}
	return Measurement{}, false
}

// Lookup returns the expected measurement for one configuration.
func (m *Manifest) Lookup(vcpus int, vcpuType string) (Measurement, bool) {
	for _, e := range m.Measurements {
		if e.VCPUs == vcpus && e.VCPUType == vcpuType {
			return e, true
		}
	}
	return Measurement{}, false
}

// MeasureOptions returns the measure.Options that reproduce one
// configuration of m from local copies of its files (for recomputing
// variants when explaining a mismatch).
func (m *Manifest) MeasureOptions(ovmfPath, kernelPath, initrdPath string, vcpus int, vcpuType string) (measure.Options, error) {
	feat, err := m.GuestFeaturesValue()
	if err != nil {
		return measure.Options{}, err
	}
	return measure.Options{
		Mode:          measure.ModeSNP,
		VCPUs:         vcpus,
		VCPUType:      vcpuType,
		VMMType:       m.VMMType,
		OVMF:          ovmfPath,
		Kernel:        kernelPath,
		Initrd:        initrdPath,
		Append:        m.Cmdline,
		GuestFeatures: feat,
	}, nil
}

// WriteFile writes m to path atomically (internal/atomicfile): fsync,
// rename, fsync of the folder. A failed write leaves nothing at path or
// beside it, nor does a killed one where the file system has O_TMPFILE.
func WriteFile(path string, m *Manifest) error {
	// What Load would refuse is never written (fields a caller added
	// after Generate, such as the operator's files, included).
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return nil
}

// invalidUTF8At is the offset of the first byte of b that is not valid
// UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// initHashed runs once the init is read and hashed, before its build
// info is parsed: a test seam (the file written there).
var initHashed = func() {}

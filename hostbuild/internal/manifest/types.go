// Package manifest defines the launch manifest: the single source of truth
// that `hostbuild run` launches from and `hostbuild attest` verifies against.
package manifest

// Schema identifies this manifest format. Readers refuse other values.
const Schema = "katana-snp-manifest/v1"

// Manifest is the JSON document written by `hostbuild manifest` and
// `hostbuild measure --manifest-out`. Field order is the output order; the
// encoding is deterministic (encoding/json, two-space indent, trailing
// newline, Measurements sorted by VCPUType then VCPUs).
type Manifest struct {
	Schema          string        `json:"schema"`
	Tool            Tool          `json:"tool"`
	SourceDateEpoch int64         `json:"source_date_epoch"`
	Components      Components    `json:"components"`
	Cmdline         string        `json:"cmdline"`
	VMMType         string        `json:"vmm_type"`       // "QEMU", "ec2" or "gce"
	GuestFeatures   string        `json:"guest_features"` // hex, "0x1"
	GuestPolicy     string        `json:"guest_policy"`   // hex, "0x30000"
	Measurements    []Measurement `json:"measurements"`
	InitBuildInfo   *BuildInfo    `json:"init_build_info,omitempty"`
}

// Tool names the program and version that wrote the manifest.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Components are the measured (OVMF, kernel, initrd) and contained (payload,
// init) files.
type Components struct {
	OVMF    File  `json:"ovmf"`
	Kernel  File  `json:"kernel"`
	Initrd  File  `json:"initrd"`
	Payload *File `json:"payload,omitempty"`
	Init    *File `json:"init,omitempty"`
	// Files are the operator's files in the initrd (hostbuild pack
	// --file under /etc/katana/, --exec in /usr/local/bin/, --ca-bundle),
	// by path, recorded from the initrd's content list (hostbuild
	// manifest and build read every initrd that has one). Absent (nil):
	// the initrd has no content list (not hostbuild's); [] none.
	Files *[]OperatorFile `json:"files,omitempty"`
}

// OperatorFile is one of the operator's files as the guest sees it:
// absolute path, size and SHA-256 (lowercase hex).
type OperatorFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File is one component: base name for humans, size and SHA-256 (lowercase hex).
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Measurement is one expected SEV-SNP launch digest (96 lowercase hex chars).
type Measurement struct {
	VCPUs       int    `json:"vcpus"`
	VCPUType    string `json:"vcpu_type"`
	VCPUSig     string `json:"vcpu_sig,omitempty"` // hex CPUID(1).EAX of VCPUType, "0x800f12"
	Measurement string `json:"measurement"`
}

// BuildInfo is the init binary's Go build information (debug/buildinfo).
type BuildInfo struct {
	GoVersion string            `json:"go_version"`
	Path      string            `json:"path"`
	Main      string            `json:"main"`
	Deps      []string          `json:"deps"`     // "path@version" sorted
	Settings  map[string]string `json:"settings"` // -trimpath, CGO_ENABLED, GOAMD64, ...
}

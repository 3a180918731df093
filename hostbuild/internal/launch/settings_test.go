package launch

import (
	"context"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
)

// The settings that need no file: SEV-SNP mode needs the firmware and a
// CID, and no mode takes a reserved CID. Prepare refuses them before it
// looks at the manifest's matrix or opens a file.
func TestCheckSettings(t *testing.T) {
	snp := Options{OVMF: "OVMF.fd", CID: 3}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string // "" for accepted
	}{
		{"snp", func(o *Options) {}, ""},
		{"snp, highest CID", func(o *Options) { o.CID = 4294967294 }, ""},
		{"snp without OVMF", func(o *Options) { o.OVMF = "" }, "SEV-SNP mode needs the OVMF firmware: give --ovmf FILE"},
		{"snp without CID", func(o *Options) { o.CID = 0 }, "SEV-SNP mode needs a vsock guest CID"},
		{"snp, host CID", func(o *Options) { o.CID = 2 }, "--cid 2: CIDs 0 to 2 and 4294967295 are reserved"},
		{"snp, VMADDR_CID_ANY", func(o *Options) { o.CID = 4294967295 }, "--cid 4294967295: CIDs 0 to 2 and 4294967295 are reserved"},
		{"plain, nothing", func(o *Options) { *o = Options{Plain: true} }, ""},
		{"plain, local CID", func(o *Options) { *o = Options{Plain: true, CID: 1} }, "--cid 1: CIDs 0 to 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := snp
			tc.mod(&o)
			err := o.CheckSettings()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckSettings: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckSettings: %v, want an error containing %q", err, tc.want)
			}
			// Prepare gives the same refusal first: before it reads the
			// manifest (this one is invalid) or opens a file (none exist).
			o.Manifest, o.Kernel, o.Initrd = &manifest.Manifest{}, "/nonexistent/vmlinuz", "/nonexistent/initrd"
			if _, perr := Prepare(context.Background(), o); perr == nil || !strings.Contains(perr.Error(), tc.want) {
				t.Errorf("Prepare: %v, want an error containing %q", perr, tc.want)
			}
		})
	}
}

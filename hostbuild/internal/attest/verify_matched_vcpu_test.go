package attest

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

// The result (attest --json) says which vCPU types the matched
// measurement stands for: under QEMU only the types with the matched
// row's signature (EPYC and EPYC-v4 share one), so any_vcpu_type is
// false; under ec2 or gce, which measure no vCPU type, every type, said
// as any_vcpu_type with no list.
func TestVerifyResultNamesTheAlikeVCPUTypes(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	for _, tc := range []struct {
		vmm       string
		wantAny   bool
		wantAlike []string
	}{
		{vmm: "QEMU", wantAny: false, wantAlike: []string{"EPYC", "EPYC-v4"}},
		{vmm: "ec2", wantAny: true},
		{vmm: "gce", wantAny: true},
	} {
		t.Run(tc.vmm, func(t *testing.T) {
			m := testManifest()
			m.VMMType = tc.vmm
			res, err := Verify(context.Background(), evidence(t, s, nonce, testConfig, nil), VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s)})
			if err != nil {
				t.Fatal(err)
			}
			if res.AnyVCPUType != tc.wantAny {
				t.Errorf("any_vcpu_type = %v, want %v (vcpu_types_alike %q)", res.AnyVCPUType, tc.wantAny, res.Alike)
			}
			for _, w := range tc.wantAlike {
				if !slices.Contains(res.Alike, w) {
					t.Errorf("vcpu_types_alike = %q, want %s among them", res.Alike, w)
				}
			}
			if tc.wantAlike != nil && slices.Contains(res.Alike, "EPYC-Milan") {
				t.Errorf("vcpu_types_alike = %q: EPYC-Milan has another signature, so another measurement", res.Alike)
			}
			if tc.wantAlike == nil && res.Alike != nil {
				t.Errorf("vcpu_types_alike = %q, want none", res.Alike)
			}
		})
	}
}

package attest

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// Verdicts the table in TestVerifyMutations checks by class only, here
// with the diagnosis each must give.
func TestVerifyMutationsDiagnosis(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 64)
	// Another process in the guest asked the hardware for a report over
	// the measured cmdline, with an argv the cmdline does not give, and
	// returned that config: REPORT_DATA, the nonce and the cmdline all
	// check out, the config does not.
	forged := testConfig
	forged.Argv = []string{"--dev", "--evil"}
	for _, tc := range []struct {
		name     string
		ev       *agentapi.AttestationResponse
		min      uint64
		want     Class
		mentions string
	}{
		{"config the measured cmdline does not give", evidence(t, s, nonce, forged, nil), 0, ClassReportData,
			"the report binds a config the measured cmdline does not give (argv"},
		{"setting the measured cmdline does not give", func() *agentapi.AttestationResponse {
			c := testConfig
			c.Settings = map[string]string{}
			for k, v := range testConfig.Settings {
				c.Settings[k] = v
			}
			c.Settings["katana.on_exit"] = "reboot"
			return evidence(t, s, nonce, c, nil)
		}(), 0, ClassReportData, "the report binds a config the measured cmdline does not give (katana.on_exit"},
		{"VMPL", evidence(t, s, nonce, testConfig, func(r []byte) { r[0x30] = 1 }), 0, ClassPolicy,
			"report was requested at VMPL 1, want 0"},
		{"min mitigation vector of a version 4 report", evidence(t, s, nonce, testConfig, func(r []byte) { binary.LittleEndian.PutUint32(r, 4) }),
			1, ClassPolicy, "only version 5 and later carry mitigation vectors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), MinMitVector: tc.min}
			_, err := Verify(context.Background(), tc.ev, o)
			if ClassOf(err) != tc.want || err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("Verify: class %v, err %v; want class %v saying %q", ClassOf(err), err, tc.want, tc.mentions)
			}
		})
	}
}

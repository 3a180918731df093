package agentapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The JSON field names are the wire contract between a measured guest
// (which keeps running the agent it was built with) and a host verifier
// built from another commit: renaming one makes the other side decode a zero
// value. Both sides share these types, so only a golden encoding catches a
// rename. Changing a name here is a wire-breaking change (bump APIVersion).
func TestWireFieldNames(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"attestation", AttestationResponse{
			APIVersion: 1, Provider: ProviderSevGuest, Nonce: "00", Report: []byte{1},
			CertTable: []byte{2}, ReportDataPreimage: []byte{3}, ReportData: "04",
			Config:       AppliedConfig{Cmdline: []byte("c"), Argv: []string{"a"}, Settings: map[string]string{"k": "v"}},
			ConfigDigest: "05",
		}, `{"api_version":1,"provider":"sev-guest-ioctl","nonce":"00","report":"AQ==","cert_table":"Ag==",` +
			`"report_data_preimage":"Aw==","report_data":"04","config":{"cmdline":"Yw==","argv":["a"],"settings":{"k":"v"}},` +
			`"config_digest":"05"}`},
		{"attestation without cert table", AttestationResponse{}, `{"api_version":0,"provider":"","nonce":"","report":null,` +
			`"report_data_preimage":null,"report_data":"","config":{"cmdline":null,"argv":null,"settings":null},"config_digest":""}`},
		{"status", Status{
			APIVersion: 1, InitVersion: "v", Stages: []Stage{{Name: "s", At: at}},
			Katana:       PayloadStatus{State: PayloadExited, PID: 7, Restarts: 2, LastExit: &ExitStatus{Code: 143, Signal: "SIGTERM", At: at}},
			ConfigDigest: "d", Now: at,
		}, `{"api_version":1,"init_version":"v","stages":[{"name":"s","at":"2025-01-02T03:04:05Z"}],` +
			`"katana":{"state":"exited","pid":7,"restarts":2,"last_exit":{"code":143,"signal":"SIGTERM","at":"2025-01-02T03:04:05Z"}},` +
			`"config_digest":"d","now":"2025-01-02T03:04:05Z"}`},
		{"shutdown", ShutdownResponse{APIVersion: 1, State: PayloadStopping}, `{"api_version":1,"state":"stopping"}`},
		{"error", ErrorResponse{Error: Error{Code: CodeBusy, Message: "m"}}, `{"error":{"code":"busy","message":"m"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("wire encoding changed (-want +got):\n%s", diff)
			}
		})
	}
}

// HostPort is what the guest listens on and the host dials: an IPv6 host
// must be bracketed, or net.Listen / net.Dial refuse "too many colons".
func TestHostPortIPv6(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		dial     bool
	}{
		{"tcp:[::]:8080", "[::]:8080", false},
		{"tcp:[::1]:1024", "[::1]:1024", true},
		{"tcp:0.0.0.0:1024", "0.0.0.0:1024", false},
		{"tcp::1024", ":1024", false},
	} {
		parse := ParseListenAddr
		if tc.dial {
			parse = ParseDialAddr
		}
		a, err := parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := a.HostPort(); got != tc.want {
			t.Errorf("%s: HostPort() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package agentapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The vectors below were computed independently of this package (Python
// hashlib/struct over the encoding documented on ConfigDigest and ReportData).
// Changing them is a wire-breaking change: bump the domain tags instead.
var vectorConfig = AppliedConfig{
	Cmdline: []byte(`console=ttyS0 katana.args="--http.addr 0.0.0.0 --dev" panic=-1`),
	Argv:    []string{"--http.addr", "0.0.0.0", "--dev"},
	Settings: map[string]string{
		"katana.args":  "--http.addr 0.0.0.0 --dev",
		"katana.agent": "vsock:1024",
	},
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestConfigDigestVector(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AppliedConfig
		want string
	}{
		{"example", vectorConfig, "37c575f379be68e844161d1c3226bf5c863ed87e8c5400846b55c70907f98f15"},
		{"empty", AppliedConfig{}, "5e326c08918b172710b3bc5ae4c0d562aac8086babbc5471dcacd9eae10a478c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ConfigDigest(tc.cfg)
			if diff := cmp.Diff(tc.want, hex.EncodeToString(got[:])); diff != "" {
				t.Errorf("ConfigDigest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportDataVector(t *testing.T) {
	d := ConfigDigest(vectorConfig)
	for _, tc := range []struct {
		name  string
		nonce []byte
		want  string
	}{
		{"nonce32", seq(32), "ffc505f00e369afdaaae6a8b8c210190cecc6ef36749478b6a8c4108910e8c0586f88e50defb5ac58e149c30ea77fcddce5c3dbd5c0bc38c3b0a730fd9ecba13"},
		{"nonce64", seq(64), "bb41e032ff882959bfc12a7c1349b5aeeda7538f243c489425ec4465122a5270c82ee85d1a8bba873804de504b002c0909073d8594d171396c9bc8e0e81be61c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, pre, err := ReportData(tc.nonce, d)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, hex.EncodeToString(rd[:])); diff != "" {
				t.Errorf("ReportData mismatch (-want +got):\n%s", diff)
			}
			n, gd, err := SplitPreimage(pre)
			if err != nil {
				t.Fatalf("SplitPreimage(ReportData preimage): %v", err)
			}
			if !bytes.Equal(n, tc.nonce) || gd != d {
				t.Errorf("SplitPreimage = %x, %x; want %x, %x", n, gd, tc.nonce, d)
			}
		})
	}
}

// The digest must change with every field, including order and boundaries.
func TestConfigDigestSensitivity(t *testing.T) {
	base := ConfigDigest(vectorConfig)
	muts := map[string]AppliedConfig{
		"cmdline trailing space": {Cmdline: append(append([]byte{}, vectorConfig.Cmdline...), ' '), Argv: vectorConfig.Argv, Settings: vectorConfig.Settings},
		"argv order":             {Cmdline: vectorConfig.Cmdline, Argv: []string{"0.0.0.0", "--http.addr", "--dev"}, Settings: vectorConfig.Settings},
		"argv boundary":          {Cmdline: vectorConfig.Cmdline, Argv: []string{"--http.addr 0.0.0.0", "--dev"}, Settings: vectorConfig.Settings},
		"argv empty element":     {Cmdline: vectorConfig.Cmdline, Argv: append([]string{""}, vectorConfig.Argv...), Settings: vectorConfig.Settings},
		"setting value":          {Cmdline: vectorConfig.Cmdline, Argv: vectorConfig.Argv, Settings: map[string]string{"katana.args": "--http.addr 0.0.0.0 --dev", "katana.agent": "tcp:0.0.0.0:1024"}},
		"setting dropped":        {Cmdline: vectorConfig.Cmdline, Argv: vectorConfig.Argv, Settings: map[string]string{"katana.args": "--http.addr 0.0.0.0 --dev"}},
	}
	for name, c := range muts {
		if ConfigDigest(c) == base {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestNonceBounds(t *testing.T) {
	for _, tc := range []struct {
		n       int
		wantErr bool
	}{{0, true}, {31, true}, {32, false}, {48, false}, {64, false}, {65, true}} {
		_, _, err := ReportData(seq(tc.n), [32]byte{})
		if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrNonceSize)) {
			t.Errorf("ReportData(nonce of %d bytes) error = %v, want error %v", tc.n, err, tc.wantErr)
		}
	}
}

func TestSplitPreimageRejects(t *testing.T) {
	good, _ := ReportDataPreimage(seq(32), [32]byte{1})
	for name, p := range map[string][]byte{
		"empty":       nil,
		"wrong tag":   append([]byte("katana-snp/report-data/v2\x00"), good[len(ReportDataTag):]...),
		"short nonce": good[:len(good)-1],
		"long":        append(append([]byte{}, ReportDataTag...), make([]byte, MaxNonceSize+ConfigDigestSize+1)...),
	} {
		if _, _, err := SplitPreimage(p); !errors.Is(err, ErrBadPreimage) {
			t.Errorf("%s: SplitPreimage error = %v, want ErrBadPreimage", name, err)
		}
	}
}

// The config must survive the JSON round trip byte for byte, including a
// cmdline that is not valid UTF-8.
func TestAppliedConfigJSONRoundTrip(t *testing.T) {
	c := vectorConfig
	c.Cmdline = append([]byte{0xff, 0x00, '"'}, c.Cmdline...)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got AppliedConfig
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if ConfigDigest(got) != ConfigDigest(c) {
		t.Error("digest changed over JSON round trip")
	}
}

func FuzzSplitPreimage(f *testing.F) {
	good, _ := ReportDataPreimage(seq(40), [32]byte{7})
	f.Add(good)
	f.Add([]byte(ReportDataTag))
	f.Fuzz(func(t *testing.T, p []byte) {
		n, d, err := SplitPreimage(p)
		if err != nil {
			return
		}
		// Whatever splits must rebuild to the same bytes.
		again, err := ReportDataPreimage(n, d)
		if err != nil || !bytes.Equal(again, p) {
			t.Fatalf("rebuild of split preimage differs: %v", err)
		}
	})
}

// An agent error reads as its stable code, then the reason.
func TestErrorString(t *testing.T) {
	e := &Error{Code: CodeBadNonce, Message: "nonce must be 32 to 64 bytes"}
	if got, want := e.Error(), "bad_nonce: nonce must be 32 to 64 bytes"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// The domain tag is matched in full, its terminating NUL included: a
// preimage whose tag differs only in that byte is not a v1 preimage.
func TestSplitPreimageTagTerminator(t *testing.T) {
	good, _ := ReportDataPreimage(seq(32), [32]byte{1})
	bad := append([]byte{}, good...)
	bad[len(ReportDataTag)-1] = '0' // "katana-snp/report-data/v10..."
	if _, _, err := SplitPreimage(bad); !errors.Is(err, ErrBadPreimage) {
		t.Errorf("tag %q: SplitPreimage error = %v, want ErrBadPreimage", bad[:len(ReportDataTag)], err)
	}
	if _, _, err := SplitPreimage(good); err != nil {
		t.Errorf("good preimage: %v", err)
	}
}

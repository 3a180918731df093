package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/testdata"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// The real Milan report decodes the same from binary, hex and hex with
// whitespace, and its text and JSON renderings are pinned.
func TestDescribeRealReport(t *testing.T) {
	raw := testdata.AttestationBytes
	h := hex.EncodeToString(raw)
	var wrapped strings.Builder
	for i := 0; i < len(h); i += 64 {
		wrapped.WriteString(h[i:min(i+64, len(h))] + "\n")
	}
	for name, in := range map[string][]byte{
		"binary":       raw,
		"binary+certs": append(bytes.Clone(raw), make([]byte, 100)...),
		"hex":          []byte(h),
		"hex 0x":       []byte("0x" + h),
		"hex wrapped":  []byte(wrapped.String()),
		"hex upper":    []byte(strings.ToUpper(h)),
	} {
		got, err := DecodeRawReport(in)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%s: DecodeRawReport = %d bytes, %v", name, len(got), err)
		}
	}
	info, err := DescribeReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteReportText(&text, info); err != nil {
		t.Fatal(err)
	}
	golden(t, "milan-report.txt", text.Bytes())
	js, _ := json.MarshalIndent(info, "", "  ")
	golden(t, "milan-report.json", append(js, '\n'))
}

func TestDecodeRawReportRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":            {nil, "report is empty: want 1184 bytes, or 2368 hex digits"},
		"short hex":        {[]byte("abcd"), "report is hex text of 2 bytes (4 digits), want 1184 bytes (2368 digits; truncated?)"},
		"short bin":        {make([]byte, 100), "report is 100 bytes and not hex text: a binary report is 1184 bytes (truncated?)"},
		"short not hex":    {[]byte(strings.Repeat("zz", 50)), "report is 100 bytes and not hex text: a binary report is 1184 bytes (truncated?)"},
		"odd hex":          {[]byte(strings.Repeat("a", 2*abi.ReportSize+1)), "report is hex text of 2369 digits, an odd count: a report is 2368 hex digits"},
		"hex lost a digit": {[]byte(strings.Repeat("a", 2*abi.ReportSize-1)), "report is hex text of 2367 digits, an odd count"},
		// Hex with a stray character is not read as a binary report.
		"hex with junk": {[]byte(hex.EncodeToString(testdata.AttestationBytes[:abi.ReportSize]) + "\nzz\n"), `report looks like hex text, but byte 2369 ("z") is not a hex digit`},
	} {
		if _, err := DecodeRawReport(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	for name, edit := range map[string]func(r []byte){
		"version 99":           func(r []byte) { r[0] = 99 },
		"version 1":            func(r []byte) { r[0] = 1 },
		"reserved 0x1A0-1 set": func(r []byte) { r[0x19F] = 1 },
	} {
		bad := bytes.Clone(testdata.AttestationBytes)
		edit(bad)
		if _, err := DescribeReport(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Text is called what it is, not a report of version 1953460082.
	text := bytes.Repeat([]byte("root:x:0:0:root:/root:/bin/bash\n"), 40)
	if _, err := DescribeReport(text); err == nil || !strings.Contains(err.Error(), `not an SEV-SNP attestation report (it would start with its version, 2 to 5, as a 32-bit little-endian number; this starts with "root")`) {
		t.Errorf("a text file: %v", err)
	}
}

// FuzzReportDecoder: arbitrary input never panics; whatever decodes has the
// report size and re-describes identically.
func FuzzReportDecoder(f *testing.F) {
	f.Add(testdata.AttestationBytes)
	f.Add([]byte(hex.EncodeToString(testdata.AttestationBytes)))
	f.Add([]byte("0x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := DecodeRawReport(b)
		if err != nil {
			return
		}
		if len(raw) != abi.ReportSize {
			t.Fatalf("decoded %d bytes", len(raw))
		}
		// Its doc: the report's bytes as binary (a certificate table may
		// follow), or as hex text with whitespace ignored (and a 0x).
		hexText, herr := hex.DecodeString(strings.TrimPrefix(strings.Join(strings.Fields(string(b)), ""), "0x"))
		if !(len(b) >= abi.ReportSize && bytes.Equal(raw, b[:abi.ReportSize])) && !(herr == nil && bytes.HasPrefix(hexText, raw)) {
			t.Fatalf("DecodeRawReport(%q) = %x: neither the binary nor the hex text's first bytes", b, raw)
		}
		// The forms it reads, written from the report: hex text (one
		// line, or lines of 64 digits), and binary but for a report whose
		// first bytes read as hex text (no real report's: its version).
		h := hex.EncodeToString(raw)
		var lines strings.Builder
		for i := 0; i < len(h); i += 64 {
			lines.WriteString(h[i:min(i+64, len(h))] + "\n")
		}
		for _, form := range []string{h, lines.String(), "0x" + strings.ToUpper(h)} {
			if back, err := DecodeRawReport([]byte(form)); err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("the report's hex text %q: %x, %v", form, back, err)
			}
		}
		if !isHexText(raw[:64]) {
			if back, err := DecodeRawReport(bytes.Clone(raw)); err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("the binary report %x: %x, %v", raw, back, err)
			}
		}
		info, err := DescribeReport(raw)
		if err != nil {
			return
		}
		again, err := DescribeReport(bytes.Clone(raw))
		if err != nil || !cmp.Equal(info, again) {
			t.Fatalf("describe is not deterministic: %v", err)
		}
	})
}

// FuzzDecodeResponse: the verifier's parser of the agent's JSON never panics
// and Verify on whatever decodes returns a classified error, never a pass.
func FuzzDecodeResponse(f *testing.F) {
	s := signer(f, nil)
	nonce := bytes.Repeat([]byte{1}, 32)
	good, _ := json.Marshal(evidence(f, s, nonce, testConfig, nil))
	f.Add(good)
	f.Add([]byte(`{"api_version":1}`))
	f.Add([]byte(`{"api_version":1,"report":"AAAA"}`))
	other := bytes.Repeat([]byte{2}, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			return
		}
		// The fuzzer cannot know the nonce: a pass would be a forgery.
		res, err := Verify(t.Context(), r, VerifyOptions{Manifest: testManifest(), Nonce: other, Roots: fakeRoots(s)})
		if err == nil || res.OK {
			t.Fatal("fuzzed response verified")
		}
		if ClassOf(err) == 0 {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// Report versions 3 to 5 decode, and from version 3 on the CPUID family,
// model and stepping bytes are read and printed; version 2 has none.
func TestDescribeReportVersions(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{7}, 32)
	for _, ver := range []uint32{3, 4, 5} {
		ev := evidence(t, s, nonce, testConfig, func(r []byte) {
			binary.LittleEndian.PutUint32(r, ver)
			tcb := kds.TCBParts{BlSpl: 3, SnpSpl: 8, UcodeSpl: 115}
			setTCBs(r, tcb, tcb, tcb)
			if ver >= 5 {
				mitVectors(r, 0x3, 0x7)
			}
		})
		info, err := DescribeReport(ev.Report)
		if err != nil {
			t.Errorf("version %d: DescribeReport: %v", ver, err)
			continue
		}
		// milanFMS 0x00a00f11: family 0xf+0xa, model 0x01, stepping 1.
		if info.Version != ver || info.CPUIDFamily != 0x19 || info.CPUIDModel != 0x01 || info.CPUIDStepping != 0x01 {
			t.Errorf("version %d: version %d, cpuid fam/mod/step 0x%x/0x%x/0x%x; want 0x19/0x1/0x1",
				ver, info.Version, info.CPUIDFamily, info.CPUIDModel, info.CPUIDStepping)
		}
		var text bytes.Buffer
		if err := WriteReportText(&text, info); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "cpuid fam/mod/step:   0x19/0x1/0x1\n") {
			t.Errorf("version %d: text lacks the CPUID line:\n%s", ver, text.String())
		}
		// TCBs with their parts, as --min-tcb takes them.
		if !strings.Contains(text.String(), "reported_tcb:         0x7308000000000003 (bl=3,tee=0,snp=8,ucode=115)\n") {
			t.Errorf("version %d: text lacks the decoded reported TCB:\n%s", ver, text.String())
		}
		// The mitigation vectors, from version 5 on.
		const mit = "launch_mit_vector:    0x3\ncurrent_mit_vector:   0x7\n"
		if got := strings.Contains(text.String(), mit); got != (ver >= 5) {
			t.Errorf("version %d: text has the mitigation vectors %v, want %v:\n%s", ver, got, ver >= 5, text.String())
		}
	}
	bad := bytes.Clone(testdata.AttestationBytes)
	binary.LittleEndian.PutUint32(bad, 6)
	if _, err := DescribeReport(bad); err == nil || !strings.Contains(err.Error(), "version 6") {
		t.Errorf("DescribeReport(version 6) = %v, want an error naming the version", err)
	}
}

// WriteReportText prints what it is given, also a ReportInfo without a
// signature (decoded from JSON, say), and never slices past its end.
func TestWriteReportTextPartialInfo(t *testing.T) {
	for _, info := range []*ReportInfo{{}, {Version: 3, Signature: "00"}} {
		var text bytes.Buffer
		if err := WriteReportText(&text, info); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text.String(), "signature") {
			t.Errorf("WriteReportText(%+v) prints a signature it does not have:\n%s", info, text.String())
		}
	}
}

// encoding/json lets the last of a repeated key win and matches keys
// case-insensitively; jq, Python and browsers read the same response.json
// differently ("ARGV" is not "argv" to them). A response that verifies must
// read the same to every reader, so both are refused, naming the key.
func TestDecodeResponseRepeatedOrCaseVariantKeys(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{1}, 32)
	good, err := json.Marshal(evidence(t, s, nonce, testConfig, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeResponse(good); err != nil {
		t.Fatalf("good response: %v", err)
	}
	signedArgv := `"argv":["--dev"]`
	if !bytes.Contains(good, []byte(signedArgv)) {
		t.Fatalf("response %s lacks %s", good, signedArgv)
	}
	settings := `"settings":{"katana.agent":"vsock:1024",`
	for _, tc := range []struct{ name, old, new, want string }{
		// What the tool verifies comes last; a reader taking the first
		// key, or matching case exactly, sees --evil.
		{"argv twice", signedArgv, `"argv":["--evil"],` + signedArgv, `key "argv" appears twice in the object at $.config`},
		{"argv in another case", signedArgv, `"argv":["--evil"],"ARGV":["--dev"]`, `key "ARGV" at $.config.ARGV is not "argv"`},
		{"settings key twice", settings, `"settings":{"katana.agent":"tcp:0.0.0.0:1","katana.agent":"vsock:1024",`, `key "katana.agent" appears twice in the object at $.config.settings`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1)
			if bytes.Equal(b, good) {
				t.Fatalf("%s is not in the response", tc.old)
			}
			_, err := DecodeResponse(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeResponse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

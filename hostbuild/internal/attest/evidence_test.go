package attest

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckEvidenceDir is what attest checks before it asks the guest, and
// what WriteEvidence refuses: an existing folder, a missing parent, a
// parent that is a file. A refused folder is not created, and nothing is
// left beside it.
func TestCheckEvidenceDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{filepath.Join(dir, "new"), ""},
		{dir, dir + " already exists; give a new folder"},
		{file, file + " already exists"},
		{filepath.Join(dir, "no", "ev"), "the folder " + filepath.Join(dir, "no") + " does not exist; create it first"},
		{filepath.Join(file, "ev"), file + " is not a folder"},
	} {
		err := CheckEvidenceDir(tc.dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", tc.dir, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), tc.dir)):
			t.Errorf("%s: %v, want an error starting with the folder and containing %q", tc.dir, err, tc.want)
		case tc.want != "":
			if werr := WriteEvidence(tc.dir, EvidenceIn{}); werr == nil || !strings.Contains(werr.Error(), tc.want) {
				t.Errorf("WriteEvidence(%s): %v, want the same refusal", tc.dir, werr)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the checks left files in %s: %v (want only the file)", dir, ents)
	}
}

// FuzzReadEvidence: an evidence folder is read back from files anyone
// may have edited. Whatever they hold, ReadEvidence and
// RecordedManifestDigest return (no panic); what they accept is
// consistent: the nonce is the file's hex, each restating file present
// equals its part of the response, and a recorded digest is 64 lowercase
// hex digits; what they refuse names the folder or the file.
func FuzzReadEvidence(f *testing.F) {
	f.Add([]byte(`{"api_version":1}`), []byte("0707"), []byte("ab"), []byte(strings.Repeat("0", 64)+"  manifest.json\n"))
	f.Add([]byte("{}"), []byte(" zz "), []byte(""), []byte("XYZ"))
	// A folder as attest writes it, which reads back: the fuzzer starts
	// past the decoding of response.json.
	s := signer(f, nil)
	goodNonce := bytes.Repeat([]byte{7}, 32)
	good := filepath.Join(f.TempDir(), "ev")
	if err := WriteEvidence(good, EvidenceIn{Response: evidence(f, s, goodNonce, testConfig, nil), Nonce: goodNonce,
		ManifestSHA256: [32]byte{1}, ManifestPath: "manifest.json"}); err != nil {
		f.Fatal(err)
	}
	var seed [4][]byte
	for i, name := range []string{FileResponse, FileNonce, FileReport, FileManifestDigest} {
		b, err := os.ReadFile(filepath.Join(good, name))
		if err != nil {
			f.Fatal(err)
		}
		seed[i] = b
	}
	if _, _, _, err := ReadEvidence(good); err != nil {
		f.Fatalf("the folder WriteEvidence wrote: %v", err)
	}
	f.Add(seed[0], seed[1], seed[2], seed[3])
	f.Add(seed[0], []byte("07"), seed[2][:100], seed[3][:10])
	f.Fuzz(func(t *testing.T, response, nonce, report, digest []byte) {
		dir := t.TempDir()
		for name, b := range map[string][]byte{FileResponse: response, FileNonce: nonce, FileReport: report, FileManifestDigest: digest} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, n, _, err := ReadEvidence(dir)
		if err != nil && !strings.Contains(err.Error(), dir) && !strings.Contains(err.Error(), "evidence file ") {
			t.Errorf("refusal %q names neither the folder nor the file", err)
		}
		if err == nil {
			if want, herr := hex.DecodeString(strings.TrimSpace(string(nonce))); herr != nil || !bytes.Equal(n, want) {
				t.Errorf("accepted nonce %x from nonce.hex %q", n, nonce)
			}
			if !bytes.Equal(report, r.Report) {
				t.Errorf("accepted report.bin %x that differs from the response's report %x", report, r.Report)
			}
		}
		d, err := RecordedManifestDigest(dir)
		if err == nil && (len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "") {
			t.Errorf("recorded digest %q from %q", d, digest)
		}
	})
}

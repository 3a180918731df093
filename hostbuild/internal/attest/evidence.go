package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/shared/agentapi"
)

// Evidence folder layout (written by attest --evidence-out, read by verify).
const (
	FileResponse       = "response.json"   // the agent's answer as decoded, re-encoded (source of truth for verify)
	FileReport         = "report.bin"      // raw 1184-byte report
	FileCertTable      = "certs.bin"       // the guest's certificate table, when it sent one
	FileNonce          = "nonce.hex"       // the verifier's nonce
	FilePreimage       = "preimage.bin"    // REPORT_DATA preimage
	FileConfig         = "config.json"     // applied config
	FileManifestDigest = "manifest.sha256" // SHA-256 of the manifest verified against
	FileResult         = "result.json"     // the verification result
)

// EvidenceIn is what WriteEvidence records.
type EvidenceIn struct {
	Response *agentapi.AttestationResponse
	Nonce    []byte
	// ManifestSHA256 is the digest of the manifest bytes verified against
	// (manifest.LoadDigest), recorded under ManifestPath's base name: not
	// whatever the path holds by the time the evidence is written.
	ManifestSHA256 [sha256.Size]byte
	ManifestPath   string
	Result         *Result // may be nil
}

// CheckEvidenceDir says why WriteEvidence could not create the folder dir,
// or nil: dir must not exist, and its parent must be a folder one can
// create folders in (tried by making and removing one there, which also
// sees a read-only file system and holds for root). The error starts with
// dir. Check before asking the guest: a report is spent once fetched.
func CheckEvidenceDir(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s already exists; give a new folder (it is created)", dir)
	}
	parent := evidenceParent(dir)
	fi, err := os.Stat(parent)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: the folder %s does not exist; create it first", dir, parent)
	case err != nil:
		return fmt.Errorf("%s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s: %s is not a folder", dir, parent)
	}
	probe, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: cannot create a folder in %s: %w", dir, parent, err)
	}
	os.Remove(probe)
	return nil
}

// evidenceParent is the folder that holds dir as the kernel resolves it
// (atomicfile.Dir, not filepath.Clean: "a/../ev" goes through a), where
// the temporary folder is made that is renamed to dir.
func evidenceParent(dir string) string { return atomicfile.Dir(strings.TrimRight(dir, "/")) }

// WriteEvidence writes the folder dir atomically: everything goes into a
// temporary sibling that is renamed to dir at the end, so a failure leaves
// no partial folder. dir must not exist yet.
func WriteEvidence(dir string, in EvidenceIn) (err error) {
	if err := CheckEvidenceDir(dir); err != nil {
		return fmt.Errorf("evidence folder %w", err)
	}
	if in.ManifestSHA256 == ([sha256.Size]byte{}) {
		return errors.New("writing evidence: no digest of the manifest verified against (manifest.LoadDigest gives it)")
	}
	parent := evidenceParent(dir)
	// Not os.MkdirTemp's 0700: the folder is renamed into place as it is.
	tmp, err := atomicfile.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing evidence: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// Each file is synced before the folder is renamed into place, and the
	// rename after it: a crash leaves the whole folder or none of it.
	put := func(name string, b []byte) error {
		// Not filepath.Join, which would clean "a/../.ev.tmp-N" (see
		// evidenceParent).
		f, err := os.OpenFile(tmp+"/"+name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("writing evidence: %w", err)
		}
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing evidence: %w", err)
		}
		return nil
	}
	js := evidenceJSON
	r := in.Response
	ms := in.ManifestSHA256
	files := []struct {
		name string
		b    []byte
	}{
		{FileResponse, js(r)},
		{FileReport, r.Report},
		{FileNonce, []byte(hex.EncodeToString(in.Nonce) + "\n")},
		{FilePreimage, r.ReportDataPreimage},
		{FileConfig, js(r.Config)},
		{FileManifestDigest, []byte(fmt.Sprintf("%x  %s\n", ms, filepath.Base(in.ManifestPath)))},
	}
	if len(r.CertTable) > 0 {
		files = append(files, struct {
			name string
			b    []byte
		}{FileCertTable, r.CertTable})
	}
	if in.Result != nil {
		files = append(files, struct {
			name string
			b    []byte
		}{FileResult, js(in.Result)})
		// The certificates used, in snpguest's layout.
		if a := in.Result.Attestation; a != nil && a.CertificateChain != nil {
			cc := a.CertificateChain
			for name, der := range map[string][]byte{"vcek.pem": cc.VcekCert, "vlek.pem": cc.VlekCert, "ask.pem": cc.AskCert, "ark.pem": cc.ArkCert} {
				if len(der) > 0 {
					files = append(files, struct {
						name string
						b    []byte
					}{name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
				}
			}
		}
	}
	for _, f := range files {
		if err := put(f.name, f.b); err != nil {
			return err
		}
	}
	atomicfile.SyncDir(tmp)
	// Not rename(2): it would replace an empty folder made at dir since
	// CheckEvidenceDir.
	if err := atomicfile.RenameNoReplace(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing evidence: %s appeared while the evidence was written; nothing was replaced, pass another --evidence-out", dir)
		}
		return fmt.Errorf("writing evidence: %w", err)
	}
	atomicfile.SyncDir(parent)
	return nil
}

// evidenceJSON is how the evidence folder's JSON files are written.
func evidenceJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// Bounds of the files ReadEvidence reads (infile.ReadFile refuses a larger
// one, and anything but a regular file, a FIFO at once).
const (
	// maxEvidenceResponse bounds response.json (the files that restate
	// parts of it are read up to the length of that part). The agent's
	// answer is at most MaxResponseSize on the wire; attest writes it
	// decoded and indented, which can make it a few times larger (an argv
	// of empty strings, each on a line of its own; a '<' in a string
	// escaped as \u003c: at most 6 times), so 8 times that: 32 MiB.
	maxEvidenceResponse = 8 * MaxResponseSize
	// maxEvidenceNonce bounds nonce.hex: the nonce (at most
	// agentapi.MaxNonceSize bytes, 128 hex digits) and a newline, with
	// room for a hand-edited file's spacing.
	maxEvidenceNonce = 1 << 10
	// maxEvidenceDigest bounds manifest.sha256: a digest in hex, two
	// spaces and the manifest's file name.
	maxEvidenceDigest = 1 << 10
)

// RecordedManifestDigest returns the SHA-256 (lowercase hex) of the
// manifest attest verified an evidence folder's report against, as it
// recorded it in manifest.sha256, or "" when the folder has no such file.
func RecordedManifestDigest(dir string) (string, error) {
	b, err := infile.ReadFile(evidenceFile(FileManifestDigest), filepath.Join(dir, FileManifestDigest), maxEvidenceDigest)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f[0]) != 2*sha256.Size || strings.Trim(f[0], "0123456789abcdef") != "" {
		return "", fmt.Errorf("evidence %s: %s does not start with a SHA-256 in lowercase hex (as attest writes it)", dir, FileManifestDigest)
	}
	return f[0], nil
}

// evidenceFile is what a file of an evidence folder is called in errors.
func evidenceFile(name string) string { return "evidence file " + name }

// ReadEvidence reads the response and nonce of an evidence folder, and the
// certificates in it when there are any (Certs zero otherwise).
func ReadEvidence(dir string) (*agentapi.AttestationResponse, []byte, Certs, error) {
	b, err := infile.ReadFile(evidenceFile(FileResponse), filepath.Join(dir, FileResponse), maxEvidenceResponse)
	if err != nil {
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() && errors.Is(err, os.ErrNotExist) {
			return nil, nil, Certs{}, fmt.Errorf("%s is not an evidence folder (from hostbuild attest --evidence-out): it has no %s", dir, FileResponse)
		} else if serr != nil {
			return nil, nil, Certs{}, fmt.Errorf("reading the evidence folder: %w", serr)
		} else if !fi.IsDir() {
			return nil, nil, Certs{}, fmt.Errorf("%s is not a folder: give the evidence folder written by hostbuild attest --evidence-out", dir)
		}
		return nil, nil, Certs{}, err
	}
	r, err := DecodeResponse(b)
	if err != nil {
		return nil, nil, Certs{}, fmt.Errorf("evidence %s: %s: %w (cut short or edited since attest wrote it?)", dir, FileResponse, err)
	}
	nb, err := infile.ReadFile(evidenceFile(FileNonce), filepath.Join(dir, FileNonce), maxEvidenceNonce)
	if err != nil {
		return nil, nil, Certs{}, err
	}
	nonce, err := hex.DecodeString(strings.TrimSpace(string(nb)))
	if err != nil {
		return nil, nil, Certs{}, fmt.Errorf("evidence %s: %s: %w", dir, FileNonce, err)
	}
	// Only response.json is verified; the files that restate parts of it
	// are what people read (Katana's argv in config.json), so each that is
	// there must be exactly what attest wrote from response.json.
	for _, f := range []struct {
		name, what string
		want       []byte
	}{
		{FileReport, "the report", r.Report},
		{FileCertTable, "the certificate table", r.CertTable},
		{FilePreimage, "the REPORT_DATA preimage", r.ReportDataPreimage},
		{FileConfig, "the config", evidenceJSON(r.Config)},
	} {
		// Read no more than it must hold: a longer file differs.
		raw, err := infile.ReadFile(evidenceFile(f.name), filepath.Join(dir, f.name), int64(len(f.want)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var tooLarge *infile.TooLargeError
		if err != nil && !errors.As(err, &tooLarge) {
			return nil, nil, Certs{}, err
		}
		if err != nil || !bytes.Equal(raw, f.want) {
			return nil, nil, Certs{}, fmt.Errorf("evidence %s: %s differs from %s in %s: the folder is not as attest wrote it (a file edited since?)", dir, f.name, f.what, FileResponse)
		}
	}
	certs, err := LoadCerts(dir)
	if err != nil {
		var none Certs
		if _, statErr := os.Stat(filepath.Join(dir, "vcek.pem")); errors.Is(statErr, os.ErrNotExist) {
			if _, statErr := os.Stat(filepath.Join(dir, "vlek.pem")); errors.Is(statErr, os.ErrNotExist) {
				return r, nonce, none, nil
			}
		}
		return nil, nil, Certs{}, err
	}
	return r, nonce, certs, nil
}

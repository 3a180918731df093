package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// promptly runs f and fails the test if it has not returned within 10s: a
// FIFO given as a file once made the open wait for a writer for ever.
func promptly(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still blocked after 10s", what)
		return nil
	}
}

// replace puts a FIFO (size < 0) or a sparse file of size bytes at p.
func replace(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if size < 0 {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

const fifo = -1

// Every file of an evidence folder, the certificates and the roots are
// read through infile: a FIFO is refused at once, an oversized file
// without reading it all, each naming the file.
func TestEvidenceFilesRefused(t *testing.T) {
	s := signer(t, nil)
	nonce := bytes.Repeat([]byte{3}, 48)
	ev := evidence(t, s, nonce, testConfig, nil)
	m := testManifest()
	mpath, digest := writeManifest(t, t.TempDir(), m)
	res, err := Verify(context.Background(), ev, VerifyOptions{Manifest: m, Nonce: nonce, Roots: fakeRoots(s)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		size int64
		want string
	}{
		{FileResponse, fifo, "evidence file response.json %s is not a regular file (p"},
		{FileResponse, maxEvidenceResponse + 1, "evidence file response.json %s is larger than 32 MiB"},
		{FileNonce, fifo, "evidence file nonce.hex %s is not a regular file (p"},
		{FileNonce, 1<<10 + 1, "evidence file nonce.hex %s is larger than 1 KiB"},
		{FileReport, fifo, "evidence file report.bin %s is not a regular file (p"},
		{FileConfig, 1 << 30, "config.json differs from the config in response.json"},
		{"vcek.pem", fifo, "certificate %s is not a regular file (p"},
		{"vcek.pem", maxCertFile + 1, "certificate %s is larger than 64 KiB"},
	} {
		t.Run(tc.file+" "+map[bool]string{true: "a FIFO", false: "too large"}[tc.size == fifo], func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ev")
			if err := WriteEvidence(out, EvidenceIn{Response: ev, Nonce: nonce, ManifestSHA256: digest, ManifestPath: mpath, Result: res}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(out, tc.file)
			replace(t, p, tc.size)
			want := strings.Replace(tc.want, "%s", p, 1)
			err := promptly(t, "ReadEvidence", func() error { _, _, _, err := ReadEvidence(out); return err })
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ReadEvidence: %v\nwant an error with %q", err, want)
			}
		})
	}

	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	replace(t, roots, fifo)
	err = promptly(t, "LoadRoots", func() error { _, err := LoadRoots(roots, "Milan"); return err })
	if want := "--roots " + roots + " is not a regular file (p"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("LoadRoots(FIFO): %v, want %q", err, want)
	}
	replace(t, roots, maxRootsBundle+1)
	if _, err := LoadRoots(roots, "Milan"); err == nil || !strings.Contains(err.Error(), "--roots "+roots+" is larger than 1 MiB") {
		t.Errorf("LoadRoots(too large): %v", err)
	}
}

// A KDS cache entry that is a FIFO or too large is an error that says to
// remove it, not a hang nor a silent refetch.
func TestCachingGetterRefusesEntries(t *testing.T) {
	const url = "https://kds.example/vcek/v1/Milan/abcd"
	for _, tc := range []struct {
		name string
		size int64
		want string
	}{
		{"FIFO", fifo, "is not a regular file (p"},
		{"too large", maxKDSCacheEntry + 1, "is larger than 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &countingGetter{next: constGetter("from KDS")}
			g := &CachingGetter{Dir: t.TempDir(), Next: next}
			sum := sha256.Sum256([]byte(url))
			p := filepath.Join(g.Dir, hex.EncodeToString(sum[:]))
			replace(t, p, tc.size)
			err := promptly(t, "Get", func() error { _, err := g.Get(url); return err })
			if want := "KDS cache: entry for " + url + " " + p + " " + tc.want; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "remove it to fetch it from AMD KDS again") {
				t.Errorf("Get: %v, want %q and the fix", err, want)
			}
			if next.n != 0 {
				t.Errorf("KDS asked %d times, want 0", next.n)
			}
		})
	}
}

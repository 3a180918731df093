package manifest

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The manifest records the init's SHA-256 and its Go build info, which
// attest shows as what the guest runs: both must be of the same bytes. They
// were read through one descriptor, but in two reads (the hash, then the
// build info at offsets): a write into the file in between (cp over it,
// a linker writing its output in place) recorded one binary's hash beside
// another's build info.
func TestInitHashAndBuildInfoOfSameBytes(t *testing.T) {
	self, err := os.ReadFile(os.Args[0]) // this test binary: a Go program
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(runtime.GOROOT(), "bin", "gofmt")
	otherBytes, err := os.ReadFile(other)
	if err != nil {
		t.Skipf("no second Go binary: %v", err)
	}
	want, err := buildinfo.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(init, self, 0o755); err != nil {
		t.Fatal(err)
	}
	// Written in place (same file, truncated): what cp does.
	initHashed = func() { os.WriteFile(init, otherBytes, 0o755) }
	defer func() { initHashed = func() {} }()
	h, bi, err := hashInit(context.Background(), init)
	if err != nil {
		// Refusing the change is fine too.
		t.Logf("hashInit: %v", err)
		return
	}
	sum := sha256.Sum256(self)
	if h.SHA256 == hex.EncodeToString(sum[:]) && bi.Path != want.Path {
		t.Errorf("the init's SHA-256 is this test binary's (%s), but its build info is another binary's (path %q, want %q)", h.SHA256, bi.Path, want.Path)
	}
}

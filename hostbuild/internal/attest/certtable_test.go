package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/uuid"
)

// overlappingTable is a GUID table of n entries (distinct GUIDs), each
// naming the whole data area after the header: size bytes in all.
func overlappingTable(n, size int) []byte {
	t := make([]byte, size)
	header := (n + 1) * abi.CertTableEntrySize
	for i := 0; i < n; i++ {
		e := t[i*abi.CertTableEntrySize:]
		g := uuid.New()
		copy(e[:16], g[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(header))
		binary.LittleEndian.PutUint32(e[20:], uint32(size-header))
	}
	return t
}

// A certificate table whose entries overlap is refused: go-sev-guest
// copies every entry, so n entries over the same bytes cost n times the
// table (a 3 MiB table, within MaxResponseSize as base64, would cost
// about 96 GiB).
func TestCertTableOverlapRefused(t *testing.T) {
	full := test.CreateRawReport(&test.TestReportOptions{Version: 3, FMS: milanFMS})
	report := full[:abi.ReportSize]
	table := overlappingTable(1024, 512<<10) // 512 KiB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeWithCertTable(report, table)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("table %d bytes, decode allocated %d MiB, err %v", len(table), alloc>>20, err)
	if err == nil {
		t.Errorf("a table of %d overlapping entries (%d bytes) was accepted; decoding it allocated %d MiB", 1024, len(table), alloc>>20)
	}
}

// Two entries with one GUID are refused: go-sev-guest's readers differ on
// which of the two counts (Proto keeps the last, GetByGUIDString the
// first).
func TestCertTableRepeatedGUIDRefused(t *testing.T) {
	full := test.CreateRawReport(&test.TestReportOptions{Version: 3, FMS: milanFMS})
	table := make([]byte, 3*abi.CertTableEntrySize+8)
	g := uuid.MustParse(abi.VcekGUID)
	for i := range 2 {
		e := table[i*abi.CertTableEntrySize:]
		copy(e[:16], g[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(3*abi.CertTableEntrySize+4*i))
		binary.LittleEndian.PutUint32(e[20:], 4)
	}
	_, err := decodeWithCertTable(full[:abi.ReportSize], table)
	if err == nil || !strings.Contains(err.Error(), "entry 1 repeats the GUID") {
		t.Errorf("a table naming the VCEK twice: %v, want entry 1 refused", err)
	}
}

// A genuine-looking VCEK of another chip (same ARK/ASK) planted in the
// cache under this report's VCEK URL is refused.
func TestKDSCachePoisonedVCEK(t *testing.T) {
	s := signer(t, nil)
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other := signer(t, k)
	kdsFake, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	nonce := bytes.Repeat([]byte{9}, 32)
	ev := evidence(t, s, nonce, testConfig, nil)
	ev.CertTable = nil
	o := VerifyOptions{Manifest: testManifest(), Nonce: nonce, Roots: fakeRoots(s), AllowKDS: true, Getter: &CachingGetter{Dir: cache, Next: kdsFake}}
	if _, err := Verify(context.Background(), ev, o); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(cache)
	n := 0
	for _, e := range ents {
		p := filepath.Join(cache, e.Name())
		b, _ := os.ReadFile(p)
		if bytes.Equal(b, s.Vcek.Raw) {
			os.WriteFile(p, other.Vcek.Raw, 0o600)
			n++
		}
	}
	if n != 1 {
		t.Fatalf("replaced %d entries", n)
	}
	o.Getter = &CachingGetter{Dir: cache, Next: kdsFake}
	_, err = Verify(context.Background(), ev, o)
	t.Logf("poisoned: %v", err)
	if err == nil {
		t.Fatal("a poisoned VCEK verified")
	}
}

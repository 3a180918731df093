package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// FuzzCRLInForce: whatever bytes KDS (or whoever is in between) serves as
// the revocation list, crlInForce does not panic, leaves what does not
// parse to go-sev-guest (nil), and passes a list only when it is in force:
// a nextUpdate after now and a thisUpdate at most crlSkew ahead.
func FuzzCRLInForce(f *testing.F) {
	// The dates are what is checked here, not the signature: any CA will do.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), KeyUsage: x509.KeyUsageCRLSign, SubjectKeyId: []byte{1}}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, d := range [][2]time.Duration{{-time.Hour, time.Hour}, {-48 * time.Hour, -time.Hour}, {time.Hour, 2 * time.Hour}} {
		b, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(d[0]), NextUpdate: now.Add(d[1])}, ca, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("not a list"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := crlInForce("https://kds.example/crl", b, now)
		crl, perr := x509.ParseRevocationList(b)
		switch {
		case perr != nil && err != nil:
			t.Fatalf("unparseable list refused here (%v), want it left to go-sev-guest", err)
		case perr == nil && err == nil && (!now.Before(crl.NextUpdate) || crl.ThisUpdate.After(now.Add(crlSkew))):
			t.Fatalf("list current %s to %s passed at %s", crl.ThisUpdate, crl.NextUpdate, now)
		case perr == nil && err != nil && now.Before(crl.NextUpdate) && !crl.ThisUpdate.After(now.Add(crlSkew)):
			t.Fatalf("list current %s to %s refused at %s: %v", crl.ThisUpdate, crl.NextUpdate, now, err)
		}
	})
}

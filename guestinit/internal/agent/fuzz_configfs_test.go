package agent

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// answerTSM is configfs-tsm answering the attributes the agent reads with
// the given bytes (a nil answer: the fake's own), and each generation read
// after the first shifted by genSkew (another writer to the same entry).
type answerTSM struct {
	configfsi.Client
	provider, outblob, auxblob []byte
	genSkew                    byte
	genReads                   int
}

func (c *answerTSM) ReadFile(name string) ([]byte, error) {
	p, err := configfsi.ParseTsmPath(name)
	if err != nil {
		return c.Client.ReadFile(name)
	}
	var ans []byte
	switch p.Attribute {
	case "provider":
		ans = c.provider
	case "outblob":
		ans = c.outblob
	case "auxblob":
		ans = c.auxblob
	case "generation":
		c.genReads++
		if c.genSkew != 0 && c.genReads > 1 {
			b, err := c.Client.ReadFile(name)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return nil, err
			}
			return fmt.Appendf(nil, "%d\n", n+uint64(c.genSkew)), nil
		}
	}
	if ans == nil {
		return c.Client.ReadFile(name)
	}
	return bytes.Clone(ans), nil
}

// Whatever the kernel's configfs-tsm answers (provider, report, host
// certificate table, generation), Probe accepts only the sev_guest
// provider, and Quote gives the report's 1184 bytes as the outblob
// starts and the table as auxblob holds it, or a non-empty error.
func FuzzConfigfsTSMAnswers(f *testing.F) {
	signer := testSigner(f)
	certs, err := signer.CertTableBytes()
	if err != nil {
		f.Fatal(err)
	}
	good := fakeReport([64]byte{1})
	f.Add([]byte("sev_guest\n"), good[:agentapi.ReportSize], certs, byte(0))
	f.Add([]byte("sev_guest"), append(bytes.Clone(good[:agentapi.ReportSize]), 1, 2, 3), []byte{}, byte(0))
	f.Add([]byte("tdx_guest\n"), good[:agentapi.ReportSize-1], certs[:10], byte(0))
	f.Add([]byte(" sev_guest \n"), []byte{}, []byte(nil), byte('1'))
	f.Fuzz(func(t *testing.T, provider, outblob, auxblob []byte, genSkew byte) {
		cl := &answerTSM{Client: fakeTSM(t, signer, "sev_guest"), provider: provider, outblob: outblob, auxblob: auxblob, genSkew: genSkew}
		if len(provider) == 0 {
			cl.provider = nil // the fake's own: sev_guest
		}
		c := &ConfigfsTSM{Client: cl}
		perr := c.Probe()
		cl.genReads = 0
		wantProvider := len(provider) == 0 || strings.TrimSpace(string(provider)) == "sev_guest"
		if perr != nil && perr.Error() == "" {
			t.Fatal("Probe: empty error")
		}
		if perr == nil && (!wantProvider || genSkew != 0) {
			t.Fatalf("Probe accepted provider %q (generation skew %d)", provider, genSkew)
		}
		if perr != nil && wantProvider && genSkew == 0 {
			t.Fatalf("Probe refused provider %q: %v", provider, perr)
		}

		rep, tbl, err := c.Quote([64]byte{1})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Quote: empty error")
			}
			if outblob != nil && len(outblob) < agentapi.ReportSize && genSkew == 0 && !strings.Contains(err.Error(), "outblob is") {
				t.Errorf("Quote of a %d-byte outblob: %v, want it to name the outblob's size", len(outblob), err)
			}
			return
		}
		if genSkew != 0 {
			t.Fatalf("Quote accepted answers read across a generation change (skew %d)", genSkew)
		}
		if len(rep) != agentapi.ReportSize {
			t.Fatalf("report of %d bytes", len(rep))
		}
		if outblob != nil && !bytes.Equal(rep, outblob[:agentapi.ReportSize]) {
			t.Fatal("report is not the outblob's first bytes")
		}
		switch {
		case auxblob == nil:
			if !bytes.Equal(tbl, certs) {
				t.Fatal("table is not the fake's auxblob")
			}
		case len(auxblob) == 0:
			if tbl != nil {
				t.Fatalf("an empty auxblob gave a table of %d bytes, want none", len(tbl))
			}
		case !bytes.Equal(tbl, auxblob):
			t.Fatal("table is not the auxblob")
		}
	})
}

package attest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/katana-tee/snpboot/hostbuild/internal/atomicfile"
	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
)

// CachingGetter caches AMD KDS answers (VCEKs, certificate chains) on disk,
// one file per URL, so repeated attestations do not hit KDS rate limits.
// Revocation lists are not cached (URLs ending in "/crl").
type CachingGetter struct {
	Dir  string // default: $XDG_CACHE_HOME/katana-snp/kds
	Next trust.HTTPSGetter

	mu   sync.Mutex
	hits []string // cache files served, for Served
}

// Served lists the cache files Get has answered from, "PATH (URL)", so
// that a verification that fails on one can name it: an entry is kept for
// ever, and a damaged one would fail every run.
func (g *CachingGetter) Served() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.hits)
}

var _ trust.ContextHTTPSGetter = (*CachingGetter)(nil)

func (g *CachingGetter) dir() (string, error) {
	if g.Dir != "" {
		return g.Dir, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("KDS cache folder (set --kds-cache): %w", err)
	}
	return filepath.Join(d, "katana-snp", "kds"), nil
}

// maxKDSCacheEntry bounds a cached KDS answer: a VCEK (DER) is under
// 2 KiB, a cert_chain (ASK and ARK, PEM) about 4 KiB.
const maxKDSCacheEntry = 1 << 20

// Get implements trust.HTTPSGetter.
func (g *CachingGetter) Get(url string) ([]byte, error) {
	return g.GetContext(context.Background(), url)
}

// GetContext implements trust.ContextHTTPSGetter.
func (g *CachingGetter) GetContext(ctx context.Context, url string) ([]byte, error) {
	dir, err := g.dir()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(url))
	path := filepath.Join(dir, hex.EncodeToString(sum[:]))
	cacheable := !isCRL(url)
	if cacheable {
		// An entry that is not a regular file (a FIFO would block the
		// open for ever) or is over maxKDSCacheEntry is an error, not a
		// cache miss: the cache is the operator's folder.
		if b, err := infile.ReadFile("entry for "+url, path, maxKDSCacheEntry); err == nil && len(b) > 0 {
			g.mu.Lock()
			g.hits = append(g.hits, path+" ("+url+")")
			g.mu.Unlock()
			return b, nil
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("KDS cache: %w; remove it to fetch it from AMD KDS again", err)
		}
	}
	b, err := trust.GetWith(ctx, g.Next, url)
	if err != nil {
		return nil, fmt.Errorf("fetching %s from AMD KDS: %w", url, err)
	}
	if cacheable {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("KDS cache: %w", err)
		}
		// An entry replaced (an empty one) goes through a temporary
		// name a killed run may have left.
		atomicfile.RemoveStale(path)
		if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("KDS cache: %w", err)
		}
	}
	return b, nil
}

// isCRL reports whether a KDS URL is a revocation list's (".../crl"):
// those are never cached and their dates are checked.
func isCRL(url string) bool { return filepath.Base(url) == "crl" }

// crlSkew is how far a revocation list's thisUpdate may lie ahead of the
// verifier's clock: AMD issues a list and a verifier may read it seconds
// later on a clock a little behind.
const crlSkew = 5 * time.Minute

// freshCRLGetter refuses a revocation list (a URL ending in "/crl") that
// is not in force at Now: nextUpdate passed or absent, or thisUpdate still
// ahead. go-sev-guest checks the list's signature and entries but not its
// dates, so a list the ARK signed years ago, with none of the revocations
// since, would pass; whoever serves KDS's answers (a proxy, a mirror, the
// network) could replay one. Other URLs go to Next unchanged.
type freshCRLGetter struct {
	Next trust.HTTPSGetter
	Now  time.Time
}

var _ trust.ContextHTTPSGetter = freshCRLGetter{}

func (g freshCRLGetter) Get(url string) ([]byte, error) {
	return g.GetContext(context.Background(), url)
}

func (g freshCRLGetter) GetContext(ctx context.Context, url string) ([]byte, error) {
	b, err := trust.GetWith(ctx, g.Next, url)
	if err != nil || !isCRL(url) {
		return b, err
	}
	if err := crlInForce(url, b, g.Now); err != nil {
		return nil, err
	}
	return b, nil
}

// crlInForce checks the dates of the revocation list b fetched from url.
// A list that does not parse is left to go-sev-guest, which reports it.
func crlInForce(url string, b []byte, now time.Time) error {
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil
	}
	const layout = "2006-01-02 15:04:05 MST"
	switch {
	case crl.NextUpdate.IsZero():
		return fmt.Errorf("revocation list from %s has no nextUpdate, so nothing says when it stops being current (issued %s); refusing it", url, crl.ThisUpdate.UTC().Format(layout))
	case !now.Before(crl.NextUpdate):
		return fmt.Errorf("revocation list from %s is out of date: it was current until %s (issued %s) and it is %s; a current one was not served (a stale cache or proxy in between?)",
			url, crl.NextUpdate.UTC().Format(layout), crl.ThisUpdate.UTC().Format(layout), now.UTC().Format(layout))
	case crl.ThisUpdate.After(now.Add(crlSkew)):
		return fmt.Errorf("revocation list from %s was issued %s, after the time of this check (%s): is this machine's clock behind?",
			url, crl.ThisUpdate.UTC().Format(layout), now.UTC().Format(layout))
	}
	return nil
}

// embeddedRoots are AMD's roots embedded in go-sev-guest
// (trust.DefaultRootCerts: each product line's ARK and ASK, the VCEK
// chain), with the ASVK added for Milan and Genoa. Without it every
// VLEK-signed report failed ("root of trust missing intermediate
// certificate authority certificate for key VLEK"). go-sev-guest embeds
// the ASVK in the VLEK chain's bundle, under the same ARK. Turin, refused
// before the chain is checked, keeps the defaults (its embedded VLEK
// bundle does not parse in v0.15); so would a line whose bundle did not
// parse or named another ARK, and its VLEK reports fail as before.
// Each call returns new AMDRootCerts around the same certificates:
// go-sev-guest keeps a fetched revocation list in the AMDRootCerts it
// checked it with, and one verification must not reuse another's.
func embeddedRoots() map[string][]*trust.AMDRootCerts {
	roots := map[string][]*trust.AMDRootCerts{}
	for line, pc := range embeddedCerts() {
		roots[line] = []*trust.AMDRootCerts{{ProductLine: line, ProductCerts: pc}}
	}
	return roots
}

var embeddedCerts = sync.OnceValue(func() map[string]*trust.ProductCerts {
	vlekBundles := map[string][]byte{"Milan": trust.AskArkMilanVlekBytes, "Genoa": trust.AskArkGenoaVlekBytes}
	certs := map[string]*trust.ProductCerts{}
	for line, def := range trust.DefaultRootCerts {
		pc := *def.ProductCerts
		vlek := &trust.ProductCerts{}
		if b, ok := vlekBundles[line]; ok && vlek.FromKDSCertBytes(b) == nil && vlek.Asvk != nil && pc.Ark != nil && pc.Ark.Equal(vlek.Ark) {
			pc.Asvk = vlek.Asvk
		}
		certs[line] = &pc
	}
	return certs
})

// asvkNotRevoked checks the ASVK that signed a report's VLEK against
// AMD's VLEK revocation list. go-sev-guest's CheckRevocations fetches only
// the ASK's list (the VCEK chain's) and compares only the ASK's serial,
// so for a VLEK-signed report the intermediate that vouches for it went
// unchecked. The ASVK is the trusted one that signed the VLEK, whatever
// product line (a version 2 report with no VCEK at hand names none); the
// list is KDS's for that line's ASVK (the ASVK's own distribution point),
// fetched through g (freshCRLGetter: its dates are checked), and must be
// signed by the same trusted ARK.
func asvkNotRevoked(ctx context.Context, g trust.HTTPSGetter, roots map[string][]*trust.AMDRootCerts, vlekDER []byte) error {
	vlek, err := x509.ParseCertificate(vlekDER)
	if err != nil {
		return fmt.Errorf("VLEK certificate: %w", err)
	}
	var pc *trust.ProductCerts
	productLine := ""
	for _, line := range slices.Sorted(maps.Keys(roots)) {
		for _, r := range roots[line] {
			if c := r.ProductCerts; pc == nil && c != nil && c.Asvk != nil && c.Ark != nil && vlek.CheckSignatureFrom(c.Asvk) == nil {
				pc, productLine = c, line
			}
		}
	}
	if pc == nil {
		return errors.New("no trusted ASVK signed the VLEK")
	}
	url := kds.CrlLinkByRole(productLine, "ASVK")
	b, err := trust.GetWith(ctx, g, url)
	if err != nil {
		return fmt.Errorf("fetching the ASVK's revocation list: %w", err)
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return fmt.Errorf("revocation list from %s: %w", url, err)
	}
	if err := crl.CheckSignatureFrom(pc.Ark); err != nil {
		return fmt.Errorf("revocation list from %s is not signed by the ARK: %w", url, err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(pc.Asvk.SerialNumber) == 0 {
			return fmt.Errorf("the ASVK that signed the VLEK (serial %s) was revoked at %s (list from %s)", pc.Asvk.SerialNumber, e.RevocationTime.UTC().Format("2006-01-02 15:04:05 MST"), url)
		}
	}
	return nil
}

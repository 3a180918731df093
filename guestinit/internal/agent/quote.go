package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoDevice means neither quote path exists in this guest (not an SEV-SNP
// VM, or the sev-guest/tsm support is not loaded). The agent answers 503
// no_snp_device; it is never a boot error.
var ErrNoDevice = errors.New("no SEV-SNP attestation device")

// errBusy means the hardware queue is full.
var errBusy = errors.New("attestation queue full")

// Quoter asks the platform for a signed attestation report.
type Quoter interface {
	// Name is the provider name reported to clients (agentapi.Provider*).
	Name() string
	// Quote returns the raw 1184-byte report binding reportData and the
	// certificate table the host supplied (nil when there is none).
	Quote(reportData [64]byte) (report, certTable []byte, err error)
}

// Prober is a Quoter that can tell whether its device exists. Probe returns
// nil when usable and an error wrapping ErrNoDevice (with the reason) when
// the device is absent.
type Prober interface {
	Quoter
	Probe() error
}

// FirstAvailable tries the providers in order on each call until one probes
// fine, then sticks to it. With none available it returns an error that
// lists each provider's reason, wrapping ErrNoDevice only when every
// provider is absent (a device that exists but fails, EACCES say, is a
// device error, not a guest without SEV-SNP). Probing is rate-limited so
// that a flood of requests on a non-SNP guest stays cheap.
type FirstAvailable struct {
	Providers []Prober
	// RetryAfter is the minimum time between two probe rounds after a failed
	// one (default 5s).
	RetryAfter time.Duration

	mu       sync.Mutex
	chosen   Quoter
	lastErr  error
	lastTime time.Time
}

func (f *FirstAvailable) pick() (Quoter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chosen != nil {
		return f.chosen, nil
	}
	retry := f.RetryAfter
	if retry == 0 {
		retry = 5 * time.Second
	}
	if f.lastErr != nil && time.Since(f.lastTime) < retry {
		return nil, f.lastErr
	}
	var reasons []string
	absent := true
	for _, p := range f.Providers {
		err := p.Probe()
		if err == nil {
			f.chosen = p
			return p, nil
		}
		absent = absent && errors.Is(err, ErrNoDevice)
		reasons = append(reasons, p.Name()+": "+strings.TrimPrefix(err.Error(), ErrNoDevice.Error()+": "))
	}
	if absent {
		// The likely causes first: the guest was launched without
		// SEV-SNP (hostbuild run --plain), or sev-guest failed its probe
		// (a bad VMPCK key: the init's module line has the kernel's
		// words), so no provider has a device.
		f.lastErr = fmt.Errorf("%w (this guest was launched without SEV-SNP, as with hostbuild run --plain, or the sev-guest driver did not probe: see the init's \"module sev_guest\" line); %s", ErrNoDevice, strings.Join(reasons, "; "))
	} else {
		f.lastErr = fmt.Errorf("no attestation provider usable; %s", strings.Join(reasons, "; "))
	}
	f.lastTime = time.Now()
	return nil, f.lastErr
}

// Name is the chosen provider's name, or "none".
func (f *FirstAvailable) Name() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chosen == nil {
		return "none"
	}
	return f.chosen.Name()
}

// Quote quotes with the first available provider.
func (f *FirstAvailable) Quote(rd [64]byte) ([]byte, []byte, error) {
	q, err := f.pick()
	if err != nil {
		return nil, nil, err
	}
	return q.Quote(rd)
}

// namedQuote is the result of one hardware request.
type namedQuote struct {
	provider     string
	report, cert []byte
}

// gate serialises hardware requests: one in flight, at most depth waiting.
type gate struct {
	sem     chan struct{}
	depth   int64
	pending atomic.Int64 // in flight + waiting
}

func newGate(depth int) *gate {
	return &gate{sem: make(chan struct{}, 1), depth: int64(depth)}
}

// do runs fn alone. It returns errBusy at once when the queue is full and
// ctx.Err() when the caller gives up while waiting.
func (g *gate) do(ctx context.Context, fn func()) error {
	if g.pending.Add(1) > g.depth+1 {
		g.pending.Add(-1)
		return errBusy
	}
	defer g.pending.Add(-1)
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.sem }()
	// Both may have been ready at once: a request cancelled while it
	// waited does not go to the hardware.
	if err := ctx.Err(); err != nil {
		return err
	}
	fn()
	return nil
}

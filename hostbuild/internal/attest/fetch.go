package attest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"reflect"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/hostbuild/internal/strictjson"
	"github.com/katana-tee/snpboot/shared/agentapi"
)

// MaxResponseSize bounds what the verifier reads from an agent.
const MaxResponseSize = 4 << 20

// DefaultFetchTimeout bounds an exchange with the agent by default: above
// the 60 s for which the guest's sev-guest driver retries a request the
// host answers busy (SNP_REQ_MAX_RETRY_DURATION), with room for the rest.
const DefaultFetchTimeout = 90 * time.Second

// FetchOptions say where and how to ask.
type FetchOptions struct {
	Addr    agentapi.Addr // vsock CID+port or tcp host+port
	Nonce   []byte        // 32 to 64 bytes; see NewNonce
	Timeout time.Duration // whole exchange (default DefaultFetchTimeout)
}

// NewNonce returns n fresh random bytes.
func NewNonce(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	return b, agentapi.CheckNonce(b)
}

func dialer(a agentapi.Addr) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		if a.Network == "vsock" {
			c, err := vsock.DialContext(ctx, a.CID, a.Port, nil)
			if err != nil {
				return nil, fmt.Errorf("dialing %s (is vhost_vsock loaded on the host, and was QEMU given -device vhost-vsock-pci,guest-cid=%d?): %w", a, a.CID, err)
			}
			return c, nil
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a.HostPort())
	}
}

// Fetch asks the agent for a report binding o.Nonce. Every error is
// ClassTransport; an agent error keeps its stable code in the message.
func Fetch(ctx context.Context, o FetchOptions) (*agentapi.AttestationResponse, error) {
	if err := agentapi.CheckNonce(o.Nonce); err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{DialContext: dialer(o.Addr), DisableKeepAlives: true, MaxResponseHeaderBytes: 16 << 10}
	defer tr.CloseIdleConnections()
	url := "http://agent" + agentapi.PathAttestation + "?" + agentapi.NonceQueryParam + "=" + hex.EncodeToString(o.Nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fail(ClassTransport, "building request: %w", err)
	}
	client := &http.Client{
		Transport: tr,
		// The agent never redirects: a 3xx is an answer, refused below
		// like any status but 200, not a request somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error's text repeats the request's URL (with the nonce):
		// noise next to the address, which names the agent.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		hint := ""
		var oe *net.OpError
		switch {
		case o.Addr.Network != "vsock" && errors.As(err, &oe) && oe.Op == "dial":
			hint = " (is the guest running and the port forwarded, e.g. hostbuild run --forward HOSTPORT:" + fmt.Sprint(agentapi.DefaultPort) + "?)"
		case errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil:
			return nil, fail(ClassTransport, "the agent at %s gave no complete answer within %v (--timeout): is the guest booted (run prints \"ready:\" once Katana started) and its agent on (katana.agent)? A boot under TCG takes minutes, and the guest's sev-guest driver waits up to 60 s while the host answers busy: wait or raise --timeout", o.Addr, timeout)
		}
		return nil, fail(ClassTransport, "asking the agent at %s: %w%s", o.Addr, err, hint)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return nil, fail(ClassTransport, "the agent at %s gave no complete answer within %v (--timeout): it sent its headers, then its answer stalled; is it the agent's port? raise --timeout on a slow (TCG) guest", o.Addr, timeout)
		}
		return nil, fail(ClassTransport, "reading the answer of the agent at %s: %w", o.Addr, err)
	}
	if len(body) > MaxResponseSize {
		return nil, fail(ClassTransport, "the agent's answer exceeds %d bytes", MaxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		var e agentapi.ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			return nil, fail(ClassTransport, "agent at %s answered %d %s: %s", o.Addr, resp.StatusCode, printable.Quote(e.Error.Code), printable.Quote(e.Error.Message))
		}
		return nil, fail(ClassTransport, "agent at %s answered %s", o.Addr, printable.Quote(resp.Status))
	}
	r, err := DecodeResponse(body)
	if err != nil {
		// Something else answered: Katana's JSON-RPC port, say, which
		// answers any path.
		var probe map[string]json.RawMessage
		if json.Unmarshal(body, &probe) != nil || probe["api_version"] == nil {
			return nil, fail(ClassTransport, "%s answered, but not as the snpboot agent does (%w): is it the agent's port? The agent listens on guest port %d unless katana.agent says otherwise; Katana's RPC port is another", o.Addr, err, agentapi.DefaultPort)
		}
		return nil, fail(ClassTransport, "agent at %s: %w", o.Addr, err)
	}
	return r, nil
}

// DecodeResponse strictly decodes an attestation response body: no unknown
// field, no trailing data, no repeated key, no key in another case than the
// field's.
func DecodeResponse(b []byte) (*agentapi.AttestationResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r agentapi.AttestationResponse
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding attestation response: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("decoding attestation response: trailing data")
	}
	// The response is kept as evidence (response.json) for other readers:
	// refuse what they would read differently (a repeated key, a key in
	// another case), as the manifest does.
	if err := strictjson.CheckKeys(b, reflect.TypeOf(r)); err != nil {
		return nil, fmt.Errorf("decoding attestation response: %w", err)
	}
	if r.APIVersion != agentapi.APIVersion {
		return nil, fmt.Errorf("attestation response api_version %d, this tool speaks %d", r.APIVersion, agentapi.APIVersion)
	}
	// provider is not signed, yet shown beside a verified result: only
	// the two names the agent uses.
	if r.Provider != agentapi.ProviderConfigfsTSM && r.Provider != agentapi.ProviderSevGuest {
		return nil, fmt.Errorf("attestation response provider %q: the agent names %s or %s", r.Provider, agentapi.ProviderConfigfsTSM, agentapi.ProviderSevGuest)
	}
	return &r, nil
}

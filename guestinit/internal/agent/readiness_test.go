package agent

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

func TestReadiness(t *testing.T) {
	var r Readiness
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "still checking the initrd") {
		t.Errorf("before Checked: %v", err)
	}
	r.Checked()
	if err := r.Err(); err != nil {
		t.Errorf("after Checked: %v", err)
	}
	r.Failed()
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "boot failed") {
		t.Errorf("after Failed: %v", err)
	}
	r.Checked() // a failed boot stays failed
	if err := r.Err(); err == nil {
		t.Error("Checked after Failed made it ready again")
	}
	var early Readiness
	early.Failed()
	early.Checked()
	if err := early.Err(); err == nil || !strings.Contains(err.Error(), "boot failed") {
		t.Errorf("Failed before Checked, then Checked: %v", err)
	}
}

// countingQuoter counts Quote calls and runs during before returning what
// the fake device gives.
type countingQuoter struct {
	Quoter
	n      atomic.Int32
	during func()
}

func (q *countingQuoter) Quote(rd [64]byte) ([]byte, []byte, error) {
	q.n.Add(1)
	if q.during != nil {
		q.during()
	}
	return q.Quoter.Quote(rd)
}

// Reports are given only while Options.Ready allows: not before the init
// has checked the initrd (the device is not even asked), and not when the
// boot failed while the device was working on the request.
func TestAttestationOnlyWhenReady(t *testing.T) {
	fake := newFakeSNP(t, testSigner(t))
	var ready Readiness
	q := &countingQuoter{Quoter: &SevGuestIoctl{Open: func() (Ioctler, error) { return fake, nil }}}
	s := New(Options{Quoter: q, Config: testConfig, Ready: ready.Err})
	get := func() (int, agentapi.ErrorResponse) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/attestation?nonce="+nonceHex(1, 32), nil))
		var e agentapi.ErrorResponse
		json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e
	}
	if code, e := get(); code != 503 || e.Error.Code != agentapi.CodeNotReady || !strings.Contains(e.Error.Message, "still checking") || q.n.Load() != 0 {
		t.Errorf("before the check: %d %+v, device asked %d times; want 503 not_ready without asking it", code, e, q.n.Load())
	}
	ready.Checked()
	if code, e := get(); code != 200 {
		t.Errorf("after the check: %d %+v, want 200", code, e)
	}
	q.during = ready.Failed
	if code, e := get(); code != 503 || e.Error.Code != agentapi.CodeNotReady || !strings.Contains(e.Error.Message, "boot failed") {
		t.Errorf("boot failed during the quote: %d %+v, want 503 not_ready", code, e)
	}
	// Status still answers: it is how the host sees why.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if rec.Code != 200 {
		t.Errorf("status while not ready: %d", rec.Code)
	}
}

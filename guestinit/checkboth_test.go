package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	"github.com/katana-tee/snpboot/guestinit/internal/payload"
)

// A check that has failed is reported at once, not when the other check
// (the payload's decode, or the other files' hashing, which take minutes on
// a slow guest) ends: until then a stop request powers off cleanly and hides
// the failure (awaitCheck finds no result yet), and the boot error waits.
func TestFailedCheckReportedAtOnce(t *testing.T) {
	bad := errors.New("SHA-256 does not match the content list")
	for _, tc := range []struct {
		name  string
		pay   func(release <-chan struct{}) (payload.Report, integrity.Pinned, error)
		files func(release <-chan struct{}) (integrity.Report, error)
	}{
		{"payload fails, files still hashing",
			func(<-chan struct{}) (payload.Report, integrity.Pinned, error) {
				return payload.Report{}, integrity.Pinned{}, bad
			},
			func(r <-chan struct{}) (integrity.Report, error) { <-r; return integrity.Report{}, nil }},
		{"files fail, payload still decoding",
			func(r <-chan struct{}) (payload.Report, integrity.Pinned, error) {
				<-r
				return payload.Report{}, integrity.Pinned{}, nil
			},
			func(<-chan struct{}) (integrity.Report, error) { return integrity.Report{}, bad }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, _, _ := testInit(t)
			release := make(chan struct{})
			defer close(release)
			got := make(chan integrityResult, 1)
			go func() {
				got <- in.checkBoth(func() (payload.Report, integrity.Pinned, error) { return tc.pay(release) },
					func() (integrity.Report, error) { return tc.files(release) })
			}()
			select {
			case r := <-got:
				if !errors.Is(r.err, bad) {
					t.Errorf("result error %v, want %v", r.err, bad)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the failed check was not reported until the other check ended")
			}
		})
	}
	// Both pass: the result carries both reports.
	in, _, _ := testInit(t)
	r := in.checkBoth(func() (payload.Report, integrity.Pinned, error) {
		return payload.Report{Frames: 3}, integrity.Pinned{Path: "/bin/katana"}, nil
	}, func() (integrity.Report, error) { return integrity.Report{Files: 5}, nil })
	if r.err != nil || r.p.Frames != 3 || r.pin.Path != "/bin/katana" || r.r.Files != 5 {
		t.Errorf("checkBoth = %+v", r)
	}
}

// The agent gives reports once the integrity check has passed (awaitChecks
// marks the init checked), and not before.
func TestAgentReadyOnlyAfterThePassedCheck(t *testing.T) {
	in, _, _ := testInit(t)
	if in.ready.Err() == nil {
		t.Fatal("the agent would give reports before the integrity check")
	}
	integ := make(chan integrityResult, 1)
	integ <- integrityResult{}
	if _, ok := in.awaitChecks(integ, false, integrity.GoHasher{}, func() {}); !ok {
		t.Fatal("awaitChecks with a passed check did not go on")
	}
	if err := in.ready.Err(); err != nil {
		t.Errorf("after the passed check the agent refuses reports: %v", err)
	}
}

// A failed integrity check is a boot error: logged, a power-off, and no
// reports, even though awaitChecks goes on when the power-off returns (as
// it does in tests).
func TestFailedCheckIsABootError(t *testing.T) {
	in, log, halted := testInit(t)
	integ := make(chan integrityResult, 1)
	integ <- integrityResult{err: errors.New("tampered")}
	in.awaitChecks(integ, false, integrity.GoHasher{}, func() {})
	select {
	case <-halted:
	case <-time.After(5 * time.Second):
		t.Fatal("a failed check did not power off")
	}
	if !strings.Contains(log.String(), "boot error: tampered") {
		t.Errorf("a failed check is not logged as a boot error:\n%s", log.String())
	}
	if in.ready.Err() == nil {
		t.Error("after a failed check the agent would give reports")
	}
}

package main

import (
	"errors"
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

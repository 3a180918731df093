package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
)

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

package status

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStatus(t *testing.T) {
	clock := time.Duration(0)
	s := New(func() time.Duration { clock += time.Second; return clock })
	s.AddStage("mounts", true, "", 5*time.Millisecond)
	s.SetRunning(42)
	s.SetExited(Exit{Code: 3, At: 9})
	s.AddRestart()
	s.SetRunning(43)
	got := s.Snapshot()
	want := Snapshot{
		Stages:   []Stage{{Name: "mounts", OK: true, At: time.Second, Took: 5 * time.Millisecond}},
		State:    Running,
		PID:      43,
		Restarts: 1,
		LastExit: &Exit{Code: 3, At: 9},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	// The snapshot is a copy.
	got.Stages[0].Name = "changed"
	got.LastExit.Code = 99
	if again := s.Snapshot(); again.Stages[0].Name != "mounts" || again.LastExit.Code != 3 {
		t.Error("Snapshot shares memory with the status")
	}
}

func TestRequestStopOnce(t *testing.T) {
	s := New(func() time.Duration { return 0 })
	select {
	case <-s.StopRequested():
		t.Fatal("stop requested before any request")
	default:
	}
	var wg sync.WaitGroup
	firsts := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); firsts <- s.RequestStop("agent") }()
	}
	wg.Wait()
	close(firsts)
	n := 0
	for f := range firsts {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d calls were first, want 1", n)
	}
	<-s.StopRequested()
	if s.StopReason() != "agent" || s.Snapshot().StopRequested != "agent" {
		t.Errorf("reason %q, want agent", s.StopReason())
	}
}

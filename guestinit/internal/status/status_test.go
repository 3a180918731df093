package status

import (
	"fmt"
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

// Each change of the payload's state, as the supervisor makes them: an
// exit clears the pid, a state change keeps it.
func TestStatusTransitions(t *testing.T) {
	tests := []struct {
		name  string
		steps func(s *Status)
		want  Snapshot
	}{
		{
			name:  "new",
			steps: func(s *Status) {},
			want:  Snapshot{State: NotStarted},
		},
		{
			name:  "running",
			steps: func(s *Status) { s.SetRunning(42) },
			want:  Snapshot{State: Running, PID: 42},
		},
		{
			name: "stopping keeps the pid",
			steps: func(s *Status) {
				s.SetRunning(42)
				s.SetState(Stopping)
			},
			want: Snapshot{State: Stopping, PID: 42},
		},
		{
			name: "exited clears the pid",
			steps: func(s *Status) {
				s.SetRunning(42)
				s.SetExited(Exit{Code: 143, Signal: "SIGTERM", At: 7 * time.Second})
			},
			want: Snapshot{State: Exited, LastExit: &Exit{Code: 143, Signal: "SIGTERM", At: 7 * time.Second}},
		},
		{
			name: "restarting after an exit",
			steps: func(s *Status) {
				s.SetRunning(42)
				s.SetExited(Exit{Code: 1, At: 3 * time.Second})
				s.AddRestart()
				s.SetState(Restarting)
			},
			want: Snapshot{State: Restarting, Restarts: 1, LastExit: &Exit{Code: 1, At: 3 * time.Second}},
		},
		{
			name: "the last exit is the latest",
			steps: func(s *Status) {
				s.SetRunning(42)
				s.SetExited(Exit{Code: 1, At: 3 * time.Second})
				s.AddRestart()
				s.SetRunning(43)
				s.SetExited(Exit{Code: 2, At: 5 * time.Second})
				s.AddRestart()
			},
			want: Snapshot{State: Exited, Restarts: 2, LastExit: &Exit{Code: 2, At: 5 * time.Second}},
		},
		{
			name: "a failed stage",
			steps: func(s *Status) {
				s.AddStage("network", false, "eth0: no carrier", 10*time.Second)
			},
			want: Snapshot{State: NotStarted, Stages: []Stage{{Name: "network", Detail: "eth0: no carrier", At: time.Minute, Took: 10 * time.Second}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(func() time.Duration { return time.Minute })
			tc.steps(s)
			if diff := cmp.Diff(tc.want, s.Snapshot()); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNow(t *testing.T) {
	s := New(func() time.Duration { return 90 * time.Second })
	if got, want := s.Now(), 90*time.Second; got != want {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}

func TestLogf(t *testing.T) {
	s := New(func() time.Duration { return 0 })
	s.Logf("dropped %d", 1) // without SetLog: discarded, no panic
	var got []string
	s.SetLog(func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) })
	s.Logf("agent: shutdown requested by %s", "vsock:3:1234")
	if diff := cmp.Diff([]string{"agent: shutdown requested by vsock:3:1234"}, got); diff != "" {
		t.Errorf("logged (-want +got):\n%s", diff)
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

// Only the first request's reason is kept.
func TestRequestStopKeepsFirstReason(t *testing.T) {
	s := New(func() time.Duration { return 0 })
	if s.StopReason() != "" {
		t.Errorf("reason %q before any request, want none", s.StopReason())
	}
	if !s.RequestStop("power button") {
		t.Error("first RequestStop reported it was not first")
	}
	if s.RequestStop("agent") {
		t.Error("second RequestStop reported it was first")
	}
	if got, want := s.StopReason(), "power button"; got != want {
		t.Errorf("StopReason() = %q, want %q", got, want)
	}
	if got, want := s.Snapshot().StopRequested, "power button"; got != want {
		t.Errorf("Snapshot().StopRequested = %q, want %q", got, want)
	}
}

// Writers and readers at once, each call in a goroutine of its own so
// that no other call orders them (meant for -race): nothing is lost.
func TestConcurrentUse(t *testing.T) {
	s := New(func() time.Duration { return 0 })
	const n = 20
	calls := []func(i int){
		func(i int) { s.AddStage(fmt.Sprint("stage", i), true, "", 0) },
		func(int) { s.AddRestart() },
		func(i int) { s.SetRunning(i + 1) },
		func(int) { s.SetState(Stopping) },
		func(i int) { s.SetExited(Exit{Code: i}) },
		func(int) { s.RequestStop("agent") },
		func(int) { _ = s.Snapshot() },
		func(int) { _ = s.StopReason() },
	}
	var wg sync.WaitGroup
	for i := range n {
		for _, call := range calls {
			wg.Add(1)
			go func() { defer wg.Done(); call(i) }()
		}
	}
	wg.Wait()
	got := s.Snapshot()
	if len(got.Stages) != n || got.Restarts != n || got.StopRequested != "agent" {
		t.Errorf("after %d rounds of concurrent calls: %d stages, %d restarts, stop reason %q; want %d, %d, agent",
			n, len(got.Stages), got.Restarts, got.StopRequested, n, n)
	}
}

// Package status is the guest init's shared, thread-safe state: the boot
// stages with their timestamps, the payload's state, pid, restarts and last
// exit status, and the channel through which anyone (the ACPI power button,
// a signal, the attestation agent's POST /v1/shutdown) asks for the
// graceful stop. The agent reads Snapshot for GET /v1/status.
package status

import (
	"sync"
	"time"
)

// Stage is one completed (or failed) boot stage.
type Stage struct {
	Name   string        `json:"name"`
	OK     bool          `json:"ok"`
	Detail string        `json:"detail,omitempty"`
	At     time.Duration `json:"at_ns"`   // since boot, when it ended
	Took   time.Duration `json:"took_ns"` // duration
}

// State of the payload (Katana).
type State string

const (
	NotStarted State = "not_started"
	Running    State = "running"
	Restarting State = "restarting" // exited, waiting for the backoff
	Stopping   State = "stopping"   // graceful stop in progress
	Exited     State = "exited"
)

// Exit is how the payload ended.
type Exit struct {
	Code   int           `json:"code"`             // exit code, or 128+signal
	Signal string        `json:"signal,omitempty"` // name of the signal that ended it
	At     time.Duration `json:"at_ns"`            // since boot
}

// Snapshot is a copy of the status at one moment.
type Snapshot struct {
	Stages        []Stage `json:"stages"`
	State         State   `json:"state"`
	PID           int     `json:"pid,omitempty"`
	Restarts      int     `json:"restarts"`
	LastExit      *Exit   `json:"last_exit,omitempty"`
	StopRequested string  `json:"stop_requested,omitempty"` // reason, once asked
}

// Status is safe for concurrent use. Create it with New.
type Status struct {
	mu       sync.Mutex
	snap     Snapshot
	stopOnce sync.Once
	stop     chan struct{}
	now      func() time.Duration
	logf     func(format string, args ...any)
}

// New returns an empty status; now gives the time since boot.
func New(now func() time.Duration) *Status {
	return &Status{snap: Snapshot{State: NotStarted}, stop: make(chan struct{}), now: now}
}

// SetLog sets where Logf writes (the init's console logger); call it
// before sharing the status.
func (s *Status) SetLog(logf func(format string, args ...any)) { s.logf = logf }

// Logf writes one line to the init's console log, for the agent and other
// parts that only get the status. Without SetLog it discards.
func (s *Status) Logf(format string, args ...any) {
	if s.logf != nil {
		s.logf(format, args...)
	}
}

// Now is the time since boot by the status's clock.
func (s *Status) Now() time.Duration { return s.now() }

// AddStage records a finished stage.
func (s *Status) AddStage(name string, ok bool, detail string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Stages = append(s.snap.Stages, Stage{Name: name, OK: ok, Detail: detail, At: s.now(), Took: took})
}

// SetRunning records a started payload.
func (s *Status) SetRunning(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.State, s.snap.PID = Running, pid
}

// SetState records a state change that keeps the pid as it is.
func (s *Status) SetState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.State = st
}

// SetExited records the payload's exit.
func (s *Status) SetExited(e Exit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.State, s.snap.PID = Exited, 0
	s.snap.LastExit = &e
}

// AddRestart counts one restart.
func (s *Status) AddRestart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Restarts++
}

// Snapshot returns a deep copy.
func (s *Status) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.snap
	c.Stages = append([]Stage(nil), s.snap.Stages...)
	if s.snap.LastExit != nil {
		e := *s.snap.LastExit
		c.LastExit = &e
	}
	return c
}

// RequestStop asks for the graceful stop (SIGTERM to the payload, grace
// period, SIGKILL, sync, unmount, power off). It returns at once; only the
// first request counts and its reason is kept. It reports whether this
// call was the first.
func (s *Status) RequestStop(reason string) bool {
	first := false
	s.stopOnce.Do(func() {
		first = true
		s.mu.Lock()
		s.snap.StopRequested = reason
		s.mu.Unlock()
		close(s.stop)
	})
	return first
}

// StopRequested is closed once a stop was requested.
func (s *Status) StopRequested() <-chan struct{} { return s.stop }

// StopReason is the reason given with the first stop request ("" if none).
func (s *Status) StopReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.StopRequested
}

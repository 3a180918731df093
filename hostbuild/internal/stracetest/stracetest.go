// Package stracetest runs a command under strace for tests that must see
// system calls no file system state shows (an fsync, its order against a
// rename), and gives back the trace one whole call a line.
package stracetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Run runs cmd (not started) under strace -f, tracing the system calls in
// trace (strace's -e trace= list), and returns the calls, one a line. It
// skips the test when strace is missing or cannot trace here, and fails it
// when cmd fails.
func Run(t testing.TB, trace string, cmd *exec.Cmd) []string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("skipping: no strace on PATH, which reads the system calls (apt-get install strace, or make deps)")
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd.Args = append([]string{strace, "-f", "-qq", "-o", log, "-e", "trace=" + trace}, cmd.Args...)
	cmd.Path = strace
	if b, err := cmd.CombinedOutput(); err != nil {
		if why := cannotTrace(string(b)); why != "" {
			t.Skipf("skipping: strace cannot trace here: %s", why)
		}
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return Join(string(b))
}

// cannotTrace returns strace's own line saying it cannot trace (no ptrace
// in this container: "strace: ... ptrace...: Operation not permitted"), or
// "": the traced command's output, which may say the same words, is not
// strace's.
func cannotTrace(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "strace: ") && (strings.Contains(l, "ptrace") || strings.Contains(l, "Operation not permitted")) {
			return l
		}
	}
	return ""
}

var (
	unfinished = regexp.MustCompile(`^(\d+) +(.*) <unfinished \.\.\.>$`)
	resumed    = regexp.MustCompile(`^(\d+) +<\.\.\. [a-z0-9_]+ resumed>(.*)$`)
)

// Join returns strace -f's output one call a line: a call another
// thread's interrupted ("PID call(args <unfinished ...>", later "PID <...
// call resumed>rest") is put back together, at the place it finished
// (the order of the calls' results).
func Join(log string) []string {
	pending := map[string]string{}
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if m := unfinished.FindStringSubmatch(l); m != nil {
			pending[m[1]] = m[2]
			continue
		}
		if m := resumed.FindStringSubmatch(l); m != nil {
			l = m[1] + " " + pending[m[1]] + m[2]
			delete(pending, m[1])
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

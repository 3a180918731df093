package stracetest

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Two threads' calls interleave in strace -f's log: each is one line
// again, placed where it returned, and a whole line stays as it is.
func TestJoinInterleaved(t *testing.T) {
	log := `101 openat(AT_FDCWD, "/d/out.tmp", O_RDWR|O_CREAT <unfinished ...>
102 fsync(4 <unfinished ...>
101 <... openat resumed>) = 3
102 <... fsync resumed>) = 0
101 renameat(AT_FDCWD, "/d/out.tmp", AT_FDCWD, "/d/out") = 0
`
	want := []string{
		`101 openat(AT_FDCWD, "/d/out.tmp", O_RDWR|O_CREAT) = 3`,
		`102 fsync(4) = 0`,
		`101 renameat(AT_FDCWD, "/d/out.tmp", AT_FDCWD, "/d/out") = 0`,
	}
	if got := Join(log); !slices.Equal(got, want) {
		t.Errorf("Join:\n%q\nwant\n%q", got, want)
	}
}

// outcomeTB records how Run ended a test: skipped or failed, with the
// message. Both end the goroutine Run runs in, as testing's do.
type outcomeTB struct {
	testing.TB
	skipped, failed string
}

func (o *outcomeTB) Helper() {}
func (o *outcomeTB) Skip(args ...any) {
	o.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcomeTB) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcomeTB) Fatal(args ...any) {
	o.failed = fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcomeTB) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A traced command that fails saying "Operation not permitted" (its own
// EPERM, not strace's) fails the test: only strace's own refusal to trace
// ("strace: ... ptrace ...") skips it.
func TestRunCommandEPERMFails(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("skipping: no strace on PATH (apt-get install strace, or make deps)")
	}
	o := &outcomeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(o, "openat", exec.Command("sh", "-c", "echo 'cp: cannot create regular file: Operation not permitted; ptrace' >&2; exit 1"))
	}()
	<-done
	if o.skipped != "" {
		if strings.HasPrefix(o.skipped, "skipping: strace cannot trace here") && !strings.Contains(o.skipped, "cp: cannot create") {
			t.Skipf("strace itself cannot trace here: %s", o.skipped)
		}
		t.Fatalf("the command's own failure skipped the test: %s", o.skipped)
	}
	if !strings.Contains(o.failed, "exit status 1") {
		t.Errorf("failure %q, want the command's exit status", o.failed)
	}
}

package stracetest

import (
	"slices"
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

package main

import (
	"fmt"
	"testing"

	"github.com/katana-tee/snpboot/guestinit/internal/early"
)

// A late mount that succeeds is not logged: mountLate logs failures only.
func TestMountLateQuietWhenMounted(t *testing.T) {
	var lines []string
	ok := func(source, target, fstype string, flags uintptr, data string) error { return nil }
	mountLate(early.Options{Root: t.TempDir(), Mount: ok}, nil, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	if len(lines) != 0 {
		t.Errorf("logged %q for late mounts that succeeded, want nothing", lines)
	}
}

package main

import "testing"

// --env adds to Katana's environment, where order means nothing (a name
// given twice is refused): the flags in another order are the same
// settings, and must give the same cmdline, so the same measurement, as
// --module, --file, --exec and --vcpus in another order give the same
// initrd and manifest.
func TestCmdlineEnvOrderDoesNotMatter(t *testing.T) {
	a, errA, codeA := runHB(t, "cmdline", "--env", "RUST_LOG=info", "--env", "A1=x", "--env", "A=1", "--env", "B=2 3")
	b, errB, codeB := runHB(t, "cmdline", "--env", "B=2 3", "--env", "A=1", "--env", "RUST_LOG=info", "--env", "A1=x")
	if codeA != exitOK || codeB != exitOK {
		t.Fatalf("exit %d (%s), %d (%s)", codeA, errA, codeB, errB)
	}
	if a != b {
		t.Errorf("--env in another order gives another cmdline (another measurement):\n%s%s", a, b)
	}
}

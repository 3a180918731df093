package main

import (
	"maps"
	"slices"
	"testing"
)

// A flags line that lists no feature is known flags, none of them: both
// modules that need a CPU feature are refused (and in an SEV-SNP guest
// sevGuestAESNI then stops the boot). Only a cpuinfo without a flags line
// (nil) refuses nothing.
func TestCPURefusedEmptyFlagsLine(t *testing.T) {
	got := slices.Sorted(maps.Keys(cpuRefused(cpuFlags([]byte("processor\t: 0\nflags\t\t:\n")))))
	if want := []string{"aesni_intel", "sha256_ssse3"}; !slices.Equal(got, want) {
		t.Errorf("cpuRefused with an empty flags line refuses %q, want %q", got, want)
	}
}

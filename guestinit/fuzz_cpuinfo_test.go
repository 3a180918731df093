package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// Whatever /proc/cpuinfo holds (the flags are the CPUID bits the host
// chose), the init reads the first "flags" line and refuses exactly the
// modules that line's CPU cannot run: aesni_intel without aes or without
// pclmulqdq, sha256_ssse3 without any of its instruction sets; with no
// flags line, none.
func FuzzCPUFlags(f *testing.F) {
	f.Add([]byte("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 ssse3 aes pclmulqdq avx avx2 sha_ni\nbugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: fpu\n"))
	f.Add([]byte("flags\t\t: fpu pni pclmulqdq ssse3\n"))
	f.Add([]byte("vmx flags\t: vnmi\nflags: aes\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, cpuinfo []byte) {
		flags := cpuFlags(cpuinfo)
		var want []string
		found := false
		for _, l := range strings.Split(string(cpuinfo), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "flags" {
				want, found = strings.Fields(v), true
				break
			}
		}
		if !slices.Equal(flags, want) || found && flags == nil && len(want) > 0 {
			t.Fatalf("cpuFlags = %q, want the first flags line's %q", flags, want)
		}
		refused := cpuRefused(flags)
		if !found {
			if len(refused) != 0 {
				t.Fatalf("no flags line, yet %v refused", refused)
			}
			return
		}
		has := func(f string) bool { return slices.Contains(want, f) }
		if _, r := refused["aesni_intel"]; r != (!has("aes") || !has("pclmulqdq")) {
			t.Fatalf("flags %q: aesni_intel refused %v", want, r)
		}
		if _, r := refused["sha256_ssse3"]; r != !(has("ssse3") || has("avx") || has("avx2") || has("sha_ni")) {
			t.Fatalf("flags %q: sha256_ssse3 refused %v", want, r)
		}
		for m, err := range refused {
			if err == nil || err.Error() == "" {
				t.Fatalf("%s refused without a reason", m)
			}
		}
	})
}

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

package kcrypto

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A Linux 6.1 guest's /proc/crypto in part: aesni_intel's AES-GCM and its
// internal helper, the gcm template's instance, and other names.
const sample = `name         : __gcm(aes)
driver       : __generic-gcm-aesni
module       : aesni_intel
priority     : 400
refcnt       : 2
internal     : yes

name         : gcm(aes)
driver       : gcm_base(ctr(aes-generic),ghash-generic)
module       : gcm
priority     : 100
refcnt       : 2
selftest     : passed
type         : aead

name         : gcm(aes)
driver       : generic-gcm-aesni
module       : aesni_intel
priority     : 400
refcnt       : 1
selftest     : passed
type         : aead

name         : sha256
driver       : sha256-generic
module       : kernel
priority     : 100
refcnt       : 1

name         : sha256
driver       : sha256-ssse3
module       : sha256_ssse3
priority     : 150
refcnt       : 1
`

func TestAlgs(t *testing.T) {
	for _, c := range []struct {
		text, name string
		want       []Alg
	}{
		{sample, "gcm(aes)", []Alg{{"generic-gcm-aesni", 400, 1}, {"gcm_base(ctr(aes-generic),ghash-generic)", 100, 2}}},
		{sample, "sha256", []Alg{{"sha256-ssse3", 150, 1}, {"sha256-generic", 100, 1}}},
		{sample, "__gcm(aes)", []Alg{{"__generic-gcm-aesni", 400, 2}}},
		{sample, "gcm", nil},
		{"", "gcm(aes)", nil},
		{"name : a\ndriver : x\npriority : 1\n\nname : a\ndriver : y\npriority : 1\n\nname : a\ndriver : z\n", "a", []Alg{{"x", 1, -1}, {"y", 1, -1}, {"z", -1, -1}}},
		{"name : a\npriority : 9\n\nname : a\ndriver : d\npriority : junk\nrefcnt : x\n", "a", []Alg{{"d", -1, -1}}},
	} {
		if got := Algs([]byte(c.text), c.name); !slices.Equal(got, c.want) {
			t.Errorf("Algs(%q) = %v, want %v", c.name, got, c.want)
		}
	}
	if a := (Alg{Refcnt: 2}); !a.InUse() {
		t.Error("refcnt 2: not in use")
	}
	for _, r := range []int{1, 0, -1} {
		if a := (Alg{Refcnt: r}); a.InUse() {
			t.Errorf("refcnt %d: in use", r)
		}
	}
}

// Equal priorities keep /proc/crypto's order among many entries: the
// first listed is the one the crypto API gives for the name. The existing
// test has three entries, which an unstable sort (insertion sort below 13
// elements) still keeps in order. Fails for: SortStableFunc -> SortFunc.
func TestAlgsStableAmongMany(t *testing.T) {
	var b strings.Builder
	var want400, want100 []Alg
	for i := range 13 {
		p := []int{100, 400, 100}[i%3]
		fmt.Fprintf(&b, "name : a\ndriver : d%d\npriority : %d\nrefcnt : 1\n\n", i, p)
		a := Alg{Driver: fmt.Sprintf("d%d", i), Priority: p, Refcnt: 1}
		if p == 400 {
			want400 = append(want400, a)
		} else {
			want100 = append(want100, a)
		}
	}
	want := append(want400, want100...)
	if got := Algs([]byte(b.String()), "a"); !slices.Equal(got, want) {
		t.Errorf("Algs = %v, want %v (equal priorities in listed order)", got, want)
	}
}

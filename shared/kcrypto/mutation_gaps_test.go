package kcrypto

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Equal priorities keep /proc/crypto's order among many entries: the
// first listed is the one the crypto API gives for the name. The existing
// test has three entries, which an unstable sort (insertion sort below 13
// elements) still keeps in order. Kills: SortStableFunc -> SortFunc.
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

// Package kcrypto reads the kernel's list of crypto algorithms
// (/proc/crypto): which implementations of a name are registered, which
// the crypto API gives for it, and which are in use. The guest's init uses
// it to say which AES-GCM sev-guest seals its messages to the AMD-SP with;
// the boot tests' stand-in to report which one a guest got.
package kcrypto

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Alg is one implementation /proc/crypto lists.
type Alg struct {
	Driver   string
	Priority int // -1 when unreadable
	// Refcnt is the kernel's reference count: 1 once registered, one
	// more for each transform allocated from it (and for each algorithm
	// built on it), so above 1 means in use; -1 when unreadable.
	Refcnt int
}

// InUse reports whether a transform or another algorithm holds a.
func (a Alg) InUse() bool { return a.Refcnt > 1 }

// Algs returns the implementations procCrypto (the text of /proc/crypto)
// lists for the algorithm name, highest priority first: the first is the
// one the crypto API gives for that name (crypto_alloc_* takes the highest
// priority registered, the first listed of equal ones, and /proc/crypto
// lists in the same order). An entry without a driver is left out.
func Algs(procCrypto []byte, name string) []Alg {
	var algs []Alg
	for _, block := range strings.Split(string(procCrypto), "\n\n") {
		var n string
		a := Alg{Priority: -1, Refcnt: -1}
		for _, l := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(k) {
			case "name":
				n = v
			case "driver":
				a.Driver = v
			case "priority":
				if p, err := strconv.Atoi(v); err == nil {
					a.Priority = p
				}
			case "refcnt":
				if r, err := strconv.Atoi(v); err == nil {
					a.Refcnt = r
				}
			}
		}
		if n == name && a.Driver != "" {
			algs = append(algs, a)
		}
	}
	slices.SortStableFunc(algs, func(x, y Alg) int { return cmp.Compare(y.Priority, x.Priority) })
	return algs
}

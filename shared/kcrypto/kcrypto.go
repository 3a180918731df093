// Package kcrypto reads the kernel's list of crypto algorithms
// (/proc/crypto): which implementation the crypto API gives for a name.
// The guest's init uses it to say which AES-GCM sev-guest seals its
// messages to the AMD-SP with; the boot tests' stand-in to report which
// one a guest got.
package kcrypto

import (
	"slices"
	"strconv"
	"strings"
)

// Drivers returns the drivers procCrypto (the text of /proc/crypto) lists
// for the algorithm name, highest priority first: the first is the one
// the crypto API gives for that name (crypto_alloc_* takes the highest
// priority registered). Entries of equal priority keep their order; an
// entry without a driver is left out, one without a readable priority
// counts as the lowest.
func Drivers(procCrypto []byte, name string) []string {
	type alg struct {
		driver string
		prio   int
	}
	var algs []alg
	for _, block := range strings.Split(string(procCrypto), "\n\n") {
		var n string
		a := alg{prio: -1}
		for _, l := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(k) {
			case "name":
				n = v
			case "driver":
				a.driver = v
			case "priority":
				if p, err := strconv.Atoi(v); err == nil {
					a.prio = p
				}
			}
		}
		if n == name && a.driver != "" {
			algs = append(algs, a)
		}
	}
	slices.SortStableFunc(algs, func(x, y alg) int { return y.prio - x.prio })
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = a.driver
	}
	return out
}

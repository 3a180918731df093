package kcrypto

import (
	"fmt"
	"strings"
	"testing"
)

// Whatever /proc/crypto holds, Algs gives each listed implementation of
// the name once, with a driver, highest priority first, equal ones in
// their listed order; an entry added with a higher priority than any
// comes first (the crypto API's choice).
func FuzzAlgs(f *testing.F) {
	f.Add([]byte(sample), "gcm(aes)", 500)
	f.Add([]byte(sample), "sha256", -1)
	f.Add([]byte("name : x\ndriver : d\npriority : 9223372036854775807\n\nname : x\ndriver : e\npriority : -9223372036854775808\n"), "x", 0)
	f.Add([]byte("name:x\ndriver:\n\n\nname:x\ndriver:y\nrefcnt:2"), "x", 1)
	f.Fuzz(func(t *testing.T, proc []byte, name string, top int) {
		if name == "" || strings.ContainsAny(name, ":\n") || strings.TrimSpace(name) != name {
			return
		}
		algs := Algs(proc, name)
		for i, a := range algs {
			if a.Driver == "" {
				t.Fatalf("entry %d without a driver: %+v", i, a)
			}
			if i > 0 && algs[i-1].Priority < a.Priority {
				t.Fatalf("Algs not by priority: %+v before %+v", algs[i-1], a)
			}
		}
		// The same text with one more entry, above every other: it is
		// the one the crypto API gives.
		hi := top
		for _, a := range algs {
			hi = max(hi, a.Priority)
		}
		if hi == int(^uint(0)>>1) {
			return
		}
		more := fmt.Appendf(append(append([]byte{}, proc...), "\n\n"...), "name : %s\ndriver : fuzz-top\npriority : %d\nrefcnt : 2\n", name, hi+1)
		got := Algs(more, name)
		if len(got) == 0 || got[0].Driver != "fuzz-top" || !got[0].InUse() {
			t.Fatalf("an entry of priority %d after %+v: Algs gives %+v first", hi+1, algs, got)
		}
	})
}

package modload

import (
	"strings"
	"testing"
)

func FuzzMatchModule(f *testing.F) {
	f.Add("6,1234,5678,-;virtio: Unknown symbol x (err -2)\n SUBSYSTEM=virtio\n", "virtio", 3)
	f.Add("3,1,2,-;sev-guest sev-guest: VMPCK0 invalid\n", "sev_guest", 1)
	f.Fuzz(func(t *testing.T, joined, module string, max int) {
		if max < 0 || max > 64 {
			return
		}
		records := strings.Split(joined, "\x00")
		out := MatchModule(records, module, max)
		if len(out) > max {
			t.Fatalf("%d messages, max %d", len(out), max)
		}
		for _, m := range out {
			if strings.Contains(m, "\n") {
				t.Fatalf("message %q holds a newline", m)
			}
			ok := false
			for _, n := range []string{module, strings.ReplaceAll(module, "_", "-"), strings.ReplaceAll(module, "-", "_")} {
				ok = ok || strings.HasPrefix(m, n+":") || strings.HasPrefix(m, n+" ")
			}
			if !ok {
				t.Fatalf("message %q is not module %q's", m, module)
			}
		}
	})
}

package modload

import "testing"

// "None when another module of mods needs it": that holds when the module
// needing the named one is itself needed only by it (a cycle through the
// named module), where no other module is a root that keeps it.
func TestOnlyForNamedModuleNeededInACycle(t *testing.T) {
	mods, deps := depSet("sev_guest: x", "x: sev_guest")
	got, err := OnlyFor(mods, deps, "sev_guest")
	if err != nil || got != nil {
		t.Errorf("OnlyFor(sev_guest) where x needs it: %q, %v; want nothing left out", names(got), err)
	}
}

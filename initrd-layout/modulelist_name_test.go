package initrdlayout

import (
	"strings"
	"testing"
)

// A module list line with an empty name (the line starts with its one
// space) is refused: the init matches modules by name (Split, Drop,
// OnlyFor) and names them in its errors.
func TestModuleListRefusesEmptyName(t *testing.T) {
	const src = " lib/modules/6.1/kernel/a.ko\n"
	_, err := ParseModuleList(strings.NewReader(src))
	if want := `line 1: want "<name> <path>"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: %v, want an error with %q", src, err, want)
	}
}

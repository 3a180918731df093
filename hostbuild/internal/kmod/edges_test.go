package kmod

import (
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// Module files whose depends= form a cycle (crafted: no kernel build makes
// one) are refused by name: no order loads them all, and the packer must
// not write one in which a module comes before its dependency.
func TestClosureRefusesCycle(t *testing.T) {
	tree := treeOf(t, map[string][]byte{
		"a.ko": testelf.Module("depends=b", "name=a", "vermagic=6.9.0-test SMP"),
		"b.ko": testelf.Module("depends=c", "name=b", "vermagic=6.9.0-test SMP"),
		"c.ko": testelf.Module("depends=a", "name=c", "vermagic=6.9.0-test SMP"),
	})
	ms, err := tree.Closure([]string{"a"})
	if err == nil || !strings.Contains(err.Error(), "module dependency cycle: a -> b -> c -> a") {
		t.Errorf("Closure of a cycle: %v, %v; want the cycle named", names(ms), err)
	}
}

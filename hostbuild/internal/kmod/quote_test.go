package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
)

// Text from the module tree (release folder names, module file names,
// depends= words) is quoted or escaped in kmod's own errors, not only by
// hostbuild's stderr backstop: each error here holds the tree's text in
// the quoted form, and no raw ESC.
func TestErrorsQuoteTreeText(t *testing.T) {
	const esc = "\x1b[2K"
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		if strings.Contains(err.Error(), "\x1b") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q; want it to hold %q and no raw ESC", what, err, want)
		}
	}

	// Several releases under lib/modules: the folder names (QuoteAll).
	root := fakeTree(t)
	if err := os.MkdirAll(filepath.Join(root, "lib/modules/6.9.1"+esc), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root)
	check("several releases", err, `"6.9.1\x1b[2K"`)

	tree := treeOf(t, map[string][]byte{
		// A cycle through a module whose name has ESC.
		"e" + esc + ".ko": testelf.Module("depends=f", "name=e"+esc, "vermagic=6.9.0-test SMP"),
		"f.ko":            testelf.Module("depends=e"+esc, "name=f", "vermagic=6.9.0-test SMP"),
		// A dependency that is absent, of a module whose name has ESC.
		"p" + esc + ".ko": testelf.Module("depends=ghost", "name=p"+esc, "vermagic=6.9.0-test SMP"),
		// A suggestion whose name has ESC (one rune from vsocz).
		"vsoc\x1b.ko": testelf.Module("depends=", "name=vsoc\x1b", "vermagic=6.9.0-test SMP"),
		// A file that calls itself otherwise (its path is printed).
		"n" + esc + ".ko": testelf.Module("depends=", "name=other", "vermagic=6.9.0-test SMP"),
		// Not a module at all (its name and path are printed).
		"g" + esc + ".ko": []byte("not an ELF file"),
	})
	_, err = tree.Closure([]string{"e" + esc})
	check("cycle", err, `module dependency cycle: "e\x1b[2K" -> f -> "e\x1b[2K"`)
	_, err = tree.Closure([]string{"p" + esc})
	check("dependency of", err, `(a dependency of "p\x1b[2K")`)
	_, err = tree.Closure([]string{"vsocz"})
	check("suggestion", err, `closest names: "vsoc\x1b"`)
	_, err = tree.Closure([]string{"n" + esc})
	check("calls itself", err, `n\x1b[2K.ko calls itself "other"`)
	_, err = tree.Closure([]string{"g" + esc})
	check("not ELF", err, `module "g\x1b[2K" (`)
}

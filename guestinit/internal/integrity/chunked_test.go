package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// A chunked file that is not a regular file is refused as such by All's
// own Lstat, before its size is compared with the chunk list and before
// anything is opened: without that check a symbolic link or folder at the
// payload's path is reported as a truncated file (ErrMismatch, its
// lstat size against the chunk list), misleading whoever reads the boot
// error, and a device node there would be opened.
func TestAllChunkedNotRegular(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (initrdlayout.ChunkSize+initrdlayout.ChunkSize/2)/16)
	for _, tc := range []struct {
		kind string
		make func(t *testing.T, root, p string)
	}{
		{"symbolic link", func(t *testing.T, root, p string) { // to the listed bytes
			if err := os.WriteFile(filepath.Join(root, "katana.real"), payload, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../katana.real", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, root, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			root := makeRoot(t, map[string]string{"bin/katana": string(payload), "init": "init"})
			list, err := LoadList(root)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "bin/katana")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			tc.make(t, root, p)
			c := Checker{Root: root, List: list, Chunks: initrdlayout.Chunks("bin/katana", payload), Workers: 2}
			_, err = c.All(nil)
			if want := "bin/katana is a " + tc.kind; !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
				t.Errorf("All with bin/katana (chunked) a %s: %v; want %v containing %q", tc.kind, err, ErrNotRegular, want)
			}
		})
	}
}

// A chunked file longer than its chunk list says is refused: the bytes
// past the last chunk are hashed by no chunk, so only the size check
// stands between them and Katana.
func TestChunkedAppended(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (initrdlayout.ChunkSize+initrdlayout.ChunkSize/2)/16)
	root := makeRoot(t, map[string]string{"bin/katana": string(payload), "init": "init"})
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	c := Checker{Root: root, List: list, Chunks: initrdlayout.Chunks("bin/katana", payload), Workers: 2}
	if _, err := c.All(nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/katana"), append(bytes.Clone(payload), "#!evil"...), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("integrity: bin/katana is %d bytes, the chunk list says %d", len(payload)+6, len(payload))
	if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), want) {
		t.Errorf("bytes appended to a chunked file: got %v, want %q", err, want)
	}
}

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

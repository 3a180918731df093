package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failingWriter fails every write, as stdout on a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// diff's exit status says 0 identical, 1 different, 2 error. A stdout it
// could not write to gave 1 for two identical initrds ("different", to a
// script reading the status), and for two that differ 1 with no word of
// the failed write: the differences were lost. Either is an error, 2.
func TestDiffStdoutWriteErrorIsError(t *testing.T) {
	dir := t.TempDir()
	stage(t, dir, false)
	for _, name := range []string{"a.img", "b.img"} {
		args := []string{"pack", "-q", "--init", filepath.Join(dir, "guestinit"), "--payload", filepath.Join(dir, "katana"), "-o", filepath.Join(dir, name)}
		if name == "b.img" {
			args = append(args, "--source-date-epoch", "1")
		}
		if code, _, errOut := runCmd(t, "", args...); code != exitOK {
			t.Fatalf("pack %s: exit %d\n%s", name, code, errOut)
		}
	}
	if err := os.Link(filepath.Join(dir, "a.img"), filepath.Join(dir, "same.img")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"same.img", "b.img"} {
		for _, asJSON := range []bool{false, true} {
			args := []string{"diff", filepath.Join(dir, "a.img"), filepath.Join(dir, b)}
			if asJSON {
				args = append(args, "--json")
			}
			var stderr bytes.Buffer
			code := run(context.Background(), args, failingWriter{}, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "no space left on device") {
				t.Errorf("diff a.img %s (json %v) to a stdout that fails: exit %d, want 2 naming the write error:\n%s", b, asJSON, code, stderr.String())
			}
		}
	}
}

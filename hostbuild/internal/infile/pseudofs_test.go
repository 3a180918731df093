//go:build linux

package infile

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// A file of the kernel's /proc or /sys is a regular file whose size says
// nothing of what reading it gives: /proc/self/pagemap reads as 256 GiB
// (8 bytes per page of the address space), and hostbuild measure --initrd
// /proc/self/pagemap hashed it for minutes (stopped after 20 s by a
// timeout). Open refuses such a file at once, naming it.
func TestOpenRefusesProcAndSysFiles(t *testing.T) {
	for _, p := range []string{"/proc/self/pagemap", "/proc/self/status", "/sys/kernel/mm/transparent_hugepage/enabled"} {
		t.Run(p, func(t *testing.T) {
			f, err := Open("--initrd", p)
			if err == nil {
				defer f.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				n, _ := io.Copy(io.Discard, ContextReader(ctx, f))
				t.Fatalf("Open(%s) accepted it (%d bytes read in at most 2 s); want a refusal", p, n)
			}
			var nr *NotRegularError
			if !errors.As(err, &nr) || nr.Pseudo == "" || !strings.Contains(err.Error(), "--initrd "+p) || !strings.Contains(err.Error(), "regular file") {
				t.Errorf("Open(%s): %v; want an error naming the input and asking for a regular file", p, err)
			}
		})
	}
}

package initrd

import (
	"bytes"
	"io"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// The kernel unpacks the initrd in archive order into a rootfs that holds
// at most half the guest's memory (a tmpfs mounted with its default size
// while the initrd itself still takes memory). In a guest too small for
// the inline payload the unpack stops short ("Initramfs unpacking failed:
// write error") and every file after the payload's first missing page is
// missing or empty. The payload must therefore come last: then /init and
// its lists are whole, and the init reports the short payload (an
// integrity boot error, then a clean power-off). Sorted with the rest,
// bin/katana came before etc/guestinit/ and /init, and such a guest (256
// MiB, a 120 MiB payload packed inline) ended in a kernel panic: "VFS:
// Unable to mount root fs on unknown-block(0,0)".
func TestInlinePayloadUnpackedLast(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.PayloadEncoding = "inline"
	for _, comp := range Compressions {
		o.Compression = comp
		img := pack(t, o)
		main, end, err := decompressAll(comp, img)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if end != len(img) {
			t.Fatalf("%s: %d bytes after the main archive, want none (inline: one archive)", comp, len(img)-end)
		}
		var names []string
		r := newc.NewReader(bytes.NewReader(main))
		for {
			h, err := r.Next()
			if err == newc.ErrTrailer || err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", comp, err)
			}
			names = append(names, h.Name)
		}
		if len(names) == 0 || names[len(names)-1] != initrdlayout.PayloadPath {
			t.Errorf("%s: the archive's entries, in the order the kernel unpacks them: %q; want %s last, after %s and %s",
				comp, names, initrdlayout.PayloadPath, initrdlayout.InitPath, initrdlayout.ContentsPath)
		}
	}
}

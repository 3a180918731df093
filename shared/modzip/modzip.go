// Package modzip decompresses kernel module images (.ko.xz, .ko.zst,
// .ko.gz) within bounds: hostbuild reads the modules it is given (kmod),
// untrusted, and the guest's init decompresses the packed ones it loads
// in user space (guestinit/internal/modload), where running out of memory
// would end PID 1. A few bytes of crafted input must not make either
// allocate more than the limit: the xz dictionary is checked before
// decoding (xzguard), zstd decodes whole frames within a memory bound
// instead of streaming (the stream allocates the window its header
// declares, up to 512 MiB for 14 bytes), and every format stops one byte
// past the limit.
package modzip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/katana-tee/snpboot/shared/xzguard"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxDecompressed is the default bound of a decompressed module: the
// largest in a distribution kernel are tens of MiB.
const MaxDecompressed = 256 << 20

// MaxXZDict bounds the LZMA2 dictionary an xz module may declare: the
// decoder allocates a block's whole dictionary before it reads the block,
// so a header of a few bytes could make it allocate 4 GiB. xz's presets
// use at most 64 MiB (-9).
const MaxXZDict = 64 << 20

var (
	// ErrFormat: the name has no module suffix this package knows.
	ErrFormat = errors.New("unsupported module file extension (want .ko, .ko.xz, .ko.zst or .ko.gz)")
	// ErrTooBig: the module decompresses to more than the limit.
	ErrTooBig = errors.New("decompresses to more than the limit")
)

// Decompress returns the module image's ELF bytes, at most max of them;
// name (the file's path) decides the compression by its suffix (".ko":
// data as it is) and names the module in errors.
func Decompress(name string, data []byte, max int) ([]byte, error) {
	tooBig := func() error {
		return fmt.Errorf("module %s %w of %d bytes", name, ErrTooBig, max)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(name, ".ko"):
		if len(data) > max {
			return nil, tooBig()
		}
		return data, nil
	case strings.HasSuffix(name, ".xz"):
		if dict, big := xzguard.BigDict(data, MaxXZDict); big {
			return nil, fmt.Errorf("module %s: xz dictionary of %d bytes, more than %d", name, dict, MaxXZDict)
		}
		xr, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("module %s: xz: %w", name, err)
		}
		r = xr
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)))
		if err != nil {
			return nil, fmt.Errorf("module %s: zstd: %w", name, err)
		}
		defer zr.Close()
		out, err := zr.DecodeAll(data, nil)
		// A window over the memory bound is refused before decoding.
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || err == nil && len(out) > max {
			return nil, tooBig()
		}
		if err != nil {
			return nil, fmt.Errorf("module %s: decompressing: %w", name, err)
		}
		return out, nil
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("module %s: gzip: %w", name, err)
		}
		r = gr
	default:
		return nil, fmt.Errorf("module %s: %w", name, ErrFormat)
	}
	// One byte over the limit tells a module that is too big from one that
	// fits exactly; cutting it short would hide its .modinfo or corrupt it.
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("module %s: decompressing: %w", name, err)
	}
	if len(out) > max {
		return nil, tooBig()
	}
	return out, nil
}

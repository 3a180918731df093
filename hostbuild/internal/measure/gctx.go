package measure

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
)

// PageType is the SNP_LAUNCH_UPDATE page type recorded in a PAGE_INFO
// (AMD SEV-SNP firmware ABI, "PAGE_INFO structure").
type PageType uint8

// Page types.
const (
	PageNormal     PageType = 0x01
	PageVMSA       PageType = 0x02
	PageZero       PageType = 0x03
	PageUnmeasured PageType = 0x04
	PageSecrets    PageType = 0x05
	PageCPUID      PageType = 0x06
)

func (t PageType) String() string {
	switch t {
	case PageNormal:
		return "NORMAL"
	case PageVMSA:
		return "VMSA"
	case PageZero:
		return "ZERO"
	case PageUnmeasured:
		return "UNMEASURED"
	case PageSecrets:
		return "SECRETS"
	case PageCPUID:
		return "CPUID"
	}
	return "UNKNOWN"
}

// VMSAGPA is the guest physical address KVM (and sev-snp-measure, for every
// VMM type) records for VMSA pages.
const VMSAGPA = 0xFFFFFFFFF000

const (
	pageSize     = 4096
	pageInfoSize = 0x70
)

// gctx is the launch digest being built: each page folds into it as
// ld = SHA-384(PAGE_INFO{ld, contents, length, type, imi, vmpl perms, gpa}).
type gctx struct {
	ld   [48]byte
	info [pageInfoSize]byte
}

// update folds one page with the given contents digest (nil = zeros).
func (g *gctx) update(t PageType, gpa uint64, contents *[48]byte) {
	b := &g.info
	copy(b[0x00:0x30], g.ld[:])
	if contents != nil {
		copy(b[0x30:0x60], contents[:])
	} else {
		clear(b[0x30:0x60])
	}
	binary.LittleEndian.PutUint16(b[0x60:], pageInfoSize)
	b[0x62] = byte(t)
	clear(b[0x63:0x68]) // IMI_PAGE, VMPL3..1 perms, reserved
	binary.LittleEndian.PutUint64(b[0x68:], gpa)
	g.ld = sha512.Sum384(b[:])
}

// normalPages measures data (a multiple of 4 KiB) as NORMAL pages from gpa.
// Callers pass at most chunkSize bytes and check their context between calls.
func (g *gctx) normalPages(gpa uint64, data []byte) {
	for off := 0; off+pageSize <= len(data); off += pageSize {
		h := sha512.Sum384(data[off : off+pageSize])
		g.update(PageNormal, gpa+uint64(off), &h)
	}
}

// ctxCheckPages is how many pages emptyPages measures between looks at its
// context: a few milliseconds of hashing.
const ctxCheckPages = 4096

// emptyPages measures size/4096 pages of type t (ZERO or UNMEASURED) from
// gpa. A section can be nearly 4 GiB (a million pages, seconds of hashing),
// so it stops early, with ctx's error, once ctx is done.
func (g *gctx) emptyPages(ctx context.Context, t PageType, gpa, size uint64) error {
	for off, n := uint64(0), 0; off+pageSize <= size; off, n = off+pageSize, n+1 {
		if n%ctxCheckPages == 0 {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		g.update(t, gpa+off, nil)
	}
	return nil
}

func (g *gctx) vmsaPage(page *[pageSize]byte) {
	h := sha512.Sum384(page[:])
	g.update(PageVMSA, VMSAGPA, &h)
}

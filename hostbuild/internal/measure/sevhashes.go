package measure

import (
	"encoding/binary"
	"fmt"

	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
)

// GUIDs of QEMU's kernel-hashes table (target/i386/sev.c), in EFI byte order.
var (
	hashTableGUID   = ovmf.MustParseGUID("9438d606-4f22-4cc9-b479-a793d411fd21")
	cmdlineHashGUID = ovmf.MustParseGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
	initrdHashGUID  = ovmf.MustParseGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
	kernelHashGUID  = ovmf.MustParseGUID("4de79437-abd2-427f-b835-d5b172d2045b")
)

const (
	hashEntrySize = 16 + 2 + 32
	hashTableLen  = 16 + 2 + 3*hashEntrySize // 168, sizeof(SevHashTable)
)

// hashesTable builds the padded 176-byte SevHashTable QEMU writes for
// kernel-hashes=on: entries cmdline, initrd, kernel, in that order.
func hashesTable(kernel, initrd, cmdline [32]byte) [ovmf.HashTableSize]byte {
	var t [ovmf.HashTableSize]byte
	copy(t[0:16], hashTableGUID[:])
	binary.LittleEndian.PutUint16(t[16:18], hashTableLen)
	off := 18
	for _, e := range []struct {
		guid ovmf.GUID
		hash [32]byte
	}{{cmdlineHashGUID, cmdline}, {initrdHashGUID, initrd}, {kernelHashGUID, kernel}} {
		copy(t[off:off+16], e.guid[:])
		binary.LittleEndian.PutUint16(t[off+16:off+18], hashEntrySize)
		copy(t[off+18:off+50], e.hash[:])
		off += hashEntrySize
	}
	return t
}

// hashesPage places the table at the hashes-table base's offset within its
// page. The firmware must already have passed ovmf.Image.CheckDirectBoot.
func hashesPage(base uint32, table [ovmf.HashTableSize]byte) ([pageSize]byte, error) {
	var p [pageSize]byte
	off := int(base & (pageSize - 1))
	if off+len(table) > pageSize {
		return p, fmt.Errorf("hashes table at 0x%x crosses a page boundary", base)
	}
	copy(p[off:], table[:])
	return p, nil
}

package early

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeKeymap answers as the kernel's KDGKBENT and KDSKBENT do: a table it
// lacks reads K_NOSUCHMAP at entry 0 and K_HOLE elsewhere, and setting an
// entry of it allocates the table.
type fakeKeymap struct {
	tables  map[uint8]*[keymapKeys]uint16
	made    []uint8 // tables SetEntry allocated
	beyond  int     // reads of a table it lacks past entry 0
	failGet bool
	failSet error
}

func (k *fakeKeymap) Entry(table, index uint8) (uint16, error) {
	if k.failGet {
		return 0, unix.ENOTTY
	}
	m, ok := k.tables[table]
	switch {
	case !ok && index == 0:
		return keyNoSuchMap, nil
	case !ok:
		k.beyond++
		return keyHole, nil
	}
	return m[index], nil
}

func (k *fakeKeymap) SetEntry(table, index uint8, value uint16) error {
	if k.failSet != nil {
		return k.failSet
	}
	m, ok := k.tables[table]
	if !ok {
		m = new([keymapKeys]uint16)
		k.tables[table] = m
		k.made = append(k.made, table)
	}
	m[index] = value
	return nil
}

// debianKeymap is the part of the kernel's default keymap
// (drivers/tty/vt/defkeymap.map) that matters here: Scroll Lock (keycode
// 70) is Show_Memory with Shift, Show_Registers with AltGr and Show_State
// with Ctrl; Ctrl-Alt-Del (keycode 111 in the Ctrl+Alt table) is Boot.
func debianKeymap() *fakeKeymap {
	k := &fakeKeymap{tables: map[uint8]*[keymapKeys]uint16{}}
	for _, t := range []uint8{0, 1, 2, 4, 5, 6, 8, 9, 12} {
		m := new([keymapKeys]uint16)
		for i := range m {
			m[i] = keyHole
		}
		m[30] = 0x0b61 // 'a', KT_LETTER
		k.tables[t] = m
	}
	k.tables[0][70] = 0x0209 // Scroll_Lock (K_HOLD)
	k.tables[1][70] = keyShowMem
	k.tables[2][70] = keyShowRegs
	k.tables[4][70] = keyShowState
	k.tables[12][111] = 0x020c // Boot (K_BOOT): Ctrl-Alt-Del
	return k
}

// The keyboard functions that print kernel state on the console (the
// interrupted context's registers, memory, every task's stack) are gone
// from the keymap: the host's PS/2 keyboard reaches them whatever
// kernel.sysrq says. Nothing else changes, and no table is made.
func TestDisableDumpKeys(t *testing.T) {
	k := debianKeymap()
	n, err := DisableDumpKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("emptied %d entries, want 3 (Show_Memory, Show_Registers, Show_State)", n)
	}
	for tbl, m := range k.tables {
		for i, v := range m {
			if isDumpKey(v) {
				t.Errorf("table %d entry %d is still %#04x", tbl, i, v)
			}
		}
	}
	for _, c := range []struct {
		table, index uint8
		want         uint16
	}{{1, 70, keyHole}, {2, 70, keyHole}, {4, 70, keyHole}, {0, 70, 0x0209}, {12, 111, 0x020c}, {0, 30, 0x0b61}} {
		if got := k.tables[c.table][c.index]; got != c.want {
			t.Errorf("table %d entry %d = %#04x, want %#04x", c.table, c.index, got, c.want)
		}
	}
	if len(k.made) != 0 {
		t.Errorf("tables %v made by the change, which the keymap did not have", k.made)
	}
}

// Every table and every entry counts, the first and the last included (a
// dump key at entry 0, at entry 1, in table 255 at entry 255), entry 0 is
// read once and only its own key is emptied, and a table the keymap does
// not have is not read past entry 0 (65,536 ioctls at boot otherwise).
func TestDisableDumpKeysEveryEntry(t *testing.T) {
	k := &fakeKeymap{tables: map[uint8]*[keymapKeys]uint16{}}
	for _, tbl := range []uint8{3, 7, 255} {
		k.tables[tbl] = new([keymapKeys]uint16)
	}
	k.tables[3][0], k.tables[3][1] = keyShowMem, 0x0b61
	k.tables[7][0], k.tables[7][1] = 0x0b61, keyShowState
	k.tables[255][255] = keyShowRegs
	n, err := DisableDumpKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("emptied %d entries, want 3", n)
	}
	for _, c := range []struct {
		table, index uint8
		want         uint16
	}{{3, 0, keyHole}, {3, 1, 0x0b61}, {7, 0, 0x0b61}, {7, 1, keyHole}, {255, 255, keyHole}} {
		if got := k.tables[c.table][c.index]; got != c.want {
			t.Errorf("table %d entry %d = %#04x, want %#04x", c.table, c.index, got, c.want)
		}
	}
	if k.beyond != 0 || len(k.made) != 0 {
		t.Errorf("tables the keymap lacks: %d reads past entry 0, %v made; want none", k.beyond, k.made)
	}
}

func TestDisableDumpKeysErrors(t *testing.T) {
	k := debianKeymap()
	k.failGet = true
	if _, err := DisableDumpKeys(k); !errors.Is(err, unix.ENOTTY) || !strings.Contains(err.Error(), "keymap table 0") {
		t.Errorf("a read that fails: %v, want ENOTTY naming the table", err)
	}
	k = debianKeymap()
	k.failSet = unix.EPERM
	if _, err := DisableDumpKeys(k); !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "table 1 entry 70") {
		t.Errorf("a change that fails: %v, want EPERM naming table 1 entry 70", err)
	}
}

// A kernel without virtual consoles has no keymap: nothing to do. Anything
// else at the path that is no console is an error.
func TestDisableVTDumpKeysNoConsole(t *testing.T) {
	root := t.TempDir()
	if n, err := DisableVTDumpKeys(root); n != 0 || err != nil {
		t.Errorf("without %s: %d, %v; want 0, nil", VTPath, n, err)
	}
	p := filepath.Join(root, VTPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	// A node with nothing behind it (ENXIO, as a socket answers open).
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := DisableVTDumpKeys(root); n != 0 || err != nil {
		t.Errorf("a node with no device behind it at %s: %d, %v; want 0, nil", VTPath, n, err)
	}
	l.Close()
	os.Remove(p)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DisableVTDumpKeys(root); !errors.Is(err, unix.ENOTTY) || !strings.Contains(err.Error(), p) {
		t.Errorf("a regular file at %s: %v, want ENOTTY naming it", VTPath, err)
	}
}

package early

import (
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VTPath is a virtual console, under /, through which the init reads and
// changes the kernel's keymap (there is one keymap, shared by every
// virtual console; tty0 is the one in front).
const VTPath = "dev/tty0"

// Keymap entries (include/uapi/linux/keyboard.h): the keyboard functions
// that dump kernel state to the console, the empty entry they become, and
// what KDGKBENT answers for entry 0 of a table the keymap does not have.
const (
	keyHole      = 0x0200 // K_HOLE
	keyShowRegs  = 0x0202 // K_SH_REGS: show_regs() of the interrupted context
	keyShowMem   = 0x0203 // K_SH_MEM: show_mem()
	keyShowState = 0x0204 // K_SH_STAT: show_state(), every task's stack
	keyNoSuchMap = 0x027f // K_NOSUCHMAP
)

// The keymap's size: MAX_NR_KEYMAPS tables (one per modifier combination)
// of NR_KEYS entries.
const (
	keymapTables = 256
	keymapKeys   = 256
)

// Keymap is the kernel's keymap, one entry at a time (KDGKBENT and
// KDSKBENT on a virtual console); tests use a fake.
type Keymap interface {
	Entry(table, index uint8) (uint16, error)
	SetEntry(table, index uint8, value uint16) error
}

func isDumpKey(v uint16) bool {
	return v == keyShowRegs || v == keyShowMem || v == keyShowState
}

// DisableDumpKeys empties every entry of km that dumps kernel state
// (Show_Registers, Show_Memory, Show_State) and returns how many it
// emptied. The kernel's default keymap binds them to Scroll Lock with
// AltGr, Shift and Ctrl, and runs them on the keyboard's interrupt
// whatever kernel.sysrq says: a PS/2 keyboard, which the host emulates
// (QEMU's q35 has one, and the kernel's i8042 and atkbd drivers are built
// in), would print on the serial console, which the host reads, the
// registers of whatever the CPU was running when the host injected the
// key's interrupt (Katana's, a host that times it well), or every task's
// stack. Nothing else in the keymap changes (Ctrl-Alt-Del stays the
// graceful stop); a table the keymap does not have is not read further,
// nor made (KDSKBENT would allocate it).
func DisableDumpKeys(km Keymap) (int, error) {
	n := 0
	for t := 0; t < keymapTables; t++ {
		first, err := km.Entry(uint8(t), 0)
		if err != nil {
			return n, fmt.Errorf("reading keymap table %d: %w", t, err)
		}
		if first == keyNoSuchMap {
			continue
		}
		for i := 0; i < keymapKeys; i++ {
			v := first
			if i > 0 {
				if v, err = km.Entry(uint8(t), uint8(i)); err != nil {
					return n, fmt.Errorf("reading keymap table %d entry %d: %w", t, i, err)
				}
			}
			if !isDumpKey(v) {
				continue
			}
			if err := km.SetEntry(uint8(t), uint8(i), keyHole); err != nil {
				return n, fmt.Errorf("emptying keymap table %d entry %d (%#04x): %w", t, i, v, err)
			}
			n++
		}
	}
	return n, nil
}

// DisableVTDumpKeys runs DisableDumpKeys on the kernel's keymap, through
// VTPath under root ("/" in the guest). A kernel without virtual consoles
// (no VTPath, or none behind it) has no keymap: 0, nil.
func DisableVTDumpKeys(root string) (int, error) {
	p := filepath.Join(root, VTPath)
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", p, err)
	}
	defer unix.Close(fd)
	n, err := DisableDumpKeys(vtKeymap(fd))
	if err != nil {
		return n, fmt.Errorf("%s: %w", p, err)
	}
	return n, nil
}

// kbentry is struct kbentry (include/uapi/linux/kd.h).
type kbentry struct {
	table uint8
	index uint8
	value uint16
}

const (
	ioctlKDGKBENT = 0x4B46
	ioctlKDSKBENT = 0x4B47
)

// vtKeymap is the kernel's keymap through a virtual console's descriptor.
type vtKeymap int

func (fd vtKeymap) Entry(table, index uint8) (uint16, error) {
	e := kbentry{table: table, index: index}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlKDGKBENT, uintptr(unsafe.Pointer(&e))); errno != 0 {
		return 0, errno
	}
	return e.value, nil
}

func (fd vtKeymap) SetEntry(table, index uint8, value uint16) error {
	e := kbentry{table: table, index: index, value: value}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlKDSKBENT, uintptr(unsafe.Pointer(&e))); errno != 0 {
		return errno
	}
	return nil
}

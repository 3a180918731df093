// Package acpi receives the ACPI power button (QEMU "system_powerdown")
// without acpid: the kernel's ACPI button driver (module "button" on Debian
// kernels; CONFIG_ACPI_BUTTON=m) reports each press on the generic netlink
// family "acpi_event", multicast group "acpi_mc_group", as a struct
// acpi_genl_event whose device class is "button/power". No evdev module or
// /dev/input node is needed.
package acpi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Names from drivers/acpi/event.c.
const (
	FamilyName = "acpi_event"
	GroupName  = "acpi_mc_group"
	attrEvent  = 1 // ACPI_GENL_ATTR_EVENT
	// struct acpi_genl_event { char device_class[20]; char bus_id[15];
	// u32 type; u32 data; }: natural alignment puts type at 36.
	eventSize = 44
)

// ErrNoFamily means the kernel has no ACPI event family (ACPI disabled).
var ErrNoFamily = errors.New("no acpi_event generic netlink family (ACPI disabled?)")

// Event is one ACPI event.
type Event struct {
	DeviceClass string // e.g. "button/power"
	BusID       string // e.g. "LNXPWRBN:00"
	Type, Data  uint32
}

// IsPowerButton reports a press of a power button.
func (e Event) IsPowerButton() bool {
	return e.DeviceClass == "button/power"
}

// ParseMessages decodes the ACPI events in a buffer read from the netlink
// socket; family is the acpi_event family id. Messages of another family
// or too short are skipped; a buffer that does not split into netlink
// messages gives none.
func ParseMessages(buf []byte, family uint16) []Event {
	msgs, err := syscall.ParseNetlinkMessage(buf)
	if err != nil {
		return nil
	}
	var out []Event
	for _, m := range msgs {
		if m.Header.Type != family || len(m.Data) < 4 { // genlmsghdr
			continue
		}
		attrs := m.Data[4:]
		for len(attrs) >= 4 {
			l := int(binary.NativeEndian.Uint16(attrs[0:2]))
			typ := binary.NativeEndian.Uint16(attrs[2:4]) & 0x3fff
			if l < 4 || l > len(attrs) {
				break
			}
			if typ == attrEvent && l-4 >= eventSize {
				out = append(out, parseEvent(attrs[4:l]))
			}
			next := (l + 3) &^ 3
			if next > len(attrs) {
				break
			}
			attrs = attrs[next:]
		}
	}
	return out
}

func parseEvent(b []byte) Event {
	cstr := func(b []byte) string {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	return Event{
		DeviceClass: cstr(b[0:20]),
		BusID:       cstr(b[20:35]),
		Type:        binary.NativeEndian.Uint32(b[36:40]),
		Data:        binary.NativeEndian.Uint32(b[40:44]),
	}
}

// Listener is a joined acpi_event multicast socket.
type Listener struct {
	fd     int
	family uint16
}

// Listen joins the ACPI event group.
func Listen() (*Listener, error) {
	fam, err := netlink.GenlFamilyGet(FamilyName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoFamily, err)
	}
	var group uint32
	for _, g := range fam.Groups {
		if g.Name == GroupName {
			group = g.ID
		}
	}
	if group == 0 {
		return nil, fmt.Errorf("acpi_event family has no %s group", GroupName)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("joining %s: %w", GroupName, err)
	}
	return &Listener{fd: fd, family: fam.ID}, nil
}

// Next blocks until the next batch of events. A receive buffer overflow
// (ENOBUFS: events came faster than they were read, at a rate the host
// chooses) loses some events but not the socket: Next reads on.
func (l *Listener) Next() ([]Event, error) {
	buf := make([]byte, os.Getpagesize())
	for {
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading ACPI events: %w", err)
		}
		if ev := ParseMessages(buf[:n], l.family); len(ev) > 0 {
			return ev, nil
		}
	}
}

// Close closes the socket.
func (l *Listener) Close() error { return unix.Close(l.fd) }

// ButtonDriverLoaded reports whether the ACPI button driver is present
// (built in or loaded); without it presses are never reported.
func ButtonDriverLoaded(sysRoot string) bool {
	_, err := os.Stat(sysRoot + "/bus/acpi/drivers/button")
	return err == nil
}

package acpi

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// message builds one netlink message as the kernel's
// acpi_bus_generate_netlink_event sends it.
func message(family uint16, class, bus string, typ, data uint32) []byte {
	ev := make([]byte, eventSize)
	copy(ev[0:20], class)
	copy(ev[20:35], bus)
	binary.NativeEndian.PutUint32(ev[36:], typ)
	binary.NativeEndian.PutUint32(ev[40:], data)
	attr := make([]byte, 4, 4+len(ev))
	binary.NativeEndian.PutUint16(attr[0:], uint16(4+len(ev)))
	binary.NativeEndian.PutUint16(attr[2:], attrEvent)
	attr = append(attr, ev...)
	payload := append([]byte{1, 1, 0, 0}, attr...) // genlmsghdr: cmd, version
	msg := make([]byte, 16, 16+len(payload))
	binary.NativeEndian.PutUint32(msg[0:], uint32(16+len(payload)))
	binary.NativeEndian.PutUint16(msg[4:], family)
	return append(msg, payload...)
}

func TestParseMessages(t *testing.T) {
	buf := append(message(27, "button/power", "LNXPWRBN:00", 0x80, 1), message(27, "ac_adapter", "ACPI0003:00", 0x80, 0)...)
	buf = append(buf, message(99, "button/power", "other family", 0, 0)...)
	got := ParseMessages(buf, 27)
	want := []Event{
		{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1},
		{DeviceClass: "ac_adapter", BusID: "ACPI0003:00", Type: 0x80},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !got[0].IsPowerButton() || got[1].IsPowerButton() {
		t.Error("IsPowerButton wrong")
	}
}

func TestParseMessagesMalformed(t *testing.T) {
	full := message(27, "button/power", "LNXPWRBN:00", 0x80, 1)
	for n := 0; n < len(full); n++ {
		if ev := ParseMessages(full[:n], 27); len(ev) != 0 {
			t.Errorf("truncated to %d bytes: got events %v", n, ev)
		}
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(message(27, "button/power", "LNXPWRBN:00", 0x80, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseMessages(b, 27) // must not panic
	})
}

package acpi

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Bounds and fields of the ACPI event parser. The bytes come from the host
// (it sends the events), so no length in them may be trusted beyond the
// message that carries it.

// A message of the family too short for its genlmsghdr (4 bytes), whose
// header length is consistent, is skipped: neither an event nor a panic
// (PID 1 would die of it).
func TestParseMessagesShortGenlHeader(t *testing.T) {
	for n := 0; n < 4; n++ {
		msg := make([]byte, 16+n, 16+n+4)
		binary.NativeEndian.PutUint32(msg[0:], uint32(16+n))
		binary.NativeEndian.PutUint16(msg[4:], 27)
		for len(msg)%4 != 0 {
			msg = append(msg, 0)
		}
		buf := append(msg, message(27, "button/power", "LNXPWRBN:00", 0x80, 1)...)
		got := ParseMessages(buf, 27)
		want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("a %d-byte generic netlink payload, then an event: events (-want +got):\n%s", n, diff)
		}
	}
}

// An event attribute whose length runs past the end of its message is
// dropped, not read from the bytes after it (the next message, or the
// rest of the receive buffer: the slice's capacity reaches beyond its
// length) and not a panic.
func TestParseMessagesAttributePastMessage(t *testing.T) {
	// An attribute header that claims a whole event (4+44 bytes), with
	// only 20 bytes after it in the message.
	bad := make([]byte, 4+20)
	binary.NativeEndian.PutUint16(bad[0:], 4+eventSize)
	binary.NativeEndian.PutUint16(bad[2:], attrEvent)
	next := message(27, "button/power", "LNXPWRBN:00", 0x80, 1)
	want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}}
	for _, tc := range []struct {
		name string
		buf  []byte
		want []Event
	}{
		{"followed by another message", append(genlMessage(27, bad), next...), want},
		{"last in a larger buffer", append(make([]byte, 0, 4096), genlMessage(27, bad)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseMessages(tc.buf, 27)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// The last attribute of a message may end unpadded (its length not a
// multiple of 4, the message's length neither, the buffer padded as the
// kernel pads messages): its event is read, and the step to the next
// attribute, past the end, stops the loop instead of slicing past the
// end of the message (a panic in PID 1).
func TestParseMessagesUnpaddedLastAttribute(t *testing.T) {
	payload := append(event("button/power", "LNXPWRBN:00", 0x80, 1), 7) // 45 bytes
	a := make([]byte, 4, 4+len(payload))
	binary.NativeEndian.PutUint16(a[0:], uint16(4+len(payload))) // 49: unaligned
	binary.NativeEndian.PutUint16(a[2:], attrEvent)
	a = append(a, payload...)
	body := append([]byte{1, 1, 0, 0}, a...)
	msg := make([]byte, 16, 16+len(body)+3)
	binary.NativeEndian.PutUint32(msg[0:], uint32(16+len(body))) // 69
	binary.NativeEndian.PutUint16(msg[4:], 27)
	msg = append(msg, body...)
	msg = append(msg, 0, 0, 0) // NLMSG_ALIGN padding
	var got []Event
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("ParseMessages panicked: %v", r)
			}
		}()
		got = ParseMessages(msg, 27)
	}()
	want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// bus_id is char[15]: byte 35 is the struct's padding before type, never
// part of the name even when the name fills its field and the padding is
// not zero.
func TestParseEventBusIDIsFifteenBytes(t *testing.T) {
	ev := event("button/power", "LNXPWRBN:000000", 0x80, 1)
	ev[35] = 'X'
	got := ParseMessages(genlMessage(27, attr(attrEvent, ev)), 27)
	want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:000000", Type: 0x80, Data: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// Only the power button is a power button: the sleep button and the lid
// (the kernel's other button/* classes) are not a shutdown request.
func TestIsPowerButtonOnlyPower(t *testing.T) {
	for _, c := range []string{"button/sleep", "button/lid", "button/power ", "button", ""} {
		if (Event{DeviceClass: c}).IsPowerButton() {
			t.Errorf("device class %q taken for the power button", c)
		}
	}
	if !(Event{DeviceClass: "button/power"}).IsPowerButton() {
		t.Error("button/power not taken for the power button")
	}
}

// An attribute whose length is shorter than its own 4-byte header ends
// the message's attributes, as the kernel's nla_ok does: what follows is
// not read as an event.
func TestParseMessagesAttributeShorterThanHeader(t *testing.T) {
	powerAttr := attr(attrEvent, event("button/power", "LNXPWRBN:00", 0x80, 1))
	for l := uint16(0); l < 4; l++ {
		bad := make([]byte, 4)
		binary.NativeEndian.PutUint16(bad[0:], l)
		binary.NativeEndian.PutUint16(bad[2:], 2)
		if ev := ParseMessages(genlMessage(27, bad, powerAttr), 27); len(ev) != 0 {
			t.Errorf("attribute length %d before an event: got events %v, want none", l, ev)
		}
	}
}

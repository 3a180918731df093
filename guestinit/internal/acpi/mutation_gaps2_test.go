package acpi

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Tests added after a second mutation-testing sample of the ACPI event
// parser.

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

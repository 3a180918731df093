package acpi

import (
	"encoding/binary"
	"testing"
)

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

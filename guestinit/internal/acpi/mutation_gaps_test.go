package acpi

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Tests added after a mutation-testing sample of the ACPI event parser:
// each pins a bound that the rest of the suite let change unnoticed. The
// bytes come from the host (it sends the events), so no length in them may
// be trusted beyond the message that carries it.

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

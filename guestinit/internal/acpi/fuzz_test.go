package acpi

import (
	"strings"
	"testing"
)

// ParseMessages(message(v)) == v, before or after another message and
// whatever precedes it in the same buffer; another family's never counts.
func FuzzParseMessagesRoundTrip(f *testing.F) {
	f.Add([]byte{}, "button/power", "LNXPWRBN:00", uint32(0x80), uint32(1))
	f.Add(message(99, "button/power", "x", 0, 0), "ac_adapter", "ACPI0003:00", uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, prefix []byte, class, bus string, typ, data uint32) {
		if len(class) > 19 || len(bus) > 14 || strings.IndexByte(class, 0) >= 0 || strings.IndexByte(bus, 0) >= 0 {
			return
		}
		want := Event{DeviceClass: class, BusID: bus, Type: typ, Data: data}
		msg := message(27, class, bus, typ, data)
		if got := ParseMessages(msg, 27); len(got) != 1 || got[0] != want {
			t.Fatalf("ParseMessages(message(%+v)) = %+v", want, got)
		}
		if got := ParseMessages(msg, 28); len(got) != 0 {
			t.Fatalf("another family's message gave %+v", got)
		}
		before := ParseMessages(prefix, 27)
		both := ParseMessages(append(append([]byte{}, prefix...), msg...), 27)
		if before != nil && (len(both) != len(before)+1 || both[len(both)-1] != want) {
			t.Fatalf("after %x (%d events), the message gave %+v", prefix, len(before), both)
		}
		if other := ParseMessages(prefix, 28); len(other) > len(prefix)/(16+4+4+eventSize) {
			t.Fatalf("%d events from %d bytes", len(other), len(prefix))
		}
	})
}

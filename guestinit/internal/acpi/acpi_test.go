package acpi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// message builds one netlink message as the kernel's
// acpi_bus_generate_netlink_event sends it.
func message(family uint16, class, bus string, typ, data uint32) []byte {
	return genlMessage(family, attr(attrEvent, event(class, bus, typ, data)))
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

// attr is one netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload []byte) []byte {
	a := make([]byte, 4, 4+len(payload)+3)
	binary.NativeEndian.PutUint16(a[0:], uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(a[2:], typ)
	a = append(a, payload...)
	for len(a)%4 != 0 {
		a = append(a, 0)
	}
	return a
}

// event is a struct acpi_genl_event.
func event(class, bus string, typ, data uint32) []byte {
	ev := make([]byte, eventSize)
	copy(ev[0:20], class)
	copy(ev[20:35], bus)
	binary.NativeEndian.PutUint32(ev[36:], typ)
	binary.NativeEndian.PutUint32(ev[40:], data)
	return ev
}

// genlMessage is one generic netlink message carrying attrs.
func genlMessage(family uint16, attrs ...[]byte) []byte {
	payload := []byte{1, 1, 0, 0} // genlmsghdr: cmd, version
	for _, a := range attrs {
		payload = append(payload, a...)
	}
	msg := make([]byte, 16, 16+len(payload))
	binary.NativeEndian.PutUint32(msg[0:], uint32(16+len(payload)))
	binary.NativeEndian.PutUint16(msg[4:], family)
	return append(msg, payload...)
}

func TestParseMessagesAttributes(t *testing.T) {
	power := Event{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}
	powerAttr := attr(attrEvent, event("button/power", "LNXPWRBN:00", 0x80, 1))
	for _, tc := range []struct {
		name string
		msg  []byte
		want []Event
	}{
		{"only the genl header", genlMessage(27), nil},
		{"empty attribute before the event", genlMessage(27, attr(2, nil), powerAttr), []Event{power}},
		{"unpadded attribute before the event", genlMessage(27, attr(2, []byte{1, 2, 3}), powerAttr), []Event{power}},
		{"two events in one message", genlMessage(27, powerAttr, attr(attrEvent, event("ac_adapter", "ACPI0003:00", 0x80, 0))),
			[]Event{power, {DeviceClass: "ac_adapter", BusID: "ACPI0003:00", Type: 0x80}}},
		{"event attribute a byte short", genlMessage(27, attr(attrEvent, event("button/power", "LNXPWRBN:00", 0x80, 1)[:eventSize-1])), nil},
		{"event attribute longer than the struct", genlMessage(27, attr(attrEvent, append(event("button/power", "LNXPWRBN:00", 0x80, 1), 9, 9, 9, 9))), []Event{power}},
		{"type with the nested flag", genlMessage(27, attr(attrEvent|0x8000, event("button/power", "LNXPWRBN:00", 0x80, 1))), []Event{power}},
		{"empty names", genlMessage(27, attr(attrEvent, event("", "", 1, 2))), []Event{{Type: 1, Data: 2}}},
		{"names filling their fields", genlMessage(27, attr(attrEvent, event("button/power/xxxxxxx", "LNXPWRBN:000000", 0, 0))),
			[]Event{{DeviceClass: "button/power/xxxxxxx", BusID: "LNXPWRBN:000000"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseMessages(tc.msg, 27)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextSkipsBatchesWithoutEvents reads from a datagram socket pair
// standing in for the netlink socket (the real one is only fed by the
// kernel's ACPI driver: see qemu/boottest's power button tests): a batch
// without an ACPI event (another family, a malformed message) does not
// end Next, and the next batch's events come back whole.
func TestNextSkipsBatchesWithoutEvents(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	l := &Listener{fd: fds[0], family: 27}
	defer l.Close()
	for _, b := range [][]byte{
		message(99, "button/power", "other family", 0, 0),
		[]byte{1, 2, 3},
		genlMessage(27),
		message(27, "button/power", "LNXPWRBN:00", 0x80, 1),
	} {
		if _, err := unix.Write(fds[1], b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// A read error ends Next with the error (here: not a socket).
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if ev, err := (&Listener{fd: int(r.Fd()), family: 27}).Next(); !errors.Is(err, unix.ENOTSOCK) {
		t.Errorf("Next on a pipe: %v, %v; want ENOTSOCK", ev, err)
	}
}

// TestNextSurvivesOverflow: a netlink socket whose receive buffer
// overflowed (events came faster than the init read them; the host sends
// ACPI events at the rate it likes) reports ENOBUFS once, then delivers
// what is queued and what comes next. That is no reason to stop
// listening: Next must go on and return the press that follows.
//
// The overflow is real: a NETLINK_ROUTE socket with a tiny receive
// buffer, in a network namespace of this test's own locked thread (the
// host's network is not touched), joined to the link group while lo goes
// down and up; then a power button message is sent to it.
func TestNextSurvivesOverflow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a network namespace")
	}
	type result struct {
		ev  []Event
		err error
	}
	res := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in its own namespace, ends with
		// the goroutine.
		runtime.LockOSThread()
		fail := func(err error) { res <- result{err: fmt.Errorf("setup: %w", err)} }
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			fail(err)
			return
		}
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			fail(err)
			return
		}
		defer unix.Close(fd)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
			fail(err)
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			fail(err)
			return
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil {
			fail(err)
			return
		}
		for range 200 {
			h.LinkSetUp(lo)
			h.LinkSetDown(lo)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			fail(err)
			return
		}
		sender, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			fail(err)
			return
		}
		defer unix.Close(sender)
		// The family id must not be one of NETLINK_ROUTE's own types.
		// The send blocks while the buffer is full, until Next reads.
		const family = 0x3ff
		go func() {
			unix.Sendto(sender, message(family, "button/power", "LNXPWRBN:00", 0x80, 1), 0,
				&unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: sa.(*unix.SockaddrNetlink).Pid})
		}()
		ev, err := (&Listener{fd: fd, family: family}).Next()
		res <- result{ev: ev, err: err}
	}()
	var r result
	select {
	case r = <-res:
	case <-time.After(20 * time.Second):
		t.Fatal("Next did not return")
	}
	if r.err != nil {
		t.Fatalf("Next after the socket's buffer overflowed: %v; want the press that follows", r.err)
	}
	want := []Event{{DeviceClass: "button/power", BusID: "LNXPWRBN:00", Type: 0x80, Data: 1}}
	if diff := cmp.Diff(want, r.ev); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestListen joins the real acpi_event group (the host's kernel, if it has
// ACPI): nothing is sent, so this only checks that the family and its
// group are found and joined.
func TestListen(t *testing.T) {
	if _, err := netlink.GenlFamilyGet(FamilyName); err != nil {
		t.Skipf("skipping: no %s generic netlink family here (%v); run on a kernel with ACPI (CONFIG_ACPI) to enable", FamilyName, err)
	}
	l, err := Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if l.family == 0 {
		t.Error("Listen found family id 0")
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestButtonDriverLoaded(t *testing.T) {
	sys := t.TempDir()
	if ButtonDriverLoaded(sys) {
		t.Errorf("ButtonDriverLoaded(%s) = true without bus/acpi/drivers/button", sys)
	}
	if err := os.MkdirAll(filepath.Join(sys, "bus/acpi/drivers/button"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !ButtonDriverLoaded(sys) {
		t.Errorf("ButtonDriverLoaded(%s) = false with bus/acpi/drivers/button", sys)
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(message(27, "button/power", "LNXPWRBN:00", 0x80, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseMessages(b, 27) // must not panic
	})
}

package agent

import (
	"strings"
	"syscall"
	"testing"

	labi "github.com/google/go-sev-guest/client/linuxabi"
)

// hostFailsIoctl is Linux's sev-guest (6.1.192's disassembly, as later
// kernels) when the host fails the first request: the extended request
// returns errno with exitinfo2 as the ioctl wrapper leaves it (kept for
// EIO, zeroed otherwise), the driver disables its key and answers ENOTTY
// after.
type hostFailsIoctl struct {
	errno     syscall.Errno
	exitinfo2 uint64
	calls     int
}

func (f *hostFailsIoctl) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	f.calls++
	if f.calls > 1 {
		return 0, syscall.ENOTTY
	}
	if f.errno == syscall.EIO {
		arg.(*labi.SnpUserGuestRequest).FwErr = f.exitinfo2
	}
	return 0, f.errno
}

// The extended request's failure that cost the key is named for what it
// is: exitinfo2's upper half is the host's (VMM's) error, its lower half
// the firmware's; ETIMEDOUT is the driver giving up on a host that
// answered busy (SNP_GUEST_VMM_ERR_BUSY) for a minute, as configfs-tsm's
// message says, not a connection that timed out. The agent called the
// whole exitinfo2 "firmware error", so a host's failure read as the AMD
// firmware's, and a host that stayed busy read "firmware error 0x0,
// connection timed out".
func TestSevGuestHostFailureNamed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		errno     syscall.Errno
		exitinfo2 uint64
		want      []string
		notWant   string
	}{
		{"busy for a minute", syscall.ETIMEDOUT, 2 << 32, []string{"answered busy", "for over a minute"}, "firmware error 0x0"},
		{"host error", syscall.EIO, 0xffffffff << 32, []string{"host (VMM) error 0xffffffff"}, "firmware error 0xffffffff00000000"},
		{"firmware error", syscall.EIO, 0x16, []string{"firmware error 0x16"}, "host (VMM) error"},
	} {
		q := &SevGuestIoctl{Open: func() (Ioctler, error) { return &hostFailsIoctl{errno: tc.errno, exitinfo2: tc.exitinfo2}, nil }}
		_, _, err := q.Quote([64]byte{1})
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", tc.name, msg, w)
			}
		}
		if strings.Contains(msg, tc.notWant) {
			t.Errorf("%s: %q says %q", tc.name, msg, tc.notWant)
		}
		if !strings.Contains(msg, "disabled its message key (VMPCK)") {
			t.Errorf("%s: %q does not name the lockout", tc.name, msg)
		}
	}
}

// failure names each known host (VMM) error, and says when there is no
// status at all rather than returning nothing.
func TestFailureText(t *testing.T) {
	for _, tc := range []struct {
		exitinfo2 uint64
		err       error
		want      string
	}{
		{1 << 32, syscall.EIO, "host (VMM) error 0x1 (certificate buffer too small), input/output error"},
		{2 << 32, syscall.EIO, "host (VMM) error 0x2 (busy), input/output error"},
		{0xffffffff << 32, syscall.EIO, "host (VMM) error 0xffffffff (generic), input/output error"},
		{3<<32 | 0x16, nil, "host (VMM) error 0x3, firmware error 0x16"},
		{0, nil, "no error status"},
	} {
		if got := failure(tc.exitinfo2, tc.err); got != tc.want {
			t.Errorf("failure(%#x, %v) = %q, want %q", tc.exitinfo2, tc.err, got, tc.want)
		}
	}
}

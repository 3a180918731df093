package agent

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// errnoTSM is configfs-tsm as linuxtsm sees it on a real kernel when the
// sev_guest provider's report_new fails: os.ReadFile of outblob/auxblob
// returns a *fs.PathError carrying the errno sev_report_new returned
// (drivers/virt/coco/tsm.c tsm_report_read passes it through, and
// fs/configfs/file.c configfs_bin_read_iter returns it from read(2)).
// Everything else (mkdir, inblob, provider, generation) works.
type errnoTSM struct {
	configfsi.Client
	errno syscall.Errno
}

func (c *errnoTSM) ReadFile(name string) ([]byte, error) {
	if p, err := configfsi.ParseTsmPath(name); err == nil && (p.Attribute == "outblob" || p.Attribute == "auxblob") {
		return nil, &fs.PathError{Op: "read", Path: name, Err: c.errno}
	}
	return c.Client.ReadFile(name)
}

// A host certificate table over SEV_FW_BLOB_MAX_SIZE (16 KiB): Linux
// 6.7-6.12 sev_report_new asks with a fixed 16 KiB buffer; the host answers
// SNP_GUEST_VMM_ERR_INVALID_LEN, __handle_guest_request re-issues a plain
// guest request (sequence number kept in step, VMPCK NOT disabled) and
// returns -EIO, so every read of auxblob/outblob fails with EIO for as
// long as the host keeps that table. /dev/sev-guest still gives a report
// (SNP_GET_EXT_REPORT learns the length, then SNP_GET_REPORT). With
// configfs-tsm first, FirstAvailable stuck to it (its probe never reaches
// the firmware) and every quote failed for the VM's life; the default
// order puts the ioctl first, since every kernel with configfs-tsm's
// sev_guest provider registers both from one probe.
func TestConfigfsEIOFallsBackToIoctl(t *testing.T) {
	signer := testSigner(t)
	cfs := &ConfigfsTSM{Client: &errnoTSM{Client: fakeTSM(t, signer, "sev_guest"), errno: syscall.EIO}}
	dev := &tableIoctl{tableLen: kernelCertLimit + 4096}
	ioc := &SevGuestIoctl{Open: func() (Ioctler, error) { return dev, nil }}

	// The default order: the ioctl first, configfs-tsm where it is missing.
	def, ok := DefaultQuoter().(*FirstAvailable)
	if !ok || len(def.Providers) != 2 {
		t.Fatalf("DefaultQuoter() = %#v, want a FirstAvailable of two providers", DefaultQuoter())
	}
	if _, ok := def.Providers[0].(*SevGuestIoctl); !ok {
		t.Errorf("DefaultQuoter's first provider is %T, want *SevGuestIoctl", def.Providers[0])
	}
	if _, ok := def.Providers[1].(*ConfigfsTSM); !ok {
		t.Errorf("DefaultQuoter's second provider is %T, want *ConfigfsTSM", def.Providers[1])
	}

	// configfs-tsm alone fails every quote on this host, with the kernel's
	// EIO kept and explained.
	if _, _, err := cfs.Quote([64]byte{1}); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "certificate table over 16 KiB") {
		t.Errorf("configfs-tsm on this host: %v, want EIO explained", err)
	}
	f := &FirstAvailable{Providers: []Prober{ioc, cfs}}
	for i := range 3 {
		rep, _, err := f.Quote([64]byte{1})
		if err != nil || len(rep) != agentapi.ReportSize || !bytes.Equal(rep[0x50:0x51], []byte{1}) || f.Name() != agentapi.ProviderSevGuest {
			t.Errorf("quote %d via %s: %v; want the report from /dev/sev-guest", i, f.Name(), err)
		}
	}
	// One extended request learned the table was too large; then one
	// firmware request per quote.
	if got, want := strings.Join(dev.calls, " "), "ext(0) report report report"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// Once sev-guest has disabled its VMPCK (a host or firmware failure, or a
// host busy for over 60 s: ETIMEDOUT), 6.7+ sev_report_new returns
// -ENOTTY ("VMPCK is disabled") for every report, as the ioctl does. The
// ioctl provider names that (TestSevGuestVMPCKDisabled); the configfs-tsm
// provider, the one chosen on 6.7+, says only "inappropriate ioctl for
// device" and loses the errno (go-configfs-tsm's ReadOption wraps with
// %v), so neither the operator nor a caller can tell.
func TestConfigfsVMPCKDisabledNamed(t *testing.T) {
	cfs := &ConfigfsTSM{Client: &errnoTSM{Client: fakeTSM(t, testSigner(t), "sev_guest"), errno: syscall.ENOTTY}}
	_, _, err := cfs.Quote([64]byte{1})
	if err == nil {
		t.Fatal("Quote succeeded")
	}
	if !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("err = %v: the kernel's errno is lost (errors.Is ENOTTY false)", err)
	}
	if !strings.Contains(err.Error(), "VMPCK") {
		t.Errorf("err = %q, want the VMPCK lockout named as on the ioctl path", err)
	}
}

// Same for EIO on configfs: the kernel's errno should survive so the agent
// can tell "host certificate table too large / host error" (EIO) from a
// disabled key (ENOTTY) or a refused request (EINVAL).
func TestConfigfsErrnoKept(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.EINVAL, syscall.ETIMEDOUT} {
		cfs := &ConfigfsTSM{Client: &errnoTSM{Client: fakeTSM(t, testSigner(t), "sev_guest"), errno: errno}}
		if _, _, err := cfs.Quote([64]byte{1}); !errors.Is(err, errno) {
			t.Errorf("%v: err = %v, want it to wrap the errno", errno, err)
		}
	}
}

// shortTSM answers outblob with fewer bytes than a report.
type shortTSM struct{ configfsi.Client }

func (c *shortTSM) ReadFile(name string) ([]byte, error) {
	if p, err := configfsi.ParseTsmPath(name); err == nil && p.Attribute == "outblob" {
		return make([]byte, agentapi.ReportSize-1), nil
	}
	return c.Client.ReadFile(name)
}

// Each errno a failed configfs-tsm report can carry is explained in the
// error, not only wrapped, and a short outblob is refused, not sliced.
func TestConfigfsErrnoExplained(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.ENOTTY:    "disabled its message key (VMPCK)",
		syscall.ETIMEDOUT: "the host answered busy for over a minute and the driver gave up",
		syscall.EIO:       "a host certificate table over 16 KiB does so on every request",
	} {
		cfs := &ConfigfsTSM{Client: &errnoTSM{Client: fakeTSM(t, testSigner(t), "sev_guest"), errno: errno}}
		if _, _, err := cfs.Quote([64]byte{1}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want it explained with %q", errno, err, want)
		}
	}
	cfs := &ConfigfsTSM{Client: &shortTSM{fakeTSM(t, testSigner(t), "sev_guest")}}
	if _, _, err := cfs.Quote([64]byte{1}); err == nil || !strings.Contains(err.Error(), "outblob is 1183 bytes, want at least 1184") {
		t.Errorf("short outblob: %v", err)
	}
}

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// ConfigfsTSM quotes through the kernel's configfs-tsm report interface
// (/sys/kernel/config/tsm/report, Linux 6.7+ with CONFIG_TSM_REPORTS). The
// agent uses it only where /dev/sev-guest is missing (DefaultQuoter): on
// 6.7-6.12 the same driver probe registers both, and configfs-tsm always
// asks the host for its certificate table in a fixed 16 KiB buffer, so a
// host whose table is larger fails every configfs-tsm report with EIO
// (the kernel keeps its message key then), where the ioctl still gets the
// report without the table.
type ConfigfsTSM struct {
	// Client is the configfs client; nil means the real one (linuxtsm).
	Client configfsi.Client
	// Privilege is the VMPL to request; nil leaves the kernel's default.
	Privilege *uint
}

var _ Prober = (*ConfigfsTSM)(nil)

// Name implements Quoter.
func (*ConfigfsTSM) Name() string { return agentapi.ProviderConfigfsTSM }

func (c *ConfigfsTSM) client() (configfsi.Client, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	cl, err := linuxtsm.MakeClient()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s/report missing (is configfs mounted at /sys/kernel/config and the kernel built with CONFIG_TSM_REPORTS?)", ErrNoDevice, configfsi.TsmPrefix)
		}
		return nil, fmt.Errorf("%w: %w", ErrNoDevice, err)
	}
	return cl, nil
}

// Probe checks that a report entry can be created and that its provider is
// sev_guest (a TDX guest also has configfs-tsm).
func (c *ConfigfsTSM) Probe() error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	r, err := report.Create(cl, &report.Request{})
	if err != nil {
		return fmt.Errorf("%w: creating a configfs-tsm report entry: %w", ErrNoDevice, err)
	}
	defer r.Destroy()
	// Write an inblob first: reading attributes of an untouched entry is not
	// defined everywhere (go-configfs-tsm's fake refuses), and writing does
	// not make the kernel talk to the firmware; only reading outblob does.
	if err := r.WriteOption("inblob", make([]byte, agentapi.ReportDataSize)); err != nil {
		return fmt.Errorf("%w: writing a configfs-tsm inblob: %w", ErrNoDevice, err)
	}
	p, err := r.ReadOption("provider")
	if err != nil {
		return fmt.Errorf("%w: reading the configfs-tsm provider: %w", ErrNoDevice, err)
	}
	if got := strings.TrimSpace(string(p)); got != "sev_guest" {
		return fmt.Errorf("%w: configfs-tsm provider is %q, not sev_guest", ErrNoDevice, got)
	}
	return nil
}

// Quote implements Quoter.
func (c *ConfigfsTSM) Quote(rd [64]byte) ([]byte, []byte, error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	req := &report.Request{InBlob: rd[:], GetAuxBlob: true}
	if c.Privilege != nil {
		req.Privilege = &report.Privilege{Level: *c.Privilege}
	}
	ec := &errnoClient{Client: cl}
	resp, err := report.Get(ec, req)
	if err != nil {
		return nil, nil, configfsErr(err, ec.errno)
	}
	if len(resp.OutBlob) < agentapi.ReportSize {
		return nil, nil, fmt.Errorf("configfs-tsm report: outblob is %d bytes, want at least %d", len(resp.OutBlob), agentapi.ReportSize)
	}
	var certs []byte
	if len(resp.AuxBlob) > 0 {
		certs = resp.AuxBlob
	}
	return resp.OutBlob[:agentapi.ReportSize], certs, nil
}

// errnoClient keeps the errno of the first configfs operation that fails:
// go-configfs-tsm wraps its errors with %v, which drops the kernel's
// answer, and that answer is what tells a disabled key from a host error.
type errnoClient struct {
	configfsi.Client
	errno syscall.Errno
}

func (c *errnoClient) note(err error) error {
	var en syscall.Errno
	if err != nil && c.errno == 0 && errors.As(err, &en) {
		c.errno = en
	}
	return err
}

func (c *errnoClient) MkdirTemp(dir, pattern string) (string, error) {
	p, err := c.Client.MkdirTemp(dir, pattern)
	return p, c.note(err)
}

func (c *errnoClient) ReadFile(name string) ([]byte, error) {
	b, err := c.Client.ReadFile(name)
	return b, c.note(err)
}

func (c *errnoClient) WriteFile(name string, contents []byte) error {
	return c.note(c.Client.WriteFile(name, contents))
}

// configfsErr is a failed configfs-tsm report, with the kernel's errno
// (sev_report_new's answer, which reading outblob or auxblob returns)
// wrapped and explained.
func configfsErr(err error, errno syscall.Errno) error {
	switch errno {
	case 0:
		return fmt.Errorf("configfs-tsm report: %w", err)
	case syscall.ENOTTY:
		return fmt.Errorf("configfs-tsm report: %s: %w: %w", vmpckDisabled, err, errno)
	case syscall.ETIMEDOUT:
		return fmt.Errorf("configfs-tsm report: the host answered busy for over a minute and the driver gave up; it disables its message key (VMPCK) then, and no report is possible, for the agent or Katana, until the guest reboots: %w: %w", err, errno)
	case syscall.EIO:
		return fmt.Errorf("configfs-tsm report: the host or the firmware failed the request (a host certificate table over 16 KiB does so on every request; any other failure makes the driver disable its message key, VMPCK, until the guest reboots): %w: %w", err, errno)
	}
	return fmt.Errorf("configfs-tsm report: %w: %w", err, errno)
}

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// ConfigfsTSM quotes through the kernel's configfs-tsm report interface
// (/sys/kernel/config/tsm/report, Linux 6.7+ with CONFIG_TSM_REPORTS), the
// preferred path: the kernel serialises guest requests itself (it waits and
// retries only when the host answers busy; nothing limits their rate).
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
	resp, err := report.Get(cl, req)
	if err != nil {
		return nil, nil, fmt.Errorf("configfs-tsm report: %w", err)
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

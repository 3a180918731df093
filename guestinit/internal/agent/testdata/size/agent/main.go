// Command agent is the agent size probe: the real agent (vsock, configfs-tsm,
// sev-guest ioctl through go-sev-guest's linuxabi only).
package main

import (
	"context"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/agent"
	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func main() {
	cfg, _ := bootcfg.Parse("katana.agent=vsock:1024")
	agent.Start(context.Background(), cfg, status.New(func() time.Duration { return 0 }), agent.StartOptions{})
	select {}
}

// Command none is the size floor of the agent size probe: what the init
// links anyway around the agent (boot config, status, net), no agent.
package main

import (
	"fmt"
	"net"
	"time"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func main() {
	cfg, _ := bootcfg.Parse("katana.agent=vsock:1024")
	st := status.New(func() time.Duration { return 0 })
	l, err := net.Listen("tcp", cfg.Agent.TCP.String())
	fmt.Println(cfg.Applied().Bytes(), st.Snapshot(), l, err)
}

package bootcfg

import (
	"errors"
	"strings"
	"testing"
)

// katana.stop_timeout in whole seconds is written as the number itself:
// leading zeros or a sign are refused (fail closed on the measured
// cmdline), not read as the seconds they would be in another reader.
func TestParseStopTimeoutRefusesNonCanonicalSeconds(t *testing.T) {
	for _, v := range []string{"030", "00", "+30"} {
		if _, err := Parse("katana.stop_timeout=" + v); !errors.Is(err, ErrBadValue) {
			t.Errorf("katana.stop_timeout=%s: %v, want ErrBadValue", v, err)
		}
	}
	c, err := Parse("katana.stop_timeout=30")
	if err != nil || c.StopTimeout.Seconds() != 30 {
		t.Errorf("katana.stop_timeout=30: %v, %v", c.StopTimeout, err)
	}
}

// Format writes katana.agent whenever the agent differs from the default,
// a vsock port other than 1024 included: the guest would otherwise listen
// on 1024 while the host dials the configured port.
func TestFormatAgentVsockPortOtherThanDefault(t *testing.T) {
	c := Default()
	c.Agent = Agent{Mode: AgentVsock, VsockPort: 2048}
	line, err := Format(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, "katana.agent=vsock:2048") {
		t.Errorf("Format = %q, want katana.agent=vsock:2048 in it", line)
	}
	back, err := Parse(line)
	if err != nil || back.Agent != c.Agent {
		t.Errorf("Parse(Format) agent = %v, %v; want %v", back.Agent, err, c.Agent)
	}
}

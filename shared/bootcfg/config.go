package bootcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key names. Prefix is what marks a parameter as the init's.
const (
	Prefix          = "katana."
	KeyArgs         = "katana.args"
	KeyNet          = "katana.net"
	KeyAgent        = "katana.agent"
	KeyOnExit       = "katana.on_exit"
	KeyStopTimeout  = "katana.stop_timeout"
	KeyRestartLimit = "katana.restart_limit"
	KeyEnv          = "katana.env"
)

// keyOrder is the order Format writes keys in and the set of known keys.
var keyOrder = []string{KeyNet, KeyAgent, KeyOnExit, KeyStopTimeout, KeyRestartLimit, KeyEnv, KeyArgs}

// Keys returns the katana.* keys the init knows, in the order Format
// writes them.
func Keys() []string { return slices.Clone(keyOrder) }

// InitEnv returns the environment variables the init sets for Katana
// itself (PATH, HOME, TMPDIR and, with a CA bundle, SSL_CERT_FILE), which
// katana.env cannot set.
func InitEnv() []string { return slices.Clone(initEnv) }

var initEnv = []string{"HOME", "PATH", "SSL_CERT_FILE", "TMPDIR"}

// Limits of the values.
const (
	MaxDNS          = 3 // what resolv.conf readers honour (glibc MAXNS)
	MaxStopTimeout  = time.Hour
	MaxRestartLimit = 1000
)

// OnExit is the policy applied when Katana exits by itself.
type OnExit string

const (
	OnExitPoweroff OnExit = "poweroff"
	OnExitReboot   OnExit = "reboot"
	OnExitRestart  OnExit = "restart"
)

// Net is the static network setting for eth0.
type Net struct {
	None    bool         // katana.net=none: leave eth0 alone
	Addr    netip.Prefix // address with its host bits, e.g. 10.0.2.15/24
	Gateway netip.Addr   // zero: no default route
	DNS     []netip.Addr // nil: empty resolv.conf
}

// String is the canonical katana.net value.
func (n Net) String() string {
	if n.None {
		return "none"
	}
	s := n.Addr.String()
	if n.Gateway.IsValid() {
		s += ",gw=" + n.Gateway.String()
	}
	if len(n.DNS) > 0 {
		d := make([]string, len(n.DNS))
		for i, a := range n.DNS {
			d[i] = a.String()
		}
		s += ",dns=" + strings.Join(d, ";")
	}
	return s
}

// Equal reports whether two settings are the same.
func (n Net) Equal(o Net) bool {
	return n.None == o.None && n.Addr == o.Addr && n.Gateway == o.Gateway && slices.Equal(n.DNS, o.DNS)
}

// AgentMode says where the attestation agent listens.
type AgentMode string

const (
	AgentVsock AgentMode = "vsock"
	AgentTCP   AgentMode = "tcp"
	AgentNone  AgentMode = "none"
)

// Agent is the katana.agent setting.
type Agent struct {
	Mode      AgentMode
	VsockPort uint32         // AgentVsock
	TCP       netip.AddrPort // AgentTCP
}

// String is the canonical katana.agent value.
func (a Agent) String() string {
	switch a.Mode {
	case AgentVsock:
		return "vsock:" + strconv.FormatUint(uint64(a.VsockPort), 10)
	case AgentTCP:
		return "tcp:" + a.TCP.String()
	}
	return string(a.Mode)
}

// Config is the parsed command line: every setting the init applies, the
// raw command line and the kernel's view of the rest.
type Config struct {
	Raw          string   // the command line given to Parse, byte for byte
	KernelParams []string // non-katana parameters before "--", as written (quotes kept)
	// InitArgs are the parameters after "--" (up to a second "--"), as
	// written; nil when there is no "--". The kernel appends them to
	// PID 1's argv after the unknown parameters before "--" that have
	// neither "=" nor "."; it leaves them out altogether when a kernel
	// parameter it knows had a bad value (see SplitKernel).
	InitArgs []string

	Args         []string // katana.args split into words; nil for none
	Env          []string // katana.env: NAME=VALUE words in the order given; nil for none
	Net          Net
	Agent        Agent
	OnExit       OnExit
	StopTimeout  time.Duration
	RestartLimit int
}

// Default returns the settings used when no katana.* key is given.
func Default() Config {
	return Config{
		Net: Net{
			Addr:    netip.MustParsePrefix("10.0.2.15/24"),
			Gateway: netip.MustParseAddr("10.0.2.2"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.0.2.3")},
		},
		Agent:        Agent{Mode: AgentVsock, VsockPort: 1024},
		OnExit:       OnExitPoweroff,
		StopTimeout:  30 * time.Second,
		RestartLimit: 5,
	}
}

// Parse parses a command line (without the trailing newline of
// /proc/cmdline; see FromProc). Errors are *Error values wrapping one of the
// sentinels of this package and naming the offending text.
func Parse(cmdline string) (Config, error) {
	c := Default()
	c.Raw = cmdline
	params, initArgs, ignored, err := splitKernel(cmdline)
	if err != nil {
		return Config{}, err
	}
	seen := map[string]Param{}
	for _, p := range params {
		if anyCaseKey(p.Key) && !strings.HasPrefix(p.Key, Prefix) {
			return Config{}, &Error{Err: ErrUnknownKey, Text: p.Raw, Offset: p.Offset,
				Detail: "katana.* keys are lowercase (the kernel and the init would ignore this one); known keys: " + strings.Join(keyOrder, ", ")}
		}
		if !strings.HasPrefix(p.Key, Prefix) {
			if why := Hazard(p); why != "" {
				return Config{}, &Error{Err: ErrHazard, Text: p.Raw, Offset: p.Offset, Detail: why}
			}
			c.KernelParams = append(c.KernelParams, p.Raw)
			continue
		}
		if !slices.Contains(keyOrder, p.Key) {
			return Config{}, &Error{Err: ErrUnknownKey, Text: p.Raw, Offset: p.Offset,
				Detail: "known keys: " + strings.Join(keyOrder, ", ")}
		}
		if prev, dup := seen[p.Key]; dup {
			return Config{}, &Error{Err: ErrRepeatedKey, Text: p.Raw, Offset: p.Offset,
				Detail: fmt.Sprintf("first given as %q at byte %d", prev.Raw, prev.Offset)}
		}
		seen[p.Key] = p
		if !p.HasValue {
			return Config{}, &Error{Err: ErrNoValue, Text: p.Raw, Offset: p.Offset}
		}
		if err := c.set(p); err != nil {
			return Config{}, err
		}
	}
	for _, p := range append(slices.Clone(initArgs), ignored...) {
		if anyCaseKey(p.Key) {
			return Config{}, &Error{Err: ErrAfterDashes, Text: p.Raw, Offset: p.Offset}
		}
	}
	if h, ok := findEarlyOption(cmdline, params); ok {
		return Config{}, &Error{Err: ErrEarlyOption, Text: h.word, Offset: h.offset, Detail: h.why()}
	}
	if initArgs != nil {
		c.InitArgs = []string{}
		for _, p := range initArgs {
			c.InitArgs = append(c.InitArgs, p.Raw)
		}
	}
	return c, nil
}

func (c *Config) set(p Param) error {
	bad := func(detail string) error {
		return &Error{Err: ErrBadValue, Text: p.Raw, Offset: p.Offset, Detail: detail}
	}
	v := p.Value
	switch p.Key {
	case KeyArgs:
		args, err := SplitArgs(v)
		if err != nil {
			detail := err.Error()
			var e *Error
			if errors.As(err, &e) {
				detail = fmt.Sprintf("%s at byte %d of the value", e.Detail, e.Offset)
			}
			return &Error{Err: ErrArgs, Text: p.Raw, Offset: p.Offset, Detail: detail}
		}
		c.Args = args
	case KeyEnv:
		env, err := ParseEnv(v)
		if err != nil {
			return bad(err.Error())
		}
		c.Env = env
	case KeyNet:
		n, err := ParseNet(v)
		if err != nil {
			return bad(err.Error())
		}
		c.Net = n
	case KeyAgent:
		a, err := ParseAgent(v)
		if err != nil {
			return bad(err.Error())
		}
		c.Agent = a
	case KeyOnExit:
		switch o := OnExit(v); o {
		case OnExitPoweroff, OnExitReboot, OnExitRestart:
			c.OnExit = o
		default:
			return bad("want poweroff, reboot or restart")
		}
	case KeyStopTimeout:
		d, err := ParseStopTimeout(v)
		if err != nil {
			return bad(err.Error())
		}
		c.StopTimeout = d
	case KeyRestartLimit:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxRestartLimit || strconv.Itoa(n) != v {
			return bad(fmt.Sprintf("want a whole number from 0 to %d", MaxRestartLimit))
		}
		c.RestartLimit = n
	}
	return nil
}

// ParseNet parses a katana.net value (grammar in the package doc).
func ParseNet(v string) (Net, error) {
	if v == "none" {
		return Net{None: true}, nil
	}
	fields := strings.Split(v, ",")
	pfx, err := netip.ParsePrefix(fields[0])
	if err != nil {
		return Net{}, fmt.Errorf("want none or ADDR/PREFIX[,gw=IP][,dns=IP[;IP[;IP]]]: %q is not ADDR/PREFIX", fields[0])
	}
	if err := unicastHost(pfx.Addr()); err != nil {
		return Net{}, fmt.Errorf("address %s: %w", pfx.Addr(), err)
	}
	// The kernel adds no subnet route for /0, so no gateway is reachable.
	if pfx.Bits() == 0 {
		return Net{}, fmt.Errorf("address %s: prefix /0 makes no subnet (the kernel adds no route for it); give the subnet's prefix, e.g. /24", pfx)
	}
	if directedBroadcast(pfx, pfx.Addr()) {
		return Net{}, fmt.Errorf("address %s: the broadcast address of %s (the guest would not be reachable)", pfx.Addr(), pfx.Masked())
	}
	n := Net{Addr: pfx}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, val, ok := strings.Cut(f, "=")
		if !ok || (k != "gw" && k != "dns") {
			return Net{}, fmt.Errorf("option %q: want gw=IP or dns=IP[;IP[;IP]]", f)
		}
		if seen[k] {
			return Net{}, fmt.Errorf("option %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "gw":
			gw, err := parseHostAddr(val, pfx.Addr())
			if err != nil {
				return Net{}, fmt.Errorf("gw: %w", err)
			}
			if gw == pfx.Addr() {
				return Net{}, fmt.Errorf("gw: %s is the address itself", gw)
			}
			if directedBroadcast(pfx, gw) {
				return Net{}, fmt.Errorf("gw: %s is the broadcast address of %s", gw, pfx.Masked())
			}
			n.Gateway = gw
		case "dns":
			parts := strings.Split(val, ";")
			if len(parts) > MaxDNS {
				return Net{}, fmt.Errorf("dns: %d servers, at most %d", len(parts), MaxDNS)
			}
			for _, s := range parts {
				a, err := parseHostAddr(s, pfx.Addr())
				if err != nil {
					return Net{}, fmt.Errorf("dns: %w", err)
				}
				if a.Is6() && a.IsLinkLocalUnicast() {
					// Reachable only with a zone, which resolv.conf
					// would need and zones are refused.
					return Net{}, fmt.Errorf("dns: %s is link-local, which needs a zone (not supported): give a global or unique-local address", a)
				}
				if directedBroadcast(pfx, a) {
					return Net{}, fmt.Errorf("dns: %s is the broadcast address of %s", a, pfx.Masked())
				}
				n.DNS = append(n.DNS, a)
			}
		}
	}
	return n, nil
}

func parseHostAddr(s string, family netip.Addr) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if err := unicastHost(a); err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", a, err)
	}
	if a.Is4() != family.Is4() {
		return netip.Addr{}, fmt.Errorf("%s is not of the same family as %s", a, family)
	}
	return a, nil
}

func unicastHost(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("zones are not supported")
	case a.Is4In6():
		return fmt.Errorf("write IPv4 addresses as a.b.c.d")
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback():
		return fmt.Errorf("not a unicast host address")
	case a.Is4() && a.As4()[0] == 0:
		// RFC 1122's "this network": the kernel adds no route for it.
		return fmt.Errorf("0.0.0.0/8 is not a host address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("the broadcast address, not a host address")
	}
	return nil
}

// directedBroadcast reports whether a is the broadcast address of the IPv4
// subnet pfx (all host bits set; /31 and /32 have none, RFC 3021).
func directedBroadcast(pfx netip.Prefix, a netip.Addr) bool {
	if !a.Is4() || pfx.Bits() >= 31 || !pfx.Masked().Contains(a) {
		return false
	}
	b := a.As4()
	host := ^uint32(0) >> pfx.Bits()
	return binary.BigEndian.Uint32(b[:])&host == host
}

// ParseAgent parses a katana.agent value (grammar in the package doc).
func ParseAgent(v string) (Agent, error) {
	const want = "want vsock:PORT, tcp:IP:PORT or none"
	if v == "none" {
		return Agent{Mode: AgentNone}, nil
	}
	mode, rest, _ := strings.Cut(v, ":")
	switch mode {
	case "vsock":
		n, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || n == 0 || n == 0xffffffff || strconv.FormatUint(n, 10) != rest {
			return Agent{}, fmt.Errorf("%s: vsock port %q is not 1..4294967294", want, rest)
		}
		return Agent{Mode: AgentVsock, VsockPort: uint32(n)}, nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Agent{}, fmt.Errorf("%s: %q is not IP:PORT", want, rest)
		}
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			return Agent{}, fmt.Errorf("%s: %q is not an IP address", want, host)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
			return Agent{}, fmt.Errorf("%s: tcp port %q is not 1..65535", want, port)
		}
		ap := netip.AddrPortFrom(a, uint16(n))
		if ap.String() != rest {
			return Agent{}, fmt.Errorf("%s: write the address as %s", want, ap)
		}
		return Agent{Mode: AgentTCP, TCP: ap}, nil
	}
	return Agent{}, fmt.Errorf("%s: %q is none of them", want, v)
}

// ParseStopTimeout parses a katana.stop_timeout value: a Go duration or a
// whole number of seconds, 0 to MaxStopTimeout.
func ParseStopTimeout(v string) (time.Duration, error) {
	const want = "want a Go duration (45s, 1m30s) or whole seconds, at most 1h"
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil && strconv.FormatUint(n, 10) == v {
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is neither", want, v)
		}
	}
	if d < 0 || d > MaxStopTimeout {
		return 0, fmt.Errorf("%s: %q is out of range", want, v)
	}
	return d, nil
}

// Format writes a command line that Parse turns back into c's settings with
// kernelParams as KernelParams and c.InitArgs as InitArgs (c.Raw and
// c.KernelParams are ignored). Each kernel parameter must be one parameter
// as the kernel splits it, with balanced quotes, and not a katana.* key.
// Settings equal to the default are left out. What cannot be expressed (a
// '"' or a NUL in an argument, or a byte the boot path through OVMF cannot
// carry unchanged, see CheckBytes, a line longer than MaxLen, or more
// arguments or environment variables for PID 1 than the kernel allows) is
// an error wrapping ErrUnformattable; a kernel parameter Hazard names is
// ErrHazard, and a word the kernel's early parsers would read as a kernel
// option though it is not a kernel parameter (a katana.args word
// "nokaslr") is ErrEarlyOption, as in Parse.
func Format(c Config, kernelParams []string) (string, error) {
	var out, what []string // the parameters, and what each is for errors
	for _, kp := range kernelParams {
		if err := checkArgBytes(kp, "kernel parameter"); err != nil {
			return "", err
		}
		ps, ia, err := SplitKernel(kp)
		if err != nil {
			return "", err
		}
		if len(ps) != 1 || ia != nil || ps[0].Raw != kp {
			return "", &Error{Err: ErrUnformattable, Text: kp, Offset: -1, Detail: "not exactly one kernel parameter"}
		}
		if anyCaseKey(ps[0].Key) {
			return "", &Error{Err: ErrUnformattable, Text: kp, Offset: -1, Detail: "set katana.* keys through Config, not as kernel parameters"}
		}
		if why := Hazard(ps[0]); why != "" {
			return "", &Error{Err: ErrHazard, Text: kp, Offset: -1, Detail: why}
		}
		out, what = append(out, kp), append(what, fmt.Sprintf("kernel parameter %q", kp))
	}
	def := Default()
	if err := checkSettings(c); err != nil {
		return "", err
	}
	add := func(key, val string) {
		out, what = append(out, key+"="+val), append(what, key)
	}
	if !c.Net.Equal(def.Net) {
		add(KeyNet, c.Net.String())
	}
	if c.Agent != def.Agent {
		add(KeyAgent, c.Agent.String())
	}
	if c.OnExit != def.OnExit {
		add(KeyOnExit, string(c.OnExit))
	}
	if c.StopTimeout != def.StopTimeout {
		add(KeyStopTimeout, formatStopTimeout(c.StopTimeout))
	}
	if c.RestartLimit != def.RestartLimit {
		add(KeyRestartLimit, strconv.Itoa(c.RestartLimit))
	}
	for _, kw := range []struct {
		key   string
		words []string
	}{{KeyEnv, c.Env}, {KeyArgs, c.Args}} {
		if len(kw.words) == 0 {
			continue
		}
		v, err := formatWords(kw.key, kw.words)
		if err != nil {
			return "", err
		}
		add(kw.key, v)
	}
	if c.InitArgs != nil {
		out, what = append(out, "--"), append(what, `"--"`)
		for i, a := range c.InitArgs {
			if err := checkArgBytes(a, fmt.Sprintf("init argument %d", i+1)); err != nil {
				return "", err
			}
			ps, _, err := SplitKernel(a)
			if err != nil {
				return "", err
			}
			if len(ps) != 1 || ps[0].Raw != a || anyCaseKey(ps[0].Key) {
				return "", &Error{Err: ErrUnformattable, Text: a, Offset: -1, Detail: "init argument is not exactly one non-katana parameter"}
			}
			out, what = append(out, a), append(what, fmt.Sprintf("init argument %d", i+1))
		}
	}
	line := strings.Join(out, " ")
	if err := CheckBytes(line); err != nil { // the arguments are checked above; this covers the values
		return "", err
	}
	if err := CheckLen(line); err != nil {
		return "", err
	}
	params, initArgs, ignored, err := splitKernel(line)
	if err != nil || len(ignored) != 0 {
		return "", &Error{Err: ErrUnformattable, Text: line, Offset: -1,
			Detail: fmt.Sprintf("internal error: the parameters do not split back as written (%v)", err)}
	}
	if h, ok := findEarlyOption(line, params); ok {
		// Name the input the word comes from: out[i] starts at byte
		// sum(len(out[:i]))+i of line.
		from, pos := "", 0
		for i, o := range out {
			if h.offset < pos+len(o) {
				from = what[i]
				break
			}
			pos += len(o) + 1
		}
		return "", &Error{Err: ErrEarlyOption, Text: h.word, Offset: -1, Detail: "in " + from + ": " + h.why()}
	}
	if err := checkInitLimits(params, initArgs); err != nil {
		return "", err
	}
	return line, nil
}

// formatWords writes the value of a key whose value SplitArgs splits
// (katana.args, katana.env), in the kernel's double quotes when it has a
// space.
func formatWords(key string, words []string) (string, error) {
	for i, a := range words {
		if err := checkArgBytes(a, fmt.Sprintf("%s word %d", key, i+1)); err != nil {
			return "", err
		}
	}
	v, err := QuoteArgs(words)
	if err != nil {
		return "", err
	}
	if strings.IndexByte(v, '"') >= 0 {
		return "", &Error{Err: ErrUnformattable, Text: v, Offset: -1,
			Detail: "a double quote in " + key + " (the kernel has no escape for it)"}
	}
	// v is ASCII (checked above), so 0xA0 needs no care here.
	if strings.IndexFunc(v, func(r rune) bool { return r < 0x80 && isKernelSpace(byte(r)) }) >= 0 {
		v = `"` + v + `"`
	}
	return v, nil
}

// formatStopTimeout writes d as a Go duration in ASCII: Duration.String
// writes microseconds as "µs" (U+00B5), which OVMF would pass on changed;
// ParseDuration reads "us" as the same unit.
func formatStopTimeout(d time.Duration) string {
	return strings.ReplaceAll(d.String(), "µs", "us")
}

// checkArgBytes refuses an argument with a byte the boot path cannot carry
// unchanged (see CheckBytes), naming the argument and the byte's offset in it.
func checkArgBytes(a, what string) error {
	if i, why := unsafeByte(a); i >= 0 {
		return &Error{Err: ErrUnformattable, Text: a, Offset: i, Detail: what + ": " + why}
	}
	return nil
}

// checkSettings rejects settings Parse could never produce, so that Format
// never writes a command line the guest refuses.
func checkSettings(c Config) error {
	bad := func(key, val string, want ...string) error {
		detail := "value Parse would reject"
		if len(want) > 0 {
			detail += ": " + want[0]
		}
		return &Error{Err: ErrUnformattable, Text: key + "=" + val, Offset: -1, Detail: detail}
	}
	if n, err := ParseNet(c.Net.String()); err != nil || !n.Equal(c.Net) {
		return bad(KeyNet, c.Net.String())
	}
	if a, err := ParseAgent(c.Agent.String()); err != nil || a != c.Agent {
		return bad(KeyAgent, c.Agent.String())
	}
	switch c.OnExit {
	case OnExitPoweroff, OnExitReboot, OnExitRestart:
	default:
		return bad(KeyOnExit, string(c.OnExit))
	}
	if c.StopTimeout < 0 || c.StopTimeout > MaxStopTimeout {
		return bad(KeyStopTimeout, c.StopTimeout.String(), fmt.Sprintf("want 0 to %v", MaxStopTimeout))
	}
	if c.RestartLimit < 0 || c.RestartLimit > MaxRestartLimit {
		return bad(KeyRestartLimit, strconv.Itoa(c.RestartLimit), fmt.Sprintf("want 0 to %d", MaxRestartLimit))
	}
	if err := checkEnv(c.Env); err != nil {
		return &Error{Err: ErrUnformattable, Text: KeyEnv, Offset: -1, Detail: err.Error()}
	}
	return nil
}

// Applied is the stable form of the settings the init applies, for the
// config digest and the agent's status: defaults are filled in and every
// value is in its canonical string form.
type Applied struct {
	Cmdline      string   `json:"cmdline"`
	Args         []string `json:"args"`
	Env          []string `json:"env"`
	Net          string   `json:"net"`
	Agent        string   `json:"agent"`
	OnExit       string   `json:"on_exit"`
	StopTimeout  string   `json:"stop_timeout"`
	RestartLimit int      `json:"restart_limit"`
}

// AppliedVersion is the first line of Applied.Bytes; bump it when the
// encoding or the set of fields changes.
const AppliedVersion = "bootcfg-applied-v2"

// Applied returns the applied settings of c.
func (c Config) Applied() Applied {
	args, env := c.Args, c.Env
	if args == nil {
		args = []string{}
	}
	if env == nil {
		env = []string{}
	}
	return Applied{
		Cmdline:      c.Raw,
		Args:         args,
		Env:          env,
		Net:          c.Net.String(),
		Agent:        c.Agent.String(),
		OnExit:       string(c.OnExit),
		StopTimeout:  c.StopTimeout.String(),
		RestartLimit: c.RestartLimit,
	}
}

// Bytes is the canonical, injective encoding of a for hashing: the line
// AppliedVersion, then one line per field in a fixed order,
// "<name> <value>", strings quoted with strconv.Quote (so any byte,
// including invalid UTF-8, is represented exactly), args and env each as
// their count followed by one quoted word per line. Unlike JSON it never
// replaces bytes, so two different command lines never give the same bytes.
func (a Applied) Bytes() []byte {
	var b strings.Builder
	b.WriteString(AppliedVersion + "\n")
	b.WriteString("cmdline " + strconv.Quote(a.Cmdline) + "\n")
	b.WriteString("args " + strconv.Itoa(len(a.Args)) + "\n")
	for _, w := range a.Args {
		b.WriteString("arg " + strconv.Quote(w) + "\n")
	}
	b.WriteString("env " + strconv.Itoa(len(a.Env)) + "\n")
	for _, w := range a.Env {
		b.WriteString("var " + strconv.Quote(w) + "\n")
	}
	b.WriteString("net " + strconv.Quote(a.Net) + "\n")
	b.WriteString("agent " + strconv.Quote(a.Agent) + "\n")
	b.WriteString("on_exit " + strconv.Quote(a.OnExit) + "\n")
	b.WriteString("stop_timeout " + strconv.Quote(a.StopTimeout) + "\n")
	b.WriteString("restart_limit " + strconv.Itoa(a.RestartLimit) + "\n")
	return []byte(b.String())
}

// Settings returns the applied katana.* settings other than the command
// line and the args, keyed by their cmdline key, values canonical (the
// form shared/agentapi.AppliedConfig.Settings carries); katana.env is its
// words as QuoteArgs writes them, "" for none.
func (a Applied) Settings() map[string]string {
	env, _ := QuoteArgs(a.Env) // no NUL: the words come from a command line
	return map[string]string{
		KeyEnv:          env,
		KeyNet:          a.Net,
		KeyAgent:        a.Agent,
		KeyOnExit:       a.OnExit,
		KeyStopTimeout:  a.StopTimeout,
		KeyRestartLimit: strconv.Itoa(a.RestartLimit),
	}
}

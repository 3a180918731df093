package agentapi

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrBadAddr is wrapped by the address parsers' errors.
var ErrBadAddr = errors.New("bad agent address")

// Addr is where the agent listens (guest) or where the verifier dials (host).
//
// Guest forms (katana.agent=...): "vsock:PORT" (any local CID) and
// "tcp:HOST:PORT" (plain-QEMU tests; HOST may be an IPv4 address, a bracketed
// IPv6 address or empty for all addresses). Host forms (hostbuild --addr):
// "vsock:CID:PORT" and "tcp:HOST:PORT".
type Addr struct {
	Network string // "vsock" or "tcp"
	CID     uint32 // vsock only; 0 in guest form
	Host    string // tcp only
	Port    uint32
}

// String formats a in the form it was parsed from.
func (a Addr) String() string {
	switch a.Network {
	case "vsock":
		if a.CID != 0 {
			return fmt.Sprintf("vsock:%d:%d", a.CID, a.Port)
		}
		return fmt.Sprintf("vsock:%d", a.Port)
	default:
		return "tcp:" + net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
	}
}

// HostPort is "HOST:PORT" for tcp addresses.
func (a Addr) HostPort() string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// ParseListenAddr parses the guest's katana.agent value.
func ParseListenAddr(s string) (Addr, error) {
	return parseAddr(s, false)
}

// ParseDialAddr parses the host's --addr value.
func ParseDialAddr(s string) (Addr, error) {
	return parseAddr(s, true)
}

func parseAddr(s string, dial bool) (Addr, error) {
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Addr{}, fmt.Errorf("%w %q: want vsock:... or tcp:HOST:PORT", ErrBadAddr, s)
	}
	switch network {
	case "vsock":
		if dial {
			cid, port, ok := strings.Cut(rest, ":")
			if !ok {
				return Addr{}, fmt.Errorf("%w %q: want vsock:CID:PORT", ErrBadAddr, s)
			}
			c, err := parseU32(cid)
			if err != nil || c < 3 || c == 0xffffffff { // 4294967295: VMADDR_CID_ANY
				return Addr{}, fmt.Errorf("%w %q: guest CID must be a number from 3 to 4294967294", ErrBadAddr, s)
			}
			p, err := parsePort(port)
			if err != nil {
				return Addr{}, fmt.Errorf("%w %q: %w", ErrBadAddr, s, err)
			}
			return Addr{Network: "vsock", CID: c, Port: p}, nil
		}
		p, err := parsePort(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("%w %q: want vsock:PORT: %w", ErrBadAddr, s, err)
		}
		return Addr{Network: "vsock", Port: p}, nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("%w %q: want tcp:HOST:PORT: %w", ErrBadAddr, s, err)
		}
		// The dialer accepts names (localhost in tests); the guest has no
		// resolver at listen time, so it wants an IP address.
		if !dial && host != "" && net.ParseIP(host) == nil {
			return Addr{}, fmt.Errorf("%w %q: listen host must be an IP address", ErrBadAddr, s)
		}
		if dial && host == "" {
			return Addr{}, fmt.Errorf("%w %q: dial host is empty", ErrBadAddr, s)
		}
		p, err := parsePort(port)
		if err != nil && !(port == "0" && !dial) { // tcp port 0: any free port (tests)
			return Addr{}, fmt.Errorf("%w %q: %w", ErrBadAddr, s, err)
		}
		if p > 65535 {
			return Addr{}, fmt.Errorf("%w %q: tcp port %d out of range", ErrBadAddr, s, p)
		}
		return Addr{Network: "tcp", Host: host, Port: p}, nil
	}
	return Addr{}, fmt.Errorf("%w %q: network %q is not vsock or tcp", ErrBadAddr, s, network)
}

func parseU32(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal number")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

func parsePort(s string) (uint32, error) {
	p, err := parseU32(s)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", s, err)
	}
	if p == 0 || p == 0xFFFFFFFF {
		return 0, fmt.Errorf("port %q out of range", s)
	}
	return p, nil
}

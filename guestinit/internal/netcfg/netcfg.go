// Package netcfg configures the guest network over netlink, without DHCP or
// any tool: lo up, then (unless katana.net=none) wait for eth0 by
// subscribing to link events (bounded), turn off IPv6 router advertisements
// and autoconfiguration and ICMP redirects (all, default and eth0: the host
// could add addresses and routes katana.net does not name), give it the
// static address, bring it up, add the default route and write
// /etc/resolv.conf.
package netcfg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// ErrLinkTimeout is returned when the interface does not appear in time.
var ErrLinkTimeout = errors.New("network interface did not appear")

// Options configure Configure.
type Options struct {
	Interface string        // default "eth0"
	Wait      time.Duration // how long to wait for the interface; default 10s
	// Root is where etc/resolv.conf is written ("/" in the guest).
	Root string
	// Namespace is the network namespace to configure; nil: the current one
	// (tests use a fresh namespace).
	Namespace *netns.NsHandle
	// ProcSys, when set ("/proc/sys" in the guest), is where Configure
	// turns off what would let the host change the guest's addresses and
	// routes beyond katana.net (see hardenSysctls).
	ProcSys string
}

// hardenedSysctls are written before the interface comes up: IPv6 router
// advertisements and address autoconfiguration (the host, which owns the
// wire, could add addresses and routes the bound katana.net does not
// name) and ICMP redirects (it could reroute traffic), for every
// interface and the configured one. A setting the kernel does not have
// (IPv6 disabled) is skipped.
var hardenedSysctls = []struct{ path, value string }{
	{"net/ipv6/conf/all/accept_ra", "0"},
	{"net/ipv6/conf/default/accept_ra", "0"},
	{"net/ipv6/conf/IFACE/accept_ra", "0"},
	{"net/ipv6/conf/all/autoconf", "0"},
	{"net/ipv6/conf/default/autoconf", "0"},
	{"net/ipv6/conf/IFACE/autoconf", "0"},
	{"net/ipv6/conf/all/accept_redirects", "0"},
	{"net/ipv6/conf/default/accept_redirects", "0"},
	{"net/ipv6/conf/IFACE/accept_redirects", "0"},
	{"net/ipv4/conf/all/accept_redirects", "0"},
	{"net/ipv4/conf/default/accept_redirects", "0"},
	{"net/ipv4/conf/IFACE/accept_redirects", "0"},
}

// hardenSysctls writes hardenedSysctls under procSys for iface.
func hardenSysctls(procSys, iface string) error {
	for _, s := range hardenedSysctls {
		p := filepath.Join(procSys, strings.ReplaceAll(s.path, "IFACE", iface))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("setting %s: %w", p, err)
		}
		_, err = f.WriteString(s.value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("setting %s to %s: %w", p, s.value, err)
		}
	}
	return nil
}

// Result says what was configured, for the stage marker.
type Result struct {
	Interface string
	Addr      netip.Prefix
	Waited    time.Duration // time spent waiting for the interface
}

func handle(o Options) (*netlink.Handle, error) {
	// NETLINK_ROUTE only: without a list the library also opens XFRM and
	// netfilter sockets, which a minimal guest kernel refuses.
	if o.Namespace != nil {
		return netlink.NewHandleAt(*o.Namespace, unix.NETLINK_ROUTE)
	}
	return netlink.NewHandle(unix.NETLINK_ROUTE)
}

// Loopback brings lo up (the kernel then adds 127.0.0.1/8 and ::1).
func Loopback(o Options) error {
	h, err := handle(o)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// Configure applies n to the interface. With n.None it does nothing.
func Configure(ctx context.Context, n bootcfg.Net, o Options) (Result, error) {
	if o.Interface == "" {
		o.Interface = "eth0"
	}
	if o.Wait == 0 {
		o.Wait = 10 * time.Second
	}
	if n.None {
		return Result{}, nil
	}
	h, err := handle(o)
	if err != nil {
		return Result{}, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	start := time.Now()
	link, err := waitLink(ctx, h, o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Interface: o.Interface, Addr: n.Addr, Waited: time.Since(start)}
	if o.ProcSys != "" {
		if err := hardenSysctls(o.ProcSys, o.Interface); err != nil {
			return res, err
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Addr.Addr().AsSlice(), Mask: net.CIDRMask(n.Addr.Bits(), n.Addr.Addr().BitLen())}}
	if n.Addr.Addr().Is6() {
		// Static addressing in a VM: no duplicate address detection. With
		// DAD the address stays tentative for about a second and bind()
		// fails with EADDRNOTAVAIL, so the agent or Katana could not listen
		// on it right after Configure returns.
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return res, fmt.Errorf("adding %s to %s: %w", n.Addr, o.Interface, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return res, fmt.Errorf("bringing %s up: %w", o.Interface, err)
	}
	if n.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.Gateway.AsSlice()}
		if !n.Addr.Masked().Contains(n.Gateway) {
			r.Flags = int(netlink.FLAG_ONLINK) // gateway outside the subnet
		}
		if err := h.RouteReplace(r); err != nil {
			return res, fmt.Errorf("adding default route via %s: %w", n.Gateway, err)
		}
	}
	if err := WriteResolvConf(o.Root, n.DNS); err != nil {
		return res, err
	}
	return res, nil
}

// waitLink subscribes to link events first, so an interface that appears
// at any moment is seen, then looks the interface up by name (one that
// already exists), and otherwise waits for the event that names it.
//
// The events are read here, on the caller's goroutine, from a socket of
// the netlink library's (nl.SubscribeAt), and only the interface's name is
// taken from them (the standard library's attribute parser): the
// library's own subscription decodes every message in a goroutine of its
// own, which no recover of the init's covers, and a panic there would end
// PID 1.
// LinkTimeoutError is the error for an interface that did not appear
// within wait (ErrLinkTimeout, with what to check).
func LinkTimeoutError(iface string, wait time.Duration) error {
	return fmt.Errorf("%s after %v (is virtio_net loaded, and virtio_pci before it? is there a -device virtio-net-pci?): %w",
		iface, wait, ErrLinkTimeout)
}

func waitLink(ctx context.Context, h *netlink.Handle, o Options) (netlink.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	ns := netns.None()
	if o.Namespace != nil {
		ns = *o.Namespace
	}
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return nil, fmt.Errorf("subscribing to link events: %w", err)
	}
	defer s.Close()
	lookup := func() (netlink.Link, bool) {
		l, err := h.LinkByName(o.Interface)
		return l, err == nil
	}
	if l, ok := lookup(); ok {
		return l, nil
	}
	for {
		deadline, _ := ctx.Deadline()
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return nil, LinkTimeoutError(o.Interface, o.Wait)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		s.SetReceiveTimeout(&tv)
		msgs, _, err := s.Receive()
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue // the deadline, checked above
		case errors.Is(err, unix.ENOBUFS):
			// Events were lost: the interface may have come meanwhile.
			if l, ok := lookup(); ok {
				return l, nil
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("waiting for %s: reading link events: %w", o.Interface, err)
		}
		for _, m := range msgs {
			if m.Header.Type == unix.RTM_NEWLINK && linkName(m) == o.Interface {
				l, err := h.LinkByName(o.Interface)
				if err != nil {
					return nil, fmt.Errorf("%s appeared, but looking it up: %w", o.Interface, err)
				}
				return l, nil
			}
		}
	}
}

// linkName is the IFLA_IFNAME of an RTM_NEWLINK message ("" if it has none
// or does not parse). The standard library's parser slices past the end of
// a message shorter than its ifinfomsg: such a message is no link's, and
// any other panic of the parser's is taken as "no name" too.
func linkName(m syscall.NetlinkMessage) (name string) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return ""
	}
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return ""
	}
	for _, a := range attrs {
		if a.Attr.Type == unix.IFLA_IFNAME {
			return strings.TrimRight(string(a.Value), "\x00")
		}
	}
	return ""
}

// ResolvConf is the content of /etc/resolv.conf for the DNS servers.
func ResolvConf(dns []netip.Addr) []byte {
	var b strings.Builder
	b.WriteString("# written by guestinit from katana.net\n")
	for _, a := range dns {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	return []byte(b.String())
}

// WriteResolvConf writes root/etc/resolv.conf atomically.
func WriteResolvConf(root string, dns []netip.Addr) error {
	p := filepath.Join(root, "etc", "resolv.conf")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, ResolvConf(dns), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

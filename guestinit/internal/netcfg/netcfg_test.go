package netcfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf([]netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("fd00::53")}))
	want := "# written by guestinit from katana.net\nnameserver 10.0.2.3\nnameserver fd00::53\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolv.conf (-want +got):\n%s", diff)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := WriteResolvConf(root, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if string(b) != "# written by guestinit from katana.net\n" {
		t.Errorf("empty DNS list gave %q", b)
	}
}

// newNS creates a network namespace without leaving the test's thread in it.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Skipf("skipping: cannot read the current network namespace (%v); run as root on Linux to enable", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("skipping: cannot create a network namespace (%v); run as root (CAP_SYS_ADMIN) to enable", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("returning to the original namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// nsWithLoopback makes a network namespace with lo up and, if eth0, an
// eth0 veth (peer peer0) already there, and a handle on it.
func nsWithLoopback(t *testing.T, eth0 bool) (*netlink.Handle, Options) {
	t.Helper()
	ns := newNS(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Root: root, Namespace: &ns, Wait: 3 * time.Second}
	if err := Loopback(o); err != nil {
		t.Fatalf("Loopback: %v", err)
	}
	if eth0 {
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				t.Skipf("skipping: veth unsupported here (%v): load it (modprobe veth) or run where the kernel has it", err)
			}
			t.Fatal(err)
		}
	}
	return h, o
}

// TestConfigureExistingLink: eth0 is there before Configure starts.
func TestConfigureExistingLink(t *testing.T) {
	h, o := nsWithLoopback(t, true)
	res, err := Configure(context.Background(), bootcfg.Default().Net, o)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if res.Waited > time.Second {
		t.Errorf("waited %v for an eth0 that already existed", res.Waited)
	}
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := h.AddrList(eth, netlink.FAMILY_V4); len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.2.15/24" {
		t.Errorf("addresses %v, want 10.0.2.15/24", addrs)
	}
}

// TestConfigureLeavesNoReader: with many links, Configure finds eth0 by
// name and leaves nothing behind: no goroutine reading link events (the
// netlink library's own subscription, which waitLink no longer uses, ran
// one that could stay blocked for the rest of the boot) and no open
// descriptor (the event socket, the netlink handle), for an eth0 that is
// there and for one that comes late.
func TestConfigureLeavesNoReader(t *testing.T) {
	h, o := nsWithLoopback(t, true)
	for i := 0; i < 100; i++ {
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("a%d", i)}, PeerName: fmt.Sprintf("b%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	if _, err := Configure(context.Background(), bootcfg.Default().Net, o); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if after := fds(); after != before {
		t.Errorf("%d descriptors open after Configure, %d before", after, before)
	}
	// eth0 late: Configure reads events on its own socket meanwhile.
	h2, o2 := nsWithLoopback(t, false)
	go func() {
		time.Sleep(200 * time.Millisecond)
		h2.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"})
	}()
	before = fds()
	if _, err := Configure(context.Background(), bootcfg.Default().Net, o2); err != nil {
		t.Fatalf("Configure with eth0 late: %v", err)
	}
	if after := fds(); after != before {
		t.Errorf("%d descriptors open after Configure with eth0 late, %d before", after, before)
	}
	buf := make([]byte, 1<<20)
	if n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "netlink.linkSubscribeAt"); n > 0 {
		t.Errorf("%d netlink subscription goroutine(s) after Configure:\n%s", n, buf[:runtime.Stack(buf, true)])
	}
}

// TestConfigureDumpInterrupted: links registered and unregistered while
// Configure waits (which made the netlink library's subscription dump
// report ErrDumpInterrupted, when waitLink used it) are events for other
// links: Configure must keep waiting and find eth0 when it appears.
func TestConfigureDumpInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: creates 400 veth pairs per try; run without -short")
	}
	fails := 0
	for try := 0; try < 5; try++ {
		h, o := nsWithLoopback(t, false)
		for i := 0; i < 400; i++ {
			if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("a%d", i)}, PeerName: fmt.Sprintf("b%d", i)}); err != nil {
				if errors.Is(err, unix.EOPNOTSUPP) {
					t.Skipf("skipping: veth unsupported here (%v): load it (modprobe veth) or run where the kernel has it", err)
				}
				t.Fatal(err)
			}
		}
		var stop atomic.Bool
		churned := make(chan struct{})
		go func() { // links come and go (dev_base_seq changes) during the dump
			defer close(churned)
			for !stop.Load() {
				h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "c0"}, PeerName: "d0"})
				if l, err := h.LinkByName("c0"); err == nil {
					h.LinkDel(l)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		go func() {
			time.Sleep(300 * time.Millisecond)
			h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"})
		}()
		_, err := Configure(context.Background(), bootcfg.Default().Net, o)
		stop.Store(true)
		<-churned
		if err != nil {
			fails++
			t.Logf("try %d: Configure: %v", try, err)
		}
	}
	if fails > 0 {
		t.Errorf("%d/5 tries failed although eth0 appeared 300ms in", fails)
	}
}

// TestConfigureIPv6BindsAtOnce: a static IPv6 address added without
// IFA_F_NODAD stays tentative for about a second of duplicate address
// detection, and bind() fails with EADDRNOTAVAIL meanwhile: the agent on
// tcp:[v6]:port (or Katana) would fail to listen right after Configure.
func TestConfigureIPv6BindsAtOnce(t *testing.T) {
	for _, carrier := range []bool{true, false} {
		t.Run(fmt.Sprintf("carrier=%v", carrier), func(t *testing.T) {
			h, o := nsWithLoopback(t, true)
			if carrier {
				peer, err := h.LinkByName("peer0")
				if err != nil {
					t.Fatal(err)
				}
				if err := h.LinkSetUp(peer); err != nil { // carrier on eth0 at once, as virtio-net has
					t.Fatal(err)
				}
			}
			n, err := bootcfg.ParseNet("fd00::5/64,gw=fd00::1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Configure(context.Background(), n, o); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			err = inNS(t, *o.Namespace, func() error {
				l, err := net.Listen("tcp", "[fd00::5]:1024")
				if err == nil {
					l.Close()
				}
				return err
			})
			if err != nil {
				eth, _ := h.LinkByName("eth0")
				addrs, _ := h.AddrList(eth, netlink.FAMILY_V6)
				t.Errorf("bind to [fd00::5]:1024 right after Configure: %v (addresses %v)", err, addrs)
			}
		})
	}
}

// inNS runs f on a thread in the network namespace ns.
func inNS(t *testing.T, ns netns.NsHandle, f func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("returning to the original namespace: %v", err))
		}
	}()
	return f()
}

// TestConfigureLateLink creates eth0 (a veth) 300 ms after Configure starts
// waiting, in a private network namespace, and checks address, state and
// default route. It waits as the guest does, with the default bound (10s).
func TestConfigureLateLink(t *testing.T) {
	ns := newNS(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	o := Options{Root: root, Namespace: &ns} // Wait 0: the default
	if err := Loopback(o); err != nil {
		t.Fatalf("Loopback: %v", err)
	}
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		created <- h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"})
	}()
	n := bootcfg.Default().Net
	res, err := Configure(context.Background(), n, o)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("skipping: veth unsupported here (%v): load it (modprobe veth) or run where the kernel has it", err)
		}
		t.Fatalf("Configure: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatalf("creating veth: %v", err)
	}
	// Configure's clock starts a little after the 300 ms timer (after
	// Loopback's handle): the bound leaves a starved machine 200 ms.
	if res.Waited < 100*time.Millisecond {
		t.Errorf("waited %v, want the ~300ms until eth0 appeared", res.Waited)
	}
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
		t.Errorf("eth0 not up: %v", eth.Attrs().Flags)
	}
	addrs, _ := h.AddrList(eth, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.2.15/24" {
		t.Errorf("addresses %v, want 10.0.2.15/24", addrs)
	}
	routes, _ := h.RouteList(eth, netlink.FAMILY_V4)
	var gw string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			gw = r.Gw.String()
		}
	}
	if gw != "10.0.2.2" {
		t.Errorf("default route via %q, want 10.0.2.2 (routes %v)", gw, routes)
	}
	lo, _ := h.LinkByName("lo")
	if lo.Attrs().Flags&1 == 0 {
		t.Error("lo not up")
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if string(b) != string(ResolvConf(n.DNS)) {
		t.Errorf("resolv.conf = %q", b)
	}
	// Running again (a restart of the stage) is idempotent.
	if _, err := Configure(context.Background(), n, o); err != nil {
		t.Errorf("second Configure: %v", err)
	}
}

// TestConfigureGateway: the default route goes via the gateway, on-link
// (RTNH_F_ONLINK) only when the gateway is outside the address's subnet,
// without which the kernel refuses such a route (ENETUNREACH), e.g. a /32
// address with its gateway.
func TestConfigureGateway(t *testing.T) {
	for _, tc := range []struct {
		net    string
		family int
		onlink bool
	}{
		{"10.0.2.15/24,gw=10.0.2.2", netlink.FAMILY_V4, false},
		{"10.0.2.15/32,gw=10.0.2.2", netlink.FAMILY_V4, true},
		{"10.0.2.15/24,gw=192.168.7.1", netlink.FAMILY_V4, true},
		{"fd00::5/64,gw=fd00::1", netlink.FAMILY_V6, false},
		{"fd00::5/128,gw=fd00::1", netlink.FAMILY_V6, true},
	} {
		t.Run(tc.net, func(t *testing.T) {
			h, o := nsWithLoopback(t, true)
			n, err := bootcfg.ParseNet(tc.net)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Configure(context.Background(), n, o); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			eth, err := h.LinkByName("eth0")
			if err != nil {
				t.Fatal(err)
			}
			routes, err := h.RouteList(eth, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			var def []netlink.Route
			for _, r := range routes {
				if r.Gw != nil {
					def = append(def, r)
				}
			}
			if len(def) != 1 {
				t.Fatalf("routes via a gateway: %v, want one default route (all routes %v)", def, routes)
			}
			r := def[0]
			if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
				t.Errorf("route via %v goes to %v, want the default route", r.Gw, r.Dst)
			}
			if got, want := r.Gw.String(), n.Gateway.String(); got != want {
				t.Errorf("default route via %s, want %s", got, want)
			}
			if got := r.Flags&int(netlink.FLAG_ONLINK) != 0; got != tc.onlink {
				t.Errorf("default route on-link = %v, want %v (flags %#x)", got, tc.onlink, r.Flags)
			}
		})
	}
}

// TestConfigureResolvConfError: a resolv.conf that cannot be written fails
// Configure (the guest would otherwise run without name servers).
func TestConfigureResolvConfError(t *testing.T) {
	_, o := nsWithLoopback(t, true)
	o.Root = t.TempDir() // no etc/
	_, err := Configure(context.Background(), bootcfg.Default().Net, o)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Configure with no %s/etc: err = %v, want not exist", o.Root, err)
	}
}

func TestConfigureTimeout(t *testing.T) {
	ns := newNS(t)
	o := Options{Root: t.TempDir(), Namespace: &ns, Wait: 200 * time.Millisecond}
	start := time.Now()
	_, err := Configure(context.Background(), bootcfg.Default().Net, o)
	if !errors.Is(err, ErrLinkTimeout) {
		t.Fatalf("err = %v, want ErrLinkTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestConfigureNone(t *testing.T) {
	res, err := Configure(context.Background(), bootcfg.Net{None: true}, Options{Root: "/nonexistent"})
	if err != nil || res.Interface != "" {
		t.Errorf("none: %+v, %v; want nothing done", res, err)
	}
}

// linkName reads the name of an RTM_NEWLINK message and nothing else, and
// never panics on what the socket gives (it runs in PID 1).
func FuzzLinkName(f *testing.F) {
	// ifinfomsg (16 bytes), then IFLA_IFNAME "eth0\0" (len 9, padded).
	good := append(make([]byte, unix.SizeofIfInfomsg), 9, 0, unix.IFLA_IFNAME, 0, 'e', 't', 'h', '0', 0, 0, 0, 0)
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK, Len: uint32(unix.NLMSG_HDRLEN + len(data))}, Data: data}
		name := linkName(m)
		if bytes.Equal(data, good) && name != "eth0" {
			t.Fatalf("linkName = %q, want eth0", name)
		}
	})
}

// Configure turns off, before eth0 comes up, what lets the host change
// the guest's addresses and routes beyond katana.net: IPv6 router
// advertisements and autoconfiguration, ICMP redirects. A setting the
// kernel lacks (IPv6 disabled) is skipped.
func TestHardenSysctls(t *testing.T) {
	procSys := t.TempDir()
	var want []string
	for _, s := range hardenedSysctls {
		p := filepath.Join(procSys, strings.ReplaceAll(s.path, "IFACE", "eth0"))
		if strings.HasPrefix(s.path, "net/ipv6/") {
			continue // no IPv6 in this kernel
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	if err := hardenSysctls(procSys, "eth0"); err != nil {
		t.Fatalf("hardenSysctls: %v", err)
	}
	for _, p := range want {
		if b, err := os.ReadFile(p); err != nil || string(b) != "0" {
			t.Errorf("%s = %q, %v; want 0", p, b, err)
		}
	}
	if len(want) != 3 {
		t.Errorf("%d IPv4 settings, want all, default and eth0's accept_redirects", len(want))
	}
	// Through Configure, in the guest's order: before the link is up.
	_, o := nsWithLoopback(t, true)
	o.ProcSys = t.TempDir()
	p := filepath.Join(o.ProcSys, "net/ipv4/conf/eth0/accept_redirects")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("1"), 0o644)
	if _, err := Configure(context.Background(), bootcfg.Default().Net, o); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "0" {
		t.Errorf("Configure left %s = %q", p, b)
	}
	// A setting that cannot be written is a boot error naming it.
	ro := t.TempDir()
	q := filepath.Join(ro, "net/ipv4/conf/all/accept_redirects")
	os.MkdirAll(q, 0o755) // a folder: cannot be opened for writing
	if err := hardenSysctls(ro, "eth0"); err == nil || !strings.Contains(err.Error(), q) {
		t.Errorf("unwritable setting: %v, want an error naming %s", err, q)
	}
}

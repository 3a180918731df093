// Command standin-katana is a stand-in for the Katana sequencer in demos and
// boot tests (the real binary cannot be fetched on this network). It prints
// its exact argv, then serves JSON-RPC starknet_chainId on the address given
// by --http.addr/--http.port (both "--flag value" and "--flag=value").
//
// Test hooks (never in real Katana): --exit-after DURATION exits with
// --exit-code N after that time; --signal-init SIG,SIG... sends those
// signals (SIGQUIT, SIGABRT, SIGSEGV, SIGPIPE, SIGUSR1) to PID 1 at start;
// on SIGTERM it prints a marker and exits 0. It also prints the signals it
// started with ignored (its SigIgn mask), which must be none, its whole
// environment (one JSON array, in order), its TMPDIR
// (mode and number of entries), its RLIMIT_NOFILE, the descriptors it
// started with, the kernel's console log level, how many dump keys (Show_Registers, Show_Memory,
// Show_State) the kernel's keymap still has, and the SHA-256 of every file
// under /etc/katana (hostbuild pack --file).
// --sidecar NAME starts NAME, found on PATH as Katana finds its sidecars,
// with the argument --sidecar-child, which makes this program listen on
// 127.0.0.1:5060, say it runs and then wait to be killed;
// --sidecar-setsid NAME does the same in a session of its own.
// --crypto-alg TYPE:NAME binds an AF_ALG socket to that kernel algorithm
// (aead:gcm(aes)) and prints whether the kernel could build it.
// --vsock-relay TCPPORT:VSOCKPORT relays each TCP connection to TCPPORT (all
// addresses) to vsock port VSOCKPORT of this guest (CID 1, the kernel's
// vsock_loopback transport): a test on the host, which has no vsock, then
// reaches the init's attestation agent on its production transport
// through a QEMU port forward.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/shared/kcrypto"
)

// openFDs lists the open descriptors, comma-separated, with what each is
// when it is not 0, 1 or 2 ("5=anon_inode:[eventpoll]"), leaving out the
// one it reads /proc/self/fd through.
func openFDs() string {
	// Raw system calls: package os would start the runtime's poller
	// (an epoll and an eventfd descriptor) for the directory.
	d, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer unix.Close(d)
	var names []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(d, buf)
		if err != nil {
			return "unknown: " + err.Error()
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var fds []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != d {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = strconv.Itoa(fd)
		if fd > 2 {
			t, _ := os.Readlink("/proc/self/fd/" + out[i])
			out[i] += "=" + t
		}
	}
	return strings.Join(out, ",")
}

// chainID is "KATANA" as a Starknet felt, what `katana --dev` answers.
const chainID = "0x4b4154414e41"

func main() { os.Exit(run(os.Args)) }

func run(argv []string) int {
	// Run as a sidecar (--sidecar below): hold a port, as a real sidecar
	// does, say so, then wait to be killed.
	if len(argv) == 2 && argv[1] == "--sidecar-child" {
		ln, err := net.Listen("tcp", "127.0.0.1:5060")
		if err != nil {
			fmt.Printf("standin-katana: sidecar cannot run: %v\n", err)
			return 1
		}
		defer ln.Close()
		fmt.Printf("standin-katana: sidecar running pid=%d pgid=%d on %s\n", os.Getpid(), syscall.Getpgrp(), ln.Addr())
		for {
			time.Sleep(time.Hour)
		}
	}
	// The descriptors it started with, before it opens any: the init
	// passes 0, 1 and 2 only.
	fmt.Printf("standin-katana: fds=%s\n", openFDs())
	// Exact argv, one JSON array, so tests can compare it without ambiguity.
	enc, _ := json.Marshal(argv[1:])
	fmt.Printf("standin-katana: argv=%s\n", enc)
	enc, _ = json.Marshal(os.Environ())
	fmt.Printf("standin-katana: env=%s\n", enc)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				fmt.Printf("standin-katana: sigign=%s\n", strings.TrimSpace(v))
			}
		}
	}

	// The mounts the init made, as "target fstype options", so that the
	// boot tests can check its early table (and its late configfs mount).
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var mounts []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Fields(l); len(f) >= 4 {
				mounts = append(mounts, f[1]+" "+f[2]+" "+f[3])
			}
		}
		enc, _ := json.Marshal(mounts)
		fmt.Printf("standin-katana: mounts=%s\n", enc)
	}
	// The magic SysRq setting the init left (it turns the keys off).
	if b, err := os.ReadFile("/proc/sys/kernel/sysrq"); err == nil {
		fmt.Printf("standin-katana: sysrq=%s\n", strings.TrimSpace(string(b)))
	}
	// The kernel keymap's dump keys (Show_Registers, Show_Memory,
	// Show_State), which the host's keyboard reaches whatever
	// kernel.sysrq says: the init removes them before Katana starts.
	fmt.Printf("standin-katana: keymap dump keys=%s\n", keymapDumpKeys("/dev/tty0"))
	// The kernel's console log level and printk's ignore_loglevel, which
	// the init keeps from printing warnings and register dumps on the
	// host's serial line.
	level, ignore, noAuto := "unknown", "absent", "absent"
	if b, err := os.ReadFile("/proc/sys/kernel/printk"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			level = f[0]
		}
	}
	if b, err := os.ReadFile("/sys/module/printk/parameters/ignore_loglevel"); err == nil {
		ignore = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/module/printk/parameters/console_no_auto_verbose"); err == nil {
		noAuto = strings.TrimSpace(string(b))
	}
	fmt.Printf("standin-katana: console loglevel=%s ignore_loglevel=%s console_no_auto_verbose=%s\n", level, ignore, noAuto)
	// The kernel-code locks the init set once its modules were in.
	locks := []string{}
	for _, n := range []string{"modules_disabled", "kexec_load_disabled"} {
		v := "absent"
		if b, err := os.ReadFile("/proc/sys/kernel/" + n); err == nil {
			v = strings.TrimSpace(string(b))
		}
		locks = append(locks, n+"="+v)
	}
	fmt.Printf("standin-katana: locks %s\n", strings.Join(locks, " "))
	// The kernel's sha256 drivers (/proc/crypto), which the init's AF_ALG
	// hashing picks from by priority.
	fmt.Printf("standin-katana: sha256 drivers=%s\n", strings.Join(cryptoDrivers("sha256", false), ","))
	// The temporary folder and open-files limit the init gave it (a Go
	// program raises its soft limit only when it is under the hard one).
	tmp, mode, entries := os.Getenv("TMPDIR"), "none", -1
	if fi, err := os.Lstat(tmp); err == nil && tmp != "" {
		mode = fi.Mode().String()
		if ents, err := os.ReadDir(tmp); err == nil {
			entries = len(ents)
		}
	}
	// The operator's files (hostbuild pack --file), as Katana would read
	// its chain configuration.
	filepath.WalkDir("/etc/katana", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				fmt.Printf("standin-katana: file %s sha256=%x\n", p, sha256.Sum256(b))
			}
		}
		return nil
	})
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	fmt.Printf("standin-katana: tmpdir=%s mode=%s entries=%d nofile=%d/%d\n", tmp, mode, entries, lim.Cur, lim.Max)
	// Whether its stdout is the file description the init logs through
	// (kcmp, KCMP_FILE, against PID 1's descriptor 1): the init gives
	// Katana a description of its own, so that O_NONBLOCK set on it does
	// not reach the init's log.
	stdout := "own"
	if r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), 1, 0 /* KCMP_FILE */, 1, 1, 0); errno != 0 {
		stdout = "unknown: " + errno.Error()
	} else if r == 0 {
		stdout = "the init's"
	}
	fmt.Printf("standin-katana: stdout description=%s\n", stdout)

	addr, port := "127.0.0.1", "5050"
	exitAfter, exitCode := time.Duration(0), 0
	args := argv[1:]
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		next := func() string {
			if hasVal {
				return val
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch name {
		case "--http.addr":
			addr = next()
		case "--http.port":
			port = next()
		case "--exit-after":
			d, err := time.ParseDuration(next())
			if err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: --exit-after: %v\n", err)
				return 2
			}
			exitAfter = d
		case "--signal-init":
			for _, n := range strings.Split(next(), ",") {
				sig, ok := map[string]syscall.Signal{"SIGQUIT": syscall.SIGQUIT, "SIGABRT": syscall.SIGABRT,
					"SIGSEGV": syscall.SIGSEGV, "SIGPIPE": syscall.SIGPIPE, "SIGUSR1": syscall.SIGUSR1}[n]
				if !ok {
					fmt.Fprintf(os.Stderr, "standin-katana: --signal-init: unknown signal %q\n", n)
					return 2
				}
				fmt.Printf("standin-katana: sending %s to PID 1\n", n)
				if err := syscall.Kill(1, sig); err != nil {
					fmt.Fprintf(os.Stderr, "standin-katana: kill(1, %s): %v\n", n, err)
				}
			}
		case "--vsock-relay":
			spec := next()
			if err := startRelay(spec); err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: --vsock-relay %q: %v\n", spec, err)
				return 2
			}
		case "--sidecar", "--sidecar-setsid":
			// Start NAME from PATH as Katana starts its sidecars (a
			// child in its process group; --sidecar-setsid: in a
			// session of its own, as a daemon would), and leave it
			// running.
			setsid := name == "--sidecar-setsid"
			name := next()
			p, err := exec.LookPath(name)
			if err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: --sidecar: %v\n", err)
				return 2
			}
			cmd := exec.Command(p, "--sidecar-child")
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: --sidecar: %v\n", err)
				return 2
			}
			fmt.Printf("standin-katana: started sidecar %s pid=%d\n", p, cmd.Process.Pid)
		case "--crypto-alg":
			// Bind an AF_ALG socket to TYPE:NAME, as the kernel's own
			// users allocate the algorithm (crypto_alloc_aead for
			// aead), and say whether the kernel could build it.
			spec := next()
			typ, alg, _ := strings.Cut(spec, ":")
			if driver, err := bindAlg(typ, alg); err != nil {
				fmt.Printf("standin-katana: crypto %s %s failed: %v\n", typ, alg, err)
			} else {
				fmt.Printf("standin-katana: crypto %s %s ok\n", typ, alg)
				fmt.Printf("standin-katana: crypto %s %s driver=%s\n", typ, alg, driver)
			}
		case "--exit-code":
			n, err := strconv.Atoi(next())
			if err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: --exit-code: %v\n", err)
				return 2
			}
			exitCode = n
		}
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(addr, port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin-katana: %v\n", err)
		return 1
	}
	fmt.Printf("standin-katana: listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(rpc), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var timer <-chan time.Time
	if exitAfter > 0 {
		timer = time.After(exitAfter)
	}
	select {
	case s := <-sig:
		fmt.Printf("standin-katana: got %v, shutting down\n", s)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		relayed := make(chan struct{})
		go func() { relays.Wait(); close(relayed) }()
		select {
		case <-relayed:
		case <-ctx.Done():
		}
		return 0
	case <-timer:
		fmt.Printf("standin-katana: exiting with status %d\n", exitCode)
		return exitCode
	}
}

func rpc(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700, "message": "parse error"}})
		return
	}
	if req.ID == nil {
		req.ID = json.RawMessage("null")
	}
	if req.Method != "starknet_chainId" {
		writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
		return
	}
	writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": chainID})
}

func writeJSON(w http.ResponseWriter, v any) {
	if err := json.NewEncoder(w).Encode(v); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(os.Stderr, "standin-katana: writing response: %v\n", err)
	}
}

// startRelay serves spec "TCPPORT:VSOCKPORT" in the background: each TCP
// connection is copied both ways to a new vsock connection to this guest's
// VSOCKPORT, each direction closed for writing when the other side is.
func startRelay(spec string) error {
	tp, vp, ok := strings.Cut(spec, ":")
	vport, err := strconv.ParseUint(vp, 10, 32)
	if !ok || err != nil {
		return errors.New("want TCPPORT:VSOCKPORT")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", tp))
	if err != nil {
		return err
	}
	fmt.Printf("standin-katana: relaying %s to vsock %d:%d\n", ln.Addr(), vsockLocalCID, vport)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				fmt.Fprintf(os.Stderr, "standin-katana: relay: %v\n", err)
				return
			}
			relays.Add(1)
			go func() {
				defer relays.Done()
				relay(c.(*net.TCPConn), uint32(vport))
			}()
		}
	}()
	return nil
}

// relays counts the relayed connections still open: a graceful stop waits
// for them (up to its deadline), so that an answer already on its way, such
// as the agent's to POST /v1/shutdown, which is what stops this process,
// still reaches the host.
var relays sync.WaitGroup

// vsockLocalCID is VMADDR_CID_LOCAL: this guest, through vsock_loopback.
const vsockLocalCID = 1

func relay(c *net.TCPConn, port uint32) {
	defer c.Close()
	v, err := vsock.Dial(vsockLocalCID, port, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin-katana: relay: dialing vsock %d:%d: %v\n", vsockLocalCID, port, err)
		return
	}
	defer v.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(v, c)
		v.CloseWrite()
		close(done)
	}()
	io.Copy(c, v)
	c.CloseWrite()
	<-done
}

// bindAlg binds an AF_ALG socket to the kernel algorithm typ ("aead",
// "hash", ...) named alg, which makes the kernel find or build it.
//
// driver is the implementation the crypto API gave: the one of that name
// in use while the socket holds it (the highest priority should there be
// more).
func bindAlg(typ, alg string) (driver string, err error) {
	fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("AF_ALG socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrALG{Type: typ, Name: alg}); err != nil {
		return "", err
	}
	return cryptoDrivers(alg, true)[0], nil
}

// cryptoDrivers returns the drivers /proc/crypto lists for the algorithm
// name (only those in use when inUse), highest priority first, or
// ["none"].
func cryptoDrivers(name string, inUse bool) []string {
	b, _ := os.ReadFile("/proc/crypto")
	var out []string
	for _, a := range kcrypto.Algs(b, name) {
		if !inUse || a.InUse() {
			out = append(out, a.Driver)
		}
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out
}

// keymapDumpKeys counts the entries of the kernel's keymap, read through
// the virtual console vt (KDGKBENT), that dump kernel state to the console
// (K_SH_REGS, K_SH_MEM, K_SH_STAT): "absent" without virtual consoles.
func keymapDumpKeys(vt string) string {
	fd, err := unix.Open(vt, unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
		return "absent"
	}
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer unix.Close(fd)
	type kbentry struct {
		table, index uint8
		value        uint16
	}
	get := func(table, index int) (uint16, error) {
		e := kbentry{table: uint8(table), index: uint8(index)}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), 0x4B46 /* KDGKBENT */, uintptr(unsafe.Pointer(&e))); errno != 0 {
			return 0, errno
		}
		return e.value, nil
	}
	n := 0
	for t := 0; t < 256; t++ {
		if v, err := get(t, 0); err != nil {
			return "unknown: " + err.Error()
		} else if v == 0x027f { // K_NOSUCHMAP
			continue
		}
		for i := 0; i < 256; i++ {
			v, err := get(t, i)
			if err != nil {
				return "unknown: " + err.Error()
			}
			if v >= 0x0202 && v <= 0x0204 {
				n++
			}
		}
	}
	return strconv.Itoa(n)
}

// Package power ends the guest: stop every remaining process, sync,
// unmount, and ask the kernel to power off or reboot. If the kernel
// refuses, the init parks (sleeps forever) rather than exit, because PID 1
// exiting is a kernel panic.
package power

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how the guest ends.
type Mode int

const (
	PowerOff Mode = iota + 1
	Reboot
)

func (m Mode) String() string {
	if m == Reboot {
		return "reboot"
	}
	return "poweroff"
}

// Options are the steps of Shutdown; nil fields use the real system calls.
// Tests replace all of them.
type Options struct {
	Log func(format string, args ...any)
	// Flush waits, a bounded time, for the log lines to reach the
	// console before reboot(2); nil: nothing to wait for.
	Flush   func()
	KillAll func(sig unix.Signal) error // kill(-1, sig)
	// Reap reaps what has exited and reports whether children remain
	// (every user process is PID 1's descendant; kill(-1, 0) cannot tell
	// because it counts kernel threads).
	Reap    func() (remaining bool)
	Sync    func()
	Unmount func() error
	Reboot  func(cmd int) error
	Park    func()
	// Settle is how long processes get between SIGTERM and SIGKILL.
	// 0: 1s.
	Settle time.Duration
	// DiskTimeout bounds sync, unmount and sync together; 0:
	// DefaultDiskTimeout. A file system whose backend stalls (a 9p,
	// virtiofs or NFS share a root payload mounted, served by the host)
	// blocks sync(2) for ever: past this time the guest powers off
	// without it, saying which step did not finish.
	DiskTimeout time.Duration
}

// DefaultDiskTimeout is how long Shutdown waits for sync and unmount.
const DefaultDiskTimeout = 10 * time.Second

var once sync.Mutex

// Shutdown never returns in the guest: the first caller performs the
// sequence; concurrent callers (a panic in another goroutine meanwhile)
// block forever. Only when Options.Park returns does Shutdown return.
//
// A step that panics (a bug) does not send the panic back to the caller's
// recover, whose path to a power-off is Shutdown again and would wait on
// the first call for ever: Shutdown syncs and reboots or powers off at once.
// Sync and unmount get DiskTimeout together: a file system that never
// answers must not keep the guest from powering off.
func Shutdown(m Mode, o Options) {
	once.Lock() // never unlocked: one shutdown per boot
	fill(&o)
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if m == Reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	disk := &diskSteps{o: &o, m: m}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		guarded := func(f func()) {
			defer func() { recover() }()
			f()
		}
		guarded(func() { o.Log("shutdown: a step panicked (%v); %s at once", r, m) })
		guarded(func() { disk.step("sync", o.Sync) })
		guarded(o.Flush)
		guarded(func() { o.Reboot(cmd) })
		o.Park()
	}()
	if m == Reboot {
		o.Log("rebooting")
	} else {
		o.Log("powering off")
	}
	// Whatever is still running (orphans of the payload, the payload
	// itself on a fatal path): SIGTERM, a moment, SIGKILL.
	if o.Reap() {
		o.KillAll(unix.SIGTERM)
		deadline := time.Now().Add(o.Settle)
		remaining := true
		for remaining && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			remaining = o.Reap()
		}
		if remaining {
			o.KillAll(unix.SIGKILL)
			for i := 0; i < 100 && o.Reap(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	if disk.step("sync", o.Sync) && disk.step("unmount", func() {
		if err := o.Unmount(); err != nil {
			o.Log("unmount: %v", err)
		}
	}) {
		disk.step("sync", o.Sync)
	}
	o.Flush()
	err := o.Reboot(cmd)
	o.Log("%s failed: %v; parking (the VM must be stopped from outside)", m, err)
	o.Park()
}

// diskSteps runs sync and unmount, which a stalled file system can block
// for ever, each in a goroutine, all within one DiskTimeout from the first.
type diskSteps struct {
	o        *Options
	m        Mode
	deadline time.Time
	stalled  bool
}

// step runs f and reports whether it finished in time. After a step that
// did not, no other runs: the next would wait on the same file system. A
// panic in f is raised again here, for Shutdown's recover.
func (d *diskSteps) step(name string, f func()) bool {
	if d.stalled {
		return false
	}
	if d.deadline.IsZero() {
		d.deadline = time.Now().Add(d.o.DiskTimeout)
	}
	done := make(chan any, 1)
	go func() {
		panicked := true
		defer func() {
			if r := recover(); panicked {
				done <- r
			}
		}()
		f()
		panicked = false
		done <- nil
	}()
	t := time.NewTimer(time.Until(d.deadline))
	defer t.Stop()
	select {
	case r := <-done:
		if r != nil {
			panic(r)
		}
		return true
	case <-t.C:
		// The goroutine stays blocked in the kernel; reboot(2) does not
		// wait for it.
		d.stalled = true
		verb := "powering off"
		if d.m == Reboot {
			verb = "rebooting"
		}
		d.o.Log("%s did not finish within %v; %s without it", name, d.o.DiskTimeout, verb)
		return false
	}
}

func fill(o *Options) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Flush == nil {
		o.Flush = func() {}
	}
	if o.KillAll == nil {
		o.KillAll = KillAll
	}
	if o.Reap == nil {
		o.Reap = func() bool {
			for {
				var ws unix.WaitStatus
				pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if err == unix.EINTR {
					continue
				}
				if err != nil { // ECHILD: no children at all
					return false
				}
				if pid == 0 { // children, none exited
					return true
				}
			}
		}
	}
	if o.Sync == nil {
		o.Sync = unix.Sync
	}
	if o.Unmount == nil {
		o.Unmount = func() error { return nil }
	}
	if o.Reboot == nil {
		o.Reboot = func(cmd int) error {
			if err := mustBeInit("reboot(2)"); err != nil {
				return err
			}
			return unix.Reboot(cmd)
		}
	}
	if o.Park == nil {
		o.Park = Park
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.DiskTimeout == 0 {
		o.DiskTimeout = DefaultDiskTimeout
	}
}

// mustBeInit refuses the calls that end every process or the machine
// unless this process is PID 1 (of the guest, or of a test's own PID
// namespace, where they end only that namespace). Anywhere else, a test
// that reached the real calls by mistake would kill every process on the
// host, or power it off.
func mustBeInit(call string) error {
	if pid := os.Getpid(); pid != 1 {
		return fmt.Errorf("refusing %s: this process is PID %d, not the init", call, pid)
	}
	return nil
}

// KillAll sends sig to every process but the init and kernel threads
// (kill(-1)). It refuses in a process that is not PID 1 (of the machine or
// of a PID namespace), where kill(-1) would reach the whole machine.
func KillAll(sig unix.Signal) error {
	if err := mustBeInit("kill(-1)"); err != nil {
		return err
	}
	return unix.Kill(-1, sig)
}

// Park sleeps forever (a timer keeps the Go runtime from declaring a
// deadlock).
func Park() {
	for {
		time.Sleep(time.Hour)
	}
}

// DisableCtrlAltDel makes the kernel send SIGINT to PID 1 on
// Ctrl-Alt-Del instead of rebooting at once, so it becomes a graceful stop.
func DisableCtrlAltDel() error {
	return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
}

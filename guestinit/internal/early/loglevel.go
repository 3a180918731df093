package early

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The kernel's console log levels (/proc/sys/kernel/printk: console,
// default message, minimum console, default console) and printk's
// ignore_loglevel switch (the kernel parameter of that name, also a
// module parameter), and its console_no_auto_verbose switch (which keeps
// an oops or a panic from raising the console log level to 15), under
// the root.
const (
	PrintkPath         = "proc/sys/kernel/printk"
	IgnoreLoglevelPath = "sys/module/printk/parameters/ignore_loglevel"
	NoAutoVerbosePath  = "sys/module/printk/parameters/console_no_auto_verbose"
)

// MaxConsoleLoglevel is the console log level the init allows at most
// (the kernel's "quiet"): messages of level 4 (warning) and less urgent
// stay off the console, as do those printed at KERN_DEFAULT, which
// Debian's kernel files at 4.
const MaxConsoleLoglevel = 4

// QuietConsole lowers the kernel's console log level to MaxConsoleLoglevel
// when it is above (root is "/" in the guest; a lower one, from "quiet" or
// "loglevel=", stays) and turns printk's ignore_loglevel off, and returns
// the level it found. The serial console is the host's, and the kernel
// prints on it, at KERN_DEFAULT, the registers of the interrupted context
// in the reports a host can provoke at will: a soft lockup (the host moves
// kvm-clock 20 s forward: "BUG: soft lockup" and show_regs() from the
// watchdog's timer interrupt), an RCU stall (a vCPU held back 21 s: an
// NMI backtrace of it), a WARN. Those registers are whatever the CPU was
// running, Katana's included, which SEV-SNP otherwise keeps from the
// host. It also turns printk's console_no_auto_verbose on: an oops or a
// panic (console_verbose()) would otherwise raise the console level to 15,
// for good after an oops, and print those registers, and a host provokes
// one at will, without a kernel bug: Linux 6.1 has no SEV-SNP restricted
// injection, so the host injects an exception (a #DF: die("double fault")
// prints the registers of whatever ran, Katana's, then panics; a #MC with
// a fatal status it answers the MSR reads with; a #GP in kernel mode).
// The reports' EMERG and ALERT headlines, panics and the power-off line
// still print; the kernel's ring buffer keeps everything.
func QuietConsole(root string) (was int, err error) {
	p := filepath.Join(root, PrintkPath)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("reading the console log level: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("reading the console log level: %s is empty", p)
	}
	if was, err = strconv.Atoi(string(f[0])); err != nil {
		return 0, fmt.Errorf("reading the console log level from %s: %w", p, err)
	}
	var errs []error
	if was > MaxConsoleLoglevel {
		if err := writeSysctl(root, PrintkPath, strconv.Itoa(MaxConsoleLoglevel)); err != nil {
			errs = append(errs, fmt.Errorf("lowering the console log level: %w", err))
		}
	}
	if err := setBoolParam(root, IgnoreLoglevelPath, "N"); err != nil {
		errs = append(errs, fmt.Errorf("turning printk's ignore_loglevel off: %w", err))
	}
	if err := setBoolParam(root, NoAutoVerbosePath, "Y"); err != nil {
		errs = append(errs, fmt.Errorf("turning printk's console_no_auto_verbose on: %w", err))
	}
	return was, errors.Join(errs...)
}

// setBoolParam sets the module parameter at rel under root to v ("Y" or
// "N") unless it already is; a kernel without it: nothing to do.
func setBoolParam(root, rel, v string) error {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if string(bytes.TrimSpace(b)) == v {
		return nil
	}
	return writeSysctl(root, rel, v)
}

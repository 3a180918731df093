package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func init() {
	register(command{name: "cmdline", summary: "format the measured kernel cmdline (katana.* settings) with the init's own code", run: runCmdline})
}

// DefaultKernelParams are the kernel parameters of every launch: the serial
// console, and panic=-1 so that a kernel panic reboots at once, which QEMU's
// -no-reboot turns into an exit instead of a hung VM.
var DefaultKernelParams = []string{"console=ttyS0", "panic=-1"}

// cmdlineFlags are the flags that make up the measured cmdline, shared by
// cmdline and build.
type cmdlineFlags struct {
	args, net, agent, onExit, stopTimeout string
	restartLimit                          int
	kernelParams                          stringList
}

func addCmdlineFlags(fs *flag.FlagSet) *cmdlineFlags {
	c := &cmdlineFlags{}
	d := bootcfg.Default()
	fs.StringVar(&c.args, "args", "", "Katana's arguments as `words` (single quotes group, backslash escapes; never expanded), e.g. \"--http.addr 0.0.0.0 --dev\"")
	fs.StringVar(&c.net, "net", d.Net.String(), "eth0 `config`: none or ADDR/PREFIX[,gw=IP][,dns=IP[;IP]]")
	fs.StringVar(&c.agent, "agent", d.Agent.String(), "attestation agent `address`: vsock:PORT, tcp:IP:PORT or none")
	fs.StringVar(&c.onExit, "on-exit", string(d.OnExit), "`policy` when Katana exits by itself: poweroff, reboot or restart")
	fs.StringVar(&c.stopTimeout, "stop-timeout", d.StopTimeout.String(), "grace `period` between SIGTERM and SIGKILL on a graceful stop")
	intVar(fs, &c.restartLimit, "restart-limit", d.RestartLimit, "restarts allowed with --on-exit restart")
	fs.Var(&c.kernelParams, "kernel-param", "kernel `parameter` (repeatable; default: console=ttyS0 panic=-1)")
	return c
}

// format builds the cmdline with bootcfg.Format and checks that the init's
// parser reads back the same settings.
func (c *cmdlineFlags) format() (string, error) {
	cfg := bootcfg.Default()
	var err error
	if cfg.Args, err = bootcfg.SplitArgs(c.args); err != nil {
		return "", fmt.Errorf("--args: %w", err)
	}
	if cfg.Net, err = bootcfg.ParseNet(c.net); err != nil {
		return "", fmt.Errorf("--net: %w", err)
	}
	if cfg.Agent, err = bootcfg.ParseAgent(c.agent); err != nil {
		return "", fmt.Errorf("--agent: %w", err)
	}
	switch o := bootcfg.OnExit(c.onExit); o {
	case bootcfg.OnExitPoweroff, bootcfg.OnExitReboot, bootcfg.OnExitRestart:
		cfg.OnExit = o
	default:
		return "", fmt.Errorf("--on-exit %q: want poweroff, reboot or restart", c.onExit)
	}
	if cfg.StopTimeout, err = bootcfg.ParseStopTimeout(c.stopTimeout); err != nil {
		return "", fmt.Errorf("--stop-timeout: %w", err)
	}
	if c.restartLimit < 0 {
		return "", fmt.Errorf("--restart-limit %d: want 0 or more", c.restartLimit)
	}
	cfg.RestartLimit = c.restartLimit
	params := []string(c.kernelParams)
	if params == nil {
		params = DefaultKernelParams
	}
	line, err := bootcfg.Format(cfg, params)
	if err != nil {
		return "", err
	}
	back, err := bootcfg.Parse(line)
	if err != nil {
		return "", fmt.Errorf("internal error: the init would refuse the cmdline %q: %w", line, err)
	}
	cfg.Raw = line
	if string(back.Applied().Bytes()) != string(cfg.Applied().Bytes()) {
		return "", fmt.Errorf("internal error: the init would read %q differently from what was asked", line)
	}
	return line, nil
}

func runCmdline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cmdline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCmdlineFlags(fs)
	quoted := fs.Bool("shell", false, "print the cmdline quoted for a POSIX shell")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild cmdline [--args WORDS] [--net ...] [--agent ...] [--on-exit ...] [--kernel-param P]...

Prints the kernel command line for these settings, formatted by the same
package (shared/bootcfg) that the guest init parses it with, and checked by
parsing it back. The cmdline is measured byte for byte: pass it to QEMU's
-append and to 'hostbuild measure --append' exactly as printed (no trailing
newline is part of it).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hostbuild cmdline: unexpected argument %q (Katana's arguments go in --args)\n", fs.Arg(0))
		return exitUsage
	}
	line, err := cf.format()
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild cmdline: %v\n", err)
		return exitUsage
	}
	if *quoted {
		line = "'" + strings.ReplaceAll(line, "'", `'\''`) + "'"
	}
	fmt.Fprintln(stdout, line)
	return exitOK
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
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
	kernelParams, env                     stringList
}

func addCmdlineFlags(fs *flag.FlagSet) *cmdlineFlags {
	c := &cmdlineFlags{}
	d := bootcfg.Default()
	fs.StringVar(&c.args, "args", "", "Katana's arguments as `words` (single quotes group, backslash escapes; never expanded), e.g. \"--http.addr 0.0.0.0 --dev\"")
	fs.StringVar(&c.net, "net", d.Net.String(), "eth0 `config`: none or ADDR/PREFIX[,gw=IP][,dns=IP[;IP[;IP]]]")
	fs.StringVar(&c.agent, "agent", d.Agent.String(), "attestation agent `address`: vsock:PORT, tcp:IP:PORT or none")
	fs.StringVar(&c.onExit, "on-exit", string(d.OnExit), "`policy` when Katana exits by itself: poweroff, reboot or restart")
	fs.StringVar(&c.stopTimeout, "stop-timeout", d.StopTimeout.String(), "grace `period` between SIGTERM and SIGKILL on a graceful stop")
	intVar(fs, &c.restartLimit, "restart-limit", d.RestartLimit, "restarts allowed with --on-exit restart")
	fs.Var(&c.env, "env", "`NAME=VALUE` added to Katana's environment (repeatable; katana.env, sorted: the flags' order does not change the cmdline), e.g. RUST_LOG=info,rpc=trace; not "+strings.Join(bootcfg.InitEnv(), ", ")+" (the init's); on the cmdline, so never a secret")
	fs.Var(&c.kernelParams, "kernel-param", "kernel `parameter` (repeatable; default: console=ttyS0 panic=-1); the ones given replace the default: repeat console=ttyS0 and panic=-1 to keep them (a warning says when they are missing)")
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
	if c.restartLimit < 0 || c.restartLimit > bootcfg.MaxRestartLimit {
		return "", fmt.Errorf("--restart-limit %d: want 0 to %d", c.restartLimit, bootcfg.MaxRestartLimit)
	}
	cfg.RestartLimit = c.restartLimit
	given := map[string]string{}
	for _, w := range c.env {
		name, err := bootcfg.EnvName(w)
		if err != nil {
			return "", fmt.Errorf("--env %q: %w", w, err)
		}
		if prev, dup := given[name]; dup {
			return "", fmt.Errorf("--env %q: %s is already set by --env %q", w, name, prev)
		}
		given[name] = w
	}
	// In one order whatever the flags' (the names are distinct, and an
	// environment has no order that means anything): the same settings
	// give the same cmdline, so the same measurement.
	cfg.Env = slices.Sorted(slices.Values(c.env))
	params := []string(c.kernelParams)
	if params == nil {
		params = DefaultKernelParams
	}
	if err := checkKatanaParams(params); err != nil {
		return "", err
	}
	line, err := bootcfg.Format(cfg, params)
	if err != nil {
		// Name the flag that gave the parameter refused.
		var be *bootcfg.Error
		if errors.As(err, &be) && c.kernelParams != nil && slices.Contains(params, be.Text) {
			if strings.Contains(be.Detail, "not exactly one kernel parameter") {
				return "", fmt.Errorf("--kernel-param: %w; give one --kernel-param per parameter", err)
			}
			return "", fmt.Errorf("--kernel-param: %w", err)
		}
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

// settingFlags name the flag that sets each katana.* key.
var settingFlags = map[string]string{
	bootcfg.KeyArgs:         "--args",
	bootcfg.KeyNet:          "--net",
	bootcfg.KeyAgent:        "--agent",
	bootcfg.KeyOnExit:       "--on-exit",
	bootcfg.KeyStopTimeout:  "--stop-timeout",
	bootcfg.KeyRestartLimit: "--restart-limit",
	bootcfg.KeyEnv:          "--env",
}

// settingFlagList names the flags of every katana.* key, in the order of
// the cmdline.
func settingFlagList() string {
	var fl []string
	for _, k := range bootcfg.Keys() {
		fl = append(fl, settingFlags[k])
	}
	return strings.Join(fl[:len(fl)-1], ", ") + " and " + fl[len(fl)-1]
}

// checkKatanaParams refuses a katana.* key given as --kernel-param, naming
// the flag that sets it: the settings are formatted (and checked) from their
// own flags, and bootcfg's refusal speaks of its Config, not of flags.
func checkKatanaParams(params []string) error {
	for _, kp := range params {
		ps, _, err := bootcfg.SplitKernel(kp)
		if err != nil {
			return fmt.Errorf("--kernel-param %q: %w", kp, err)
		}
		for _, p := range ps {
			if !strings.HasPrefix(p.Key, bootcfg.Prefix) {
				if len(p.Key) >= len(bootcfg.Prefix) && strings.EqualFold(p.Key[:len(bootcfg.Prefix)], bootcfg.Prefix) {
					return fmt.Errorf("--kernel-param %q: katana.* keys are lowercase (the kernel and the init would ignore %s); the settings are %s", kp, p.Key, settingFlagList())
				}
				continue
			}
			if f, ok := settingFlags[p.Key]; ok {
				return fmt.Errorf("--kernel-param %q: set %s with %s, not as a kernel parameter", kp, p.Key, f)
			}
			return fmt.Errorf("--kernel-param %q: %s is not a setting the init knows (it refuses to boot); the settings are %s", kp, p.Key, settingFlagList())
		}
	}
	return nil
}

// missingDefaults says which of DefaultKernelParams the cmdline line lacks
// (--kernel-param replaces them), and why each matters. The kernel uses the
// last console= as /dev/console and the last panic=, so those count.
func missingDefaults(line string) []string {
	ps, _, err := bootcfg.SplitKernel(line)
	if err != nil {
		return nil // format has checked the line
	}
	var console, panicVal string
	for _, p := range ps {
		switch p.Key {
		case "console":
			console = p.Value
		case "panic":
			panicVal = p.Value
		}
	}
	var missing []string
	if console != "ttyS0" && !strings.HasPrefix(console, "ttyS0,") {
		missing = append(missing, "console=ttyS0 is missing (or not the last console=): the kernel and the init do not print on the serial console, which hostbuild run reads to see the guest start and stop")
	}
	if n, err := strconv.Atoi(panicVal); err != nil || n >= 0 {
		missing = append(missing, "panic=-1 is missing: a kernel panic hangs the VM instead of rebooting at once, which QEMU's -no-reboot turns into an exit")
	}
	return missing
}

// warnMissingDefaults prints missingDefaults on stderr. A warning, not an
// error: a custom console or panic setting may be meant.
func warnMissingDefaults(stderr io.Writer, cmd, line string) {
	for _, m := range missingDefaults(line) {
		fmt.Fprintf(stderr, "hostbuild %s: warning: --kernel-param replaces the default kernel parameters (%s), and %s; add --kernel-param %s to keep it\n",
			cmd, strings.Join(DefaultKernelParams, " "), m, strings.Fields(m)[0])
	}
}

// warnCmdline prints missingDefaults of a cmdline given whole (manifest
// --cmdline, measure --append) on stderr.
func warnCmdline(stderr io.Writer, cmd, flagName, line string) {
	for _, m := range missingDefaults(line) {
		fmt.Fprintf(stderr, "hostbuild %s: warning: in %s, %s\n", cmd, flagName, m)
	}
}

func runCmdline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cmdline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCmdlineFlags(fs)
	quoted := fs.Bool("shell", false, "print the cmdline quoted for a POSIX shell")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hostbuild cmdline [--args WORDS] [--env NAME=VALUE]... [--net ...] [--agent ...] [--on-exit ...] [--kernel-param P]...

Prints the kernel command line for these settings, formatted by the same
package (shared/bootcfg) that the guest init parses it with, and checked by
parsing it back. The cmdline is measured byte for byte: pass it to QEMU's
-append and to 'hostbuild measure --append' exactly as printed (no trailing
newline is part of it).

Exit status: 0 printed (warnings, if any, on stderr); 2 usage error (a
setting the init would refuse, or one that cannot be put on a kernel
cmdline).

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
	warnMissingDefaults(stderr, "cmdline", line)
	if *quoted {
		line = "'" + strings.ReplaceAll(line, "'", `'\''`) + "'"
	}
	fmt.Fprintln(stdout, line)
	return exitOK
}

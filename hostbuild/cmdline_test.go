package main

import (
	"os/exec"
	"strings"
	"testing"
)

// --kernel-param replaces the default kernel parameters: dropping
// console=ttyS0 or panic=-1 that way is warned about, and a katana.* key
// given as a kernel parameter names the flag that sets it.
func TestCmdlineKernelParams(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     string
		want, none []string // in stderr, not in stderr
	}{
		{"default", nil, exitOK, "console=ttyS0 panic=-1", nil, []string{"warning"}},
		{"both replaced", []string{"--kernel-param", "quiet"}, exitOK, "quiet",
			[]string{"console=ttyS0 is missing", "serial console, which hostbuild run reads", "panic=-1 is missing", "--kernel-param panic=-1"}, nil},
		{"panic kept", []string{"--kernel-param", "console=ttyS0,115200n8", "--kernel-param", "panic=-1", "--kernel-param", "quiet"}, exitOK,
			"console=ttyS0,115200n8 panic=-1 quiet", nil, []string{"warning"}},
		{"another console last", []string{"--kernel-param", "console=ttyS0", "--kernel-param", "panic=-1", "--kernel-param", "console=tty0"}, exitOK,
			"console=ttyS0 panic=-1 console=tty0", []string{"console=ttyS0 is missing (or not the last console=)"}, []string{"panic=-1 is missing"}},
		{"panic waits", []string{"--kernel-param", "console=ttyS0", "--kernel-param", "panic=10"}, exitOK,
			"console=ttyS0 panic=10", []string{"panic=-1 is missing", "-no-reboot"}, []string{"console=ttyS0 is missing"}},
		{"panic 0 hangs", []string{"--kernel-param", "console=ttyS0", "--kernel-param", "panic=0"}, exitOK,
			"console=ttyS0 panic=0", []string{"panic=-1 is missing"}, nil},
		{"restart limit 0", []string{"--on-exit", "restart", "--restart-limit", "0"}, exitOK,
			"console=ttyS0 panic=-1 katana.on_exit=restart katana.restart_limit=0", nil, []string{"warning"}},
		{"restart limit -1", []string{"--on-exit", "restart", "--restart-limit", "-1"}, exitUsage, "",
			[]string{"--restart-limit -1: want 0 to 1000"}, nil},
		{"restart limit 1001", []string{"--on-exit", "restart", "--restart-limit", "1001"}, exitUsage, "",
			[]string{"--restart-limit 1001: want 0 to 1000"}, []string{"Parse"}},
		{"katana key in capitals", []string{"--kernel-param", "KATANA.args=x"}, exitUsage, "",
			[]string{`--kernel-param "KATANA.args=x": katana.* keys are lowercase`, "the settings are --net"}, []string{"through Config"}},
		{"katana.args", []string{"--kernel-param", "katana.args=x"}, exitUsage, "",
			[]string{`--kernel-param "katana.args=x": set katana.args with --args`}, []string{"through Config"}},
		{"katana.on_exit", []string{"--kernel-param", "katana.on_exit=reboot"}, exitUsage, "", []string{"with --on-exit"}, nil},
		{"env", []string{"--env", "RUST_LOG=info,rpc=trace", "--env", "X=a b", "--args", "--dev"}, exitOK,
			`console=ttyS0 panic=-1 katana.env="RUST_LOG=info,rpc=trace 'X=a b'" katana.args=--dev`, nil, []string{"warning"}},
		{"env set by the init", []string{"--env", "TMPDIR=/x"}, exitUsage, "",
			[]string{`--env "TMPDIR=/x": TMPDIR is the init's to set`}, nil},
		{"env without value", []string{"--env", "RUST_LOG"}, exitUsage, "", []string{`--env "RUST_LOG": want NAME=VALUE`}, nil},
		{"env twice", []string{"--env", "A=1", "--env", "A=2"}, exitUsage, "",
			[]string{`--env "A=2": A is already set by --env "A=1"`}, nil},
		{"env non-ASCII", []string{"--env", "A=é"}, exitUsage, "", []string{"katana.env word 1", "is not ASCII"}, nil},
		{"katana.env", []string{"--kernel-param", "katana.env=A=1"}, exitUsage, "", []string{"set katana.env with --env"}, nil},
		{"unknown katana key", []string{"--kernel-param", "katana.bogus=1"}, exitUsage, "",
			[]string{"katana.bogus is not a setting", "the settings are --net, --agent, --on-exit, --stop-timeout, --restart-limit, --env and --args"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runHB(t, append([]string{"cmdline"}, tc.args...)...)
			if code != tc.code || strings.TrimSpace(stdout) != tc.stdout {
				t.Fatalf("exit %d, stdout %q; want %d, %q; stderr: %s", code, stdout, tc.code, tc.stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			for _, w := range tc.none {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr %q contains %q", stderr, w)
				}
			}
		})
	}
}

// --shell prints the cmdline as one POSIX shell word: a shell gives back
// exactly the bytes printed without it, whatever quotes, $, *, backquotes
// and spaces the cmdline holds (an operator pastes it into -append).
func TestCmdlineShellQuoted(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("skipping: no POSIX shell to check the quoting with (%v); install dash or bash to enable", err)
	}
	for _, words := range []string{"--dev", `a\'b $HOME * ` + "`x`" + ` \\`, `''`} {
		t.Run(words, func(t *testing.T) {
			plain, stderr, code := runHB(t, "cmdline", "--args", words)
			if code != exitOK {
				t.Fatalf("cmdline --args %q: exit %d: %s", words, code, stderr)
			}
			quoted, stderr, code := runHB(t, "cmdline", "--shell", "--args", words)
			if code != exitOK {
				t.Fatalf("cmdline --shell --args %q: exit %d: %s", words, code, stderr)
			}
			plain = strings.TrimSuffix(plain, "\n")
			quoted = strings.TrimSuffix(quoted, "\n")
			if quoted == plain {
				t.Fatalf("--shell printed %q, the same as without it", quoted)
			}
			out, err := exec.Command(sh, "-c", "printf %s "+quoted).Output()
			if err != nil {
				t.Fatalf("sh -c 'printf %%s %s': %v", quoted, err)
			}
			if string(out) != plain {
				t.Errorf("the shell read --shell's %q as %q, want the cmdline %q", quoted, out, plain)
			}
		})
	}
}

// A flag that takes one value, given twice, is refused naming both: the
// flag package kept the last, silently ("--args --dev --args X" dropped
// --dev from the measured cmdline). Repeatable flags add up, and a switch
// given twice is fine.
func TestFlagGivenTwice(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cmdline", "--args", "--dev", "--args", "--http.addr 0.0.0.0"}, `--args given twice ("--args --dev", then "--args --http.addr 0.0.0.0")`},
		{[]string{"cmdline", "--net=none", "--net", "10.0.2.15/24"}, `--net given twice ("--net=none", then "--net 10.0.2.15/24")`},
		{[]string{"attest", "--min-tcb", "bl=3,tee=0,snp=22,ucode=213", "--addr", "tcp:127.0.0.1:1", "--manifest", "m.json", "--min-tcb", "none"}, "--min-tcb given twice"},
		{[]string{"verify", "dir", "--manifest", "a.json", "--min-tcb", "none", "--manifest", "b.json"}, "--manifest given twice"},
	} {
		_, stderr, code := runHB(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	out, stderr, code := runHB(t, "cmdline", "--env", "A=1", "--env", "B=2", "--kernel-param", "console=ttyS0", "--kernel-param", "panic=-1")
	if code != exitOK || !strings.Contains(out, `katana.env="A=1 B=2"`) {
		t.Errorf("repeatable flags: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// A --kernel-param holding two parameters is named by its flag, once, with
// the fix ("cmdline: cmdline: ..." named neither).
func TestCmdlineKernelParamNotOne(t *testing.T) {
	_, stderr, code := runHB(t, "cmdline", "--kernel-param", "console=ttyS0 panic=-1")
	if want := `hostbuild cmdline: --kernel-param: cmdline: cannot be expressed on a kernel command line: "console=ttyS0 panic=-1": not exactly one kernel parameter; give one --kernel-param per parameter`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

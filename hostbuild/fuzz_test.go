package main

// Fuzz targets for the flags whose values hostbuild parses itself (found
// without one by review; FuzzParseAutoInt found "0_100" read as octal).

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/katana-tee/snpboot/shared/bootcfg"
)

// parseAutoInt is Python's int(s, 0) as sev-snp-measure reads --policy,
// --guest-features and --vcpu-sig: without a 0x/0o/0b prefix, what it
// accepts is decimal (Python refuses a leading zero rather than read octal).
func FuzzParseAutoInt(f *testing.F) {
	for _, s := range []string{"0x30000", "196608", "0o1", "0b1", "021", "0", "00", "0_0", "0_100", "1_000", "0x_1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseAutoInt(s, 64)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parseAutoInt(%q): empty error", s)
			}
			return
		}
		l := strings.ToLower(s)
		if strings.HasPrefix(l, "0x") || strings.HasPrefix(l, "0o") || strings.HasPrefix(l, "0b") {
			return
		}
		d, derr := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 10, 64)
		if derr != nil || d != v {
			t.Fatalf("parseAutoInt(%q) = %d, but read as decimal it is %d (%v)", s, v, d, derr)
		}
		if _, err := parsePolicy(s); err != nil && !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not name the value %q", err, s)
		}
	})
}

func FuzzParseMatrix(f *testing.F) {
	f.Add("1,2,4", "EPYC-v4,EPYC-Milan")
	f.Add(" 1 , 2", " EPYC-v4 ")
	f.Add("1,+1", "EPYC-v4")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, vcpus, types string) {
		counts, ts, err := parseMatrix(vcpus, types)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		seen := map[int]bool{}
		for _, n := range counts {
			if n < 1 || seen[n] {
				t.Fatalf("parseMatrix(%q) accepted count %d", vcpus, n)
			}
			seen[n] = true
		}
		sc := make([]string, len(counts))
		for i, n := range counts {
			sc[i] = strconv.Itoa(n)
		}
		c2, t2, err := parseMatrix(strings.Join(sc, ","), strings.Join(ts, ","))
		if err != nil || len(c2) != len(counts) || len(t2) != len(ts) {
			t.Fatalf("formatted matrix does not parse back: %v", err)
		}
	})
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"2048", "2G", "512m", "G", "0", "-1G", "+2G", "1073741824"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseMemory(s)
		if err != nil {
			return
		}
		if n <= 0 || n > 1<<30 {
			t.Fatalf("parseMemory(%q) = %d", s, n)
		}
		if back, err := parseMemory(strconv.Itoa(n)); err != nil || back != n {
			t.Fatalf("parseMemory(%q) = %d does not round trip: %d, %v", s, n, back, err)
		}
	})
}

func FuzzSecondsOrDuration(f *testing.F) {
	for _, s := range []string{"90", "1m30s", "-1s", "4294967295", "4294967296", "1.5h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d time.Duration
		v := secondsOrDuration{&d}
		if err := v.Set(s); err != nil {
			if err.Error() == "" {
				t.Fatalf("Set(%q): error %q does not name the value", s, err)
			}
			return
		}
		var back time.Duration
		if err := (secondsOrDuration{&back}).Set(v.String()); err != nil || back != d {
			t.Fatalf("Set(%q) = %v, whose String %q reads back as %v (%v)", s, d, v.String(), back, err)
		}
	})
}

// cmdlineFlags.format checks itself: "internal error" is a bug.
func FuzzCmdlineFormat(f *testing.F) {
	d := bootcfg.Default()
	f.Add("--http.addr 0.0.0.0 --dev", d.Net.String(), d.Agent.String(), "poweroff", "30s", "RUST_LOG=info", "console=ttyS0\x00panic=-1")
	f.Add("'a b' c", "10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3", "tcp:[::]:1", "restart", "90", "", "")
	f.Add("", "none", "none", "reboot", "0", "A='x y'", "quiet")
	f.Fuzz(func(t *testing.T, args, net, agent, onExit, stop, env, kps string) {
		c := &cmdlineFlags{args: args, net: net, agent: agent, onExit: onExit, stopTimeout: stop, restartLimit: 5}
		if env != "" {
			c.env = strings.Split(env, "\x00")
		}
		if kps != "" {
			c.kernelParams = strings.Split(kps, "\x00")
		}
		line, err := c.format()
		// format's promise: the --env flags in any order give the same
		// cmdline (so the same measurement), or the same refusal.
		rev := *c
		rev.env = slices.Clone(c.env)
		slices.Reverse(rev.env)
		if again, err2 := rev.format(); again != line || (err == nil) != (err2 == nil) {
			t.Fatalf("--env %q gave %q (%v), reversed %q (%v)", c.env, line, err, again, err2)
		}
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("format: %v", err)
			}
			return
		}
		if bootcfg.CheckBytes(line) != nil || len(line) > bootcfg.MaxLen {
			t.Fatalf("format wrote %q, which the boot path does not carry", line)
		}
		// The init reads back the flags' settings.
		back, err := bootcfg.Parse(line)
		if err != nil {
			t.Fatalf("format wrote %q, which the init refuses: %v", line, err)
		}
		words, _ := bootcfg.SplitArgs(args)
		if !slices.Equal(back.Args, words) || !slices.Equal(back.Env, slices.Sorted(slices.Values(c.env))) ||
			string(back.OnExit) != onExit || back.RestartLimit != c.restartLimit {
			t.Fatalf("format wrote %q, which reads as args %q env %q on_exit %q restart_limit %d", line, back.Args, back.Env, back.OnExit, back.RestartLimit)
		}
	})
}

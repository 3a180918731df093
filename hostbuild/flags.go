package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
)

// The flag package reads integers with base 0, so "010" is octal 8. The
// counts and numbers these flags take are decimal, as in sev-snp-measure
// (argparse type=int: "010" is 10): a leading zero must not silently change
// a vCPU count, and with it a measurement.

// decimalInt is an int flag read in decimal only.
type decimalInt struct{ p *int }

func (d decimalInt) String() string {
	if d.p == nil {
		return "0"
	}
	return strconv.Itoa(*d.p)
}

func (d decimalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a decimal number", s)
	}
	*d.p = n
	return nil
}

// decimalUint is a uint flag read in decimal only.
type decimalUint struct{ p *uint }

func (d decimalUint) String() string {
	if d.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*d.p), 10)
}

func (d decimalUint) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, strconv.IntSize)
	if err != nil {
		return fmt.Errorf("%q is not a decimal number", s)
	}
	*d.p = uint(n)
	return nil
}

// intVar is fs.IntVar, in decimal.
func intVar(fs *flag.FlagSet, p *int, name string, value int, usage string) {
	*p = value
	fs.Var(decimalInt{p}, name, usage)
}

// uintVar is fs.UintVar, in decimal.
// given reports whether the flag name was on the command line (0 given
// is not 0 by default).
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func uintVar(fs *flag.FlagSet, p *uint, name string, value uint, usage string) {
	*p = value
	fs.Var(decimalUint{p}, name, usage)
}

// secondsOrDuration is a duration flag that also takes whole seconds
// ("90"), as katana.stop_timeout and hostbuild cmdline --stop-timeout do.
type secondsOrDuration struct{ p *time.Duration }

func (d secondsOrDuration) String() string {
	if d.p == nil {
		return "0s"
	}
	return d.p.String()
}

func (d secondsOrDuration) Set(s string) error {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		*d.p = time.Duration(n) * time.Second
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d.p = v
	return nil
}

// Get makes parseFlags' hint for a bad value name a duration.
func (d secondsOrDuration) Get() any { return *d.p }

// durationVar is fs.DurationVar taking whole seconds too.
func durationVar(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = value
	fs.Var(secondsOrDuration{p}, name, usage)
	return p
}

// parseGuestFeatures parses --guest-features (parseAutoInt); 0 is refused,
// as it lacks bit 0 (SNPActive).
func parseGuestFeatures(s string) (uint64, error) {
	feat, err := parseAutoInt(s, 64)
	if err != nil {
		return 0, fmt.Errorf("--guest-features %q: %w", s, err)
	}
	if feat == 0 {
		return 0, errors.New("--guest-features 0 lacks bit 0 (SNPActive)")
	}
	return feat, nil
}

// parsePolicy parses --policy (parseAutoInt).
func parsePolicy(s string) (uint64, error) {
	pol, err := parseAutoInt(s, 64)
	if err != nil {
		return 0, fmt.Errorf("--policy %q: %w", s, err)
	}
	// Checked here, not only by the manifest, which reads 0 as "the
	// default": an explicit --policy 0 must be refused like any other
	// invalid policy, not become 0x30000.
	if _, err := abi.ParseSnpPolicy(pol); err != nil {
		return 0, fmt.Errorf("--policy %s: guest policy 0x%x: %v (the default, 0x30000, allows SMT, has the reserved bit 17 set and debugging off)", s, pol, err)
	}
	return pol, nil
}

// parseAutoInt parses like Python's int(s, 0), which sev-snp-measure uses
// for --guest-features and --vcpu-sig: decimal, 0x, 0o, 0b, and
// underscores between digits. Like Python it refuses a decimal with a
// leading zero ("021", "0_21"), which Go's base 0 would read as octal.
func parseAutoInt(s string, bits int) (uint64, error) {
	if len(s) > 1 && s[0] == '0' && !strings.ContainsRune("xXoObB", rune(s[1])) && strings.Trim(s, "0_") != "" {
		d := strings.TrimLeft(s, "0_")
		return 0, fmt.Errorf("%q: a number with a leading 0 is ambiguous (Python refuses it, Go reads octal); write %s, or 0o%s for octal", s, d, d)
	}
	n, err := strconv.ParseUint(s, 0, bits)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is out of range: more than %d bits", s, bits)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a number: write it in hex (0x30000), decimal, octal (0o...) or binary (0b...)", s)
	}
	return n, nil
}

// flagsSet returns the names of the flags the command line set (given,
// even to their default value), as flag.FlagSet.Visit sees them.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// unsetFlags is missingFlags for flags told apart by being given at all
// (set, from flagsSet) rather than by an empty value; names are bare
// ("ovmf", "o").
func unsetFlags(set map[string]bool, names ...string) string {
	dashed, values := make([]string, len(names)), make([]string, len(names))
	for i, n := range names {
		dashed[i] = "--" + n
		if len(n) == 1 {
			dashed[i] = "-" + n
		}
		if set[n] {
			values[i] = "given"
		}
	}
	return missingFlags(dashed, values...)
}

// missingFlags names, of the required flags (names, with their values in
// the same order), the ones left empty: "--ovmf is required", "--kernel
// and --initrd are required"; "" when none is.
func missingFlags(names []string, values ...string) string {
	var miss []string
	for i, n := range names {
		if values[i] == "" {
			miss = append(miss, n)
		}
	}
	switch len(miss) {
	case 0:
		return ""
	case 1:
		return miss[0] + " is required"
	}
	return strings.Join(miss[:len(miss)-1], ", ") + " and " + miss[len(miss)-1] + " are required"
}

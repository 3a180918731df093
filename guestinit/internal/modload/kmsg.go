package modload

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelMessages returns the messages of the kernel log (/dev/kmsg) that
// start with "<module>:" (how the module loader reports, e.g. "virtio:
// Unknown symbol vring_del_virtqueue (err -2)"), at most the last max. It
// reads without blocking; an unreadable log gives nil.
func KernelMessages(kmsgPath, module string, max int) []string {
	f, err := os.OpenFile(kmsgPath, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	var records []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(int(f.Fd()), buf)
		if errors.Is(err, unix.EPIPE) { // overwritten records: go on
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		records = append(records, string(buf[:n]))
	}
	return MatchModule(records, module, max)
}

// MatchModule picks from /dev/kmsg records ("prio,seq,ts,flags;text\n"
// plus " KEY=value" continuation lines) the texts that start with
// "<module>:" (pr_* messages) or "<module> " (the driver core's dev_*
// messages, "sev-guest sev-guest: ..."), dashes and underscores both
// tried, the last max of them.
func MatchModule(records []string, module string, max int) []string {
	var prefixes []string
	for _, n := range []string{module, strings.ReplaceAll(module, "_", "-"), strings.ReplaceAll(module, "-", "_")} {
		prefixes = append(prefixes, n+":", n+" ")
	}
	var out []string
	for _, r := range records {
		_, text, ok := strings.Cut(r, ";")
		if !ok {
			continue
		}
		text, _, _ = strings.Cut(text, "\n")
		for _, p := range prefixes {
			if strings.HasPrefix(text, p) {
				out = append(out, text)
				break
			}
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

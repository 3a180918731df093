package modload

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// kmsgReadLimit bounds how much of the kernel log KernelMessages reads: a
// device or module that logs without pause must not keep a boot error from
// being reported (each read returns one record of at most ~8 KiB; the
// kernel's log buffer is 128 KiB unless log_buf_len= says otherwise).
// The bound does not cost the failed module's messages under such a flood:
// a reader opened after the failure starts at the oldest record still in
// the ring, so it reaches those messages within one ring's worth of reading
// (or finds them overwritten, an EPIPE, whatever the bound); only a ring
// raised above 4 MiB with log_buf_len= can put them beyond it.
const kmsgReadLimit = 4 << 20

// KernelMessages returns the messages of the kernel log (/dev/kmsg) that
// start with "<module>:" (how the module loader reports, e.g. "virtio:
// Unknown symbol vring_del_virtqueue (err -2)"), at most the last max. It
// reads without blocking, at most kmsgReadLimit bytes, matching as it goes
// (only max messages are kept); an unreadable log gives nil.
func KernelMessages(kmsgPath, module string, max int) []string {
	f, err := os.OpenFile(kmsgPath, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	return matchRecords(func(b []byte) (int, error) { return unix.Read(int(f.Fd()), b) }, module, max, kmsgReadLimit)
}

// matchRecords reads records with read (one per call, as /dev/kmsg gives
// them) until it fails or returns nothing, or limit bytes came (an EPIPE
// counting as a full buffer), and keeps the last max of MatchModule's
// matches.
func matchRecords(read func([]byte) (int, error), module string, max, limit int) []string {
	var out []string
	buf := make([]byte, 8192)
	for got := 0; got < limit; {
		n, err := read(buf)
		if errors.Is(err, unix.EPIPE) {
			// Overwritten records: go on, counting a buffer against the
			// limit (a log overwritten faster than it is read must not
			// keep this loop going either).
			got += len(buf)
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		got += n
		if m := MatchModule([]string{string(buf[:n])}, module, max); len(m) > 0 {
			out = append(out, m...)
			if len(out) > max {
				out = out[len(out)-max:]
			}
		}
	}
	return out
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

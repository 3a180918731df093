// Package bootcfg is the kernel command line contract between the host
// (hostbuild formats the measured cmdline) and the guest init (guestinit
// parses /proc/cmdline). Both sides use this package, so what the host
// measures is exactly what the guest applies.
//
// # Kernel rules
//
// The command line is split into parameters exactly like the kernel's
// lib/cmdline.c next_arg():
//
//   - whitespace separates parameters (the kernel's isspace: space, \t, \n,
//     \v, \f, \r and the byte 0xA0);
//   - only the double quote '"' quotes; there are no escapes;
//   - a quote may enclose the whole parameter ("key=a b") or only the value
//     (key="a b"); a value that starts with '"' loses it and a trailing '"';
//   - a parameter "--" ends the kernel parameters: what follows is the init's
//     argv (InitArgs), up to a second "--", after which the kernel ignores
//     the rest.
//
// The trailing newline of /proc/cmdline is not part of the command line: use
// FromProc. A NUL byte or a quote left open anywhere is an error.
//
// The x86 kernel also reads some options long before next_arg(), with
// parsers that split the line at every byte <= ' ' and ignore double quotes
// and "--" (nokaslr, spectre_v2=, clearcpuid=, ...; the EFI stub's mem= and
// friends; crashkernel= anywhere). A word they would read that is not a
// kernel parameter of its own before "--" (katana.args="--name nokaslr --dev",
// or nokaslr after "--") is an error, ErrEarlyOption: the kernel would act
// on an option that KernelParams does not show.
//
// # Keys
//
// Keys starting with "katana." belong to the init. Each may appear once;
// an unknown katana.* key, a repeated one, a katana.* key without "=" or
// after "--", and every malformed value is an error naming the offending
// text. Keys are matched exactly (the kernel's "-"/"_" equivalence is not
// applied: katana.on-exit is unknown); a key that is katana.* in another
// case (KATANA.args) is an unknown key too, not a kernel parameter the
// kernel and the init would both ignore. Every other parameter is a kernel
// parameter and kept verbatim in KernelParams, unless Hazard names it: one
// that replaces or steers the init or opens the guest to the host is an
// error (ErrHazard).
//
//	katana.args=WORDS
//	    Katana's argv (without argv[0]), split by SplitArgs: whitespace
//	    separates words, single quotes group literally, a backslash outside
//	    single quotes takes the next byte literally. Never any expansion:
//	    *, ?, $, ~ and friends stay literal. An unbalanced single quote or a
//	    trailing backslash is an error. Empty: no arguments (the default).
//	    Several words need the kernel's double quotes around the value:
//	    katana.args="--http.addr 0.0.0.0 --name 'a b'".
//
//	katana.env=NAME=VALUE | "NAME=VALUE NAME=VALUE ..."
//	    Variables added to Katana's environment (for example RUST_LOG,
//	    which is Katana's only way to set its log filter), words split
//	    like katana.args: katana.env="RUST_LOG=info,rpc=trace 'X=a b'".
//	    NAME is a letter or '_', then letters, digits and '_', given once;
//	    VALUE is taken literally (never expanded) and may be empty. The
//	    init sets PATH, HOME, TMPDIR and SSL_CERT_FILE itself: naming one
//	    of them is an error. Empty: nothing added (the default).
//
//	katana.net=none | ADDR/PREFIX[,gw=IP][,dns=IP[;IP[;IP]]]
//	    Static network for eth0. Default 10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3
//	    (QEMU user networking). When the key is given only what it says
//	    applies: no gw= means no default route, no dns= means an empty
//	    /etc/resolv.conf. The address keeps its host bits; the gateway and
//	    the DNS servers must be of the same family; at most 3 DNS servers.
//	    Refused: prefix /0, a zone, IPv4-mapped IPv6, unspecified,
//	    loopback, multicast and 0.0.0.0/8 addresses, 255.255.255.255 and
//	    the subnet's broadcast address (as the address, gw= or dns=), and an
//	    IPv6 link-local DNS server (fe80::/10: it needs a zone; IPv4
//	    169.254/16 is accepted).
//	    "none" leaves eth0 alone (lo is always brought up).
//
//	katana.agent=vsock:PORT | tcp:IP:PORT | none
//	    Where the attestation agent listens. Default vsock:1024. PORT is
//	    1..65535 for tcp and 1..4294967294 for vsock; IPv6 as tcp:[::1]:1024.
//
//	katana.on_exit=poweroff | reboot | restart
//	    What the init does when Katana exits by itself. Default poweroff.
//	    restart starts it again with exponential backoff, at most
//	    katana.restart_limit times, then powers off.
//
//	katana.stop_timeout=DURATION
//	    Grace period between SIGTERM and SIGKILL on a graceful stop: a Go
//	    duration ("45s", "1m30s") or a whole number of seconds ("45").
//	    0 to 1h. Default 30s.
//
//	katana.restart_limit=N
//	    How many restarts katana.on_exit=restart allows, 0 to 1000. Default 5.
//
// # Formatting
//
// Format is the inverse of Parse for everything Parse accepts and Format
// can express: Parse(Format(c, p)) yields c's settings and p as
// KernelParams. Format is deterministic (the host measures its output):
// kernel parameters first in the given order, then the katana.* keys whose
// value differs from the default, in the order net, agent, on_exit,
// stop_timeout, restart_limit, env, args, then "-- InitArgs" if any.
//
// Format refuses a line on which the kernel may hand PID 1 more than 32
// arguments or 33 environment entries (HOME and TERM included), as the
// kernel panics then; it counts every parameter that may get there, as it
// cannot tell which ones the kernel knows (see SplitKernel).
//
// Format writes only bytes the SEV-SNP boot path carries unchanged: OVMF
// widens each command line byte to UTF-16 as Latin-1 and the kernel's EFI
// stub converts it back as UTF-8, so a byte >= 0x80 would reach the guest
// changed while QEMU measured the original; the stub also stops at a
// newline. Non-ASCII bytes, newlines and control bytes other than \t, \v,
// \f and \r are refused (CheckBytes applies the same rule to a command
// line written by hand).
//
// Applied returns the settings the init applies (defaults filled in) in a
// stable form for the config digest that attestation binds.
package bootcfg

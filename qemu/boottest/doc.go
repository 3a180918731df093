// Package boottest holds the end-to-end boot tests (test files only): the
// Debian kernel under QEMU TCG boots an initrd packed by `hostbuild pack`
// with the static Go init (out/guestinit) and the stand-in Katana
// (out/standin-katana), and the tests assert on the serial console and over
// forwarded ports: Katana's argv, starknet_chainId, clean power-off with the
// exit status, boot errors for a bad command line and a missing module,
// graceful stop through the ACPI power button, and the guest agent over TCP
// and over vsock (the stand-in relays a forwarded TCP port to the guest's
// own vsock port through vsock_loopback: the host has no vsock).
//
// The tests run when KERNEL_DIR (an unpacked linux-image package, as made by
// qemu/fetch-kernel.sh) and OUT_DIR (the absolute path of out/ after `make
// build`) are set, which `make test` does; otherwise they skip and say so.
// Boots run one after another and share one packed initrd: the CI machine
// has two cores.
package boottest

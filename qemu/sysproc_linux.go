package qemu

import "syscall"

// sysProcAttr starts QEMU in a process group of its own, so that the
// terminal's Ctrl-C (SIGINT to the whole foreground process group) reaches
// only the runner's caller, which stops the guest gracefully; QEMU would
// otherwise take the SIGINT itself and end at once, a power cut for the
// guest. Pdeathsig makes the kernel kill QEMU when the process that started
// it dies, so an interrupted test or CLI never leaves a VM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

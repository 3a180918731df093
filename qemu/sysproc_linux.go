package qemu

import "syscall"

// sysProcAttr makes the kernel kill QEMU when the process that started it
// dies, so an interrupted test or CLI never leaves a VM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

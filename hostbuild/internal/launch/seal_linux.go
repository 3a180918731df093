package launch

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedCopy copies the n bytes of f into a memfd sealed against every
// change (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK and F_SEAL_SEAL),
// named like f and read from its start. Hashed and handed to QEMU, it is
// the same bytes whatever is written into f's file afterwards. At most n+1
// bytes are copied: a file that grew since it was sized hashes differently.
// QEMU keeps the copies open (as memory, not page cache) while it runs.
func sealedCopy(what string, f *os.File, n int64) (*os.File, error) {
	// MFD_NOEXEC_SEAL (Linux 6.3+; older kernels refuse it with EINVAL)
	// also keeps the kernel from warning about an executable memfd.
	fd, err := unix.MemfdCreate("snpboot-"+what, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_NOEXEC_SEAL)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("snpboot-"+what, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("copying %s %s into sealed memory: memfd_create: %w", what, f.Name(), err)
	}
	m := os.NewFile(uintptr(fd), f.Name())
	fail := func(step string, err error) (*os.File, error) {
		m.Close()
		return nil, fmt.Errorf("copying %s %s into sealed memory: %s: %w", what, f.Name(), step, err)
	}
	if _, err := io.Copy(m, io.LimitReader(f, n+1)); err != nil {
		return fail("copying", err)
	}
	if _, err := unix.FcntlInt(m.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return fail("sealing", err)
	}
	if _, err := m.Seek(0, io.SeekStart); err != nil {
		return fail("rewinding", err)
	}
	return m, nil
}

package doctor

import "golang.org/x/sys/unix"

func memlock() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &r); err != nil {
		return 0, err
	}
	if r.Cur == unix.RLIM_INFINITY {
		return ^uint64(0), nil
	}
	return r.Cur, nil
}

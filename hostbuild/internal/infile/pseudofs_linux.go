package infile

import (
	"os"
	"syscall"
)

// Magic numbers of the kernel's file systems whose regular files are made
// as they are read (include/uapi/linux/magic.h).
var pseudoFSes = map[int64]string{
	0x9fa0:     "/proc",      // PROC_SUPER_MAGIC
	0x62656572: "/sys",       // SYSFS_MAGIC
	0x62656570: "configfs",   // CONFIGFS_MAGIC
	0x64626720: "debugfs",    // DEBUGFS_MAGIC
	0x74726163: "tracefs",    // TRACEFS_MAGIC
	0x27e0eb:   "cgroup",     // CGROUP_SUPER_MAGIC
	0x63677270: "cgroup2",    // CGROUP2_SUPER_MAGIC
	0x73636673: "securityfs", // SECURITYFS_MAGIC
	0xcafe4a11: "bpf",        // BPF_FS_MAGIC
	0xde5e81e4: "efivarfs",   // EFIVARFS_MAGIC
}

// pseudoFS names the file system of f when it is one of pseudoFSes, or "".
func pseudoFS(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	var st syscall.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstatfs(int(fd), &st) }); err != nil || serr != nil {
		return ""
	}
	return pseudoFSes[int64(st.Type)]
}

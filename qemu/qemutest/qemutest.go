// Package qemutest holds test helpers shared by the packages that start QEMU
// (qemu, hostbuild, the boot tests): a fake QMP server and a buffer that a
// process writes while a test reads it. Tests only.
package qemutest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
)

// ServeQMP speaks enough QMP on conn for qemu.QMP: the greeting,
// qmp_capabilities, and system_powerdown, answered as QEMU does (an event
// first, which the client must skip). It closes conn and reports whether
// system_powerdown was asked for.
func ServeQMP(conn net.Conn) bool {
	defer conn.Close()
	fmt.Fprintln(conn, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}`)
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var req struct {
			Execute string `json:"execute"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fmt.Fprintln(conn, `{"error": {"class": "GenericError", "desc": "bad json"}}`)
			continue
		}
		switch req.Execute {
		case "qmp_capabilities":
			fmt.Fprintln(conn, `{"return": {}}`)
		case "query-status":
			// SNPBOOT_FAKE_QMP_STATUS (tests): the run state QEMU
			// reports, e.g. internal-error after a GHCB termination.
			st := os.Getenv("SNPBOOT_FAKE_QMP_STATUS")
			if st == "" {
				st = "running"
			}
			fmt.Fprintf(conn, `{"return": {"status": %q, "running": %v}}`+"\n", st, st == "running")
		case "system_powerdown":
			fmt.Fprintln(conn, `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}`)
			fmt.Fprintln(conn, `{"return": {}}`)
			return true
		default:
			fmt.Fprintf(conn, `{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}`+"\n", req.Execute)
		}
	}
	return false
}

// LockedBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines (a child's stdout and a test polling it).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ChardevPaths returns the serial log (-chardev file,...,path=) and the QMP
// socket (-chardev socket,...,path=) of a QEMU argv, with QEMU's ",,"
// escape undone: what a fake QEMU needs to play its part.
func ChardevPaths(args []string) (serial, qmp string) {
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-chardev" {
			continue
		}
		v := args[i+1]
		path := ""
		for _, kv := range strings.Split(strings.ReplaceAll(v, ",,", "\x00"), ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok {
				path = strings.ReplaceAll(p, "\x00", ",")
			}
		}
		if strings.HasPrefix(v, "file,") {
			serial = path
		} else if strings.HasPrefix(v, "socket,") {
			qmp = path
		}
	}
	return serial, qmp
}

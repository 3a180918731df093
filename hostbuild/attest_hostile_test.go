package main

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// An agent that sends its status line and headers, then stalls in the
// body (or drips it), is stopped at --timeout like a silent one, and the
// message names --timeout as it does for a silent agent.
func TestAttestStallingBodyNamesTimeout(t *testing.T) {
	mpath := writeTestManifest(t, t.TempDir())
	addr := rawAgent(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		time.Sleep(5 * time.Second)
	})
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--timeout", "300ms")
	if code != 3 || !strings.Contains(stderr, "within 300ms (--timeout)") {
		t.Errorf("stalling body: exit %d, stderr %q; want 3 naming --timeout", code, stderr)
	}
}

// rawAgent listens on a loopback TCP port and gives each connection to
// answer, which writes what it likes (raw HTTP, or nothing); it returns
// the --addr of the listener, closed at the test's end.
func rawAgent(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				answer(c)
			}()
		}
	}()
	return "tcp:" + l.Addr().String()
}

// certTableOf is a GUID table with the given certificates.
func certTableOf(entries map[string][]byte) []byte {
	n := len(entries)
	hdr := (n + 1) * abi.CertTableEntrySize
	t := make([]byte, hdr)
	i := 0
	for g, b := range entries {
		e := t[i*abi.CertTableEntrySize:]
		guid := uuid.MustParse(g)
		copy(e[:16], guid[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(len(t)))
		binary.LittleEndian.PutUint32(e[20:], uint32(len(b)))
		t = append(t, b...)
		i++
	}
	return t
}

// A guest whose table holds the ASK and ARK but no VCEK is not told it
// sent no table.
func TestAttestTableWithoutVCEKMessage(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	agent := &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) {
		r.CertTable = certTableOf(map[string][]byte{abi.AskGUID: s.Ask.Raw, abi.ArkGUID: s.Ark.Raw})
	}}
	addr := serveAgent(t, agent)
	code, _, stderr := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--timeout", "20s")
	if code != 4 || strings.Contains(stderr, "sent no certificate table") {
		t.Errorf("exit %d, stderr %q; want 4 without 'sent no certificate table' (it sent one, %d bytes, without a VCEK)", code, stderr, len(certTableOf(map[string][]byte{abi.AskGUID: s.Ask.Raw, abi.ArkGUID: s.Ark.Raw})))
	}
}

// The provider is not signed: one the agent API does not define is refused
// (or at least not shown under "attestation OK" as it came).
func TestAttestUnknownProvider(t *testing.T) {
	_, mpath, s, roots, _, _ := attestFixture(t)
	agent := &fakeAgent{s: s, resp: func(r *agentapi.AttestationResponse) {
		r.Provider = "sev-guest-ioctl" + strings.Repeat(" ", 60) + "verified-by: AMD KDS, chip pinned, TCB current"
	}}
	addr := serveAgent(t, agent)
	code, stdout, _ := runCmd(t, "", "attest", "--min-tcb", "none", "--addr", addr, "--manifest", mpath, "--roots", roots, "--timeout", "20s")
	t.Logf("exit %d\n%s", code, stdout)
	if code == 0 {
		t.Errorf("a provider the agent API does not define was accepted")
	}
}

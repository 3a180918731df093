package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Whatever the QMP socket answers, QMP returns within its deadline with
// either an error or the "return" value of an answer, as valid JSON, after
// the greeting and the answer to qmp_capabilities; a QMP error answer is
// a *QMPError naming the command.
func FuzzQMPAnswer(f *testing.F) {
	greet := `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 10}}, "capabilities": []}}` + "\n"
	f.Add([]byte(greet + `{"return": {}}` + "\n" + `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}` + "\n" + `{"return": {"status": "running", "running": true}}` + "\n"))
	f.Add([]byte(greet + `{"return": {}}` + "\n" + `{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}}` + "\n"))
	f.Add([]byte(greet + `{"error": {"class": "GenericError", "desc": "no"}}`))
	f.Add([]byte(`{"QMP": null}{"return": null}{"return": 1}`))
	f.Add([]byte(`{"return": {}}`))
	dir := f.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	answers := make(chan []byte)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ans := <-answers
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				go bufio.NewReader(c).WriteTo(discard{}) // the client's commands
				c.Write(ans)
			}()
		}
	}()
	f.Fuzz(func(t *testing.T, ans []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done := make(chan struct{})
		var raw json.RawMessage
		var qerr error
		go func() {
			defer close(done)
			raw, qerr = QMP(ctx, sock, "query-status")
		}()
		select {
		case answers <- ans:
		case <-done:
			t.Fatalf("QMP returned before its answer was served: %v", qerr)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("QMP did not return within 5 s of a 2 s deadline on %q", ans)
		}
		if qerr != nil {
			if qerr.Error() == "" {
				t.Fatal("empty error")
			}
			var qe *QMPError
			if errors.As(qerr, &qe) && qe.Command != "qmp_capabilities" && qe.Command != "query-status" {
				t.Fatalf("QMP error for command %q", qe.Command)
			}
			return
		}
		if !json.Valid(raw) || !bytes.Contains(ans, raw) {
			t.Fatalf("QMP returned %q, not a JSON value of the answer %q", raw, ans)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// QMPError is an error answer from QEMU's monitor.
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// qmpTimeout bounds a QMP exchange when the context has no deadline.
const qmpTimeout = 10 * time.Second

// QMP connects to the QMP unix socket at path, negotiates capabilities,
// runs one command without arguments and returns its "return" value.
// Asynchronous events in between are skipped.
func QMP(ctx context.Context, path, command string) (json.RawMessage, error) {
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to the QMP socket %s: %w", path, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(qmpTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("qmp: setting a deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	dec := json.NewDecoder(bufio.NewReader(conn))
	var greeting struct {
		QMP *json.RawMessage `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("qmp: reading the greeting: %w", ctxErr(ctx, err))
	}
	if greeting.QMP == nil {
		return nil, errors.New("qmp: the socket did not greet with a QMP banner (is it a QMP monitor?)")
	}
	if _, err := qmpExecute(ctx, conn, dec, "qmp_capabilities"); err != nil {
		return nil, err
	}
	return qmpExecute(ctx, conn, dec, command)
}

func qmpExecute(ctx context.Context, conn net.Conn, dec *json.Decoder, command string) (json.RawMessage, error) {
	req, err := json.Marshal(map[string]string{"execute": command})
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: sending: %w", command, ctxErr(ctx, err))
	}
	for {
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := dec.Decode(&resp); err != nil {
			return nil, fmt.Errorf("qmp %s: reading the answer: %w", command, ctxErr(ctx, err))
		}
		switch {
		case resp.Error != nil:
			return nil, &QMPError{Command: command, Class: resp.Error.Class, Desc: resp.Error.Desc}
		case resp.Return != nil:
			return resp.Return, nil
		}
		// An event (or anything else): keep reading.
	}
}

// ctxErr prefers the context's error over the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

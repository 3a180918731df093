package agent

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// cannedResponse is a complete HTTP/1.1 error response with a JSON body,
// written straight to a connection that is refused before parsing.
func cannedResponse(status int, code, msg string) []byte {
	var b bytes.Buffer
	writeResponse(&b, response{status: status, body: errorBody(code, msg), close: true}, false)
	return b.Bytes()
}

// resp429Conns is built on first use: encoding/json's first Marshal of a type
// costs ~20 ms under TCG, on PID 1's path to starting Katana if done at
// package init.
var resp429Conns = sync.OnceValue(func() []byte {
	return cannedResponse(429, agentapi.CodeTooManyConnections, "too many concurrent connections; retry later")
})

// limitListener admits at most max connections at once. An excess connection
// gets a 429 too_many_connections (written by one of a bounded set of
// rejecters; beyond that it is closed at once) and is never parsed.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	rejecters chan struct{}
	linger    time.Duration
	logf      func(string, ...any)
}

func newLimitListener(l net.Listener, max, rejecters int, linger time.Duration, logf func(string, ...any)) *limitListener {
	return &limitListener{
		Listener:  l,
		slots:     make(chan struct{}, max),
		rejecters: make(chan struct{}, rejecters),
		linger:    linger,
		logf:      logf,
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &trackedConn{Conn: c, release: l.release}, nil
		default:
			l.reject(c)
		}
	}
}

func (l *limitListener) release() {
	<-l.slots
}

// reject answers 429 and closes without resetting: write, half-close, drain
// briefly, close (a close with unread input sends RST and the client may lose
// the response).
func (l *limitListener) reject(c net.Conn) {
	select {
	case l.rejecters <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.rejecters }()
		defer c.Close()
		defer logPanic(l.logf, "answering an excess connection")
		c.SetDeadline(time.Now().Add(l.linger))
		if _, err := c.Write(resp429Conns()); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// trackedConn releases its slot once, on the first Close.
type trackedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes when the underlying connection can (TCP, vsock),
// so an error answer is not lost to a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

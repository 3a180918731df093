package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/katana-tee/snpboot/shared/agentapi"
)

// cannedResponse is a complete HTTP/1.1 error response with a JSON body,
// written straight to a connection outside net/http (connection limit,
// request timeout).
func cannedResponse(status int, code, msg string) []byte {
	body, _ := json.Marshal(agentapi.ErrorResponse{Error: agentapi.Error{Code: code, Message: msg}})
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

var (
	resp429Conns = cannedResponse(http.StatusTooManyRequests, agentapi.CodeTooManyConnections, "too many concurrent connections; retry later")
	resp408      = cannedResponse(http.StatusRequestTimeout, agentapi.CodeRequestTimeout, "request not received in time")
)

// limitListener admits at most max connections at once. An excess connection
// gets a 429 too_many_connections (written by one of a bounded set of
// rejecters; beyond that it is closed at once) and never reaches net/http.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	rejecters chan struct{}
	linger    time.Duration
	active    atomic.Int64
}

func newLimitListener(l net.Listener, max, rejecters int, linger time.Duration) *limitListener {
	return &limitListener{
		Listener:  l,
		slots:     make(chan struct{}, max),
		rejecters: make(chan struct{}, rejecters),
		linger:    linger,
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
			l.active.Add(1)
			return &trackedConn{Conn: c, release: l.release}, nil
		default:
			l.reject(c)
		}
	}
}

func (l *limitListener) release() {
	l.active.Add(-1)
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
		c.SetDeadline(time.Now().Add(l.linger))
		if _, err := c.Write(resp429Conns); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// trackedConn releases its slot once, on the first Close. It also answers a
// request that does not arrive in time with 408 instead of net/http's silent
// close: when a read times out on a deadline net/http set (not the "abort"
// deadline in the past it uses to stop its background read), and the client
// has sent part of a request, or nothing at all on a fresh connection.
type trackedConn struct {
	net.Conn
	release func()
	once    sync.Once

	mu           sync.Mutex
	readDeadline time.Time
	readSince    int64 // bytes read since the last write
	wrote        bool
	timedOut     bool
}

// abortCutoff separates real deadlines from net/http's aLongTimeAgo.
var abortCutoff = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readSince += int64(n)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && !c.timedOut &&
		c.readDeadline.After(abortCutoff) && (c.readSince > 0 || !c.wrote) {
		c.timedOut = true
		c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.Conn.Write(resp408)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wrote = true
	c.readSince = 0
	c.mu.Unlock()
	return c.Conn.Write(p)
}

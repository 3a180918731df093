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

// limitListener admits at most max connections at once. At the limit, a
// newcomer takes the slot of the connection that has waited longest for its
// next request: a keep-alive connection between requests, never one before
// or inside a request, nor one whose request is being handled (a queued or
// running attestation included). Its reader is woken and closes it without
// an answer, as any HTTP server may close an idle keep-alive connection (and
// as net/http's client retries on), or, when a request came in at that
// very moment, answers that one request with Connection: close. Only when no connection is idle does
// the newcomer get a 429 too_many_connections (written by one of a bounded
// set of rejecters; beyond that it is closed at once, without an answer);
// it is never parsed. So a client that keeps its connections alive with a
// request now and then cannot hold every slot: it is evicted for the next
// client.
type limitListener struct {
	net.Listener
	max       int
	rejecters chan struct{}
	drainers  chan struct{} // as many drain after their last answer outside the limit (halfCloseAndDrain)
	linger    time.Duration
	logf      func(string, ...any)

	mu sync.Mutex
	// conns are the admitted connections that hold a slot: neither
	// closed nor evicted.
	conns map[*trackedConn]struct{}
}

func newLimitListener(l net.Listener, max, rejecters int, linger time.Duration, logf func(string, ...any)) *limitListener {
	return &limitListener{
		Listener:  l,
		max:       max,
		rejecters: make(chan struct{}, rejecters),
		drainers:  make(chan struct{}, rejecters),
		linger:    linger,
		logf:      logf,
		conns:     map[*trackedConn]struct{}{},
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, l: l}
		var victim *trackedConn
		l.mu.Lock()
		if len(l.conns) >= l.max {
			victim = l.longestIdleLocked()
			if victim != nil {
				victim.evicted = true
				delete(l.conns, victim)
				// Wake its reader (a deadline now), under the lock: the
				// victim takes l.mu (setActive) before it sets deadlines
				// of its own, which this one must not overwrite (a
				// request then being read would time out at once).
				victim.Conn.SetReadDeadline(time.Now())
			}
		}
		admitted := len(l.conns) < l.max
		if admitted {
			l.conns[tc] = struct{}{}
		}
		l.mu.Unlock()
		if admitted {
			return tc, nil
		}
		l.reject(c)
	}
}

// idle counts the admitted connections waiting for their next request.
func (l *limitListener) idle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c := range l.conns {
		if !c.idleSince.IsZero() {
			n++
		}
	}
	return n
}

// longestIdleLocked is the admitted connection idle the longest, or nil
// when none is idle. l.mu is held.
func (l *limitListener) longestIdleLocked() *trackedConn {
	var oldest *trackedConn
	for c := range l.conns {
		if !c.idleSince.IsZero() && (oldest == nil || c.idleSince.Before(oldest.idleSince)) {
			oldest = c
		}
	}
	return oldest
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

// trackedConn holds a slot of its limitListener until its first Close or
// its eviction.
type trackedConn struct {
	net.Conn
	l *limitListener
	// Guarded by l.mu.
	idleSince time.Time // when it began waiting for its next request; zero when not waiting
	evicted   bool
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return err
}

// setIdle says c waits for its next request (keep-alive, nothing buffered):
// from now until setActive, a newcomer at the connection limit may evict it.
func (c *trackedConn) setIdle() {
	c.l.mu.Lock()
	c.idleSince = time.Now()
	c.l.mu.Unlock()
}

// releaseSlot gives c's slot back before c is closed.
func (c *trackedConn) releaseSlot() {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
}

// drainOutsideLimit gives c's slot back for the drain after its last
// answer (a newcomer need not wait for that) when one of the listener's
// bounded drain places is free, and returns what frees that place; with
// none free, c keeps its slot while it drains (500 ms at most), so that
// the connections the agent holds stay bounded.
func (c *trackedConn) drainOutsideLimit() (done func()) {
	select {
	case c.l.drainers <- struct{}{}:
		c.releaseSlot()
		return func() { <-c.l.drainers }
	default:
		return func() {}
	}
}

// setActive ends the wait begun by setIdle. It reports false when c was
// evicted meanwhile: c then closes, after answering at most the one
// request whose first bytes came in just before.
func (c *trackedConn) setActive() bool {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.idleSince = time.Time{}
	return !c.evicted
}

// CloseWrite half-closes when the underlying connection can (TCP, vsock),
// so an error answer is not lost to a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

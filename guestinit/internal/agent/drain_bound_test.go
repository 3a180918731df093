package agent

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openCounter is a listener that counts the connections it accepted and
// that are not closed yet: what the agent holds open (descriptors,
// goroutines, buffers), inside its connection limit or not.
type openCounter struct {
	net.Listener
	open, max atomic.Int64
}

type countedConn struct {
	*net.TCPConn
	l    *openCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.TCPConn.Close()
}

func (l *openCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for m := l.max.Load(); n > m && !l.max.CompareAndSwap(m, n); m = l.max.Load() {
	}
	return &countedConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

// A connection's last answer gives its slot back before the 500 ms drain
// that follows it, so that a newcomer need not wait; those drains were
// not bounded at all: a client that opens connections one after another,
// each with one Connection: close request, and leaves them open, had the
// agent hold hundreds of them at once with MaxConns 4 (one descriptor,
// goroutine and buffer each, in PID 1; 4096 descriptors before Katana
// starts). What the agent holds open stays within its connection limit
// plus its bounded sets of connections answered outside it (rejecters,
// drains).
func TestDrainingConnectionsBounded(t *testing.T) {
	const maxConns, clients, perClient = 4, 8, 50
	// The slots, the 64 rejecters, 64 drains, and one just accepted.
	const bound = maxConns + 64 + 64 + 1
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &openCounter{Listener: inner}
	s := New(Options{Quoter: failing{"x"}, Config: testConfig, MaxConns: maxConns})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	var mu sync.Mutex
	var kept []net.Conn
	defer func() {
		for _, c := range kept {
			c.Close()
		}
		cancel()
		<-done
	}()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				c, err := net.Dial("tcp4", inner.Addr().String())
				if err != nil {
					return
				}
				mu.Lock()
				kept = append(kept, c) // left open: the agent drains it
				mu.Unlock()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, statusReqClose)
				io.ReadAll(c) // the answer (200, or 429), then the agent's half-close
			}
		}()
	}
	wg.Wait()
	if m := l.max.Load(); m > bound {
		t.Errorf("the agent held %d connections open at once (MaxConns %d; bound %d)", m, maxConns, bound)
	}
}

package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/mdlayher/vsock"
)

// nilPeerListener hands out connections whose RemoteAddr is nil, or a nil
// *vsock.Addr (whose String panics).
type nilPeerListener struct {
	net.Listener
	typedNil bool
}

func (l nilPeerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return nilPeerConn{c, l.typedNil}, nil
}

type nilPeerConn struct {
	net.Conn
	typedNil bool
}

func (c nilPeerConn) RemoteAddr() net.Addr {
	if c.typedNil {
		return (*vsock.Addr)(nil)
	}
	return nil
}

// A connection that cannot name its peer is served: naming it for the log
// (evaluated before the recover of the connection's goroutine is in place)
// would otherwise panic outside any recover and end PID 1.
func TestPeerWithoutAddressServed(t *testing.T) {
	for _, typedNil := range []bool{false, true} {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(Options{Logf: func(f string, a ...any) {}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, nilPeerListener{inner, typedNil}) }()
		resp, err := http.Get("http://" + inner.Addr().String() + "/v1/status")
		if err != nil {
			t.Fatalf("typed nil %v: %v", typedNil, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("typed nil %v: status %d, want 200", typedNil, resp.StatusCode)
		}
		cancel()
		<-done
	}
	if got := peerName(nilPeerConn{typedNil: true}); got != "an unknown peer" {
		t.Errorf("peerName of a nil *vsock.Addr: %q", got)
	}
}

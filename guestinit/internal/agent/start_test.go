package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/status"
	"github.com/katana-tee/snpboot/guestinit/internal/supervise"
	"github.com/katana-tee/snpboot/shared/agentapi"
	"github.com/katana-tee/snpboot/shared/bootcfg"
)

func TestStartWithBootConfig(t *testing.T) {
	raw := `console=ttyS0 katana.agent=tcp:127.0.0.1:1 katana.args="--http.addr 0.0.0.0 --dev"`
	cfg, err := bootcfg.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	st := status.New(func() time.Duration { return 3 * time.Second })
	st.AddStage("mounts", true, "", time.Millisecond)
	st.SetRunning(42)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var addr string
	var spec string
	var ready Readiness
	err = Start(ctx, cfg, st, StartOptions{
		InitVersion: "test",
		Ready:       ready.Err,
		Quoter:      failing{"x"},
		Listen: func(s string) (net.Listener, error) {
			spec = s
			l, err := net.Listen("tcp", "127.0.0.1:0") // the cmdline's port 1 is privileged
			if err == nil {
				addr = l.Addr().String()
			}
			return l, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if spec != "tcp:127.0.0.1:1" {
		t.Errorf("listened on %q", spec)
	}
	base := "http://" + addr
	var s agentapi.Status
	if code := getJSON(t, http.DefaultClient, "GET", base+"/v1/status", &s); code != 200 {
		t.Fatalf("status %d", code)
	}
	ac := agentapi.ConfigOf(cfg.Applied())
	if diff := cmp.Diff([]string{"--http.addr", "0.0.0.0", "--dev"}, ac.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if string(ac.Cmdline) != raw || ac.Settings["katana.agent"] != "tcp:127.0.0.1:1" {
		t.Errorf("applied config %+v", ac)
	}
	d := agentapi.ConfigDigest(ac)
	if s.ConfigDigest != hex.EncodeToString(d[:]) || s.Katana.State != "running" || s.Katana.PID != 42 || len(s.Stages) != 1 || s.InitVersion != "test" {
		t.Errorf("status %+v", s)
	}
	// Reports wait for the init's Readiness; then the (failing) device answers.
	var e agentapi.ErrorResponse
	if code := getJSON(t, http.DefaultClient, "GET", base+"/v1/attestation?nonce="+nonceHex(1, 32), &e); code != 503 || e.Error.Code != agentapi.CodeNotReady {
		t.Errorf("attestation before the check: %d %+v, want 503 not_ready", code, e)
	}
	ready.Checked()
	if code := getJSON(t, http.DefaultClient, "GET", base+"/v1/attestation?nonce="+nonceHex(1, 32), &e); code != 503 || e.Error.Code != agentapi.CodeNoSNPDevice {
		t.Errorf("attestation after the check: %d %+v, want the device's 503 no_snp_device", code, e)
	}
	var sr agentapi.ShutdownResponse
	if code := getJSON(t, http.DefaultClient, "POST", base+"/v1/shutdown", &sr); code != 202 {
		t.Fatalf("shutdown %d", code)
	}
	select {
	case <-st.StopRequested():
	case <-time.After(time.Second):
		t.Fatal("shutdown did not request the graceful stop")
	}
	if code := getJSON(t, http.DefaultClient, "GET", base+"/v1/status", &s); code != 200 || s.Katana.State != "stopping" {
		t.Errorf("after shutdown: %d %+v", code, s.Katana)
	}
}

// Every state the init can report is one agentapi documents, with or
// without a stop requested.
func TestStatusOfStates(t *testing.T) {
	documented := map[string]bool{
		agentapi.PayloadNotStarted: true,
		agentapi.PayloadRunning:    true,
		agentapi.PayloadRestarting: true,
		agentapi.PayloadStopping:   true,
		agentapi.PayloadExited:     true,
	}
	// Every status.State constant.
	for _, state := range []status.State{status.NotStarted, status.Running, status.Restarting, status.Stopping, status.Exited} {
		for _, stop := range []string{"", "agent: POST /v1/shutdown"} {
			got := StatusOf(status.Snapshot{State: state, StopRequested: stop}, time.Now(), "v").Katana.State
			if !documented[got] {
				t.Errorf("state %q (stop requested %q) is sent as %q, which agentapi does not document", state, stop, got)
			}
		}
	}
	// A fresh status, before Katana starts.
	if got := StatusOf(status.New(func() time.Duration { return 0 }).Snapshot(), time.Now(), "v").Katana.State; got != agentapi.PayloadNotStarted {
		t.Errorf("before katana starts: %q, want %q", got, agentapi.PayloadNotStarted)
	}
}

// /v1/status's last exit is what the supervisor records: for a Katana killed
// by SIGTERM, code 143 (128+15, as a shell reports it) and signal "SIGTERM",
// as agentapi.ExitStatus documents.
func TestStatusOfLastExit(t *testing.T) {
	st := status.New(func() time.Duration { return 0 })
	st.SetExited(supervise.ExitFromWait(unix.WaitStatus(unix.SIGTERM)))
	e := StatusOf(st.Snapshot(), time.Unix(0, 0), "v").Katana.LastExit
	if e == nil || e.Code != 128+int(unix.SIGTERM) || e.Signal != "SIGTERM" {
		t.Errorf("last exit %+v, want code 143, signal SIGTERM", e)
	}
}

// panickyListener's Accept panics, like a vsock library with a bug.
type panickyListener struct{ net.Listener }

func (panickyListener) Accept() (net.Conn, error) { panic("boom in Accept") }

// A panic in Serve itself stops the agent with a log line, never PID 1.
func TestStartServePanic(t *testing.T) {
	cfg, err := bootcfg.Parse("katana.agent=tcp:127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := make(chan string, 16)
	err = Start(ctx, cfg, status.New(func() time.Duration { return 0 }), StartOptions{
		Quoter: failing{"x"},
		Logf:   func(format string, args ...any) { logs <- fmt.Sprintf(format, args...) },
		Listen: func(string) (net.Listener, error) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			return panickyListener{l}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case l := <-logs:
			if strings.Contains(l, "boom in Accept") {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no log line for the panic in Serve")
		}
	}
}

func TestStartNone(t *testing.T) {
	cfg, err := bootcfg.Parse("katana.agent=none")
	if err != nil {
		t.Fatal(err)
	}
	called := false
	err = Start(context.Background(), cfg, status.New(func() time.Duration { return 0 }), StartOptions{
		Listen: func(string) (net.Listener, error) { called = true; return nil, nil },
	})
	if err != nil || called {
		t.Errorf("katana.agent=none: err %v, listened %v", err, called)
	}
}

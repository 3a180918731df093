package agent

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchRun drives total requests to path over conns keep-alive connections
// and returns the latencies of 200s, the 429 count and the wall time.
func benchRun(t *testing.T, base, path string, total, conns int) (lat []time.Duration, busy int, wall time.Duration) {
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: time.Minute}
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				url := base + path
				if strings.Contains(path, "nonce=") {
					url = fmt.Sprintf("%s%064x", url, i)
				}
				s := time.Now()
				resp, err := c.Get(url)
				d := time.Since(s)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case 200:
					lat = append(lat, d)
				case 429:
					busy++
				default:
					t.Errorf("request %d: %s", i, resp.Status)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, busy, time.Since(start)
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestAgentBench measures latency and throughput of the agent over TCP
// loopback with go-sev-guest's fake device and fake AMD signer, and writes
// a Markdown table to $AGENT_BENCH_OUT (run by .ci/bench/agent.sh).
func TestAgentBench(t *testing.T) {
	out := os.Getenv("AGENT_BENCH_OUT")
	if out == "" {
		t.Skip("benchmark; set AGENT_BENCH_OUT=FILE to run it (make bench does, through .ci/bench/agent.sh)")
	}
	signer := testSigner(t)
	var b strings.Builder
	fmt.Fprintln(&b, "| scenario | requests | conns | ok | 429 | p50 ms | p99 ms | ok req/s |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|")
	type scen struct {
		name        string
		quoter      func() Quoter
		path        string
		total, conn int
		depth       int
	}
	ioctl := func() Quoter {
		f := newFakeSNP(t, signer)
		return &SevGuestIoctl{Open: func() (Ioctler, error) { return f, nil }}
	}
	cfgfs := func() Quoter { return &ConfigfsTSM{Client: fakeTSM(t, signer, "sev_guest")} }
	nonce := "/v1/attestation?nonce="
	var seqThroughput float64
	for _, s := range []scen{
		{"attestation, sev-guest ioctl (fake), sequential", ioctl, nonce, 300, 1, 0},
		{"attestation, configfs-tsm (fake), sequential", cfgfs, nonce, 300, 1, 0},
		{"attestation, ioctl, 50 conns, default queue (16)", ioctl, nonce, 1000, 50, 0},
		{"attestation, ioctl, 50 conns, queue 64", ioctl, nonce, 1000, 50, 64},
		{"status, 50 conns", ioctl, "/v1/status", 1000, 50, 0},
	} {
		srv := New(Options{Quoter: s.quoter(), Config: testConfig, QueueDepth: s.depth, MaxConns: 64})
		base := serve(t, srv)
		benchRun(t, base, s.path, 20, 1) // warm up
		lat, busy, wall := benchRun(t, base, s.path, s.total, s.conn)
		rps := float64(len(lat)) / wall.Seconds()
		if s.conn == 1 && seqThroughput == 0 {
			seqThroughput = rps
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %s | %.0f |\n", s.name, s.total, s.conn, len(lat), busy, ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), rps)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

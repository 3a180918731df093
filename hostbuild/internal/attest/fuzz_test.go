package attest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	"github.com/katana-tee/snpboot/shared/agentapi"
)

func FuzzParseMinTCB(f *testing.F) {
	for _, s := range []string{"bl=3,tee=0,snp=8,ucode=115", "0x7308000000000003", "none", "", "bl=1,bl=2", "0x", " bl=1, tee=2,snp=3 ,ucode=4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseMinTCB(s)
		if err != nil {
			if err.Error() == "" || s != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("ParseMinTCB(%q): error %q does not name the value", s, err)
			}
			return
		}
		if strings.HasPrefix(s, "0x") {
			return
		}
		if s == MinTCBNone {
			return
		}
		back, err := ParseMinTCB(fmt.Sprintf("bl=%d,tee=%d,snp=%d,ucode=%d", p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl))
		if err != nil || back != p {
			t.Fatalf("ParseMinTCB(%q) = %+v does not round trip: %+v, %v", s, p, back, err)
		}
		if p.Spl4|p.Spl5|p.Spl6|p.Spl7 != 0 {
			t.Fatalf("parts form set reserved parts: %+v", p)
		}
	})
}

func FuzzParsePlatformChip(f *testing.F) {
	f.Add("no-smt,ecc", strings.Repeat("ab", 64))
	f.Add(",", "")
	f.Fuzz(func(t *testing.T, plat, chip string) {
		if p, err := ParsePlatform(plat); err == nil {
			var w []string
			if p != nil {
				for _, it := range platformItems {
					if *it.field(p) {
						w = append(w, it.name)
					}
				}
			}
			back, err := ParsePlatform(strings.Join(w, ","))
			if err != nil || (back == nil) != (p == nil) || back != nil && *back != *p {
				t.Fatalf("ParsePlatform(%q) = %+v does not round trip: %+v %v", plat, p, back, err)
			}
		} else if !printable.Is(err.Error()) {
			t.Fatalf("unprintable error %q", err)
		}
		if b, err := ParseChipID(chip); err == nil && (len(b) != 64 || bytes.Equal(b, make([]byte, 64))) {
			t.Fatalf("ParseChipID(%q) = %x", chip, b)
		}
	})
}

// Fetch reads the agent's HTTP answer: whatever comes back, the error is
// ClassTransport and printable.
func FuzzFetchAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"api_version\":1}"))
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 48\r\n\r\n{\"error\":{\"code\":\"no_snp_device\",\"message\":\"x\"}}"))
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: http://x/\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n0\r\n\r\n"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	answers := make(chan []byte, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ans := <-answers
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				br := make([]byte, 4096)
				c.Read(br)
				c.Write(ans)
			}()
		}
	}()
	addr, _ := agentapi.ParseDialAddr("tcp:" + ln.Addr().String())
	nonce := bytes.Repeat([]byte{1}, 32)
	f.Fuzz(func(t *testing.T, ans []byte) {
		answers <- ans
		r, err := Fetch(context.Background(), FetchOptions{Addr: addr, Nonce: nonce, Timeout: 3 * time.Second})
		// The answer as net/http reads it from the bytes alone.
		var status int
		var body []byte
		if resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(ans)), &http.Request{Method: http.MethodGet}); rerr == nil {
			b, berr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
			if berr == nil && len(b) <= MaxResponseSize {
				status, body = resp.StatusCode, b
			}
		}
		if err == nil {
			if r == nil {
				t.Fatal("nil response without error")
			}
			// Accepted: a 200 whose body is a strictly decoded response.
			want, derr := DecodeResponse(body)
			if status != http.StatusOK || derr != nil || !cmp.Equal(r, want) {
				t.Fatalf("accepted answer %q: status %d, body decodes as %+v (%v), Fetch gave %+v", ans, status, want, derr, r)
			}
			return
		}
		// Fetch's doc: an agent error keeps its stable code in the message.
		var e agentapi.ErrorResponse
		if status >= 400 && json.Unmarshal(body, &e) == nil && e.Error.Code != "" && !strings.Contains(err.Error(), printable.Quote(e.Error.Code)) {
			t.Fatalf("answer %q: error %q does not keep the agent's code %q", ans, err, e.Error.Code)
		}
		if ClassOf(err) != ClassTransport || err.Error() == "" {
			t.Fatalf("error %v: class %v", err, ClassOf(err))
		}
		if !printable.Is(err.Error()) {
			t.Fatalf("unprintable error from answer %q: %q", ans, err)
		}
	})
}

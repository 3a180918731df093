package klog

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPrintf(t *testing.T) {
	var b strings.Builder
	l := New(&b, func() time.Duration { return 3*time.Second + 14159*time.Microsecond })
	l.Printf("stage=mounts ok")
	l.Printf("boot error: %s\n", "two\nlines")
	want := "[    3.014159] guestinit: stage=mounts ok\n" +
		"[    3.014159] guestinit: boot error: two | lines\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	return len(p), nil
}

func TestOneWritePerLine(t *testing.T) {
	w := &countingWriter{}
	l := New(w, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); l.Printf("line %d", i) }()
	}
	wg.Wait()
	if len(w.writes) != 50 {
		t.Fatalf("got %d writes, want 50", len(w.writes))
	}
	for _, s := range w.writes {
		if strings.Count(s, "\n") != 1 || !strings.Contains(s, "] guestinit: line ") {
			t.Errorf("write %q is not one whole line", s)
		}
	}
}

func TestSinceBootAdvances(t *testing.T) {
	a := SinceBoot()
	time.Sleep(2 * time.Millisecond)
	b := SinceBoot()
	if a <= 0 || b <= a {
		t.Errorf("SinceBoot: %v then %v, want positive and increasing", a, b)
	}
}

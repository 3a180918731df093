package infile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// What is not a regular file is refused before it is opened: opening a
// device can act (opening /dev/watchdog arms the host's hardware
// watchdog, which reboots it unless fed; a tape device rewinds; a serial
// line raises DTR), and an untrusted evidence folder or report can point
// a symlink at one. Shown with a FIFO, whose opening lets a writer
// blocked on it go on.
func TestNotRegularIsNotOpened(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, link} {
		opened := make(chan struct{})
		go func() {
			// Blocks until a reader opens the FIFO.
			if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			close(opened)
		}()
		time.Sleep(100 * time.Millisecond) // the writer is waiting in open(2)
		if _, err := ReadFile("--in", path, 64); err == nil {
			t.Fatalf("ReadFile(%s) read a FIFO", path)
		}
		select {
		case <-opened:
			t.Errorf("ReadFile(%s) opened the FIFO (a writer waiting on it went on) before refusing it", path)
		case <-time.After(300 * time.Millisecond):
			// Release the writer.
			if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				<-opened
				f.Close()
			}
		}
	}
}

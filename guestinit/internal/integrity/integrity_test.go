package integrity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// makeRoot writes files under a temp root plus their content list.
func makeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	list := initrdlayout.Contents{}
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		list[rel] = sha256.Sum256([]byte(data))
	}
	p := filepath.Join(root, initrdlayout.ContentsPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, list.Format(), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

var files = map[string]string{
	"init":                          "init binary",
	"bin/katana":                    strings.Repeat("katana", 100000),
	"lib/modules/6.1/virtio_net.ko": "module",
	"etc/hosts":                     "127.0.0.1 localhost\n",
}

func TestAllOK(t *testing.T) {
	root := makeRoot(t, files)
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Checker{Root: root, List: list}.All(map[string]bool{"etc/hosts": true})
	if err != nil {
		t.Fatalf("All: %v", err)
	}
	if r.Files != 3 || r.Bytes != int64(len(files["bin/katana"])+len(files["init"])+len(files["lib/modules/6.1/virtio_net.ko"])) {
		t.Errorf("report %+v, want 3 files and their bytes", r)
	}
}

func TestTruncatedPayload(t *testing.T) {
	root := makeRoot(t, files)
	list, _ := LoadList(root)
	// What a failed unpack leaves: the right size, a zero tail.
	p := filepath.Join(root, "bin/katana")
	b, _ := os.ReadFile(p)
	copy(b[len(b)/2:], bytes.Repeat([]byte{0}, len(b)/2))
	os.WriteFile(p, b, 0o755)
	_, err := Checker{Root: root, List: list}.All(nil)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "bin/katana") {
		t.Fatalf("err = %v, want a mismatch naming bin/katana", err)
	}
}

func TestWorkers(t *testing.T) {
	root := makeRoot(t, files)
	list, _ := LoadList(root)
	for _, w := range []int{1, 2, 8} {
		r, err := Checker{Root: root, List: list, Workers: w}.All(nil)
		if err != nil || r.Files != 4 {
			t.Errorf("workers %d: %+v, %v; want 4 files", w, r, err)
		}
	}
	// Two bad files: the error names the first by path, whatever the
	// scheduling.
	os.WriteFile(filepath.Join(root, "init"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("x"), 0o644)
	for range 20 {
		_, err := Checker{Root: root, List: list, Workers: 4}.All(nil)
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("err = %v, want mismatch", err)
		}
		if !strings.Contains(err.Error(), "etc/hosts") && !strings.Contains(err.Error(), "init") {
			t.Fatalf("err = %v names neither bad file", err)
		}
	}
}

func TestMissingFile(t *testing.T) {
	root := makeRoot(t, files)
	list, _ := LoadList(root)
	os.Remove(filepath.Join(root, "init"))
	_, err := Checker{Root: root, List: list}.All(nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "init") {
		t.Fatalf("err = %v, want not-exist naming init", err)
	}
}

func TestReadFile(t *testing.T) {
	root := makeRoot(t, files)
	list, _ := LoadList(root)
	c := Checker{Root: root, List: list}
	b, err := c.ReadFile("lib/modules/6.1/virtio_net.ko")
	if err != nil || string(b) != "module" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := c.ReadFile("lib/modules/6.1/other.ko"); !errors.Is(err, ErrNotListed) {
		t.Errorf("unlisted file: err = %v, want ErrNotListed", err)
	}
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("changed"), 0o644)
	if _, err := c.ReadFile("etc/hosts"); !errors.Is(err, ErrMismatch) {
		t.Errorf("changed file: err = %v, want ErrMismatch", err)
	}
	if err := c.File("etc/hosts"); !errors.Is(err, ErrMismatch) {
		t.Errorf("changed file (File): err = %v, want ErrMismatch", err)
	}
}

func TestLoadListErrors(t *testing.T) {
	if _, err := LoadList(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing list: err = %v, want not exist", err)
	}
	root := makeRoot(t, files)
	os.WriteFile(filepath.Join(root, initrdlayout.ContentsPath), []byte("garbage\n"), 0o644)
	if _, err := LoadList(root); !errors.Is(err, initrdlayout.ErrContents) {
		t.Errorf("bad list: err = %v, want ErrContents", err)
	}
}

func BenchmarkFile(b *testing.B) {
	root := b.TempDir()
	data := bytes.Repeat([]byte("x"), 64<<20)
	os.WriteFile(filepath.Join(root, "payload"), data, 0o644)
	c := Checker{Root: root, List: initrdlayout.Contents{"payload": sha256.Sum256(data)}}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := c.File("payload"); err != nil {
			b.Fatal(err)
		}
	}
}

// Every hasher gives crypto/sha256's result; the kernel one only where
// AF_ALG is available.
func TestHashers(t *testing.T) {
	hashers := []Hasher{GoHasher{}}
	if k, err := NewKernelHasher(); err == nil {
		hashers = append(hashers, k)
	} else {
		t.Logf("kernel hasher not tested: %v (load af_alg and algif_hash to enable)", err)
	}
	root := t.TempDir()
	for _, size := range []int{0, 1, 63, 64, 65, 1 << 20, 3<<20 + 17} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		for i := range data {
			data[i] = byte(i * 7 >> 3)
		}
		p := filepath.Join(root, "f")
		os.WriteFile(p, data, 0o644)
		for _, h := range hashers {
			f, _ := os.Open(p)
			sum, n, err := h.Sum(f)
			f.Close()
			if err != nil || n != int64(size) || sum != sha256.Sum256(data) {
				t.Errorf("%s hasher, %d bytes: sum ok=%v n=%d err=%v", h.Name(), size, sum == sha256.Sum256(data), n, err)
			}
			if sum, err := h.SumBytes(data); err != nil || sum != sha256.Sum256(data) {
				t.Errorf("%s hasher, SumBytes of %d bytes: sum ok=%v err=%v", h.Name(), size, sum == sha256.Sum256(data), err)
			}
		}
	}
}

func TestHashersRange(t *testing.T) {
	hashers := []Hasher{GoHasher{}}
	if k, err := NewKernelHasher(); err == nil {
		hashers = append(hashers, k)
	} else {
		t.Logf("kernel hasher not tested: %v (load af_alg and algif_hash to enable)", err)
	}
	data := make([]byte, 3<<20+5)
	for i := range data {
		data[i] = byte(i * 13 >> 2)
	}
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, data, 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, h := range hashers {
		for _, r := range [][2]int64{{0, int64(len(data))}, {1, 100}, {1 << 20, 2 << 20}, {int64(len(data)) - 1, 1}} {
			sum, err := h.SumRange(f, r[0], r[1])
			if err != nil || sum != sha256.Sum256(data[r[0]:r[0]+r[1]]) {
				t.Errorf("%s hasher, range %v: ok=%v err=%v", h.Name(), r, sum == sha256.Sum256(data[r[0]:r[0]+r[1]]), err)
			}
		}
		if _, err := h.SumRange(f, int64(len(data))-10, 20); err == nil {
			t.Errorf("%s hasher: a range past the end of the file was hashed without error", h.Name())
		}
	}
}

// Large files are checked chunk by chunk on several workers; a bad byte
// names the chunk, a short file its size.
func TestChunked(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (2*initrdlayout.ChunkSize+initrdlayout.ChunkSize/2)/16)
	root := makeRoot(t, map[string]string{"bin/katana": string(payload), "init": "init"})
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	chunks := initrdlayout.Chunks("bin/katana", payload)
	c := Checker{Root: root, List: list, Chunks: chunks, Workers: 3}
	r, err := c.All(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 2 || r.Bytes != int64(len(payload))+4 {
		t.Errorf("report %+v, want 2 files, %d bytes", r, len(payload)+4)
	}
	p := filepath.Join(root, "bin/katana")
	bad := bytes.Clone(payload)
	bad[initrdlayout.ChunkSize+5] ^= 1
	os.WriteFile(p, bad, 0o644)
	if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "bin/katana bytes 4194304-8388608") {
		t.Errorf("flipped byte in chunk 1: got %v", err)
	}
	os.WriteFile(p, payload[:len(payload)-1], 0o644)
	want := fmt.Sprintf("integrity: bin/katana is %d bytes, the chunk list says %d", len(payload)-1, len(payload))
	if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), want) {
		t.Errorf("truncated payload: got %v, want %q", err, want)
	}
	// Without the chunk list the same file is checked whole.
	os.WriteFile(p, payload, 0o644)
	if _, err := (Checker{Root: root, List: list}).All(nil); err != nil {
		t.Errorf("whole-file check: %v", err)
	}
}

// spliceTo runs move with the write end of a Unix socket pair standing in
// for the AF_ALG hash socket (AF_ALG needs kernel support that test
// machines may lack) and returns what arrived at the other end.
func spliceTo(t *testing.T, move func(op int) (int64, error)) ([]byte, int64, error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	n, err := move(fds[0])
	unix.Close(fds[0])
	return <-got, n, err
}

// The kernel hasher feeds its socket by splicing the file (from its offset
// to the end, or n bytes at off), or by copying when splicing is refused:
// exactly the bytes asked for, however many pipe-fulls they take.
func TestKernelHasherPlumbing(t *testing.T) {
	data := make([]byte, 3<<20+5)
	for i := range data {
		data[i] = byte(i * 13 >> 2)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(len(data))
	for _, tc := range []struct {
		name      string
		seek      int64 // file offset before a whole-file splice
		off, n    int64 // range; n < 0: from the file offset to the end
		wantBytes []byte
	}{
		{"whole file", 0, 0, -1, data},
		{"from the file offset", 100, 0, -1, data[100:]},
		{"range at 0", 0, 0, 100, data[:100]},
		{"range inside", 0, 1, 100, data[1:101]},
		{"range over several pipe-fulls", 0, 1 << 20, 2<<20 + 3, data[1<<20 : 3<<20+3]},
		{"last byte", 0, size - 1, 1, data[size-1:]},
		{"range past the end", 0, size - 10, 20, data[size-10:]},
		{"empty range", 0, 5, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := spliceTo(t, func(op int) (int64, error) {
				if tc.n < 0 {
					if _, err := f.Seek(tc.seek, io.SeekStart); err != nil {
						t.Fatal(err)
					}
					total, spliced, err := splice(f, op, nil, -1)
					if !spliced {
						t.Fatalf("splice refused: %v", err)
					}
					return total, err
				}
				pos := tc.off
				total, spliced, err := splice(f, op, &pos, tc.n)
				if !spliced {
					t.Fatalf("splice refused: %v", err)
				}
				return total, err
			})
			if err != nil || total != int64(len(tc.wantBytes)) || !bytes.Equal(got, tc.wantBytes) {
				t.Errorf("splice: %d bytes reported, %d arrived, equal %v, err %v; want %d bytes", total, len(got), bytes.Equal(got, tc.wantBytes), err, len(tc.wantBytes))
			}
			// The copy taken when splicing is refused moves the same bytes.
			var r io.Reader
			if tc.n < 0 {
				r = bytes.NewReader(data[tc.seek:])
			} else {
				r = io.NewSectionReader(f, tc.off, tc.n)
			}
			got, total, err = spliceTo(t, func(op int) (int64, error) { return copyAll(r, op) })
			if err != nil || total != int64(len(tc.wantBytes)) || !bytes.Equal(got, tc.wantBytes) {
				t.Errorf("copyAll: %d bytes reported, %d arrived, equal %v, err %v; want %d bytes", total, len(got), bytes.Equal(got, tc.wantBytes), err, len(tc.wantBytes))
			}
		})
	}
}

// failingRanges is GoHasher with SumRange failing.
type failingRanges struct{ GoHasher }

func (failingRanges) Name() string { return "failing" }

func (failingRanges) SumRange(*os.File, int64, int64) ([32]byte, error) {
	return [32]byte{}, errors.New("device gone")
}

// One worker meets the files largest first, those of one size by path,
// a file's chunks in order, and stops at the first bad one: the error
// names it.
func TestAllReportsFirstBadMet(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (2*initrdlayout.ChunkSize+100)/16)
	root := makeRoot(t, map[string]string{
		"bin/katana": string(payload),
		"a":          "small file",
		"b":          strings.Repeat("larger file", 10),
		"c":          strings.Repeat("larger file", 10),
	})
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	chunks := initrdlayout.Chunks("bin/katana", payload)
	damage := func(rel string, at ...int) {
		t.Helper()
		p := filepath.Join(root, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range at {
			b[i] ^= 1
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := Checker{Root: root, List: list, Workers: 1, Chunks: chunks}
	damage("a", 0)
	damage("c", 0)
	if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "integrity: c (110 bytes") {
		t.Errorf("a and c bad: got %v, want c, the larger, met first", err)
	}
	damage("b", 0)
	for range 20 { // whatever the list's (map) order
		if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "integrity: b (110 bytes") {
			t.Fatalf("a, b and c bad: got %v, want b, first by path of the two larger", err)
		}
	}
	damage("bin/katana", initrdlayout.ChunkSize+1, 1)
	if _, err := c.All(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "integrity: bin/katana bytes 0-4194304 (sha256") {
		t.Errorf("chunks 0 and 1 and three files bad: got %v, want chunk 0, met first", err)
	}
	// A hasher that fails names the piece and itself.
	c.Hash = failingRanges{}
	if _, err := c.All(nil); err == nil || !strings.Contains(err.Error(), "integrity: hashing bin/katana bytes 0-4194304 (failing): device gone") {
		t.Errorf("failing hasher: got %v", err)
	}
}

// A hash socket that stops taking bytes is an error, not a hang or a
// short hash.
func TestKernelHasherPlumbingSendError(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	unix.Close(fds[1])
	if _, err := copyAll(bytes.NewReader(make([]byte, 100)), fds[0]); !errors.Is(err, unix.EPIPE) {
		t.Errorf("copyAll to a closed socket: %v, want EPIPE", err)
	}
}

// panicHasher panics on every file, like a bug in a Hasher would.
type panicHasher struct{ GoHasher }

func (panicHasher) Sum(*os.File) ([32]byte, int64, error) { panic("hasher bug") }
func (panicHasher) SumRange(*os.File, int64, int64) ([32]byte, error) {
	panic("hasher bug")
}

// All runs its workers in goroutines of PID 1: a panic in one of them
// must come back as an error naming the file, never end the process (the
// init's own recover in the goroutine that calls All does not cover the
// goroutines All starts, and PID 1 exiting is a kernel panic).
func TestAllRecoversWorkerPanic(t *testing.T) {
	root := makeRoot(t, files)
	list, err := LoadList(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Checker{Root: root, List: list, Hash: panicHasher{}}.All(nil)
	if err == nil || !strings.Contains(err.Error(), "hasher bug") || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("All with a panicking hasher: err %v, want an error naming the panic", err)
	}
}

// within runs f and fails the test if it has not returned after 5 s: a
// FIFO blocks in open and /dev/zero never ends, so the old code hung.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still running after 5 s: the boot would hang, with no boot error", what)
		return nil
	}
}

// A listed path that a damaged archive left as something other than a
// regular file (a FIFO, a symbolic link, even to the right bytes, a
// directory) is an error naming it, from every reader: All, File,
// ReadFile, LoadList and Open. None of them blocks.
func TestNotRegularFile(t *testing.T) {
	for _, tc := range []struct {
		kind string
		make func(t *testing.T, root, p string)
	}{
		{"FIFO", func(t *testing.T, root, p string) {
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"symbolic link", func(t *testing.T, root, p string) { // to /dev/zero
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"symbolic link", func(t *testing.T, root, p string) { // to the listed bytes
			if err := os.WriteFile(filepath.Join(root, "hosts.real"), []byte(files["etc/hosts"]), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../hosts.real", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, root, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			root := makeRoot(t, files)
			list, err := LoadList(root)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "etc/hosts")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			tc.make(t, root, p)
			c := Checker{Root: root, List: list, Hash: GoHasher{}}
			for name, f := range map[string]func() error{
				"All":      func() error { _, err := c.All(nil); return err },
				"File":     func() error { return c.File("etc/hosts") },
				"ReadFile": func() error { _, err := c.ReadFile("etc/hosts"); return err },
				"Open": func() error {
					f, err := Open(p)
					if err == nil {
						f.Close()
					}
					return err
				},
			} {
				err := within(t, name, f)
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "etc/hosts is a "+tc.kind) {
					t.Errorf("%s on etc/hosts as a %s: %v; want it named, %v", name, tc.kind, err, ErrNotRegular)
				}
			}
		})
	}
	// The content list itself as a FIFO.
	root := makeRoot(t, files)
	p := filepath.Join(root, initrdlayout.ContentsPath)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := within(t, "LoadList", func() error { _, err := LoadList(root); return err }); !errors.Is(err, ErrNotRegular) {
		t.Errorf("LoadList of a FIFO: %v", err)
	}
	// A regular file opens, and reads in blocking mode.
	f, err := Open(filepath.Join(root, "etc/hosts"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("Open left flags %#x (%v): want O_NONBLOCK cleared", fl, err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != files["etc/hosts"] {
		t.Errorf("read %q, %v", b, err)
	}
}

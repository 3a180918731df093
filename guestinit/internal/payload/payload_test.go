package payload

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

// pack writes data as frames of size bytes under a new root, the way
// hostbuild pack lays them out, and returns the root and the list.
func pack(t *testing.T, data []byte, size int) (string, initrdlayout.Frames) {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	fr := initrdlayout.Frames{Size: int64(len(data)), SHA256: sha256.Sum256(data)}
	var blob []byte
	for off := 0; off < len(data); off += size {
		part := data[off:min(off+size, len(data))]
		z := enc.EncodeAll(part, nil)
		fr.List = append(fr.List, initrdlayout.Frame{Off: int64(len(blob)), Len: int64(len(z)), Size: int64(len(part)), Sum: sha256.Sum256(z)})
		blob = append(blob, z...)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, initrdlayout.PackedPayloadPath), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return root, fr
}

func payloadBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7>>3) ^ byte(i>>13)
	}
	return b
}

func TestUnpack(t *testing.T) {
	data := payloadBytes(1<<20 + 12345)
	for _, workers := range []int{1, 2, 5} {
		root, fr := pack(t, data, 256<<10)
		r, err := Unpack(Options{Root: root, Frames: fr, Workers: workers})
		if err != nil {
			t.Fatalf("workers %d: %v", workers, err)
		}
		got, err := os.ReadFile(filepath.Join(root, initrdlayout.PayloadPath))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("workers %d: payload differs (%v)", workers, err)
		}
		st, _ := os.Stat(filepath.Join(root, initrdlayout.PayloadPath))
		if st.Mode().Perm() != 0o755 {
			t.Errorf("workers %d: mode %v, want 0755", workers, st.Mode())
		}
		if _, err := os.Stat(filepath.Join(root, initrdlayout.PackedPayloadPath)); !os.IsNotExist(err) {
			t.Errorf("workers %d: packed payload left behind (%v)", workers, err)
		}
		if r.Frames != 5 || r.Size != int64(len(data)) || r.Packed != fr.Packed() {
			t.Errorf("workers %d: report %+v", workers, r)
		}
	}
}

// nothingLeft checks that a failed Unpack left no payload, whole or partial.
func nothingLeft(t *testing.T, root string) {
	t.Helper()
	for _, p := range []string{initrdlayout.PayloadPath, initrdlayout.PayloadPath + ".partial"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s left behind after a failed unpack (%v)", p, err)
		}
	}
}

func TestUnpackRefuses(t *testing.T) {
	data := payloadBytes(600 << 10)
	_, fr0 := pack(t, data, 200<<10) // the frames every case starts from
	for _, tc := range []struct {
		name   string
		damage func(root string, fr *initrdlayout.Frames)
		want   []string
		is     error
	}{
		{"flipped byte in frame 1", func(root string, fr *initrdlayout.Frames) {
			p := filepath.Join(root, initrdlayout.PackedPayloadPath)
			b, _ := os.ReadFile(p)
			b[fr.List[1].Off+3] ^= 1
			os.WriteFile(p, b, 0o644)
		}, []string{"bin/katana.zst frame 1 (bytes", "does not match the content list"}, integrity.ErrMismatch},
		{"flipped byte in frame 2", func(root string, fr *initrdlayout.Frames) {
			p := filepath.Join(root, initrdlayout.PackedPayloadPath)
			b, _ := os.ReadFile(p)
			b[fr.List[2].Off] ^= 1
			os.WriteFile(p, b, 0o644)
		}, []string{fmt.Sprintf("bin/katana.zst frame 2 (bytes %d-%d) (sha256 ", fr0.List[2].Off, fr0.List[2].Off+fr0.List[2].Len)}, integrity.ErrMismatch},
		{"truncated", func(root string, fr *initrdlayout.Frames) {
			os.Truncate(filepath.Join(root, initrdlayout.PackedPayloadPath), fr.Packed()-1)
		}, []string{"bin/katana.zst is", "the frame list says", "truncated initrd unpack"}, integrity.ErrMismatch},
		{"missing", func(root string, fr *initrdlayout.Frames) {
			os.Remove(filepath.Join(root, initrdlayout.PackedPayloadPath))
		}, []string{"bin/katana.zst", "no such file"}, os.ErrNotExist},
		{"frame decodes to another size", func(root string, fr *initrdlayout.Frames) {
			fr.List[2].Size--
			fr.Size--
		}, []string{"decoding bin/katana.zst frame 2", "decodes to"}, nil},
		{"checked bytes are not zstd", func(root string, fr *initrdlayout.Frames) {
			p := filepath.Join(root, initrdlayout.PackedPayloadPath)
			b, _ := os.ReadFile(p)
			copy(b[fr.List[0].Off:], "garbage!")
			os.WriteFile(p, b, 0o644)
			fr.List[0].Sum = sha256.Sum256(b[fr.List[0].Off : fr.List[0].Off+fr.List[0].Len])
		}, []string{"decoding bin/katana.zst frame 0", "zstd"}, nil},
		{"payload already there", func(root string, fr *initrdlayout.Frames) {
			os.WriteFile(filepath.Join(root, initrdlayout.PayloadPath), []byte("x"), 0o755)
		}, []string{"refusing an ambiguous payload"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, fr := pack(t, data, 200<<10)
			tc.damage(root, &fr)
			_, err := Unpack(Options{Root: root, Frames: fr, Workers: 2})
			if err == nil {
				t.Fatal("Unpack succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.name != "payload already there" {
				nothingLeft(t, root)
			}
		})
	}
}

// A guest without room for the decoded payload plus Headroom is refused
// before anything is written (the kernel would otherwise panic on the OOM
// with only PID 1 to kill); with exactly enough it unpacks.
func TestUnpackShortOfMemory(t *testing.T) {
	data := payloadBytes(300 << 10)
	meminfo := func(root string, avail int64) string {
		p := filepath.Join(root, "meminfo")
		body := fmt.Sprintf("MemTotal:         112200 kB\nMemFree:           70008 kB\nMemAvailable:   %8d kB\nBuffers:               0 kB\n", avail/1024)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, fr := pack(t, data, 100<<10)
	need := (fr.Size + Headroom + 1023) / 1024 * 1024
	_, err := Unpack(Options{Root: root, Frames: fr, Meminfo: meminfo(root, need-1024)})
	if err == nil {
		t.Fatal("Unpack succeeded with too little memory")
	}
	for _, w := range []string{"the guest has 32 MiB of memory available", "bin/katana needs 1 MiB decoded plus 32 MiB", "hostbuild run --memory"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	nothingLeft(t, root)
	if _, err := os.Stat(filepath.Join(root, initrdlayout.PackedPayloadPath)); err != nil {
		t.Errorf("packed payload gone after the refusal: %v", err)
	}

	root, fr = pack(t, data, 100<<10)
	if _, err := Unpack(Options{Root: root, Frames: fr, Meminfo: meminfo(root, need)}); err != nil {
		t.Fatalf("with exactly enough memory: %v", err)
	}
	// No report, or no MemAvailable in it: the check is skipped.
	noAvail := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(noAvail, []byte("MemTotal:         112200 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mi := range []string{filepath.Join(t.TempDir(), "absent"), noAvail} {
		root, fr := pack(t, data, 100<<10)
		if _, err := Unpack(Options{Root: root, Frames: fr, Meminfo: mi}); err != nil {
			t.Errorf("meminfo %s: %v", mi, err)
		}
	}
}

func TestMemAvailable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"MemTotal: 983496 kB\nMemFree: 910932 kB\nMemAvailable: 844080 kB\n", 844080 * 1024, true},
		{"MemAvailable:0 kB", 0, true},
		{"MemTotal: 983496 kB\n", 0, false},
		{"MemAvailable: 844080\n", 0, false},
		{"MemAvailable: 844080 MB\n", 0, false},
		{"MemAvailable: -1 kB\n", 0, false},
		{"MemAvailable: 9223372036854775807 kB\n", 0, false},
		{"MemAvailable: 9007199254740991 kB\n", 9007199254740991 * 1024, true}, // the largest that fits
		{"MemAvailable: 9007199254740992 kB\n", 0, false},
		{"MemAvailable: 12 34 kB\n", 0, false},
		{"", 0, false},
	} {
		got, ok := memAvailable([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("memAvailable(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// HugeTmpfs: where mounting is allowed (root), the payload lands on a
// read-only huge-page tmpfs over bin/; elsewhere the mount fails, the
// report says why and the payload is written to the root as usual. Either
// way the packed file is gone and the payload is whole.
func TestUnpackHugeTmpfs(t *testing.T) {
	data := payloadBytes(3<<20 + 5)
	root, fr := pack(t, data, 1<<20)
	bin := filepath.Join(root, "bin")
	// Whatever Unpack returns, even an error after it mounted: a mount
	// left on the temporary folder outlives the test (EINVAL when none).
	t.Cleanup(func() { unix.Unmount(bin, unix.MNT_DETACH) })
	r, err := Unpack(Options{Root: root, Frames: fr, Workers: 2, HugeTmpfs: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, initrdlayout.PayloadPath))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("payload differs (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, initrdlayout.PackedPayloadPath)); !os.IsNotExist(err) {
		t.Errorf("packed payload still visible (%v)", err)
	}
	if !r.OnHugeTmpfs {
		t.Logf("huge-page tmpfs path not exercised here (%s); run the test as root to exercise it", r.Note)
		if !strings.Contains(r.Note, "no huge-page tmpfs on") {
			t.Errorf("note %q does not say why there is no tmpfs", r.Note)
		}
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(bin, &st); err != nil || st.Type != unix.TMPFS_MAGIC || st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("%s: statfs type %#x flags %#x (%v), want a read-only tmpfs", bin, st.Type, st.Flags, err)
	}
	if err := os.WriteFile(filepath.Join(bin, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing beside the payload: %v, want EROFS", err)
	}
}

// Workers 0 (the init's setting) means one per CPU, at most 4: every frame
// is still checked and decoded, a bad one still refused.
func TestUnpackDefaultWorkers(t *testing.T) {
	data := payloadBytes(1<<20 + 7)
	root, fr := pack(t, data, 128<<10)
	if _, err := Unpack(Options{Root: root, Frames: fr}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, initrdlayout.PayloadPath)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("payload differs (%v)", err)
	}
	root, fr = pack(t, data, 128<<10)
	p := filepath.Join(root, initrdlayout.PackedPayloadPath)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[fr.List[len(fr.List)-1].Off] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(Options{Root: root, Frames: fr}); !errors.Is(err, integrity.ErrMismatch) || !strings.Contains(err.Error(), fmt.Sprintf("frame %d ", len(fr.List)-1)) {
		t.Errorf("flipped byte in the last frame: got %v, want a mismatch naming it", err)
	}
	nothingLeft(t, root)
}

// The smallest payload: one byte in one frame.
func TestUnpackOneByte(t *testing.T) {
	root, fr := pack(t, []byte{'k'}, 1)
	if _, err := Unpack(Options{Root: root, Frames: fr, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, initrdlayout.PayloadPath)); err != nil || string(got) != "k" {
		t.Errorf("payload %q (%v), want \"k\"", got, err)
	}
}

// The refusal rounds the payload up to whole MiB: 1 MiB is 1, one byte
// more is 2.
func TestCheckMemoryMessage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("MemAvailable:    1024 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for size, want := range map[int64]string{1 << 20: "needs 1 MiB decoded", 1<<20 + 1: "needs 2 MiB decoded"} {
		if err := checkMemory(p, size); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkMemory(%d bytes): %v, want %q", size, err, want)
		}
	}
}

// bin/katana.zst left as a FIFO or a symbolic link by a damaged archive
// (the payload's archive is stored, with no checksum of its own) is a boot
// error naming it, not an open that blocks for ever; nothing is written.
func TestUnpackNotRegular(t *testing.T) {
	for _, kind := range []string{"FIFO", "symbolic link"} {
		t.Run(kind, func(t *testing.T) {
			root, fr := pack(t, payloadBytes(300<<10), 100<<10)
			p := filepath.Join(root, initrdlayout.PackedPayloadPath)
			if kind == "FIFO" {
				os.Remove(p)
				if err := unix.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Rename(p, p+".real"); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Base(p)+".real", p); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { _, err := Unpack(Options{Root: root, Frames: fr}); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, integrity.ErrNotRegular) || !strings.Contains(err.Error(), initrdlayout.PackedPayloadPath+" is a "+kind) {
					t.Errorf("Unpack: %v; want %s named as a %s", err, initrdlayout.PackedPayloadPath, kind)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Unpack still running after 5 s on a %s: the boot would hang", kind)
			}
			if _, err := os.Lstat(filepath.Join(root, initrdlayout.PayloadPath)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after a failed unpack: %v", initrdlayout.PayloadPath, err)
			}
		})
	}
}

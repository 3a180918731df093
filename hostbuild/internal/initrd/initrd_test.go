package initrd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/testelf"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/xzguard"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// inputs writes a small init, payload and module tree into dir.
func inputs(t testing.TB, dir string) Options {
	t.Helper()
	write := func(rel string, data []byte) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mods := filepath.Join("lib", "modules", "6.9.0-test", "kernel")
	write(filepath.Join(mods, "drivers/virtio/virtio_pci.ko"), testelf.Module("depends=virtio", "name=virtio_pci"))
	write(filepath.Join(mods, "drivers/virtio/virtio.ko"), testelf.Module("depends=", "name=virtio"))
	write(filepath.Join(mods, "drivers/net/virtio_net.ko"), testelf.Module("depends=virtio", "name=virtio_net"))
	write(filepath.Join(mods, "net/vsock.ko"), testelf.Module("depends=", "name=vsock"))
	return Options{
		Init:          write("init", testelf.Executable("", []byte("the init"))),
		Payload:       write("katana", testelf.Executable("", bytes.Repeat([]byte("katana "), 1000))),
		KernelModules: dir,
		CABundle:      write("ca.pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")),
		Compression:   "zstd",
	}
}

// packAndRead packs o to a temporary file and reads it back.
func packAndRead(t testing.TB, o Options) (*Result, *Archive) {
	t.Helper()
	o.Output = filepath.Join(t.TempDir(), "initrd.img")
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	return res, a
}

func pack(t testing.TB, o Options) []byte {
	t.Helper()
	if o.Output == "" {
		o.Output = filepath.Join(t.TempDir(), "initrd.img")
	}
	if _, err := Pack(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenListing(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"virtio_net", "virtio_pci"}
	o.SourceDateEpoch = 1700000000
	a, err := Read(bytes.NewReader(pack(t, o)))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	a.WriteListing(&got)
	golden := filepath.Join("testdata", "small.listing")
	if *update {
		os.WriteFile(golden, got.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	// The content list covers every regular file but itself, and is right.
	for _, e := range a.Entries {
		if e.MTime != 1700000000 || e.UID != 0 || e.GID != 0 {
			t.Errorf("%s: mtime %d owner %d:%d", e.Path, e.MTime, e.UID, e.GID)
		}
	}
}

func TestContentListAndModuleList(t *testing.T) {
	o := inputs(t, t.TempDir())
	out := filepath.Join(t.TempDir(), "i.img")
	o.Output = out
	o.Compression = "none"
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range a.Entries {
		if e.Type != "file" || e.Path == initrdlayout.ContentsPath {
			continue
		}
		files++
		sum, ok := res.Contents[e.Path]
		if !ok {
			t.Errorf("%s missing from the content list", e.Path)
		} else if got := strings.ToLower(e.SHA256); got != hexs(sum) {
			t.Errorf("%s: content list says %s, archive has %s", e.Path, hexs(sum), got)
		}
	}
	if files != len(res.Contents) {
		t.Errorf("content list has %d entries, archive %d files", len(res.Contents), files)
	}
	// Default modules: those the tree has, dependencies first.
	if diff := cmp.Diff([]string{"virtio", "virtio_net", "virtio_pci", "vsock"}, res.Modules); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(res.Skipped, " "), "sev-guest") {
		t.Errorf("skipped %v: want sev-guest reported as absent", res.Skipped)
	}
}

// Named explicitly, a default the tree lacks is skipped as it is in the
// default list ("repeat the defaults to add to them" on a kernel without
// tsm failed: module not found); a name that is no default still fails.
func TestNamedDefaultAbsentIsSkipped(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Output = filepath.Join(t.TempDir(), "i.img")
	o.Modules = []string{"virtio_pci", "virtio_net", "sev_guest", "tsm", "vsock"}
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"virtio", "virtio_net", "virtio_pci", "vsock"}, res.Modules); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sev_guest", "tsm"}, res.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sev_guest", "tsm"}, res.NamedAbsent); diff != "" {
		t.Errorf("named and absent (-want +got):\n%s", diff)
	}
	o.Modules = []string{"virtio_pci", "qemu_fw_cfg"}
	if _, err := Pack(context.Background(), o); err == nil || !strings.Contains(err.Error(), `module "qemu_fw_cfg" is not in`) {
		t.Errorf("a module that is no default and not in the tree: %v", err)
	}
}

func hexs(b [32]byte) string {
	const d = "0123456789abcdef"
	var s []byte
	for _, c := range b {
		s = append(s, d[c>>4], d[c&15])
	}
	return string(s)
}

// Same inputs, different environment: umask (so the inputs' modes too),
// input mtimes, module request order, a copy of the inputs elsewhere
// (directory creation order), the working directory and GOMAXPROCS. TZ
// and locale are varied across processes by the hostbuild command's test.
// The payload is large enough for several frames, which are encoded on
// GOMAXPROCS goroutines at once, and the operator's files are packed too.
func TestReproducible(t *testing.T) {
	// Three frames (frameMin each at most), and a file and an executable
	// of the operator's, written as inputs writes its files (modes from
	// the umask).
	more := func(dir string, o *Options) {
		for name, data := range map[string][]byte{
			"katana":     testelf.Executable("", bytes.Repeat([]byte("katana frames "), 3*frameMin/14)),
			"chain.toml": []byte("chain_id = \"KATANA\"\n"),
			"sidecar":    testelf.Executable("", []byte("sidecar")),
		} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		o.Files = []File{{Source: filepath.Join(dir, "chain.toml"), Dest: "/etc/katana/chain.toml"}, {Source: filepath.Join(dir, "sidecar"), Dest: "/usr/local/bin/sidecar", Exec: true}}
	}
	for _, comp := range Compressions {
		t.Run(comp, func(t *testing.T) {
			dirA := t.TempDir()
			oa := inputs(t, dirA)
			more(dirA, &oa)
			oa.Compression = comp
			oa.Modules = []string{"virtio_net", "virtio_pci", "vsock"}
			a := pack(t, oa)

			old := syscall.Umask(0o077)
			defer syscall.Umask(old)
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			dirB := t.TempDir()
			ob := inputs(t, dirB)
			more(dirB, &ob)
			ob.Files[0], ob.Files[1] = ob.Files[1], ob.Files[0]
			ob.Compression = comp
			ob.Modules = []string{"vsock", "virtio-pci", "virtio_net"}
			future := time.Now().Add(48 * time.Hour)
			filepath.Walk(dirB, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, future, future) })
			wd, _ := os.Getwd()
			defer os.Chdir(wd)
			os.Chdir(dirB)
			ob.Init, ob.Payload, ob.CABundle, ob.KernelModules = "init", "./katana", "ca.pem", "lib/modules/6.9.0-test"
			b := pack(t, ob)
			if !bytes.Equal(a, b) {
				t.Errorf("%s: two builds of the same inputs differ (%d vs %d bytes)", comp, len(a), len(b))
			}
			if fa, err := Read(bytes.NewReader(a)); err != nil || fa.Payload == nil || fa.Payload.Frames < 3 {
				t.Errorf("%s: want a payload in 3 frames or more (%v)", comp, err)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	base := inputs(t, dir)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o755)
		return p
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"dynamic payload", func(o *Options) {
			o.Payload = write("dyn", testelf.Executable("/lib64/ld-linux-x86-64.so.2", []byte("x")))
		}, "dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"},
		{"arm64 payload", func(o *Options) { o.Payload = write("arm", testelf.ExecutableFor(183, []byte("x"))) }, "not x86-64"},
		{"script payload", func(o *Options) { o.Payload = write("sh", []byte("#!/bin/sh\necho hi\n")) }, "a script (#!/bin/sh), not an ELF executable; the initrd has no interpreter"},
		{"missing payload", func(o *Options) { o.Payload = filepath.Join(dir, "nope") }, "payload " + filepath.Join(dir, "nope")},
		{"payload is a folder", func(o *Options) { o.Payload = dir }, "is not a regular file"},
		// Refused at once: the read once waited for a writer for ever.
		{"CA bundle is a FIFO", func(o *Options) {
			o.CABundle = filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(o.CABundle, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "CA bundle " + filepath.Join(dir, "fifo") + " is not a regular file (p"},
		{"unknown module", func(o *Options) { o.Modules = []string{"virtio_nte"} }, `module "virtio_nte" is not in`},
		{"unknown module suggests", func(o *Options) { o.Modules = []string{"virtio_nte"} }, "closest names: virtio_net"},
		{"missing dependency", func(o *Options) {
			os.Remove(filepath.Join(dir, "lib/modules/6.9.0-test/kernel/drivers/virtio/virtio.ko"))
			o.Modules = []string{"virtio_net"}
		}, `"virtio" (a dependency of virtio_net)`},
		{"not a CA bundle", func(o *Options) { o.CABundle = write("ca.txt", []byte("hello")) }, "holds no PEM certificate"},
		{"bad compression", func(o *Options) { o.Compression = "lz4" }, `--compress "lz4": want zstd, gzip, none`},
		{"bad payload encoding", func(o *Options) { o.PayloadEncoding = "squashfs" }, `--payload-encoding "squashfs": want frames or inline`},
		{"epoch out of range", func(o *Options) { o.SourceDateEpoch = 1 << 32 }, "SOURCE_DATE_EPOCH 4294967296 is out of range"},
		{"modules without a tree", func(o *Options) { o.Modules, o.KernelModules = []string{"virtio_net"}, "" }, "--module virtio_net needs --kernel-modules DIR"},
		{"file outside /etc/katana", func(o *Options) { o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/passwd"}} }, "DEST must be a file under /etc/katana/"},
		{"file at /etc/katana itself", func(o *Options) { o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/"}} }, "DEST must be a file under /etc/katana/"},
		{"file with a relative DEST", func(o *Options) { o.Files = []File{{Source: write("c", []byte("x")), Dest: "etc/katana/c"}} }, "DEST must be a file under /etc/katana/"},
		{"file climbing out", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/../guestinit/contents.sha256"}}
		}, "DEST is not a clean path"},
		{"file with a trailing slash", func(o *Options) { o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/chain/"}} }, "say /etc/katana/chain"},
		{"file with a newline", func(o *Options) { o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/a\nb"}} }, `"/etc/katana/a\nb": DEST holds a character`},
		{"file with a C1 control character", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/a\u0085b"}}
		}, "DEST holds a character"},
		{"file with a byte that is not UTF-8", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/a\xffb"}}
		}, "DEST holds a character"},
		{"file with a name over 255 bytes", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/" + strings.Repeat("g", 256)}}
		}, "DEST has a name over 255 bytes"},
		{"file with a path of 4096 bytes", func(o *Options) {
			dest := "/etc/katana" + strings.Repeat("/"+strings.Repeat("d", 99), 41)
			o.Files = []File{{Source: write("c", []byte("x")), Dest: dest[:4096]}}
		}, "DEST is 4096 bytes"},
		{"file twice", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/c"}, {Source: write("d", []byte("y")), Dest: "/etc/katana/c"}}
		}, "--file ...:/etc/katana/c given twice"},
		{"file inside a file", func(o *Options) {
			o.Files = []File{{Source: write("c", []byte("x")), Dest: "/etc/katana/chain"}, {Source: write("d", []byte("y")), Dest: "/etc/katana/chain/config.toml"}}
		}, "--file ...:/etc/katana/chain/config.toml is inside --file ...:/etc/katana/chain, a file"},
		{"exec outside /usr/local/bin", func(o *Options) {
			o.Files = []File{{Source: write("s", testelf.Executable("", []byte("x"))), Dest: "/bin/sidecar", Exec: true}}
		}, "--exec " + filepath.Join(dir, "s") + ":/bin/sidecar: DEST must be /usr/local/bin/NAME"},
		{"exec in a subfolder", func(o *Options) {
			o.Files = []File{{Source: write("s", testelf.Executable("", []byte("x"))), Dest: "/usr/local/bin/a/b", Exec: true}}
		}, "DEST must be one name in /usr/local/bin/, not a path under it"},
		{"exec not clean", func(o *Options) {
			o.Files = []File{{Source: write("s", testelf.Executable("", []byte("x"))), Dest: "/usr/local/bin/../sbin/x", Exec: true}}
		}, "--exec " + filepath.Join(dir, "s") + ":/usr/local/bin/../sbin/x: DEST is not a clean path"},
		{"exec twice", func(o *Options) {
			e := write("s", testelf.Executable("", []byte("x")))
			o.Files = []File{{Source: e, Dest: "/usr/local/bin/s", Exec: true}, {Source: e, Dest: "/usr/local/bin/s", Exec: true}}
		}, "--exec ...:/usr/local/bin/s given twice"},
		{"exec dynamic", func(o *Options) {
			o.Files = []File{{Source: write("dyn", testelf.Executable("/lib64/ld-linux-x86-64.so.2", []byte("x"))), Dest: "/usr/local/bin/vrf-server", Exec: true}}
		}, "--exec /usr/local/bin/vrf-server " + filepath.Join(dir, "dyn") + ": dynamically linked"},
		{"exec not an ELF", func(o *Options) {
			o.Files = []File{{Source: write("sh", []byte("#!/bin/sh\n")), Dest: "/usr/local/bin/x", Exec: true}}
		}, "not an ELF executable"},
		{"missing file", func(o *Options) { o.Files = []File{{Source: filepath.Join(dir, "nope.toml"), Dest: "/etc/katana/c"}} }, "--file /etc/katana/c " + filepath.Join(dir, "nope.toml")},
		{"file is a FIFO", func(o *Options) {
			p := filepath.Join(dir, "fifo2")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			o.Files = []File{{Source: p, Dest: "/etc/katana/c"}}
		}, "is not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			o.Output = filepath.Join(t.TempDir(), "out.img")
			_, err := Pack(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
			if _, serr := os.Stat(o.Output); !os.IsNotExist(serr) {
				t.Errorf("a failed pack left %s behind", o.Output)
			}
		})
	}
	if _, err := Pack(context.Background(), Options{Payload: "x", Output: "y"}); !errors.Is(err, ErrInput) {
		t.Errorf("missing init: got %v, want ErrInput", err)
	}
}

// A cancelled run leaves neither the output nor its temporary file.
func TestAtomicOnCancel(t *testing.T) {
	o := inputs(t, t.TempDir())
	outDir := t.TempDir()
	o.Output = filepath.Join(outDir, "initrd.img")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Pack(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("cancelled pack left %v", ents)
	}
	// An existing output is not touched by a failed run.
	os.WriteFile(o.Output, []byte("previous"), 0o644)
	o.Payload = filepath.Join(outDir, "missing")
	if _, err := Pack(context.Background(), o); err == nil {
		t.Fatal("pack with a missing payload succeeded")
	}
	if b, _ := os.ReadFile(o.Output); string(b) != "previous" {
		t.Errorf("failed pack changed the existing output to %q", b)
	}
}

func TestDiff(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Modules = []string{"vsock"}
	a, _ := Read(bytes.NewReader(pack(t, o)))
	if ch := Diff(a, a); len(ch) != 0 {
		t.Errorf("diff of an initrd with itself: %v", ch)
	}
	o2 := o
	o2.Payload = filepath.Join(dir, "katana2")
	os.WriteFile(o2.Payload, testelf.Executable("", []byte("other katana")), 0o755)
	o2.Modules = []string{"virtio_net"}
	o2.SourceDateEpoch = 5
	b, _ := Read(bytes.NewReader(pack(t, o2)))
	kinds := map[string][]string{}
	for _, c := range Diff(a, b) {
		kinds[c.Kind] = append(kinds[c.Kind], c.Path)
	}
	for kind, path := range map[string]string{
		"content": "bin/katana.zst",
		"added":   "lib/modules/6.9.0-test/kernel/drivers/net/virtio_net.ko",
		"removed": "lib/modules/6.9.0-test/kernel/net/vsock.ko",
		"mtime":   "init",
	} {
		if !strings.Contains(strings.Join(kinds[kind], " "), path) {
			t.Errorf("diff lacks %s of %s; got %v", kind, path, kinds)
		}
	}
	// Same entries, other compression: the diff says so.
	o3 := o
	o3.Compression = "gzip"
	c, _ := Read(bytes.NewReader(pack(t, o3)))
	ch := Diff(a, c)
	if len(ch) != 1 || ch[0].Kind != "archive" || ch[0].A != "zstd+none" || ch[0].B != "gzip+none" {
		t.Errorf("diff across compressions: %v", ch)
	}
}

func TestReadRejects(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Compression = "none"
	good := pack(t, o)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"unknown", []byte("MZ\x90\x00 this is not an initrd at all"), "no cpio header"},
		{"lz4", []byte{0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0}, "lz4-compressed"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"no trailer", good[:len(good)-124], "truncated header"},
		{"bad gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3}, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	for _, comp := range Compressions {
		o := inputs(f, f.TempDir())
		o.Compression = comp
		o.Modules = []string{"vsock"}
		f.Add(pack(f, o))
	}
	f.Add([]byte("070701"))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	maxUnpacked, zstdMaxWindow = 16<<20, 1<<20
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data))
		// The same bytes read in other pieces give the same archive, or
		// the same refusal at the same place: what Read makes of an
		// initrd depends on its bytes only, not on how a reader splits
		// them (a file, a pipe).
		var small io.Reader = iotest.OneByteReader(bytes.NewReader(data))
		if len(data) > 1<<20 {
			small = iotest.HalfReader(bytes.NewReader(data))
		}
		b, errSmall := Read(small)
		if (err == nil) != (errSmall == nil) || err != nil && err.Error() != errSmall.Error() {
			t.Fatalf("Read of the same bytes in small pieces: %v, then %v", err, errSmall)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty refusal")
			}
			return
		}
		if diff := cmp.Diff(a, b, cmp.AllowUnexported(Archive{})); diff != "" {
			t.Fatalf("Read of the same bytes in small pieces differs (-whole +pieces):\n%s", diff)
		}
		if sum := sha256.Sum256(data); a.Size != int64(len(data)) || a.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("Read of %d bytes (sha256 %x) says %d bytes, sha256 %s", len(data), sum, a.Size, a.SHA256)
		}
		if a.Archives == 0 {
			t.Fatal("Read succeeded without a cpio archive")
		}
		if ch := Diff(a, a); len(ch) != 0 {
			t.Fatalf("archive differs from itself: %v", ch)
		}
		if p := a.Payload; p != nil && p.Encoding == "frames" {
			if e, ok := a.Lookup(p.Stored); !ok || e.Size != p.Packed || p.Frames < 1 {
				t.Fatalf("accepted a frame list %+v that does not match %s (%+v)", p, p.Stored, e)
			}
		}
	})
}

// Segments as the kernel reads them: an uncompressed archive before a
// compressed one (early microcode), an archive appended after a compressed
// one (what an attacker or a second tool adds), two compressed members.
func TestReadSegments(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline" // one archive per packed initrd
	var extra bytes.Buffer
	nw := newc.NewWriter(&extra)
	nw.WriteHeader(&newc.Header{Name: "kernel/x86/microcode/AuthenticAMD.bin", Mode: newc.TypeReg | 0o644, NLink: 1, Size: 4})
	nw.Write([]byte("ucod"))
	nw.WriteHeader(&newc.Header{Name: "bin/katana", Mode: newc.TypeReg | 0o755, NLink: 1, Size: 6})
	nw.Write([]byte("evil!\n"))
	nw.Close()
	for _, comp := range Compressions {
		o.Compression = comp
		packed := pack(t, o)
		base, err := Read(bytes.NewReader(packed))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			data []byte
			want string // compression string
		}{
			{"prefix", append(append(append([]byte{}, extra.Bytes()...), make([]byte, 16)...), packed...), "none+" + comp},
			{"appended", appendAligned(packed, extra.Bytes()), comp + "+none"},
			{"twice", append(append([]byte{}, packed...), packed...), comp},
		}
		if comp == "none" {
			tests[0].want, tests[1].want = "none", "none"
		}
		for _, tc := range tests {
			t.Run(comp+"/"+tc.name, func(t *testing.T) {
				a, err := Read(bytes.NewReader(tc.data))
				if err != nil {
					t.Fatal(err)
				}
				if a.Compression != tc.want {
					t.Errorf("compression %q, want %q", a.Compression, tc.want)
				}
				k, _ := a.Lookup("bin/katana")
				bk, _ := base.Lookup("bin/katana")
				switch tc.name {
				case "prefix": // the packed payload comes last and wins
					if k.SHA256 != bk.SHA256 || a.Archives != 2 {
						t.Errorf("prefix: katana %s (want %s), %d archives", k.SHA256, bk.SHA256, a.Archives)
					}
				case "appended": // the appended payload wins, as in the guest
					if k.Size != 6 || a.Archives != 2 {
						t.Errorf("appended: katana size %d, %d archives", k.Size, a.Archives)
					}
					if ch := Diff(base, a); len(ch) != 2 {
						t.Errorf("diff with the appended archive: %v", ch)
					}
				case "twice":
					if a.Archives != 2 || len(Diff(base, a)) != 1 { // same entries, other bytes
						t.Errorf("twice: %d archives, diff %v", a.Archives, Diff(base, a))
					}
				}
			})
		}
		// A compressed segment cut short is an error naming its offset.
		if comp != "none" {
			cut := append(append([]byte{}, extra.Bytes()...), packed[:len(packed)/2]...)
			if _, err := Read(bytes.NewReader(cut)); err == nil || !strings.Contains(err.Error(), "segment at byte") {
				t.Errorf("%s: truncated second segment: got %v", comp, err)
			}
		}
	}
}

// appendAligned returns base, NULs to a multiple of 4 bytes, and archive:
// the kernel takes a cpio header only at such an offset.
func appendAligned(base, archive []byte) []byte {
	b := bytes.Clone(base)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, archive...)
}

// An uncompressed archive at an offset that is not a multiple of 4 (after
// a compressed stream, after NULs, or after another archive) is where the
// kernel stops unpacking: Read refuses the initrd rather than report
// entries the guest never gets.
func TestReadUnalignedArchive(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	evil := appendArchive(t, nil, entry{"bin/katana", regExec, "evil"})
	for _, comp := range Compressions {
		o.Compression = comp
		packed := pack(t, o)
		aligned := len(packed) + (4-len(packed)%4)%4
		for pad := 0; pad < 8; pad++ {
			img := append(append(bytes.Clone(packed), make([]byte, pad)...), evil...)
			off := len(packed) + pad
			_, err := Read(bytes.NewReader(img))
			if off%4 == 0 {
				if err != nil {
					t.Errorf("%s: archive appended at byte %d: %v", comp, off, err)
				}
				continue
			}
			want := fmt.Sprintf("cpio archive at byte %d, not a multiple of 4", off)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: archive appended at byte %d (next multiple of 4: %d): got %v, want %q", comp, off, aligned, err, want)
			}
		}
	}
	// NULs before the first archive count too.
	for _, lead := range []int{1, 2, 3, 5} {
		_, err := Read(bytes.NewReader(append(make([]byte, lead), evil...)))
		want := fmt.Sprintf("cpio archive at byte %d, not a multiple of 4", lead)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("archive after %d NULs: got %v, want %q", lead, err, want)
		}
	}
}

// After an uncompressed archive the kernel checks the padding before any
// next part, a compressed one too ("broken padding"): a gzip or zstd
// stream at an offset that is not a multiple of 4 there is never unpacked,
// and Read refuses the initrd. After a compressed part, no such rule.
func TestReadUnalignedCompressedAfterArchive(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	o.Compression = "none"
	first := appendArchive(t, nil, entry{"bin/katana", regExec, "evil"})
	for _, comp := range []string{"gzip", "zstd"} {
		o.Compression = comp
		packed := pack(t, o)
		for pad := 0; pad < 8; pad++ {
			img := slices.Concat(first, make([]byte, pad), packed)
			off := len(first) + pad
			_, err := Read(bytes.NewReader(img))
			if off%4 == 0 {
				if err != nil {
					t.Errorf("%s at byte %d after an archive: %v", comp, off, err)
				}
				continue
			}
			want := fmt.Sprintf("%s data at byte %d, after an uncompressed archive and not at a multiple of 4", comp, off)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s at byte %d after an archive: got %v, want %q", comp, off, err, want)
			}
		}
	}
}

// The kernel's gunzip skips the gzip header's file name only: an extra
// field, a comment or a header CRC it inflates as data, so Read refuses a
// header with any of them; a file name (GNU gzip writes one) is fine.
func TestReadGzipHeaderFlags(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	o.Compression = "none"
	plain := pack(t, o)
	gz := func(h gzip.Header) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Header = h
		zw.Write(plain)
		zw.Close()
		return b.Bytes()
	}
	if _, err := Read(bytes.NewReader(gz(gzip.Header{Name: "initrd.cpio"}))); err != nil {
		t.Errorf("gzip with a file name: %v", err)
	}
	for name, h := range map[string]gzip.Header{
		"extra field": {Extra: []byte{1, 2, 3, 4}},
		"comment":     {Comment: "hello"},
	} {
		_, err := Read(bytes.NewReader(gz(h)))
		if err == nil || !strings.Contains(err.Error(), "gzip header flags") || !strings.Contains(err.Error(), "would inflate the rest as data") {
			t.Errorf("gzip with a %s: got %v, want the header flags refused", name, err)
		}
	}
	// A header CRC (FHCRC, 0x02), which Go's writer does not write.
	b := gz(gzip.Header{})
	b[3] |= 0x02
	if _, err := Read(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "gzip header flags 0x2") {
		t.Errorf("gzip with FHCRC: got %v, want the header flags refused", err)
	}
}

// entry is one member of an archive appendArchive writes: data is the
// content of a regular file, the target of a symlink.
type entry struct {
	name string
	mode uint32
	data string
}

const (
	regExec = newc.TypeReg | 0o755
	dirMode = newc.TypeDir | 0o755
	symlink = newc.TypeLink | 0o777
)

// ownerOf gives appendLinked's entries an owner and group other than root,
// by name (tests that set it restore it).
var ownerOf = map[string]uint32{}

// appendArchive returns base followed, at a 4-byte offset, by an
// uncompressed archive of ents, as an attacker or a second tool appends one.
func appendArchive(t testing.TB, base []byte, ents ...entry) []byte {
	t.Helper()
	return appendLinked(t, base, 0, ents...)
}

// appendLinked is appendArchive with every entry given inode ino and, when
// ino is not 0, two links: hard links of each other to the kernel.
func appendLinked(t testing.TB, base []byte, ino uint32, ents ...entry) []byte {
	t.Helper()
	buf := bytes.NewBuffer(bytes.Clone(base))
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	nlink := uint32(1)
	if ino != 0 {
		nlink = 2
	}
	nw := newc.NewWriter(buf)
	for _, e := range ents {
		if err := nw.WriteHeader(&newc.Header{Name: e.name, Mode: e.mode, UID: ownerOf[e.name], GID: ownerOf[e.name], NLink: nlink, Ino: ino, Size: uint32(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := nw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The kernel looks entry names up from /: an appended "./bin/katana",
// "/bin/katana" or "bin//katana" replaces bin/katana in the guest, and Read
// reports the payload the guest runs.
func TestReadPathAliases(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	packed := pack(t, o)
	evil := "evil!\n"
	for _, name := range []string{"bin/katana", "./bin/katana", "/bin/katana", "bin//katana", "bin/./katana", "//./bin/katana"} {
		a, err := Read(bytes.NewReader(appendArchive(t, packed, entry{name, regExec, evil})))
		if err != nil {
			t.Fatalf("appended %q: %v", name, err)
		}
		// The guest sees the appended bytes at bin/katana, which do not
		// match its content list.
		if p := a.Payload; p != nil || a.PayloadUnknown != "bin/katana does not match the content list: the init refuses to boot" {
			t.Errorf("appended %q: payload reported as %+v (unknown %q); the guest sees the appended %d bytes and refuses them", name, p, a.PayloadUnknown, len(evil))
		}
		if e, ok := a.Lookup(initrdlayout.PayloadPath); !ok || e.SHA256 != hexs(sha256.Sum256([]byte(evil))) {
			t.Errorf("appended %q: entry %+v, want the appended bytes", name, e)
		}
		if n := len(slices.DeleteFunc(slices.Clone(a.Entries), func(e Entry) bool { return e.Path != initrdlayout.PayloadPath })); n != 1 {
			t.Errorf("appended %q: %d entries for %s, want 1", name, n, initrdlayout.PayloadPath)
		}
	}
	// In frames, an alias of the packed payload replaces it too.
	o.PayloadEncoding = ""
	framed := pack(t, o)
	for _, name := range []string{"./bin/katana.zst", "/etc/guestinit/payload.frames"} {
		a, err := Read(bytes.NewReader(appendArchive(t, framed, entry{name, newc.TypeReg | 0o644, "zst"})))
		if err == nil && a.Payload != nil {
			t.Errorf("appended %q: payload reported as %+v", name, a.Payload)
		}
	}
}

// Where only the kernel's path lookup can tell which file an entry
// replaces (a ".." component, a symlink on the way), the payload is
// reported unknown, with the entry and why; the listing is still there.
func TestReadPayloadUnknown(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	packed := pack(t, o)
	for _, tc := range []struct {
		name string
		ents []entry
		want string
	}{
		{"dotdot at the root", []entry{{"../bin/katana", regExec, "evil"}}, `entry "../bin/katana" has a ".." component`},
		{"dotdot inside", []entry{{"etc/../bin/katana", regExec, "evil"}}, `entry "etc/../bin/katana" has a ".." component`},
		{"symlink on the way", []entry{{"x", symlink, "bin"}, {"x/katana", regExec, "evil"}}, `entry "x/katana" passes through symlink "x"`},
		{"symlink alias", []entry{{"./y", symlink, "/etc"}, {"y//guestinit/payload.frames", regExec, "evil"}}, `entry "y//guestinit/payload.frames" passes through symlink "y"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(appendArchive(t, packed, tc.ents...)))
			if err != nil {
				t.Fatal(err)
			}
			if a.Payload != nil || !strings.Contains(a.PayloadUnknown, tc.want) {
				t.Errorf("payload %+v, unknown %q; want none, unknown containing %q", a.Payload, a.PayloadUnknown, tc.want)
			}
			last, _ := kernelPath(tc.ents[len(tc.ents)-1].name)
			if _, ok := a.Lookup(last); !ok {
				t.Errorf("%s is not listed", last)
			}
		})
	}
}

// A later entry at the frame list's path replaces the list in the guest,
// whatever it is: Read never reports the payload from an earlier list.
func TestReadStaleFrameList(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.Output = filepath.Join(t.TempDir(), "i.img")
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	packed, _ := os.ReadFile(o.Output)
	list := string(res.Frames.Format())
	big := strings.Repeat("x", maxFrameList+1)
	fp := initrdlayout.FramesPath
	for _, tc := range []struct {
		name string
		ents []entry
		want string // error; "" to accept
	}{
		// The init checks the frame list against its content list first.
		{"too large", []entry{{fp, newc.TypeReg | 0o644, big}}, fp + " does not match the content list: the init refuses to boot"},
		{"directory", []entry{{fp, dirMode, ""}}, fp + " does not match the content list: the init refuses to boot"},
		{"symlink", []entry{{"./" + fp, symlink, "/proc/self/fd/0"}}, fp + " does not match the content list: the init refuses to boot"},
		{"empty", []entry{{fp, newc.TypeReg | 0o644, ""}}, fp + " does not match the content list: the init refuses to boot"},
		{"list again after a directory", []entry{{fp, dirMode, ""}, {fp, newc.TypeReg | 0o644, list}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(appendArchive(t, packed, tc.ents...)))
			if tc.want == "" {
				if err != nil || a.Payload == nil || a.Payload.SHA256 != hexs(res.Frames.SHA256) {
					t.Errorf("got %v; want the payload of the list", err)
				}
				return
			}
			if err != nil || a.Payload != nil || !strings.Contains(a.PayloadUnknown, tc.want) {
				t.Errorf("got error %v, payload %+v, unknown %q; want the payload unknown: %q", err, a.Payload, a.PayloadUnknown, tc.want)
			}
		})
	}
	// Without a content list (not hostbuild's layout), the frame list
	// alone decides, and one that is no list is an error.
	for _, tc := range []struct {
		name, data, want string
	}{
		{"too large", big, fp + " is 1048577 bytes, more than 1048576: not a frame list"},
		{"empty", "", "frame list is empty"},
	} {
		t.Run("no content list, "+tc.name, func(t *testing.T) {
			img := appendArchive(t, nil, entry{"bin", dirMode, ""}, entry{"etc", dirMode, ""}, entry{"etc/guestinit", dirMode, ""}, entry{fp, newc.TypeReg | 0o644, tc.data})
			if _, err := Read(bytes.NewReader(img)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// In frames, the payload reported is the one the frames decode to: each
// frame is checked against the list as the init checks it, and decoded
// with the init's decoder to the list's payload digest.
func TestReadFramesChecked(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	packed := pack(t, o)
	other := testelf.Executable("", bytes.Repeat([]byte("other katana "), 1000))
	blob, list, err := encodeFrames(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	fp, zp := initrdlayout.FramesPath, initrdlayout.PackedPayloadPath
	lying := list
	lying.SHA256[0] ^= 1
	garbage := []byte("not a zstd frame at all")
	undecodable := initrdlayout.Frames{Size: 10, SHA256: list.SHA256,
		List: []initrdlayout.Frame{{Off: 0, Len: int64(len(garbage)), Size: 10, Sum: sha256.Sum256(garbage)}}}
	// A content list that covers frame list l, as a replaced payload's
	// initrd would carry (the init checks the frame list against it).
	covering := func(l initrdlayout.Frames) entry {
		c := initrdlayout.Contents{fp: sha256.Sum256(l.Format())}
		return entry{initrdlayout.ContentsPath, 0o100644, string(c.Format())}
	}
	// Flip a byte inside the packed frames (the last archive's data).
	flipped := bytes.Clone(packed)
	flipped[bytes.LastIndex(flipped, []byte(zp+"\x00"))+len(zp)+10] ^= 0xff
	for _, tc := range []struct {
		name string
		img  []byte
		want string // error; "" to accept
	}{
		{"as packed", packed, ""},
		{"flipped byte", flipped, zp + " frame 0 (bytes 0-"},
		{"replaced, list first", appendArchive(t, packed, covering(list), entry{fp, 0o100644, string(list.Format())}, entry{zp, 0o100644, string(blob)}), ""},
		{"replaced, list after", appendArchive(t, packed, covering(list), entry{zp, 0o100644, string(blob)}, entry{fp, 0o100644, string(list.Format())}), "cannot be checked"},
		{"list lies about the payload", appendArchive(t, packed, covering(lying), entry{fp, 0o100644, string(lying.Format())}, entry{zp, 0o100644, string(blob)}),
			zp + " decodes to a payload with sha256 " + hexs(list.SHA256)},
		{"frame does not decode", appendArchive(t, packed, covering(undecodable), entry{fp, 0o100644, string(undecodable.Format())}, entry{zp, 0o100644, string(garbage)}),
			"decoding " + zp + " frame 0 (bytes 0-23)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.img))
			if tc.want == "" {
				if err != nil || a.Payload == nil || a.Payload.Encoding != "frames" {
					t.Fatalf("got %v, payload %+v; want frames", err, a)
				}
				if e, _ := a.Lookup(zp); a.Payload.Packed != e.Size {
					t.Errorf("payload %+v, %s %+v", a.Payload, zp, e)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
	if a, err := Read(bytes.NewReader(appendArchive(t, packed, covering(list), entry{fp, 0o100644, string(list.Format())}, entry{zp, 0o100644, string(blob)}))); err == nil &&
		a.Payload.SHA256 != hexs(sha256.Sum256(other)) {
		t.Errorf("replaced payload reported as %+v, want sha256 %s", a.Payload, hexs(sha256.Sum256(other)))
	}
}

// Every name twice: the later entry wins, and reading takes time linear
// in the entries (an index per path, not a scan per duplicate: 40000
// duplicated names took 10 s). Forty times the names must take about
// forty times as long (cache effects aside), not 1600. Timed in this
// process's CPU time, the fastest of a few interleaved runs: wall time on
// a busy machine slowed the long run alone (time slices), 300x at times.
func TestReadDuplicatesLinear(t *testing.T) {
	img := func(n int) []byte {
		var buf bytes.Buffer
		nw := newc.NewWriter(&buf)
		for pass := uint32(0); pass < 2; pass++ {
			for i := 0; i < n; i++ {
				nw.WriteHeader(&newc.Header{Name: fmt.Sprintf("./d%07d", i), Mode: newc.TypeDir | 0o700 | pass*0o50, NLink: 2})
			}
		}
		nw.Close()
		return buf.Bytes()
	}
	readLinear(t, "every name twice", 5, img, func(n int, a *Archive) {
		if len(a.Entries) != n || a.Entries[0].Path != "d0000000" || a.Entries[0].Mode != "0750" {
			t.Fatalf("%d entries, first %+v; want %d, the second d0000000 (mode 0750)", len(a.Entries), a.Entries[0], n)
		}
	})
}

// readLinear reads img(1000) and img(40000) runs times each, interleaved,
// check looking at each archive, and fails the test unless the fastest
// read of the larger takes at most 300 times the fastest of the smaller
// (linear is about 40, quadratic 1600). Timed in this process's CPU time:
// wall time on a busy machine slowed the long run alone (time slices),
// 300x at times.
func readLinear(t *testing.T, what string, runs int, img func(n int) []byte, check func(n int, a *Archive)) {
	t.Helper()
	read := func(n int, data []byte) time.Duration {
		runtime.GC()
		start := cpuTime(t)
		a, err := Read(bytes.NewReader(data))
		took := cpuTime(t) - start
		if err != nil {
			t.Fatal(err)
		}
		check(n, a)
		return took
	}
	const few, many = 1000, 40000
	fewImg, manyImg := img(few), img(many)
	small, large := time.Duration(1<<62), time.Duration(1<<62)
	for range runs {
		small = min(small, read(few, fewImg))
		large = min(large, read(many, manyImg))
	}
	t.Logf("%s: %d entries %v, %d entries %v", what, few, small, many, large)
	if large > 300*small {
		t.Errorf("%s: %d entries took %v, %d entries %v: more than linear", what, few, small, many, large)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The NULs the kernel skips between segments count against the budget:
// a sparse file of zeros around a small initrd cannot keep Read busy for
// minutes (64 GiB of them took 7).
func TestReadNULPadding(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	packed := pack(t, o)
	defer func(m int64) { maxUnpacked = m }(maxUnpacked)
	maxUnpacked = 1 << 20
	nuls := func(n int) []byte { return make([]byte, n) }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		data []byte
		want string // error; "" to accept
	}{
		{"some padding", join(packed, nuls(64<<10), appendArchive(t, nil, entry{"x", regExec, "x"}), nuls(4096)), ""},
		{"padding after", join(packed, nuls(2<<20)), "more than 1048576 bytes uncompressed, NUL padding included: refusing"},
		{"padding before", join(nuls(2<<20), packed), "NUL padding from byte 0: more than 1048576 bytes uncompressed"},
		{"padding between", join(packed, nuls(1<<20-1000), packed), "more than 1048576 bytes uncompressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.data))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v; want %q", err, tc.want)
			}
		})
	}
}

// An initrd made with "find . | cpio -o -H newc" (a "." entry, "./"
// names, busybox applets as symlinks) reads with clean paths, and its
// payload is known: no entry passes through a symlink.
func TestReadFindStyleNames(t *testing.T) {
	img := appendArchive(t, nil,
		entry{".", dirMode, ""}, entry{"./bin", dirMode, ""}, entry{"./bin/busybox", regExec, "busybox"},
		entry{"./bin/katana", regExec, "katana"}, entry{"./bin/sh", symlink, "busybox"},
		entry{"./usr", dirMode, ""}, entry{"./usr/bin", dirMode, ""}, entry{"./usr/bin/env", symlink, "../../bin/busybox"})
	a, err := Read(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range a.Entries {
		got = append(got, e.Path)
	}
	want := []string{".", "bin", "bin/busybox", "bin/katana", "bin/sh", "usr", "usr/bin", "usr/bin/env"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if p := a.Payload; a.PayloadUnknown != "" || p == nil || p.SHA256 != hexs(sha256.Sum256([]byte("katana"))) {
		t.Errorf("payload %+v, unknown %q; want bin/katana", p, a.PayloadUnknown)
	}
}

// A payload larger than one chunk also gets a chunk list, covered by the
// content list; small files get none.
func TestChunkList(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	big := testelf.Executable("", bytes.Repeat([]byte("katana chunk "), (initrdlayout.ChunkSize*2)/13))
	os.WriteFile(o.Payload, big, 0o755)
	o.Output = filepath.Join(t.TempDir(), "i.img")
	o.Compression = "none"
	o.PayloadEncoding = "inline"
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(o.Output)
	r := newc.NewReader(bytes.NewReader(raw))
	var list []byte
	for {
		h, err := r.Next()
		if err != nil {
			break
		}
		if h.Name == initrdlayout.ChunksPath {
			list, _ = io.ReadAll(r)
		}
	}
	cs, err := initrdlayout.ParseChunks(bytes.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(initrdlayout.Chunks(initrdlayout.PayloadPath, big), cs); diff != "" {
		t.Errorf("chunk list (-want +got):\n%s", diff)
	}
	if _, ok := res.Contents[initrdlayout.ChunksPath]; !ok {
		t.Error("the chunk list is not in the content list")
	}
}

// The zstd stream is shaped for the kernel's unzstd: one frame, no content
// checksum (the kernel would spend a third of the unpack under TCG on XXH64;
// the init's content list checks the unpacked files instead), and at most an
// 8 MiB window.
func TestZstdFrameShape(t *testing.T) {
	o := inputs(t, t.TempDir())
	b := pack(t, o)
	if !bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("no zstd magic: % x", b[:8])
	}
	fhd := b[4]
	if fhd&0x04 != 0 {
		t.Errorf("frame header descriptor %#02x: content checksum flag set", fhd)
	}
	// Single-segment frames (small archives) have a window of the content
	// size; others must stay within the 8 MiB every kernel accepts.
	if fhd&0x20 == 0 {
		if wd := b[5]; 1<<(10+int(wd>>3))*(8+int(wd&7))/8 > 8<<20 {
			t.Errorf("window descriptor %#02x: window over 8 MiB", wd)
		}
	}
	if _, err := Read(bytes.NewReader(b)); err != nil {
		t.Errorf("reading it back: %v", err)
	}
}

func TestFrameSize(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, 1},
		{frameMin, frameMin},                 // one frame
		{6058110, 3029055},                   // the stand-in: 2 frames
		{frameTarget, frameMin},              // 4 frames of 4 MiB
		{frameTarget + 1, frameMin + 1},      // still 4 frames
		{58 << 20, 29 << 19},                 // 4 frames of 14.5 MiB
		{3*frameTarget + 2, 12<<20 + 1},      // 4 frames, the last 1 byte short
		{5*frameTarget - 5, frameTarget - 1}, // 5 frames
	} {
		if got := frameSize(tc.n); got != tc.want || got > frameTarget {
			t.Errorf("frameSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// The default payload encoding: the main archive without /bin/katana, then
// at a 4-byte offset an uncompressed archive with bin/katana.zst, whose
// frames, listed with their SHA-256 in the content-listed frame list,
// decode with the init's decoder to exactly the payload.
func TestPayloadFrames(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	payload := testelf.Executable("", bytes.Repeat([]byte("katana frames "), (40<<20)/14))
	os.WriteFile(o.Payload, payload, 0o755)
	o.Output = filepath.Join(t.TempDir(), "i.img")
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(o.Output)
	a, err := Read(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if a.Compression != "zstd+none" || a.Archives != 2 {
		t.Errorf("compression %s, %d archives; want zstd+none, 2", a.Compression, a.Archives)
	}
	wantPayload := &Payload{Encoding: "frames", Stored: initrdlayout.PackedPayloadPath, Size: int64(len(payload)),
		SHA256: hexs(sha256.Sum256(payload)), Frames: 4, Packed: res.Frames.Packed()}
	if diff := cmp.Diff(wantPayload, a.Payload); diff != "" {
		t.Errorf("payload as read (-want +got):\n%s", diff)
	}
	o.PayloadEncoding, o.Output = "inline", ""
	in, err := Read(bytes.NewReader(pack(t, o)))
	if err != nil {
		t.Fatal(err)
	}
	if p := in.Payload; p == nil || p.Encoding != "inline" || p.SHA256 != hexs(sha256.Sum256(payload)) || p.Frames != 0 {
		t.Errorf("inline payload as read: %+v", p)
	}
	// A packed payload replaced by an appended archive no longer matches
	// its frame list: Read says so.
	var extra bytes.Buffer
	for extra.Len()+len(img) < 4 || (len(img)+extra.Len())%4 != 0 {
		extra.WriteByte(0)
	}
	nw := newc.NewWriter(&extra)
	nw.WriteHeader(&newc.Header{Name: initrdlayout.PackedPayloadPath, Mode: newc.TypeReg | 0o644, NLink: 1, Size: 3})
	nw.Write([]byte("zst"))
	nw.Close()
	if _, err := Read(bytes.NewReader(append(bytes.Clone(img), extra.Bytes()...))); err == nil ||
		!strings.Contains(err.Error(), "but bin/katana.zst is 3 bytes") {
		t.Errorf("replaced packed payload: got %v", err)
	}
	if _, ok := a.Lookup(initrdlayout.PayloadPath); ok {
		t.Errorf("%s is in the initrd beside the frames", initrdlayout.PayloadPath)
	}
	if e, ok := a.Lookup(initrdlayout.PackedPayloadPath); !ok || e.Mode != "0644" {
		t.Errorf("%s: %+v", initrdlayout.PackedPayloadPath, e)
	}
	for _, p := range []string{initrdlayout.PackedPayloadPath, initrdlayout.FramesPath} {
		if _, ok := res.Contents[p]; !ok {
			t.Errorf("%s is not in the content list", p)
		}
	}

	// The main archive is one zstd frame; the payload archive starts at a
	// 4-byte offset after it (the kernel looks for "070701" only there).
	br := bufio.NewReader(bytes.NewReader(img))
	frame, err := readZstdFrame(br, maxZstdFrame)
	if err != nil {
		t.Fatal(err)
	}
	off := len(frame)
	for off < len(img) && img[off] == 0 {
		off++
	}
	if off%4 != 0 || !bytes.HasPrefix(img[off:], []byte("070701")) {
		t.Fatalf("payload archive at byte %d (after a %d-byte zstd frame): want a cpio header at a multiple of 4", off, len(frame))
	}
	files := map[string][]byte{}
	r := newc.NewReader(bytes.NewReader(img[off:]))
	for {
		h, err := r.Next()
		if err != nil {
			break
		}
		files[h.Name], _ = io.ReadAll(r)
	}
	packed, ok := files[initrdlayout.PackedPayloadPath]
	if !ok || len(files) != 1 {
		t.Fatalf("payload archive holds %v, want only %s", slices.Sorted(maps.Keys(files)), initrdlayout.PackedPayloadPath)
	}
	if hexs(res.Contents[initrdlayout.PackedPayloadPath]) != hexs(sha256.Sum256(packed)) {
		t.Error("content list digest of the packed payload is wrong")
	}

	fr := res.Frames
	if fr == nil || fr.Size != int64(len(payload)) || fr.SHA256 != sha256.Sum256(payload) || fr.Packed() != int64(len(packed)) {
		t.Fatalf("frame list %+v does not describe the payload", fr)
	}
	if len(fr.List) != 4 {
		t.Errorf("%d frames for %d bytes, want 4", len(fr.List), len(payload))
	}
	d, err := initrdlayout.NewFrameDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var back []byte
	for i, f := range fr.List {
		if i < len(fr.List)-1 && f.Size != fr.List[0].Size || f.Size > frameTarget {
			t.Errorf("frame %d: %d bytes (first %d, target %d)", i, f.Size, fr.List[0].Size, frameTarget)
		}
		z := packed[f.Off : f.Off+f.Len]
		if sha256.Sum256(z) != f.Sum {
			t.Errorf("frame %d: listed SHA-256 is wrong", i)
		}
		if z[4]&0x04 != 0 {
			t.Errorf("frame %d carries a content checksum", i)
		}
		b, err := d.Decode(z, f.Size, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		back = append(back, b...)
	}
	if !bytes.Equal(back, payload) {
		t.Error("the frames do not decode to the payload")
	}
}

// The payload reported is the one the init takes from its content list:
// /bin/katana when the list covers it, the frames when it covers the frame
// list; an initrd whose list covers both or neither, or whose chosen file
// differs from it, is one the init refuses to boot. Files the list does not
// cover do not change the report.
func TestReadPayloadByContentList(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	inline := pack(t, o)
	o.PayloadEncoding = ""
	framed := pack(t, o)
	fr, err := Read(bytes.NewReader(framed))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Read(bytes.NewReader(inline))
	if err != nil || in.Payload == nil || in.Payload.Encoding != "inline" {
		t.Fatalf("inline initrd: %v, payload %+v", err, in.Payload)
	}
	blob, list, err := encodeFrames(context.Background(), testelf.Executable("", bytes.Repeat([]byte("unlisted katana "), 500)))
	if err != nil {
		t.Fatal(err)
	}
	fp, zp, cp := initrdlayout.FramesPath, initrdlayout.PackedPayloadPath, initrdlayout.ContentsPath
	listEntry := func(c initrdlayout.Contents) entry { return entry{cp, 0o100644, string(c.Format())} }
	both := initrdlayout.Contents{fp: sha256.Sum256(list.Format()), initrdlayout.PayloadPath: sha256.Sum256([]byte("x"))}
	for _, tc := range []struct {
		name    string
		img     []byte
		payload string // the SHA-256 reported, or "" for unknown
		unknown string
	}{
		{"inline, with unlisted frames beside it", appendArchive(t, inline, entry{fp, 0o100644, string(list.Format())}, entry{zp, 0o100644, string(blob)}),
			in.Payload.SHA256, ""},
		{"frames, with an unlisted bin/katana beside them", appendArchive(t, framed, entry{initrdlayout.PayloadPath, regExec, "evil"}),
			"", "bin/katana is present although the payload comes in frames"},
		{"content list covers both", appendArchive(t, framed, listEntry(both)), "", "the content list covers both bin/katana and etc/guestinit/payload.frames"},
		{"content list covers neither", appendArchive(t, framed, listEntry(initrdlayout.Contents{"init": sha256.Sum256(nil)})), "",
			"the content list covers neither"},
		{"content list is a directory", appendArchive(t, framed, entry{cp, dirMode, ""}), "", cp + " is a dir, not a content list"},
		{"content list does not parse", appendArchive(t, framed, entry{cp, 0o100644, "not a list\n"}), "", cp + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.img))
			if err != nil {
				t.Fatal(err)
			}
			if tc.payload != "" {
				if a.Payload == nil || a.Payload.SHA256 != tc.payload || a.PayloadUnknown != "" {
					t.Errorf("payload %+v, unknown %q; want sha256 %s", a.Payload, a.PayloadUnknown, tc.payload)
				}
				return
			}
			if a.Payload != nil || !strings.Contains(a.PayloadUnknown, tc.unknown) || !strings.HasSuffix(a.PayloadUnknown, "the init refuses to boot") {
				t.Errorf("payload %+v, unknown %q; want unknown: %q ... the init refuses to boot", a.Payload, a.PayloadUnknown, tc.unknown)
			}
		})
	}
	if fr.Payload == nil || fr.Payload.Encoding != "frames" {
		t.Errorf("framed initrd: payload %+v", fr.Payload)
	}
}

// A payload file with two or more links shares its data with later entries
// of its inode (the kernel links them; a later entry's data rewrites both):
// only the kernel knows the bytes, so the payload is unknown.
func TestReadPayloadHardLink(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	packed := pack(t, o)
	var buf bytes.Buffer
	buf.Write(packed)
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	nw := newc.NewWriter(&buf)
	for _, h := range []newc.Header{{Name: "x", Mode: regExec, NLink: 2, Ino: 900, Size: 4}, {Name: "bin/katana", Mode: regExec, NLink: 2, Ino: 900}} {
		if err := nw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			nw.Write([]byte("evil"))
		}
	}
	nw.Close()
	a, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if a.Payload != nil || !strings.Contains(a.PayloadUnknown, `entry "bin/katana" is a hard link of "x" (inode 900)`) {
		t.Errorf("payload %+v, unknown %q; want unknown for bin/katana, linked to x", a.Payload, a.PayloadUnknown)
	}
}

// FuzzCheckStaticELF: the init and the payload given to pack are checked
// with debug/elf. Whatever the bytes, the check returns (no panic), and
// what it accepts is an x86-64 ELF64 executable without an interpreter.
func FuzzCheckStaticELF(f *testing.F) {
	f.Add(testelf.Executable("", []byte("static")))
	f.Add(testelf.Executable("/lib64/ld-linux-x86-64.so.2", []byte("dynamic")))
	f.Add(testelf.ExecutableFor(183, []byte("arm64")))
	f.Add(testelf.Module("name=vsock"))
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("#!/bin/sh\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckStaticELF(b) != nil {
			return
		}
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("accepted bytes debug/elf cannot read: %v", err)
		}
		if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 || (ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN) {
			t.Fatalf("accepted %v %v %v", ef.Class, ef.Machine, ef.Type)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatal("accepted an executable with an interpreter")
			}
		}
	})
}

func TestCheckSettingsEpoch(t *testing.T) {
	for _, tc := range []struct {
		epoch int64
		ok    bool
	}{{0, true}, {math.MaxUint32, true}, {-1, false}, {math.MaxUint32 + 1, false}} {
		err := Options{SourceDateEpoch: tc.epoch}.CheckSettings()
		want := fmt.Sprintf("SOURCE_DATE_EPOCH %d is out of range", tc.epoch)
		if tc.ok && err != nil || !tc.ok && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("epoch %d: got %v, want ok=%v (%q)", tc.epoch, err, tc.ok, want)
		}
	}
}

// The output's folder is checked before any input is read (a typo in -o
// must not cost the seconds of encoding a real payload).
func TestPackChecksOutputFolderFirst(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	for _, tc := range []struct{ out, want string }{
		{filepath.Join(dir, "missing", "i.img"), "its folder " + filepath.Join(dir, "missing") + " cannot be used"},
		{filepath.Join(notDir, "i.img"), notDir + " is not a folder"},
	} {
		// No init, no payload: the output folder is what is reported.
		_, err := Pack(context.Background(), Options{Output: tc.out})
		if err == nil || !strings.Contains(err.Error(), "-o "+tc.out+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-o %s: got %v, want -o ...: %s", tc.out, err, tc.want)
		}
	}
}

// Inode numbers run 1, 2, ... in archive order across both archives, the
// payload archive starts at a multiple of 4 bytes with only NULs before it,
// and Result.Entries counts every entry.
func TestPackInodesAndTailOffset(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Modules = []string{"vsock"}
	for _, comp := range Compressions {
		for extra := range 4 { // vary the compressed length
			o.Compression = comp
			os.WriteFile(o.CABundle, []byte("-----BEGIN CERTIFICATE-----\nMIIB"+strings.Repeat("A", extra*7)+"\n-----END CERTIFICATE-----\n"), 0o644)
			o.Output = filepath.Join(t.TempDir(), "i.img")
			res, err := Pack(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			img, _ := os.ReadFile(o.Output)
			tail := bytes.LastIndex(img, []byte(initrdlayout.PackedPayloadPath+"\x00")) - 110
			if tail < 0 || tail%4 != 0 || !bytes.HasPrefix(img[tail:], []byte("070701")) {
				t.Fatalf("%s/%d: payload archive at byte %d, want a cpio header at a multiple of 4", comp, extra, tail)
			}
			main, end, err := decompressAll(comp, img[:tail])
			if err != nil {
				t.Fatalf("%s/%d: %v", comp, extra, err)
			}
			// Between the main archive's stream and the payload archive:
			// the fewest NULs that reach a multiple of 4.
			if tail-end != (4-end%4)%4 || !bytes.Equal(img[end:tail], make([]byte, tail-end)) {
				t.Errorf("%s/%d: main stream ends at byte %d, payload archive at %d: want the NULs to the next multiple of 4 between", comp, extra, end, tail)
			}
			var inos []uint32
			for _, part := range [][]byte{main, img[tail:]} {
				r := newc.NewReader(bytes.NewReader(part))
				for {
					h, err := r.Next()
					if err == newc.ErrTrailer || err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s/%d: %v", comp, extra, err)
					}
					inos = append(inos, h.Ino)
				}
			}
			for i, ino := range inos {
				if ino != uint32(i+1) {
					t.Fatalf("%s/%d: entry %d has inode %d, want %d", comp, extra, i, ino, i+1)
				}
			}
			if res.Entries != len(inos) || len(inos) < 10 {
				t.Errorf("%s/%d: Result.Entries %d, the archives hold %d", comp, extra, res.Entries, len(inos))
			}
		}
	}
}

// decompressAll undoes compression comp of the stream (one archive when
// "none") at the start of b; end is where that stream ends in b.
func decompressAll(comp string, b []byte) (out []byte, end int, err error) {
	switch comp {
	case "none":
		r := newc.NewReader(bytes.NewReader(b))
		for {
			if _, err := r.Next(); err == newc.ErrTrailer {
				return b[:r.Offset()], int(r.Offset()), nil
			} else if err != nil {
				return nil, 0, err
			}
		}
	case "gzip":
		br := bytes.NewReader(b) // an io.ByteReader: flate reads no further than the stream
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		return out, len(b) - br.Len(), err
	case "zstd":
		frame, err := readZstdFrame(bufio.NewReader(bytes.NewReader(b)), maxZstdFrame)
		if err != nil {
			return nil, 0, err
		}
		zr, err := zstd.NewReader(bytes.NewReader(frame))
		if err != nil {
			return nil, 0, err
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		return out, len(frame), err
	}
	return nil, 0, fmt.Errorf("compression %s", comp)
}

// A folder given as the initrd is named as such, not read as an empty file.
func TestReadFileFolder(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadFile(dir)
	if want := dir + " is a folder, not an initrd"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadFile(folder): got %v, want %q", err, want)
	}
}

// An error in a later segment says at which byte that segment starts; one
// in the first segment needs no offset.
func TestReadSegmentErrorOffset(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	o.Compression = "gzip"
	packed := pack(t, o)
	garbage := []byte("070701 this is no header at all, not even close to one, and goes on for more than 110 bytes...................")
	bad := appendAligned(packed, garbage)
	off := len(bad) - len(garbage)
	_, err := Read(bytes.NewReader(bad))
	if want := fmt.Sprintf("segment at byte %d (none): malformed cpio at offset 0: header field 0 is not 8 hex digits", off); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("bad second segment: got %v, want %q...", err, want)
	}
	_, err = Read(bytes.NewReader([]byte("this is not an initrd")))
	if want := "not an initrd: no cpio header and no known compression magic"; err == nil || err.Error() != want {
		t.Errorf("bad first segment: got %v, want %q", err, want)
	}
	_, err = Read(bytes.NewReader([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
	if err == nil || !strings.HasPrefix(err.Error(), "xz: ") {
		t.Errorf("bad xz header: got %v, want an xz: error", err)
	}
}

// maxUnpacked bounds every byte Read takes, NULs included, exactly.
func TestReadBudgetExact(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	o.Compression = "none"
	packed := pack(t, o)
	defer func(m int64) { maxUnpacked = m }(maxUnpacked)
	n := int64(len(packed))
	for _, tc := range []struct {
		budget int64
		nuls   int
		want   string // error; "" to accept
	}{
		{n, 0, ""},
		{n + 1000, 1000, ""},
		{n + 1000, 1001, "NUL padding included: refusing"},
		{n - 100, 0, fmt.Sprintf("more than %d bytes uncompressed: refusing", n-100)},
	} {
		maxUnpacked = tc.budget
		_, err := Read(bytes.NewReader(append(bytes.Clone(packed), make([]byte, tc.nuls)...)))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%d bytes and %d NULs, budget %d: got %v, want %q", n, tc.nuls, tc.budget, err, tc.want)
		}
	}
	// With a second segment: its bytes count after the first one's.
	two := append(bytes.Clone(packed), packed...)
	for _, tc := range []struct {
		budget int64
		ok     bool
	}{{2 * n, true}, {2*n - 8, false}} {
		maxUnpacked = tc.budget
		_, err := Read(bytes.NewReader(two))
		if tc.ok != (err == nil) {
			t.Errorf("two segments of %d bytes, budget %d: got %v, want ok=%v", n, tc.budget, err, tc.ok)
		}
	}

	// The decoded payload counts too, from the moment bin/katana.zst's
	// data starts: with one byte fewer than its data offset plus its
	// decoded size, Read refuses it for that reason.
	o.PayloadEncoding = "frames"
	o.Output = filepath.Join(t.TempDir(), "f.img")
	res, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(o.Output)
	zp := initrdlayout.PackedPayloadPath
	data := bytes.LastIndex(img, []byte(zp+"\x00")) + len(zp) + 1
	data += (4 - data%4) % 4
	maxUnpacked = int64(data) - 1 + res.Frames.Size
	_, err = Read(bytes.NewReader(img))
	if want := fmt.Sprintf("with the %d bytes %s decodes to: refusing", res.Frames.Size, zp); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("budget %d: got %v, want %q", maxUnpacked, err, want)
	}
}

// A content list replaced by an entry that cannot be one (not a regular
// file, larger than the reader keeps) leaves the init without a list.
func TestReadContentListReplaced(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	packed := pack(t, o)
	cp := initrdlayout.ContentsPath
	for _, tc := range []struct {
		name string
		e    entry
		want string
	}{
		{"folder", entry{cp, dirMode, ""}, cp + " is a dir, not a content list"},
		{"symlink", entry{cp, symlink, "/dev/null"}, cp + " is a symlink, not a content list"},
		{"too large", entry{cp, 0o100644, strings.Repeat("x", maxFrameList+1)}, fmt.Sprintf("%s is %d bytes, more than %d, not a content list", cp, maxFrameList+1, maxFrameList)},
		{"largest kept", entry{cp, 0o100644, strings.Repeat("x", maxFrameList)}, cp + ": "},
	} {
		a, err := Read(bytes.NewReader(appendArchive(t, packed, tc.e)))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if a.Payload != nil || !strings.HasPrefix(a.PayloadUnknown, tc.want) || strings.Contains(a.PayloadUnknown, "empty") {
			t.Errorf("%s: payload %+v, unknown %q; want %q...", tc.name, a.Payload, a.PayloadUnknown, tc.want)
		}
	}
}

// Frames are checked however the file's bytes arrive: a frame larger than
// one read, and a packed file longer than its list, are caught.
func TestReadFramesCheckedLarge(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	packed := pack(t, o)
	noise := make([]byte, 200<<10) // incompressible
	x := uint64(1)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		noise[i] = byte(x)
	}
	// Two frames of ~100 KiB each, encoded apart and listed together.
	blob, list, err := encodeFrames(context.Background(), noise[:len(noise)/2])
	if err != nil {
		t.Fatal(err)
	}
	blob2, list2, err := encodeFrames(context.Background(), noise[len(noise)/2:])
	if err != nil {
		t.Fatal(err)
	}
	if len(list.List) != 1 || len(list2.List) != 1 || list.List[0].Len <= 64<<10 {
		t.Fatalf("frames %+v and %+v: want one each, of more than one read", list.List, list2.List)
	}
	second := list2.List[0]
	second.Off += int64(len(blob))
	list.List = append(list.List, second)
	list.Size += list2.Size
	list.SHA256 = sha256.Sum256(noise)
	blob = append(blob, blob2...)
	fp, zp := initrdlayout.FramesPath, initrdlayout.PackedPayloadPath
	c := initrdlayout.Contents{fp: sha256.Sum256(list.Format())}
	img := func(z []byte) []byte {
		return appendArchive(t, packed, entry{initrdlayout.ContentsPath, 0o100644, string(c.Format())},
			entry{fp, 0o100644, string(list.Format())}, entry{zp, 0o100644, string(z)})
	}
	if _, err := Read(bytes.NewReader(img(blob))); err != nil {
		t.Fatalf("replaced payload as encoded: %v", err)
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-100] ^= 0xff // in the second frame
	if _, err := Read(bytes.NewReader(img(flipped))); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s frame 1 (bytes %d-", zp, second.Off)) {
		t.Errorf("byte flipped in the second frame: got %v, want a frame 1 error", err)
	}
	longer := append(bytes.Clone(blob), "more bytes than the list has"...)
	if _, err := Read(bytes.NewReader(img(longer))); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("but %s is %d bytes", zp, len(longer))) {
		t.Errorf("packed file longer than its list: got %v", err)
	}
}

// A static-PIE (ET_DYN with an entry point) is an executable; an ET_DYN
// without one is a shared library.
func TestCheckStaticELFSharedLibrary(t *testing.T) {
	exe := testelf.Executable("", []byte("pie"))
	set := func(typ uint16, entry uint64) []byte {
		b := bytes.Clone(exe)
		b[16], b[17] = byte(typ), byte(typ>>8)
		for i := range 8 {
			b[24+i] = byte(entry >> (8 * i))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" to accept
	}{
		{"static-PIE", set(uint16(elf.ET_DYN), 0x1000), ""},
		{"executable", set(uint16(elf.ET_EXEC), 0x401000), ""},
		{"executable at entry 0", set(uint16(elf.ET_EXEC), 0), ""},
		{"shared library", set(uint16(elf.ET_DYN), 0), "a shared library (no entry point), not an executable"},
		{"relocatable", set(uint16(elf.ET_REL), 0x1000), "ELF type ET_REL is not an executable"},
	} {
		err := CheckStaticELF(tc.b)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Linux runs another system's x86-64 ELF too, and its system calls go
// wrong: a binary whose OS ABI byte (FreeBSD) or notes (NetBSD, OpenBSD)
// name another system is refused; Linux's and System V's OS ABI, and the
// notes Linux linkers write (GNU, Go), are fine. A Go binary built here
// for linux passes.
func TestCheckStaticELFOtherOS(t *testing.T) {
	exe := testelf.Executable("", []byte("x"))
	osabi := func(v byte) []byte {
		b := bytes.Clone(exe)
		b[7] = v
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" to accept
	}{
		{"System V", osabi(0), ""},
		{"Linux", osabi(3), ""},
		{"FreeBSD", osabi(9), "built for ELFOSABI_FREEBSD (its ELF OS ABI), not Linux"},
		{"NetBSD note", testelf.ExecutableWithNote("NetBSD", []byte("x")), "built for NetBSD (its ELF notes say so), not Linux"},
		{"OpenBSD note", testelf.ExecutableWithNote("OpenBSD", []byte("x")), "built for OpenBSD (its ELF notes say so), not Linux"},
		{"GNU note", testelf.ExecutableWithNote("GNU", []byte("x")), ""},
		{"Go note", testelf.ExecutableWithNote("Go", []byte("x")), ""},
	} {
		err := CheckStaticELF(tc.b)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	self, err := os.ReadFile("/proc/self/exe") // this test binary: Go, linux, maybe not static
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckStaticELF(self); err != nil && !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("this linux test binary: %v", err)
	}
}

// A Go program says its GOOS in its build info: one built for DragonFly
// (no OS ABI byte, no note of its own) is refused, one built for linux is
// not.
func TestCheckStaticELFGoGOOS(t *testing.T) {
	for goos, want := range map[string]string{"dragonfly": "a Go program built for GOOS=dragonfly, not linux", "linux": ""} {
		err := CheckStaticELF(goHello(t, goos))
		if want == "" && err != nil || want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", goos, err, want)
		}
	}
}

// goHello builds a static Go program for goos (amd64) and returns its
// bytes; it skips, saying why, without a go command.
func goHello(t *testing.T, goos string) []byte {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("skipping: no go command on PATH (%v): install Go (/usr/local/go/bin) to build the test programs", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command(gobin, "build", "-ldflags=-s", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", goos, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Other tools' zstd frames carry a content checksum (the packer's do not):
// Read takes it as part of the frame, and a frame cut inside it is an error.
func TestReadZstdChecksum(t *testing.T) {
	archive := appendArchive(t, nil, entry{"bin", dirMode, ""}, entry{"bin/katana", regExec, "katana"})
	var z bytes.Buffer
	zw, err := zstd.NewWriter(&z, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(archive)
	zw.Close()
	img := z.Bytes()
	if img[4]&0x04 == 0 {
		t.Fatal("the encoder wrote no content checksum")
	}
	a, err := Read(bytes.NewReader(img))
	if err != nil || a.Compression != "zstd" || a.Payload == nil || a.Payload.Size != 6 {
		t.Fatalf("zstd frame with a checksum: got %+v, %v", a, err)
	}
	// And what follows the checksum is the next segment.
	if a, err := Read(bytes.NewReader(appendAligned(img, archive))); err != nil || a.Archives != 2 {
		t.Errorf("archive after a checksummed frame: got %+v, %v", a, err)
	}
	if _, err := Read(bytes.NewReader(img[:len(img)-2])); err == nil || !strings.Contains(err.Error(), "zstd frame truncated") {
		t.Errorf("frame cut in its checksum: got %v", err)
	}
}

func TestModeStringSpecialBits(t *testing.T) {
	for _, tc := range []struct{ typ, mode, want string }{
		{"file", "4755", "-rwsr-xr-x"},
		{"file", "4644", "-rwSr--r--"},
		{"file", "2755", "-rwxr-sr-x"},
		{"file", "2745", "-rwxr-Sr-x"},
		{"dir", "1777", "drwxrwxrwt"},
		{"dir", "1776", "drwxrwxrwT"},
		{"symlink", "0777", "lrwxrwxrwx"},
		{"door", "0644", "?rw-r--r--"},
	} {
		if got := modeString(Entry{Type: tc.typ, Mode: tc.mode}); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.typ, tc.mode, got, tc.want)
		}
	}
}

// A module whose path the init could not read back from the module list
// (fields split at spaces) or the content list (one path a line, no
// control characters) is refused by Pack, naming it, instead of giving an
// initrd on which every boot fails. Other unusual names still pack.
func TestPackModulePathTheListsCannotHold(t *testing.T) {
	for _, tc := range []struct {
		dir string
		ok  bool
	}{
		{"my dir", false},
		{"nl\ndir", false},
		{"tab\tdir", false},
		{"del\x7fdir", false},
		// Printed in pack's log: an escape sequence or a right-to-left
		// override would rewrite the terminal's lines (found by review).
		{"esc\x1b[2Kdir", false},
		{"rlo\u202edir", false},
		{"dir-1_é+", true},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := t.TempDir()
			o := inputs(t, dir)
			mods := filepath.Join(dir, "lib/modules/6.9.0-test/kernel")
			if err := os.Remove(filepath.Join(mods, "net/vsock.ko")); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(mods, "drivers", tc.dir, "vsock.ko")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, testelf.Module("depends=", "name=vsock"), 0o644); err != nil {
				t.Fatal(err)
			}
			o.Output = filepath.Join(t.TempDir(), "initrd.img")
			_, err := Pack(context.Background(), o)
			if tc.ok {
				if err != nil {
					t.Fatalf("Pack: %v", err)
				}
				return
			}
			want := fmt.Sprintf("module vsock: its path %s/%q has a character the initrd's lists cannot hold", filepath.Join(dir, "lib/modules/6.9.0-test"), "kernel/drivers/"+tc.dir+"/vsock.ko")
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), want) {
				t.Errorf("Pack: %v; want an input error saying %q", err, want)
			}
			if _, err := os.Stat(o.Output); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused pack left %s: %v", o.Output, err)
			}
		})
	}
}

// crcArchive is one newc archive of magic 070702 holding a regular file
// name with data and the checksum field check, then its trailer.
func crcArchive(name, data string, check uint32) []byte {
	var b bytes.Buffer
	hdr := func(name string, mode, size, check uint32) {
		fmt.Fprintf(&b, "070702%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 0, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, check)
		b.WriteString(name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	hdr(name, regExec, uint32(len(data)), check)
	b.WriteString(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	hdr("TRAILER!!!", 0, 0, 0)
	return b.Bytes()
}

// Archives the kernel unpacks otherwise than a reader that takes each
// entry at its word: Read reports the payload unknown (and so checks no
// --payload or --init against it) instead of a payload or /init the guest
// does not get. Each came from review with a crafted initrd that made
// inspect and the manifest name a payload the guest would not run.
func TestReadWhatTheKernelDoesOtherwise(t *testing.T) {
	o := inputs(t, t.TempDir())
	o.Modules = []string{"vsock"}
	o.PayloadEncoding = "inline"
	packed := pack(t, o)
	evil := "evil payload"
	sum := uint32(0)
	for _, c := range []byte(evil) {
		sum += uint32(c)
	}
	for _, tc := range []struct {
		name string
		img  []byte
		want string // in PayloadUnknown; "" for a payload
	}{
		{"070702 with a good checksum", appendAligned(packed, crcArchive("x", evil, sum)), ""},
		{"070702 with a bad checksum: the kernel stops there", appendAligned(appendAligned(packed, crcArchive("x", evil, sum+1)), appendArchive(t, nil, entry{"bin/katana", regExec, evil})),
			`entry "x" fails its 070702 checksum`},
		{"a file name ending in a slash", appendArchive(t, packed, entry{"bin/katana/", regExec, evil}), `entry "bin/katana/" (a file) ends in "/"`},
		{"a file name ending in /.", appendArchive(t, packed, entry{"bin/katana/.", regExec, evil}), `ends in "/."`},
		{"a folder name ending in a slash", appendArchive(t, packed, entry{"opt/", dirMode, ""}), ""},
		{"/init hard-linked to a later entry", appendLinked(t, packed, 7, entry{"init", regExec, "good"}, entry{"zzz", regExec, evil}),
			`entry "zzz" is a hard link of "init" (inode 7)`},
		{"hard links that touch neither /init nor the payload (dracut's)",
			appendLinked(t, appendArchive(t, packed, entry{"usr", dirMode, ""}), 9, entry{"usr/a", regExec, "x"}, entry{"usr/b", regExec, "x"}), ""},
		{"the payload before its folder", appendArchive(t, nil, entry{"bin/katana", regExec, evil}), `entry "bin/katana" comes before (or without) a folder "bin"`},
		{"the payload under a file", appendArchive(t, nil, entry{"bin", regExec, ""}, entry{"bin/katana", regExec, evil}), `a folder "bin"`},
		{"the content list before etc/guestinit", appendArchive(t, nil, entry{"etc", dirMode, ""}, entry{initrdlayout.ContentsPath, newc.TypeReg | 0o644, ""}), `a folder "etc/guestinit"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.img))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if a.PayloadUnknown != "" {
					t.Errorf("payload unknown: %s", a.PayloadUnknown)
				}
				return
			}
			if a.Payload != nil || !strings.Contains(a.PayloadUnknown, tc.want) {
				t.Errorf("payload %+v, unknown %q; want unknown saying %q", a.Payload, a.PayloadUnknown, tc.want)
			}
		})
	}
}

// A zstd frame is held in memory to find its end: one longer than
// maxZstdFrame (empty blocks make any length) is refused, not read whole.
func TestReadZstdFrameBound(t *testing.T) {
	defer func(m int64) { maxZstdFrame = m }(maxZstdFrame)
	maxZstdFrame = 1 << 20
	img := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00} // magic, header: no size, window
	img = append(img, make([]byte, 4<<20)...)         // empty raw blocks, none the last
	if _, err := Read(bytes.NewReader(img)); err == nil || !strings.Contains(err.Error(), "zstd frame of more than 1048576 bytes: refusing") {
		t.Errorf("Read of a 4 MiB zstd frame with a 1 MiB bound: %v", err)
	}
}

// The operator's files land under /etc/katana/ as given, mode 0644, in the
// content list the init checks, with their folders; the order of the
// flags does not change the bytes.
func TestOperatorFiles(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Compression = "none"
	cfg := filepath.Join(dir, "config.toml")
	gen := filepath.Join(dir, "genesis.json")
	os.WriteFile(cfg, []byte("chain_id = \"KATANA\"\n"), 0o600)
	os.WriteFile(gen, []byte(`{"number":0}`), 0o600)
	o.Files = []File{{Source: cfg, Dest: "/etc/katana/chain/config.toml"}, {Source: gen, Dest: "/etc/katana/chain/genesis.json"}}
	res, a := packAndRead(t, o)
	got := map[string]string{}
	for _, e := range a.Entries {
		if strings.HasPrefix(e.Path, initrdlayout.OperatorDir) {
			got[e.Path] = fmt.Sprintf("%s %s %s", e.Type, e.Mode, strings.ToLower(e.SHA256))
		}
	}
	sum := func(p string) string { b, _ := os.ReadFile(p); return hexs(sha256.Sum256(b)) }
	want := map[string]string{
		"etc/katana":                    "dir 0755 ",
		"etc/katana/chain":              "dir 0755 ",
		"etc/katana/chain/config.toml":  "file 0644 " + sum(cfg),
		"etc/katana/chain/genesis.json": "file 0644 " + sum(gen),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries under /etc/katana (-want +got):\n%s", diff)
	}
	for _, p := range []string{"etc/katana/chain/config.toml", "etc/katana/chain/genesis.json"} {
		if c, ok := res.Contents[p]; !ok || hexs(c) != strings.Fields(want[p])[2] {
			t.Errorf("the content list does not cover %s as packed", p)
		}
	}
	o.Output = ""
	b := pack(t, o)
	o.Files = []File{o.Files[1], o.Files[0]}
	if !bytes.Equal(b, pack(t, o)) {
		t.Errorf("the order of --file changed the initrd's bytes")
	}
}

// pack --exec puts a static executable in /usr/local/bin with mode 0755,
// in the content list, beside the --file files.
func TestOperatorExec(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Compression = "none"
	side := filepath.Join(dir, "paymaster-service")
	os.WriteFile(side, testelf.Executable("", []byte("sidecar")), 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("x"), 0o600)
	o.Files = []File{{Source: side, Dest: "/usr/local/bin/paymaster-service", Exec: true}, {Source: cfg, Dest: "/etc/katana/config.toml"}}
	res, a := packAndRead(t, o)
	b, _ := os.ReadFile(side)
	for p, want := range map[string]string{
		"usr":                             "dir 0755 ",
		"usr/local":                       "dir 0755 ",
		"usr/local/bin":                   "dir 0755 ",
		"usr/local/bin/paymaster-service": "file 0755 " + hexs(sha256.Sum256(b)),
	} {
		e, ok := a.Lookup(p)
		if got := fmt.Sprintf("%s %s %s", e.Type, e.Mode, e.SHA256); !ok || got != want {
			t.Errorf("%s: %q (found %v), want %q", p, got, ok, want)
		}
	}
	if c, ok := res.Contents["usr/local/bin/paymaster-service"]; !ok || c != sha256.Sum256(b) {
		t.Errorf("the content list does not cover the executable as packed")
	}
}

// OperatorFiles lists what a guest that boots has under /etc/katana/ and
// /usr/local/bin/, and refuses an initrd where something there escapes the
// content list the init checks.
func TestOperatorFilesAsTheGuestSeesThem(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	o.Compression = "none"
	o.PayloadEncoding = "inline"
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("chain"), 0o600)
	side := filepath.Join(dir, "vrf-server")
	os.WriteFile(side, testelf.Executable("", []byte("vrf")), 0o600)
	o.Files = []File{{Source: cfg, Dest: "/etc/katana/chain/config.toml"}, {Source: side, Dest: "/usr/local/bin/vrf-server", Exec: true}}
	packed := pack(t, o)
	a, err := Read(bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	es, err := a.OperatorFiles()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%s %d %s", e.Path, e.Size, e.SHA256))
	}
	sideB, _ := os.ReadFile(side)
	caB, _ := os.ReadFile(o.CABundle)
	want := []string{"etc/katana/chain/config.toml 5 " + hexs(sha256.Sum256([]byte("chain"))),
		fmt.Sprintf("etc/ssl/certs/ca-certificates.crt %d %s", len(caB), hexs(sha256.Sum256(caB))),
		fmt.Sprintf("usr/local/bin/vrf-server %d %s", len(sideB), hexs(sha256.Sum256(sideB)))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OperatorFiles (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		ents []entry
		ino  uint32
		want string
	}{
		{"a symlink among the files", []entry{{"etc/katana/genesis.json", symlink, "/opt/genesis.json"}}, 0, "/etc/katana/genesis.json is a symlink"},
		{"a sidecar elsewhere on PATH", []entry{{"bin/paymaster-service", regExec, "x"}}, 0, "/bin/paymaster-service is not a file hostbuild pack makes there"},
		{"a sidecar in ~/.katana/bin", []entry{{".katana", dirMode, ""}, {".katana/bin", dirMode, ""}, {".katana/bin/vrf-server", regExec, "x"}}, 0, "/.katana/bin/vrf-server is not a file hostbuild pack makes there"},
		{"a symlink on PATH", []entry{{"usr/bin", dirMode, ""}, {"usr/bin/paymaster-service", symlink, "/bin/katana"}}, 0, "/usr/bin/paymaster-service is a symlink the layout does not make"},
		{"a device node the layout does not make", []entry{{"dev/mem", newc.TypeChar | 0o600, ""}}, 0, "/dev/mem is a chardev the layout does not make"},
		{"the layout's link pointing elsewhere", []entry{{"var/run", symlink, "/tmp"}}, 0, "/var/run is a symlink the layout does not make"},
		{"a file the list does not cover", []entry{{"etc/katana/extra.toml", newc.TypeReg | 0o644, "x"}}, 0, "/etc/katana/extra.toml is not in the content list"},
		{"a file with other bytes", []entry{{"etc/katana/chain/config.toml", newc.TypeReg | 0o644, "other"}}, 0, "/etc/katana/chain/config.toml does not match the content list"},
		{"a listed file replaced by a folder", []entry{{"usr/local/bin/vrf-server", dirMode, ""}}, 0, "the content list names /usr/local/bin/vrf-server, which the initrd does not hold as a file"},
		{"hard links", []entry{{"etc/katana/chain/config.toml", newc.TypeReg | 0o644, "chain"}, {"usr/local/bin/vrf-server", regExec, string(sideB)}}, 77, "has 2 links"},
		// Owners, modes and folders, which the init holds the initrd to
		// as well (integrity.Unvouched): an appended archive sets them on
		// paths an earlier one made.
		{"a folder pack does not make", []entry{{"etc/katana/plugins.d", dirMode, ""}}, 0, "folder /etc/katana/plugins.d is neither the layout's nor on the way to a listed file"},
		{"a layout folder writable by all", []entry{{"etc", newc.TypeDir | 0o777, ""}}, 0, "folder /etc has mode 0777, not 0755"},
		{"the sticky bit off /tmp", []entry{{"tmp", newc.TypeDir | 0o777, ""}}, 0, "folder /tmp has mode 0777, not 1777"},
		{"a listed file made setuid", []entry{{"etc/katana/chain/config.toml", newc.TypeReg | 0o4644, "chain"}}, 0, "/etc/katana/chain/config.toml has mode 4644, not 0644 or 0755"},
		{"a listed file given away", []entry{{"etc/katana/chain/config.toml", newc.TypeReg | 0o644, "chain"}}, 0, "/etc/katana/chain/config.toml is owned by 1000:1000, not 0:0"},
		{"the root folder given away", []entry{{".", dirMode, ""}}, 0, "/ is owned by 1000:1000, not 0:0"},
		// A symlink over a folder that is not empty is not created, but
		// the kernel chowns the name all the same (do_symlink).
		{"the folder given away by a symlink over it", []entry{{"etc/katana", symlink, "/opt"}}, 0, "/etc/katana is owned by 1000:1000, not 0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.name, "given away") {
				ownerOf[tc.ents[0].name] = 1000
				defer clear(ownerOf)
			}
			a, err := Read(bytes.NewReader(appendLinked(t, packed, tc.ino, tc.ents...)))
			if err != nil {
				t.Fatal(err)
			}
			es, err := a.OperatorFiles()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OperatorFiles = %+v, %v; want an error with %q", es, err, tc.want)
			}
		})
	}

	// A symlink over a folder that is not empty is not created (clean_path's
	// rmdir fails): the guest keeps the folder and the operator's files.
	for _, p := range []string{"etc/katana", "usr"} {
		a, err := Read(bytes.NewReader(appendArchive(t, packed, entry{p, symlink, "/opt"})))
		if err != nil {
			t.Fatal(err)
		}
		if es, err := a.OperatorFiles(); err != nil || len(es) != len(want) {
			t.Errorf("a symlink over /%s, which holds files: OperatorFiles = %+v, %v; want the %d files as packed", p, es, err, len(want))
		}
	}

	// A symbolic link's mode is not the kernel's to apply (nor the init's
	// to look at): the layout's link in another mode is vouched for.
	if a, err := Read(bytes.NewReader(appendArchive(t, packed, entry{"var/run", newc.TypeLink | 0o644, "/run"}))); err != nil {
		t.Fatal(err)
	} else if _, err := a.OperatorFiles(); err != nil {
		t.Errorf("the layout's link in mode 0644: %v", err)
	}

	// The content list lives in the initrd too: one rewritten to cover an
	// added file vouches for nothing outside the operator's folders.
	relisted := func(extra map[string]string) []entry {
		c := initrdlayout.Contents{}
		for p, sum := range a.contents {
			c[p] = sum
		}
		var ents []entry
		for p, data := range extra {
			c[p] = sha256.Sum256([]byte(data))
			ents = append(ents, entry{p, regExec, data})
		}
		return append(ents, entry{initrdlayout.ContentsPath, newc.TypeReg | 0o644, string(c.Format())})
	}
	for _, tc := range []struct {
		name  string
		extra map[string]string
		want  string
	}{
		{"a listed sidecar on PATH", map[string]string{"bin/paymaster-service": "evil"}, "/bin/paymaster-service is not a file hostbuild pack makes there"},
		{"a listed layout file with other bytes", map[string]string{"etc/passwd": "evil:x:0:0::/:/bin/katana\n"}, "/etc/passwd is not a file hostbuild pack makes there"},
		{"a listed file under lib/modules that modules.load does not name", map[string]string{"lib/modules/6.9.0-test/kernel/evil.ko": "x"}, "is not a file hostbuild pack makes there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Read(bytes.NewReader(appendArchive(t, packed, relisted(tc.extra)...)))
			if err != nil {
				t.Fatal(err)
			}
			if es, err := b.OperatorFiles(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OperatorFiles = %+v, %v; want an error with %q", es, err, tc.want)
			}
		})
	}
	// A hard link to a symlink: the kernel writes the linked entry's data
	// through the symlink to a file no entry names, then the later entries
	// put everything back in place (found by review).
	t.Run("a hard link through a symlink", func(t *testing.T) {
		passwd, _ := a.Lookup("etc/passwd")
		layoutPasswd, err := initrdlayout.Base()
		if err != nil {
			t.Fatal(err)
		}
		var pw []byte
		for _, e := range layoutPasswd {
			if e.Path == "etc/passwd" {
				pw = e.Data
			}
		}
		if hexs(sha256.Sum256(pw)) != passwd.SHA256 {
			t.Fatalf("the layout's etc/passwd is not the packed one")
		}
		img := appendLinked(t, packed, 99, entry{"x", newc.TypeReg | 0o644, ""})
		img = appendArchive(t, img, entry{"x", symlink, "/bin/paymaster-service"})
		img = appendLinked(t, img, 99, entry{"etc/passwd", regExec, "evil"})
		img = appendArchive(t, img, entry{"x", dirMode, ""}, entry{"etc/passwd", newc.TypeReg | 0o644, string(pw)})
		b, err := Read(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if es, err := b.OperatorFiles(); err == nil || !strings.Contains(err.Error(), `entry "x" (a file) has 2 links`) {
			t.Errorf("OperatorFiles = %+v, %v; want the links refused", es, err)
		}
	})

	// Not hostbuild's: no content list.
	a, err = Read(bytes.NewReader(appendArchive(t, nil, entry{"etc/katana/x", newc.TypeReg | 0o644, "x"})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OperatorFiles(); !errors.Is(err, ErrNoContentList) {
		t.Errorf("OperatorFiles without a content list: %v, want ErrNoContentList", err)
	}
}

// Whatever --exec value CheckFiles accepts has a DEST that is one name in
// /usr/local/bin/, which the content list carries back.
func FuzzParseExec(f *testing.F) {
	for _, s := range []string{"paymaster-service", "a/b:/usr/local/bin/c", "x:/usr/local/bin/a/b", "x:/usr/local/bin/", "x:/usr/local/bin/..",
		"x:/bin/katana", "x/", "x:/usr/local/bin/a\nb", ":", "x:/usr/local/bin/" + strings.Repeat("n", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseExec(s)
		if err != nil {
			return
		}
		if fl.Source == "" || !fl.Exec {
			t.Fatalf("ParseExec(%q) = %+v", s, fl)
		}
		if CheckFiles([]File{fl}) != nil {
			return
		}
		name, ok := strings.CutPrefix(fl.Dest, "/"+initrdlayout.OperatorBinDir+"/")
		if !ok || name == "" || name == "." || name == ".." || strings.Contains(name, "/") || len(name) > 255 {
			t.Fatalf("CheckFiles accepted --exec DEST %q (from %q)", fl.Dest, s)
		}
		carriedBack(t, fl.Dest)
	})
}

// ParseFile and ParseExec split the values of --file and --exec.
func TestParseFileAndExec(t *testing.T) {
	for _, tc := range []struct {
		exec bool
		in   string
		want File
		err  bool
	}{
		{false, "chain/config.toml:/etc/katana/chain/config.toml", File{Source: "chain/config.toml", Dest: "/etc/katana/chain/config.toml"}, false},
		{false, "C:/x:/etc/katana/x", File{Source: "C:/x", Dest: "/etc/katana/x"}, false},
		{false, "config.toml", File{}, true},
		{false, ":/etc/katana/x", File{}, true},
		{false, "config.toml:", File{}, true},
		{true, "target/x86_64-unknown-linux-musl/release/paymaster-service", File{Source: "target/x86_64-unknown-linux-musl/release/paymaster-service", Dest: "/usr/local/bin/paymaster-service", Exec: true}, false},
		{true, "build/vrf:/usr/local/bin/vrf-server", File{Source: "build/vrf", Dest: "/usr/local/bin/vrf-server", Exec: true}, false},
		{true, "vrf", File{Source: "vrf", Dest: "/usr/local/bin/vrf", Exec: true}, false},
		{true, "", File{}, true},
		{true, ":/usr/local/bin/x", File{}, true},
		{true, "x:", File{}, true},
	} {
		parse, name := ParseFile, "ParseFile"
		if tc.exec {
			parse, name = ParseExec, "ParseExec"
		}
		got, err := parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s(%q) = %+v, %v; want %+v, error %v", name, tc.in, got, err, tc.want, tc.err)
		}
	}
}

// carriedBack fails t unless the content list carries dest (absolute)
// back as it is written.
func carriedBack(t *testing.T, dest string) {
	t.Helper()
	rel := strings.TrimPrefix(dest, "/")
	c, err := initrdlayout.ParseContents(bytes.NewReader(initrdlayout.Contents{rel: {}}.Format()))
	if _, ok := c[rel]; err != nil || !ok || len(c) != 1 {
		t.Fatalf("CheckFiles accepted DEST %q, which the content list does not carry back (%v)", dest, err)
	}
}

// Whatever --file value CheckFiles accepts has a DEST that is a clean path
// strictly under /etc/katana/, one the init's content list parser reads
// back, and ParseFile splits SOURCE:DEST so that they join back to it.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{"c.toml:/etc/katana/chain/config.toml", "a:b:/etc/katana/x", "x:/etc/katana/../passwd",
		"x:/etc/katana/", "x:/etc/katana//y", "x:/etc/katana/a\nb", "x:/etc/katana/\\y", "x:/etc/katanax", ":",
		"x:/etc/katana/a\x00b", "x:/etc/katana/" + strings.Repeat("n", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFile(s)
		if err != nil {
			return
		}
		if fl.Source == "" || fl.Source+":"+fl.Dest != s || strings.Contains(fl.Dest, ":") {
			t.Fatalf("ParseFile(%q) = %+v", s, fl)
		}
		if CheckFiles([]File{fl}) != nil {
			return
		}
		rel := strings.TrimPrefix(fl.Dest, "/")
		if !strings.HasPrefix(rel, initrdlayout.OperatorDir+"/") || path.Clean(fl.Dest) != fl.Dest || rel == initrdlayout.OperatorDir+"/" {
			t.Fatalf("CheckFiles accepted DEST %q", fl.Dest)
		}
		carriedBack(t, fl.Dest)
		// What the guest's kernel can create: under PATH_MAX with its NUL,
		// no name over NAME_MAX, no NUL.
		if len(fl.Dest) >= 4096 || strings.ContainsRune(fl.Dest, 0) {
			t.Fatalf("CheckFiles accepted DEST of %d bytes %q", len(fl.Dest), fl.Dest)
		}
		for _, name := range strings.Split(rel, "/") {
			if len(name) > 255 {
				t.Fatalf("CheckFiles accepted a name of %d bytes in %q", len(name), fl.Dest)
			}
		}
	})
}

// What a small hostile initrd could make Read hold is bounded: the number
// of entries (each costs memory, and empty ones compress to nothing), and
// the dictionary an xz initrd's block declares (allocated before anything
// is decoded); reaching the unpacked-bytes limit inside a file says so,
// not that the file is cut short.
func TestReadBoundsHostileInitrds(t *testing.T) {
	defer func(n int, d int64, m int64) { maxEntries, xzMaxDict, maxUnpacked = n, d, m }(maxEntries, xzMaxDict, maxUnpacked)
	maxEntries = 100
	var ents []entry
	for i := range 101 {
		ents = append(ents, entry{fmt.Sprintf("f%d", i), regExec, ""})
	}
	if _, err := Read(bytes.NewReader(appendArchive(t, nil, ents[:100]...))); err != nil {
		t.Errorf("100 entries: %v", err)
	}
	if _, err := Read(bytes.NewReader(appendArchive(t, nil, ents...))); err == nil || !strings.Contains(err.Error(), "more than 100 entries: refusing") {
		t.Errorf("101 entries: %v, want the entry limit", err)
	}
	// Repeating one name counts every time.
	same := make([]entry, 101)
	for i := range same {
		same[i] = entry{"f", regExec, ""}
	}
	if _, err := Read(bytes.NewReader(appendArchive(t, nil, same...))); err == nil || !strings.Contains(err.Error(), "more than 100 entries") {
		t.Errorf("101 entries of one name: %v, want the entry limit", err)
	}

	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.CRC32}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(appendArchive(t, nil, entry{"init", regExec, "x"}))
	w.Close()
	for _, tc := range []struct {
		code byte // lzma.DecodeDictCap: 29 is 96 MiB, 30 128 MiB, 31 192 MiB, 40 4 GiB
		want string
	}{
		{30, ""},
		{31, "xz: a block declares a dictionary of 201326592 bytes, more than 134217728: refusing"},
		{40, "xz: a block declares a dictionary of 4294967295 bytes, more than 134217728: refusing"},
	} {
		img, err := xzguard.WithDict(b.Bytes(), []byte{0x21}, tc.code)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Read(bytes.NewReader(img))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("dictionary code %d: %v, want %q", tc.code, err, tc.want)
		}
	}

	maxUnpacked = 1 << 20
	big := appendArchive(t, nil, entry{"big", regExec, strings.Repeat("x", 2<<20)})
	if _, err := Read(bytes.NewReader(big)); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes uncompressed, in \"big\": refusing") {
		t.Errorf("a file past the limit: %v", err)
	}
}

// A DEST that is not clean gets its clean form suggested only when that
// form would be taken: /etc/katana/../passwd is /etc/passwd, refused too.
func TestCheckFilesCleanSuggestion(t *testing.T) {
	for _, tc := range []struct {
		f       File
		say     string // "" when nothing may be suggested
		notWant string
	}{
		{File{Source: "c", Dest: "/etc/katana/./chain//config.toml"}, "; say /etc/katana/chain/config.toml", ""},
		{File{Source: "c", Dest: "/etc/katana/../passwd"}, "", "say"},
		{File{Source: "c", Dest: "/etc/katana/chain/../../katana.toml"}, "", "say"},
		{File{Source: "s", Dest: "/usr/local/bin/./vrf", Exec: true}, "; say /usr/local/bin/vrf", ""},
		{File{Source: "s", Dest: "/usr/local/bin/../sbin/x", Exec: true}, "", "say"},
		{File{Source: "s", Dest: "/usr/local/bin/a/../b/c", Exec: true}, "", "say"},
	} {
		err := CheckFiles([]File{tc.f})
		if err == nil || !strings.Contains(err.Error(), "DEST is not a clean path") {
			t.Errorf("%s: %v, want it refused as not clean", tc.f.Dest, err)
			continue
		}
		if tc.say != "" && !strings.HasSuffix(err.Error(), tc.say) {
			t.Errorf("%s: %v, want it to end %q", tc.f.Dest, err, tc.say)
		}
		if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
			t.Errorf("%s: %v suggests a path that is refused too", tc.f.Dest, err)
		}
	}
}

// Pack reports a packed module's soft dependency that nothing packed
// provides, with the modules whose names hold it (not the module itself);
// packing the provider meets it.
func TestPackReportsUnmetSoftDeps(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	mods := filepath.Join(dir, "lib", "modules", "6.9.0-test", "kernel", "lib")
	os.MkdirAll(mods, 0o755)
	os.WriteFile(filepath.Join(mods, "libcrc32c.ko"), testelf.Module("depends=", "name=libcrc32c", "softdep=pre: crc32c"), 0o644)
	os.WriteFile(filepath.Join(mods, "crc32c_generic.ko"), testelf.Module("depends=", "name=crc32c_generic", "alias=crc32c"), 0o644)
	o.Modules = []string{"vsock", "libcrc32c"}
	res, _ := packAndRead(t, o)
	want := []UnmetSoftDep{{Module: "libcrc32c", Name: "crc32c", Candidates: []string{"crc32c_generic"}}}
	if diff := cmp.Diff(want, res.SoftDeps); diff != "" {
		t.Errorf("SoftDeps (-want +got):\n%s", diff)
	}
	o.Modules = append(o.Modules, "crc32c_generic")
	if res, _ := packAndRead(t, o); len(res.SoftDeps) != 0 {
		t.Errorf("SoftDeps with crc32c_generic packed: %+v", res.SoftDeps)
	}
}

// Every module asked for built in: nothing under lib/modules/<release>
// (no modules.dep for no modules), and the archive is one inspect vouches
// for whole, as the guest does. Before, an empty modules.dep line was
// packed there, which inspect could not vouch for.
func TestPackAllModulesBuiltin(t *testing.T) {
	dir := t.TempDir()
	o := inputs(t, dir)
	rel := filepath.Join(dir, "lib", "modules", "6.9.0-test")
	if err := os.WriteFile(filepath.Join(rel, "modules.builtin"), []byte("kernel/drivers/char/builtin_one.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Modules = []string{"builtin_one"}
	o.Compression = "none"
	a, err := Read(bytes.NewReader(pack(t, o)))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range a.Entries {
		if strings.HasPrefix(e.Path, "lib/modules/6.9.0-test") {
			t.Errorf("%s packed with no module", e.Path)
		}
	}
	if _, err := a.OperatorFiles(); err != nil {
		t.Errorf("inspect's vouching: %v", err)
	}
}

package integrity_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/katana-tee/snpboot/guestinit/internal/integrity"
	"github.com/katana-tee/snpboot/guestinit/internal/modload"
	"github.com/katana-tee/snpboot/guestinit/internal/payload"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
)

const testRelease = "6.1.0-test"

// packedInitrd is an initrd laid out as hostbuild pack lays one out: the
// main archive (entries sorted by path, parents first, the content list
// among them) and, for the payload in frames, the frames archive that
// follows it at a 4-byte offset.
type packedInitrd struct {
	main, tail []byte
	files      map[string][]byte // regular files, both archives, the list aside
}

func (p packedInitrd) bytes() []byte {
	b := slices.Clone(p.main)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, p.tail...)
}

func packLike(t *testing.T, encoding string) packedInitrd {
	t.Helper()
	layout, err := initrdlayout.Base()
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		mode uint32
		data []byte
		maj  uint32
		min  uint32
	}
	main := map[string]ent{}
	for _, e := range layout {
		perm := initrdlayout.PermBits(e.Mode)
		switch e.Kind {
		case initrdlayout.KindDir:
			main[e.Path] = ent{mode: unix.S_IFDIR | perm}
		case initrdlayout.KindFile:
			main[e.Path] = ent{mode: unix.S_IFREG | perm, data: e.Data}
		case initrdlayout.KindSymlink:
			main[e.Path] = ent{mode: unix.S_IFLNK | perm, data: []byte(e.Target)}
		case initrdlayout.KindCharDev:
			main[e.Path] = ent{mode: unix.S_IFCHR | perm, maj: e.Major, min: e.Minor}
		case initrdlayout.KindBlockDev:
			main[e.Path] = ent{mode: unix.S_IFBLK | perm, maj: e.Major, min: e.Minor}
		}
	}
	exec := func(b string) ent { return ent{mode: unix.S_IFREG | 0o755, data: []byte(b)} }
	data := func(b string) ent { return ent{mode: unix.S_IFREG | 0o644, data: []byte(b)} }
	mod := path.Join(initrdlayout.ModulesRoot(testRelease), "kernel/drivers/net/virtio_net.ko")
	main[initrdlayout.InitPath] = exec("\x7fELF the init")
	main[mod] = data("\x7fELF virtio_net")
	main[path.Join(initrdlayout.ModulesRoot(testRelease), initrdlayout.ModulesDepName)] = data("kernel/drivers/net/virtio_net.ko:\n")
	main[initrdlayout.ModulesLoad] = data(string(initrdlayout.FormatModuleList([]initrdlayout.Module{{Name: "virtio_net", Path: mod}})))
	main[initrdlayout.OperatorDir+"/config.toml"] = data("chain_id = \"KATANA\"\n")
	main[initrdlayout.OperatorBinDir+"/sidecar"] = exec("\x7fELF sidecar")
	var tail []byte
	pl := []byte(strings.Repeat("\x7fELF the payload, ", 60))
	if encoding == "frames" {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
		if err != nil {
			t.Fatal(err)
		}
		fr := initrdlayout.Frames{Size: int64(len(pl)), SHA256: sha256.Sum256(pl)}
		var blob []byte
		for off := 0; off < len(pl); off += 400 {
			z := enc.EncodeAll(pl[off:min(off+400, len(pl))], nil)
			fr.List = append(fr.List, initrdlayout.Frame{Off: int64(len(blob)), Len: int64(len(z)), Size: int64(min(400, len(pl)-off)), Sum: sha256.Sum256(z)})
			blob = append(blob, z...)
		}
		enc.Close()
		main[initrdlayout.FramesPath] = data(string(fr.Format()))
		tail = blob
	} else {
		main[initrdlayout.PayloadPath] = exec(string(pl))
	}
	for p := range main {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := main[d]; !ok {
				main[d] = ent{mode: unix.S_IFDIR | 0o755}
			}
		}
	}
	out := packedInitrd{files: map[string][]byte{}}
	list := initrdlayout.Contents{}
	for p, e := range main {
		if e.mode&unix.S_IFMT == unix.S_IFREG {
			out.files[p] = e.data
			list[p] = sha256.Sum256(e.data)
		}
	}
	if tail != nil {
		out.files[initrdlayout.PackedPayloadPath] = tail
		list[initrdlayout.PackedPayloadPath] = sha256.Sum256(tail)
	}
	main[initrdlayout.ContentsPath] = data(string(list.Format()))
	var entries []cpioEntry
	for i, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range main {
			if !yield(p) {
				return
			}
		}
	}) {
		e := main[p]
		nlink := uint32(1)
		if e.mode&unix.S_IFMT == unix.S_IFDIR {
			nlink = 2
		}
		entries = append(entries, cpioEntry{name: p, mode: e.mode, nlink: nlink, ino: uint32(i + 1), data: e.data, rdevMaj: e.maj, rdevMin: e.min})
	}
	out.main = newcArchive(entries)
	if tail != nil {
		out.tail = newcArchive([]cpioEntry{{name: initrdlayout.PackedPayloadPath, mode: unix.S_IFREG | 0o644, nlink: 1, ino: uint32(len(entries) + 1), data: tail}})
	}
	return out
}

type noKernel struct{}

func (noKernel) FinitModule(int, string, int) error { return nil }
func (noKernel) InitModule([]byte, string) error    { return nil }

// bootChecks runs the init's checks of the unpacked initrd under root in
// the order guestinit's boot runs them (main.go, steps 2 to 9), with
// katana.net=none: the content list, the walk for what it does not vouch
// for, the module list, the chunk and frame lists, each module before it
// is loaded, the payload's frames, every other listed file.
func bootChecks(root string) error {
	list, err := integrity.LoadList(root)
	if err != nil {
		return err
	}
	layout, err := initrdlayout.Base()
	if err != nil {
		return err
	}
	if err := integrity.Unvouched(root, list, layout); err != nil {
		return err
	}
	payloadFile, cover, ok := list.PayloadFile()
	if !ok {
		return fmt.Errorf("content list covers %s payload", cover)
	}
	framed := payloadFile == initrdlayout.FramesPath
	mods, err := modload.ReadList(root, list)
	if err != nil {
		return err
	}
	var chunks []initrdlayout.Chunk
	if _, listed := list[initrdlayout.ChunksPath]; listed {
		b, err := integrity.Checker{Root: root, List: list}.ReadFile(initrdlayout.ChunksPath)
		if err != nil {
			return err
		}
		if chunks, err = initrdlayout.ParseChunks(bytes.NewReader(b)); err != nil {
			return err
		}
	}
	var frames initrdlayout.Frames
	if framed {
		b, err := integrity.Checker{Root: root, List: list}.ReadFile(initrdlayout.FramesPath)
		if err != nil {
			return err
		}
		if frames, err = initrdlayout.ParseFrames(bytes.NewReader(b)); err != nil {
			return err
		}
	}
	skip := map[string]bool{initrdlayout.ModulesLoad: true, initrdlayout.ChunksPath: true,
		initrdlayout.FramesPath: true, initrdlayout.PackedPayloadPath: true}
	for _, m := range mods {
		skip[m.Path] = true
	}
	if _, err := modload.Load(mods, modload.Options{Root: root, Contents: list, Kernel: noKernel{}}); err != nil {
		return err
	}
	if framed {
		if _, err := payload.Unpack(payload.Options{Root: root, Frames: frames, Workers: 1}); err != nil {
			return err
		}
	}
	_, err = integrity.Checker{Root: root, List: list, Chunks: chunks}.All(skip)
	return err
}

// scratch returns a folder for unpacked trees: on a tmpfs of its own when
// one can be mounted (the tests run in a mount namespace of their own), a
// rootfs like the kernel's and far faster to fill and empty than a disk.
func scratch(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=64m"); err == nil {
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	}
	return filepath.Join(d, "root")
}

// unpackInto empties root and unpacks initrd into it as the kernel does.
func unpackInto(t *testing.T, root string, initrd []byte) string {
	t.Helper()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return kernelUnpack(root, initrd)
}

func TestUnpackedInitrdBoots(t *testing.T) {
	for _, enc := range []string{"frames", "inline"} {
		t.Run(enc, func(t *testing.T) {
			p := packLike(t, enc)
			root := scratch(t)
			if msg := unpackInto(t, root, p.bytes()); msg != "" {
				t.Fatalf("kernel model: %s", msg)
			}
			if err := bootChecks(root); err != nil {
				t.Fatalf("the init's checks refuse a whole initrd: %v", err)
			}
		})
	}
}

// An initrd cut at any byte: the kernel unpacks what it can (from the
// compressed main archive some prefix of its bytes, then nothing after
// it; from the frames archive, silently, up to the cut), and the init's
// checks refuse the tree unless every file came out whole.
func TestTruncatedInitrdRefusedAtEveryOffset(t *testing.T) {
	for _, enc := range []string{"frames", "inline"} {
		t.Run(enc, func(t *testing.T) {
			p := packLike(t, enc)
			full := p.bytes()
			// The end of the last file's last non-zero byte: a cut after it
			// leaves every file whole (a zero tail is what truncate makes).
			whole := 0
			for name, data := range p.files {
				in := p.main
				base := 0
				if name == initrdlayout.PackedPayloadPath {
					in, base = p.tail, len(full)-len(p.tail)
				}
				hdr := bytes.Index(in, append([]byte(name), 0))
				end := (hdr + len(name) + 1 + 3) &^ 3
				last := bytes.LastIndexFunc(data, func(r rune) bool { return r != 0 })
				whole = max(whole, base+end+last+1)
			}
			root := scratch(t)
			for k := range len(full) {
				stream := full[:k]
				if k < len(p.main) {
					// Cut inside the compressed archive: the decompressor
					// fails after flushing a prefix, and the loop ends.
					stream = p.main[:k]
				}
				msg := unpackInto(t, root, stream)
				err := bootChecks(root)
				switch {
				case k < whole && err == nil:
					t.Errorf("cut at byte %d of %d (kernel: %q): the init's checks pass", k, len(full), msg)
				case k >= whole && err != nil:
					t.Errorf("cut at byte %d of %d, after every file's bytes: %v", k, len(full), err)
				}
			}
		})
	}
}

// appended returns initrd with archive appended at a 4-byte offset.
func appended(initrd []byte, entries ...cpioEntry) []byte {
	b := slices.Clone(initrd)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, newcArchive(entries)...)
}

func reg(name string, perm uint32, data string) cpioEntry {
	return cpioEntry{name: name, mode: unix.S_IFREG | perm, nlink: 1, ino: 1000, data: []byte(data)}
}

// What an archive after hostbuild pack's, or a damaged frames archive,
// leaves in the tree where the content list does not vouch for it: the
// init's checks refuse every case before the file is used.
func TestUnpackedInitrdAppendedArchiveRefused(t *testing.T) {
	p := packLike(t, "frames")
	full := p.bytes()
	hosts := string(p.files["etc/hosts"])
	init := string(p.files[initrdlayout.InitPath])
	frames := p.bytes()[:len(full)-len(p.tail)]
	blob := p.files[initrdlayout.PackedPayloadPath]
	framesArchive := func(e cpioEntry) []byte {
		return append(slices.Clone(frames), newcArchive([]cpioEntry{e})...)
	}
	zst := func(data []byte) cpioEntry {
		return cpioEntry{name: initrdlayout.PackedPayloadPath, mode: unix.S_IFREG | 0o644, nlink: 1, ino: 900, data: data}
	}
	for _, c := range []struct {
		name   string
		initrd []byte
		want   string
	}{
		{"file in /bin", appended(full, reg("bin/sh", 0o755, "sh")), "/bin/sh is in the initrd but not in its content list"},
		{"file in /lib/modules", appended(full, reg("lib/modules/"+testRelease+"/extra.ko", 0o644, "ko")), "extra.ko is in the initrd but not in its content list"},
		{"file in /etc", appended(full, reg("etc/katana/evil.toml", 0o644, "x")), "/etc/katana/evil.toml is in the initrd but not"},
		{"file in a new folder", appended(full, cpioEntry{name: "opt", mode: unix.S_IFDIR | 0o755, nlink: 2}, reg("opt/x", 0o644, "x")), "folder /opt is neither"},
		{"symlink over a listed file", appended(full, cpioEntry{name: "etc/hosts", mode: unix.S_IFLNK | 0o777, nlink: 1, data: []byte("/etc/passwd")}), "/etc/hosts is a symbolic link"},
		{"folder over a listed file", appended(full, cpioEntry{name: "etc/hosts", mode: unix.S_IFDIR | 0o755, nlink: 2}), "folder /etc/hosts is neither"},
		{"FIFO over a listed file", appended(full, cpioEntry{name: "etc/hosts", mode: unix.S_IFIFO | 0o644, nlink: 1}), "/etc/hosts is a FIFO"},
		{"device over a listed file", appended(full, cpioEntry{name: "etc/hosts", mode: unix.S_IFCHR | 0o644, nlink: 1, rdevMaj: 1, rdevMin: 3}), "/etc/hosts is a chardev 1:3"},
		{"listed file linked to another", appended(full,
			cpioEntry{name: "etc/katana/config.toml", mode: unix.S_IFREG | 0o644, nlink: 2, ino: 7},
			cpioEntry{name: "etc/hosts", mode: unix.S_IFREG | 0o644, nlink: 2, ino: 7, data: []byte(hosts)}), "etc/katana/config.toml"},
		{"listed file made setuid", appended(full, reg(initrdlayout.InitPath, 0o4755, init)), "/init has mode 4755"},
		{"listed file writable by all", appended(full, reg("etc/hosts", 0o666, hosts)), "/etc/hosts has mode 0666"},
		{"listed file given away", appended(full, cpioEntry{name: "etc/hosts", mode: unix.S_IFREG | 0o644, uid: 1000, nlink: 1, data: []byte(hosts)}), "/etc/hosts is owned by 1000:0"},
		{"listed file replaced", appended(full, reg("etc/hosts", 0o644, "10.0.0.1 localhost\n")), "etc/hosts ("},
		{"content list removed", appended(full, cpioEntry{name: initrdlayout.ContentsPath, mode: unix.S_IFDIR | 0o755, nlink: 2}), "content list"},
		{"content list another build's", appended(full, reg(initrdlayout.ContentsPath, 0o644, "")), "is in the initrd but not in its content list"},
		{"frames archive missing", frames, "bin/katana.zst: no such file"},
		{"frame entry longer", framesArchive(zst(append(slices.Clone(blob), 1))), "the frame list says"},
		{"frame entry shorter", framesArchive(zst(blob[:len(blob)-1])), "the frame list says"},
		{"frames reordered", framesArchive(zst(append(slices.Clone(blob[len(blob)/2:]), blob[:len(blob)/2]...))), "frame 0"},
		{"frame entry twice, the second other bytes", appended(full, zst(bytes.Repeat([]byte{1}, len(blob)))), "frame 0"},
		{"frame entry under another name", framesArchive(cpioEntry{name: "bin/katana.zsu", mode: unix.S_IFREG | 0o644, nlink: 1, data: blob}), "/bin/katana.zsu is in the initrd but not"},
		{"frame entry as the inline payload", framesArchive(cpioEntry{name: "bin/katana\x00zst", mode: unix.S_IFREG | 0o644, nlink: 1, data: blob}), "/bin/katana is in the initrd but not"},
		{"frame entry a symlink", framesArchive(cpioEntry{name: initrdlayout.PackedPayloadPath, mode: unix.S_IFLNK | 0o777, nlink: 1, data: []byte("/dev/zero")}), "katana.zst is a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := scratch(t)
			msg := unpackInto(t, root, c.initrd)
			err := bootChecks(root)
			t.Logf("refused: %v", err)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("checks = %v (kernel: %q), want an error saying %q", err, msg, c.want)
			}
		})
	}
}

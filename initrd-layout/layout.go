// Package initrdlayout is the declarative layout of the measured initrd and the
// contract between the host packer (hostbuild pack) and the guest init
// (guestinit): where the init, the payload, the kernel modules, the module load
// list, the content list, the chunk list and the payload's frame list live,
// and the formats of the four lists.
//
// The layout itself is layout.txt (embedded), a list in the spirit of the
// kernel's gen_init_cpio format, plus the /etc files beside it.
package initrdlayout

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Well-known paths inside the initrd, relative to its root (no leading slash),
// as they are written in the cpio archive.
const (
	InitPath     = "init"
	PayloadPath  = "bin/katana"
	CABundlePath = "etc/ssl/certs/ca-certificates.crt"
	ContentsPath = "etc/guestinit/contents.sha256"
	ChunksPath   = "etc/guestinit/chunks.sha256"
	// The payload in frames (hostbuild pack's default): PackedPayloadPath,
	// in an uncompressed archive after the main one, holds the payload cut
	// into independent zstd frames; FramesPath, in the main archive and in
	// the content list, lists them. The init checks every frame, decodes it
	// and writes PayloadPath.
	PackedPayloadPath = "bin/katana.zst"
	FramesPath        = "etc/guestinit/payload.frames"
	ModulesLoad       = "etc/guestinit/modules.load"
	ModulesDir        = "lib/modules"
	ModulesDepName    = "modules.dep"
	// OperatorDir holds the operator's own files (hostbuild pack --file):
	// Katana's chain configuration, genesis and the like. Nothing else is
	// packed there.
	OperatorDir = "etc/katana"
	// OperatorBinDir holds the operator's own executables (hostbuild pack
	// --exec): Katana's sidecars (paymaster-service, vrf-server), which it
	// looks for on PATH. Nothing else is packed there.
	OperatorBinDir = "usr/local/bin"
)

// Modes of packed files.
const (
	ExecMode fs.FileMode = 0o755
	DataMode fs.FileMode = 0o644
)

// Kind is the type of a layout entry.
type Kind int

const (
	KindDir Kind = iota + 1
	KindFile
	KindCharDev
	KindBlockDev
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindCharDev:
		return "chardev"
	case KindBlockDev:
		return "blockdev"
	case KindSymlink:
		return "symlink"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry is one declared path of the layout. Path is relative to the initrd
// root (no leading slash). Mode holds permission bits, including setuid,
// setgid and sticky bits (fs.ModeSticky etc.).
type Entry struct {
	Path         string
	Kind         Kind
	Mode         fs.FileMode
	Data         []byte // KindFile
	Target       string // KindSymlink
	Major, Minor uint32 // devices
}

// The files layout.txt names, each by name: embedding the folder would
// take any other file in it too (an editor's passwd~, patch's hosts.orig;
// untracked, so git describe --dirty does not flag them) into the init's
// bytes, and so into the launch measurement. A file added to layout.txt
// is added here too (Base fails without it).
//
//go:embed layout.txt etc/group etc/hosts etc/nsswitch.conf etc/passwd
var files embed.FS

// Base returns the entries declared in layout.txt, in file order.
func Base() ([]Entry, error) {
	src, err := files.ReadFile("layout.txt")
	if err != nil {
		return nil, fmt.Errorf("reading embedded layout: %w", err)
	}
	return parseLayout(src, files)
}

// crlf is the refusal of a carriage return in the layout or an /etc file:
// a checkout with git's core.autocrlf=true (.gitattributes pins LF, but a
// copy made otherwise would not be covered) puts one at the end of every
// line, which changes the init and the initrd, and so the measurement,
// while git status says the tree is clean.
func crlf(name string, b []byte) error {
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		line := 1 + bytes.Count(b[:i], []byte("\n"))
		return fmt.Errorf("%s:%d: carriage return: this checkout has CRLF line ends (git core.autocrlf?); check it out again with LF ends (.gitattributes asks for them): they are measured", name, line)
	}
	return nil
}

func parseLayout(src []byte, data fs.FS) ([]Entry, error) {
	if err := crlf("layout.txt", src); err != nil {
		return nil, err
	}
	var out []Entry
	seen := map[string]int{}
	for i, line := range strings.Split(string(src), "\n") {
		lineno := i + 1
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("layout.txt:%d: %s", lineno, fmt.Sprintf(format, a...))
		}
		want := map[string]int{"dir": 3, "file": 4, "nod": 6, "slink": 4}
		n, ok := want[f[0]]
		if !ok {
			return nil, bad("unknown entry type %q (want dir, file, nod or slink)", f[0])
		}
		if len(f) != n {
			return nil, bad("%s takes %d fields, got %d", f[0], n, len(f))
		}
		p, err := cleanAbs(f[1])
		if err != nil {
			return nil, bad("%v", err)
		}
		if prev, dup := seen[p]; dup {
			return nil, bad("%s already declared on line %d", f[1], prev)
		}
		seen[p] = lineno
		modeField := f[2]
		if f[0] == "slink" {
			modeField = f[3]
		}
		perm, err := strconv.ParseUint(modeField, 8, 32)
		if err != nil || perm > 0o7777 {
			return nil, bad("mode %q is not an octal permission", modeField)
		}
		e := Entry{Path: p, Mode: permToMode(uint32(perm))}
		switch f[0] {
		case "dir":
			e.Kind = KindDir
		case "file":
			e.Kind = KindFile
			e.Data, err = fs.ReadFile(data, f[3])
			if err != nil {
				return nil, bad("reading %s: %v", f[3], err)
			}
			if err := crlf(f[3], e.Data); err != nil {
				return nil, bad("%v", err)
			}
		case "nod":
			switch f[3] {
			case "c":
				e.Kind = KindCharDev
			case "b":
				e.Kind = KindBlockDev
			default:
				return nil, bad("device type %q (want c or b)", f[3])
			}
			maj, err1 := strconv.ParseUint(f[4], 10, 32)
			min, err2 := strconv.ParseUint(f[5], 10, 32)
			if err1 != nil || err2 != nil {
				return nil, bad("device numbers %q %q", f[4], f[5])
			}
			e.Major, e.Minor = uint32(maj), uint32(min)
		case "slink":
			e.Kind = KindSymlink
			e.Target = f[2]
		}
		out = append(out, e)
	}
	return out, nil
}

func cleanAbs(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	c := path.Clean(p)
	if c != p || c == "/" {
		return "", fmt.Errorf("path %q is not clean", p)
	}
	return strings.TrimPrefix(c, "/"), nil
}

func permToMode(perm uint32) fs.FileMode {
	m := fs.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// PermBits is m's permission bits as stat(2) and newc give them: the nine
// rwx bits with setuid 04000, setgid 02000 and sticky 01000.
func PermBits(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// Rules is what hostbuild pack makes of an unpacked initrd's owners,
// folders and modes: the folders of the layout, in the modes it declares,
// and those on the way to a path of the content list, 0755; regular files
// 0644 (DataMode) or 0755 (ExecMode); every entry owned by one user and
// group (root). The init (integrity.Unvouched) and the host tools
// (hostbuild inspect, manifest) both hold an initrd to them.
type Rules struct {
	folders  map[string]uint32 // path -> PermBits
	uid, gid uint32
}

// NewRules returns the Rules of an initrd with this layout and content
// list, whose entries uid and gid own.
func NewRules(layout []Entry, list Contents, uid, gid uint32) Rules {
	dirs := map[string]uint32{}
	for rel := range list {
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			dirs[d] = 0o755
		}
	}
	for _, e := range layout {
		if e.Kind == KindDir {
			dirs[e.Path] = PermBits(e.Mode)
		}
	}
	return Rules{folders: dirs, uid: uid, gid: gid}
}

// Owner says what is wrong with the owner of the entry at rel ("." for
// the root folder), or returns "".
func (r Rules) Owner(rel string, uid, gid uint32) string {
	if uid == r.uid && gid == r.gid {
		return ""
	}
	return fmt.Sprintf("%s is owned by %d:%d, not %d:%d as hostbuild pack makes every entry", entryName(rel), uid, gid, r.uid, r.gid)
}

// Mode says what is wrong with a folder (KindDir) or a regular file
// (KindFile) at rel with permission bits perm (PermBits), a folder's being
// there at all included, or returns "". The root folder's mode is the
// kernel's, and so is not looked at, nor any other kind of entry's.
func (r Rules) Mode(rel string, kind Kind, perm uint32) string {
	if rel == "." {
		return ""
	}
	switch kind {
	case KindDir:
		want, ok := r.folders[rel]
		if !ok {
			return fmt.Sprintf("folder %s is neither the layout's nor on the way to a listed file", entryName(rel))
		}
		if perm != want {
			return fmt.Sprintf("folder %s has mode %04o, not %04o", entryName(rel), perm, want)
		}
	case KindFile:
		if perm != uint32(DataMode) && perm != uint32(ExecMode) {
			return fmt.Sprintf("%s has mode %04o, not 0644 or 0755 as hostbuild pack makes files", entryName(rel), perm)
		}
	}
	return ""
}

// entryName is the guest's path of the entry at rel.
func entryName(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + rel
}

// ModulesRoot is the directory of a kernel release's modules in the initrd.
func ModulesRoot(release string) string { return path.Join(ModulesDir, release) }

// ModuleRoot returns the release directory (ModulesRoot) a module's path
// (as the module list gives it, lib/modules/<release>/...) is under, where
// its release's modules.dep is; ok is false for a path with fewer parts.
func ModuleRoot(modPath string) (root string, ok bool) {
	c := strings.SplitN(modPath, "/", 4)
	if len(c) != 4 {
		return "", false
	}
	return path.Join(c[0], c[1], c[2]), true
}

// Contents is the content list: the SHA-256 of every regular file in the
// initrd except the list itself, keyed by path relative to the root.
type Contents map[string][32]byte

// ErrContents marks a malformed content list.
var ErrContents = errors.New("malformed content list")

// PayloadFile is where the init takes the payload from: the one of
// PayloadPath (stored inline) and FramesPath (in frames) that the list
// covers. Covering both or neither is refused ("both" or "neither" in the
// result, ok false): the init would not know which payload to check.
func (c Contents) PayloadFile() (path, cover string, ok bool) {
	_, inline := c[PayloadPath]
	_, framed := c[FramesPath]
	switch {
	case inline && framed:
		return "", "both", false
	case inline:
		return PayloadPath, "", true
	case framed:
		return FramesPath, "", true
	}
	return "", "neither", false
}

// Format writes the list in sha256sum(1) format, sorted bytewise by path:
// "<64 hex>  <path>\n". The guest can check it with `sha256sum -c` too.
func (c Contents) Format() []byte {
	paths := make([]string, 0, len(c))
	for p := range c {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var b bytes.Buffer
	for _, p := range paths {
		sum := c[p]
		b.WriteString(hex.EncodeToString(sum[:]))
		b.WriteString("  ")
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseContents reads a list written by Format. It is strict: lowercase hex,
// two spaces, clean relative paths, sorted, no duplicates.
func ParseContents(r io.Reader) (Contents, error) {
	c := Contents{}
	sc := lines(r)
	prev := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if len(line) < 67 || line[64:66] != "  " {
			return nil, fmt.Errorf("%w: line %d: want \"<sha256 hex>  <path>\"", ErrContents, n)
		}
		var sum [32]byte
		if !lowerHex(line[:64], sum[:]) {
			return nil, fmt.Errorf("%w: line %d: bad hex digest", ErrContents, n)
		}
		p := line[66:]
		if !cleanRel(p) {
			return nil, fmt.Errorf("%w: line %d: path %q is not clean and relative", ErrContents, n, p)
		}
		if p <= prev {
			return nil, fmt.Errorf("%w: line %d: %q out of order or repeated", ErrContents, n, p)
		}
		prev = p
		c[p] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrContents, err)
	}
	return c, nil
}

// Module is one line of the ordered module load list.
type Module struct {
	Name string // module name as the kernel knows it (underscores), e.g. "virtio_net"
	Path string // path of the .ko[.xz|.zst|.gz] relative to the initrd root
}

// FormatModuleList writes "<name> <path>\n" per module, in load order
// (dependencies first).
func FormatModuleList(mods []Module) []byte {
	var b bytes.Buffer
	for _, m := range mods {
		fmt.Fprintf(&b, "%s %s\n", m.Name, m.Path)
	}
	return b.Bytes()
}

// ParseModuleList reads a list written by FormatModuleList.
func ParseModuleList(r io.Reader) ([]Module, error) {
	var out []Module
	sc := lines(r)
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), " ")
		if len(f) != 2 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("module list line %d: want \"<name> <path>\", got %q", n, sc.Text())
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("module list line %d: module %q listed twice", n, f[0])
		}
		if !strings.HasPrefix(f[1], ModulesDir+"/") || !cleanRel(f[1]) {
			return nil, fmt.Errorf("module list line %d: path %q is not under %s", n, f[1], ModulesDir)
		}
		seen[f[0]] = true
		out = append(out, Module{Name: f[0], Path: f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading module list: %w", err)
	}
	return out, nil
}

// ModuleDeps is one line of a release's modules.dep (depmod's format,
// which hostbuild pack writes for just the packed modules): a module's
// path, relative to the release's folder (ModulesRoot), and the paths of
// every module it needs loaded first, transitively, nearest first. The
// crypto algorithms a module builds by name as it loads count as needs
// (hostbuild's kmod.loadTimeNeeds), since the guest has no modprobe.
type ModuleDeps struct {
	Path string
	Deps []string
}

// FormatModulesDep writes "<path>:" or "<path>: <dep> <dep>..." per
// module, the lines sorted bytewise (as depmod and hostbuild pack write
// them); nothing for no modules.
func FormatModulesDep(mods []ModuleDeps) []byte {
	lines := make([]string, 0, len(mods))
	for _, m := range mods {
		line := m.Path + ":"
		if len(m.Deps) > 0 {
			line += " " + strings.Join(m.Deps, " ")
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return nil
	}
	slices.Sort(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// ParseModulesDep reads a modules.dep written by FormatModulesDep, and
// only that spelling: lines in order, one space between paths, each path
// clean and relative, listed once, a module's dependencies distinct and
// not itself, and every dependency a module of the file (a line of its
// own). The guest reads it to leave out what only an absent device's
// driver needs; a malformed or inconsistent one is refused, not guessed
// at.
func ParseModulesDep(r io.Reader) ([]ModuleDeps, error) {
	var out []ModuleDeps
	sc := lines(r)
	seen := map[string]bool{}
	prev := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		// The path ends at the first ": " (no path holds a space), or at
		// the line's last ':' when the module needs none: a path may
		// hold a colon (a folder "extra:1"), which pack accepts.
		p, deps, hasDeps := strings.Cut(line, ": ")
		ok := hasDeps
		if !hasDeps {
			p, ok = strings.CutSuffix(line, ":")
		}
		if !ok || !cleanRel(p) || strings.Contains(p, " ") {
			return nil, fmt.Errorf("modules.dep line %d: want \"<path>:\" or \"<path>: <dep>...\" with clean relative paths, got %q", n, line)
		}
		if n > 1 && line <= prev {
			return nil, fmt.Errorf("modules.dep line %d: %q is not after %q (lines are sorted, each module once)", n, line, prev)
		}
		if seen[p] {
			return nil, fmt.Errorf("modules.dep line %d: module %q listed twice", n, p)
		}
		seen[p] = true
		prev = line
		m := ModuleDeps{Path: p}
		if hasDeps {
			have := map[string]bool{}
			for _, d := range strings.Split(deps, " ") {
				switch {
				case !cleanRel(d):
					return nil, fmt.Errorf("modules.dep line %d: dependency %q of %s is not a clean relative path (one space between paths)", n, d, p)
				case d == p:
					return nil, fmt.Errorf("modules.dep line %d: %s depends on itself", n, p)
				case have[d]:
					return nil, fmt.Errorf("modules.dep line %d: %s lists dependency %s twice", n, p, d)
				}
				have[d] = true
				m.Deps = append(m.Deps, d)
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	for _, m := range out {
		for _, d := range m.Deps {
			if !seen[d] {
				return nil, fmt.Errorf("modules.dep: %s depends on %s, which has no line of its own", m.Path, d)
			}
		}
	}
	return out, nil
}

// ChunkSize is the size of the pieces large files are also hashed in: the
// chunk list lets the init check a large payload on every CPU at once (one
// SHA-256 over a whole file cannot be split). Files larger than ChunkSize
// are listed; every chunk is ChunkSize bytes but a file's last.
const ChunkSize = 4 << 20

// Chunk is one piece of a large file: Len bytes at Off, and their SHA-256.
type Chunk struct {
	Path     string
	Off, Len int64
	Sum      [32]byte
}

// Chunks splits data (the content of path) into its chunk list entries;
// none for a file of at most ChunkSize bytes.
func Chunks(path string, data []byte) []Chunk {
	if len(data) <= ChunkSize {
		return nil
	}
	var out []Chunk
	for off := 0; off < len(data); off += ChunkSize {
		end := min(off+ChunkSize, len(data))
		out = append(out, Chunk{Path: path, Off: int64(off), Len: int64(end - off), Sum: sha256.Sum256(data[off:end])})
	}
	return out
}

// FormatChunks writes "<64 hex>  <offset> <length> <path>\n" per chunk,
// sorted by path, then offset.
func FormatChunks(cs []Chunk) []byte {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b Chunk) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return int(min(max(a.Off-b.Off, -1), 1))
	})
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "%s  %d %d %s\n", hex.EncodeToString(c.Sum[:]), c.Off, c.Len, c.Path)
	}
	return b.Bytes()
}

// ParseChunks reads a list written by FormatChunks, strictly: sorted, each
// file's chunks contiguous from offset 0, every chunk ChunkSize bytes but
// the last, files larger than one chunk, clean relative paths.
func ParseChunks(r io.Reader) ([]Chunk, error) {
	var out []Chunk
	sc := lines(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		bad := func(why string) error {
			return fmt.Errorf("%w: chunk list line %d: %s", ErrContents, n, why)
		}
		if len(line) < 66 || line[64:66] != "  " {
			return nil, bad("want \"<sha256 hex>  <offset> <length> <path>\"")
		}
		var c Chunk
		if !lowerHex(line[:64], c.Sum[:]) {
			return nil, bad("bad hex digest")
		}
		f := strings.SplitN(line[66:], " ", 3)
		if len(f) != 3 {
			return nil, bad("want offset, length and path")
		}
		off, ok1 := decimal(f[0])
		ln, ok2 := decimal(f[1])
		if !ok1 || !ok2 {
			return nil, bad("offset and length must be plain decimal numbers")
		}
		c.Off, c.Len, c.Path = off, ln, f[2]
		if !cleanRel(c.Path) {
			return nil, bad(fmt.Sprintf("path %q is not clean and relative", c.Path))
		}
		if c.Len < 1 || c.Len > ChunkSize {
			return nil, bad(fmt.Sprintf("length %d out of range [1, %d]", c.Len, ChunkSize))
		}
		if len(out) > 0 && out[len(out)-1].Path == c.Path {
			prev := out[len(out)-1]
			if prev.Len != ChunkSize || c.Off != prev.Off+prev.Len {
				return nil, bad(fmt.Sprintf("%s: chunk at %d does not follow a full chunk at %d", c.Path, c.Off, prev.Off))
			}
		} else {
			if len(out) > 0 && c.Path <= out[len(out)-1].Path {
				return nil, bad(fmt.Sprintf("%q out of order or repeated", c.Path))
			}
			if len(out) > 0 {
				if err := singleChunk(out); err != nil {
					return nil, bad(err.Error())
				}
			}
			if c.Off != 0 {
				return nil, bad(fmt.Sprintf("%s: first chunk at offset %d, want 0", c.Path, c.Off))
			}
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: chunk list: %w", ErrContents, err)
	}
	if len(out) > 0 {
		if err := singleChunk(out); err != nil {
			return nil, fmt.Errorf("%w: chunk list: %v", ErrContents, err)
		}
	}
	return out, nil
}

// singleChunk refuses a file listed with one chunk only (files of at most
// ChunkSize bytes are not listed): the last file of cs is checked.
func singleChunk(cs []Chunk) error {
	last := cs[len(cs)-1]
	if last.Off == 0 {
		return fmt.Errorf("%s: listed with a single chunk", last.Path)
	}
	return nil
}

// MaxFrameSize bounds the decoded size of one payload frame: the init holds
// one decoded frame per worker in memory.
const MaxFrameSize = 64 << 20

// maxFrames bounds the frame list (a 64 GiB payload at MaxFrameSize).
const maxFrames = 1 << 10

// Frame is one zstd frame of the packed payload: Len compressed bytes at
// Off in PackedPayloadPath, with their SHA-256, that decode to Size bytes.
type Frame struct {
	Off, Len int64
	Size     int64
	Sum      [32]byte
}

// Frames is the frame list: the decoded payload's size and SHA-256 (the
// manifest's payload digest; the init does not hash the decoded bytes at
// boot, each frame is checked, but holds /bin/katana to it before each
// restart with katana.on_exit=restart) and its frames, in payload order.
type Frames struct {
	Size   int64
	SHA256 [32]byte
	List   []Frame
}

// Format writes the list: a header line "payload <size> <sha256 hex>", then
// "<sha256 hex>  <offset> <length> <size>" per frame, in order.
func (f Frames) Format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "payload %d %s\n", f.Size, hex.EncodeToString(f.SHA256[:]))
	for _, fr := range f.List {
		fmt.Fprintf(&b, "%s  %d %d %d\n", hex.EncodeToString(fr.Sum[:]), fr.Off, fr.Len, fr.Size)
	}
	return b.Bytes()
}

// ParseFrames reads a list written by Format, strictly: plain decimal
// numbers, lowercase hex, frames contiguous from offset 0, every frame's
// decoded size in [1, MaxFrameSize], decoded sizes adding up to the
// payload's, at least one frame and at most 1024.
func ParseFrames(r io.Reader) (Frames, error) {
	var f Frames
	sc := lines(r)
	var next, total int64
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		bad := func(why string) error {
			return fmt.Errorf("%w: frame list line %d: %s", ErrContents, n, why)
		}
		if n == 1 {
			h := strings.Split(line, " ")
			if len(h) != 3 || h[0] != "payload" {
				return Frames{}, bad("want \"payload <size> <sha256 hex>\"")
			}
			size, ok := decimal(h[1])
			if !ok || size < 1 {
				return Frames{}, bad(fmt.Sprintf("payload size %q is not a positive decimal number", h[1]))
			}
			if !lowerHex(h[2], f.SHA256[:]) {
				return Frames{}, bad("bad hex digest")
			}
			f.Size = size
			continue
		}
		if len(line) < 66 || line[64:66] != "  " {
			return Frames{}, bad("want \"<sha256 hex>  <offset> <length> <size>\"")
		}
		var fr Frame
		if !lowerHex(line[:64], fr.Sum[:]) {
			return Frames{}, bad("bad hex digest")
		}
		nums := strings.Split(line[66:], " ")
		if len(nums) != 3 {
			return Frames{}, bad("want offset, length and size")
		}
		var ok [3]bool
		fr.Off, ok[0] = decimal(nums[0])
		fr.Len, ok[1] = decimal(nums[1])
		fr.Size, ok[2] = decimal(nums[2])
		if !ok[0] || !ok[1] || !ok[2] {
			return Frames{}, bad("offset, length and size must be plain decimal numbers")
		}
		if fr.Off != next {
			return Frames{}, bad(fmt.Sprintf("frame at %d, want %d (frames are contiguous from 0)", fr.Off, next))
		}
		if fr.Len < 1 || fr.Len > math.MaxUint32 {
			return Frames{}, bad(fmt.Sprintf("length %d out of range [1, 2^32)", fr.Len))
		}
		if fr.Size < 1 || fr.Size > MaxFrameSize {
			return Frames{}, bad(fmt.Sprintf("decoded size %d out of range [1, %d]", fr.Size, MaxFrameSize))
		}
		if len(f.List) == maxFrames {
			return Frames{}, bad(fmt.Sprintf("more than %d frames", maxFrames))
		}
		next += fr.Len
		total += fr.Size
		f.List = append(f.List, fr)
	}
	if err := sc.Err(); err != nil {
		return Frames{}, fmt.Errorf("%w: frame list: %w", ErrContents, err)
	}
	if f.Size == 0 {
		return Frames{}, fmt.Errorf("%w: frame list is empty", ErrContents)
	}
	if len(f.List) == 0 {
		return Frames{}, fmt.Errorf("%w: frame list has no frames", ErrContents)
	}
	if total != f.Size {
		return Frames{}, fmt.Errorf("%w: frame list: frames decode to %d bytes, the payload is %d", ErrContents, total, f.Size)
	}
	return f, nil
}

// Packed is the size of PackedPayloadPath the list describes.
func (f Frames) Packed() int64 {
	if len(f.List) == 0 {
		return 0
	}
	last := f.List[len(f.List)-1]
	return last.Off + last.Len
}

// decimal parses a plain decimal number: no sign, no leading zero.
func decimal(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == s && n >= 0
}

// lowerHex decodes a lowercase hex digest of len(dst) bytes.
func lowerHex(s string, dst []byte) bool {
	if len(s) != 2*len(dst) || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// lines scans r line by line, splitting at '\n' only: unlike
// bufio.ScanLines it keeps a '\r', which the lists' parsers then refuse,
// and it refuses a last line without its '\n' (a list that parses must
// format back to the same bytes).
func lines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return 0, nil, errNoNewline
		}
		return 0, nil, nil
	})
	return sc
}

// errNoNewline is the refusal of a list whose last line does not end in
// '\n': Format ends every line with one.
var errNoNewline = errors.New("last line does not end with a newline")

// cleanRel says whether p is a clean relative path inside the root, free
// of control characters.
func cleanRel(p string) bool {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return true
}

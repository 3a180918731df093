package initrd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/katana-tee/snpboot/hostbuild/internal/infile"
	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
	"github.com/katana-tee/snpboot/hostbuild/internal/printable"
	initrdlayout "github.com/katana-tee/snpboot/initrd-layout"
	"github.com/katana-tee/snpboot/shared/xzguard"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Entry is one archive member as inspect and diff see it.
type Entry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   string `json:"mode"` // octal permission bits, e.g. "0755", "1777"
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // regular files
	Link   string `json:"link,omitempty"`   // symlinks
	Device string `json:"device,omitempty"` // "major:minor" for device nodes
	MTime  uint32 `json:"mtime"`
	NLink  uint32 `json:"nlink"`
}

// Archive is a parsed initrd.
type Archive struct {
	Compression string   `json:"compression"`
	Size        int64    `json:"size"`   // bytes on disk
	SHA256      string   `json:"sha256"` // of the file on disk
	Archives    int      `json:"archives"`
	Payload     *Payload `json:"payload,omitempty"`
	// PayloadUnknown says why no payload is reported: an entry whose
	// target only the kernel's path lookup can tell (a ".." component,
	// a symlink on the way) might replace any file, the payload too.
	PayloadUnknown string  `json:"payload_unknown,omitempty"`
	Entries        []Entry `json:"entries"`

	// contents is the content list the guest ends up with, when it parses,
	// and modules its module load list, when there is one that parses
	// (OperatorFiles).
	contents initrdlayout.Contents
	modules  []initrdlayout.Module
	// linked names the first entry other than a folder with two or more
	// links: the kernel links it to an earlier entry of its inode and type
	// and writes its data through that (through a symlink, to a file no
	// entry names). hostbuild pack writes none.
	linked string
}

// Payload describes /bin/katana as the guest will run it: stored inline, or
// in frames (bin/katana.zst, listed in etc/guestinit/payload.frames), whose
// list gives the decoded size and SHA-256 (the manifest's payload digest),
// checked by Read against the frames themselves.
type Payload struct {
	Encoding string `json:"encoding"` // "frames" or "inline"
	Stored   string `json:"stored"`   // path in the initrd
	Size     int64  `json:"size"`     // decoded bytes
	SHA256   string `json:"sha256"`   // of the decoded payload
	Frames   int    `json:"frames,omitempty"`
	Packed   int64  `json:"packed,omitempty"` // bytes of the frames
}

// MaxUnpacked bounds the uncompressed bytes Read accepts, so a small
// hostile file cannot keep it busy for ever.
const MaxUnpacked = 8 << 30

// Limits, lowered by the fuzz test: the uncompressed bytes read, and the
// zstd window a frame may ask for (the decoder allocates it; the packer
// writes 8 MiB windows, distributions' initramfs tools at most 128 MiB).
var (
	maxUnpacked   int64  = MaxUnpacked
	zstdMaxWindow uint64 = 128 << 20
	// maxEntries bounds the cpio headers read: each costs memory (an
	// entry, its path in the indexes), and empty files compress to almost
	// nothing (2 million took 1.6 MB as zstd, and 1.7 GB to read).
	// hostbuild pack writes a few hundred; distributions' initrds a few
	// thousand.
	maxEntries = 1 << 18
	// maxNameBytes bounds the entries' names and symlink targets summed:
	// each may be 4 KiB, and maxEntries of them, which compress to almost
	// nothing, took 5-14 GB to read and list. hostbuild pack writes a few
	// KiB of them; distributions' initrds a few hundred KiB.
	maxNameBytes int64 = 16 << 20
	// xzMaxDict bounds the LZMA2 dictionary an xz initrd may declare,
	// like zstdMaxWindow.
	xzMaxDict int64 = 128 << 20
)

const readBuffer = 64 << 10

// ReadFile parses the initrd at path.
func ReadFile(path string) (*Archive, error) {
	return ReadFileContext(context.Background(), path)
}

// ReadFileContext is ReadFile stopping once ctx is done, with ctx's cause
// (a large payload takes seconds to read and decode).
func ReadFileContext(ctx context.Context, path string) (*Archive, error) {
	// infile.Open refuses anything but a regular file, a FIFO at once (a
	// plain open would wait for a writer for ever). The read is bounded by
	// MaxUnpacked.
	f, err := infile.Open("initrd", path)
	if err != nil {
		var nr *infile.NotRegularError
		if errors.As(err, &nr) && nr.Mode.IsDir() {
			return nil, fmt.Errorf("%s is a folder, not an initrd: give the initrd file (e.g. out/launch/initrd.img)", path)
		}
		return nil, err
	}
	defer f.Close()
	a, err := Read(infile.ContextReader(ctx, f))
	if ctx.Err() != nil {
		return nil, fmt.Errorf("reading initrd %s: %w", path, context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

type hashCounter struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *hashCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	return n, err
}

// Read parses an initrd as the kernel unpacks it (init/initramfs.c): a
// sequence of segments, each an uncompressed newc archive or one compressed
// stream (a gzip member, a zstd frame, or xz to the end) holding one or more
// archives, with NUL padding between segments. A microcode prefix followed
// by a compressed archive, or an archive appended to a packed initrd, read
// as the guest would see them. Malformed input gives an error that says
// where.
func Read(r io.Reader) (*Archive, error) {
	hc := &hashCounter{r: r, h: sha256.New()}
	br := bufio.NewReaderSize(hc, readBuffer)
	if head, _ := br.Peek(1); len(head) == 0 {
		return nil, errors.New("empty file: not an initrd")
	}
	st := &readState{a: &Archive{}, index: map[string]int{}, symlinks: map[string]bool{}, dirs: map[string]bool{}, nonEmpty: map[string]bool{}, links: map[linkKey]*linkGroup{}, budget: maxUnpacked}
	var comps []string
	afterNone := false // the last segment was an uncompressed archive
	for {
		pad := hc.n - int64(br.Buffered())
		if err := st.skipNULs(br); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("NUL padding from byte %d: %w", pad, err)
		}
		off := hc.n - int64(br.Buffered())
		head, _ := br.Peek(8)
		c := Detect(head)
		// The kernel takes a cpio header only at a multiple of 4 bytes
		// (init/initramfs.c: this_header & 3); elsewhere it stops
		// unpacking ("invalid magic at start of compressed archive",
		// "broken padding"), and what follows never reaches the guest.
		if c == "none" && off%4 != 0 {
			return nil, fmt.Errorf("cpio archive at byte %d, not a multiple of 4: the kernel stops unpacking there; refusing", off)
		}
		// After an uncompressed archive the kernel checks the padding
		// before anything (do_reset: "broken padding"), a compressed
		// stream included.
		if afterNone && off%4 != 0 {
			return nil, fmt.Errorf("%s data at byte %d, after an uncompressed archive and not at a multiple of 4: the kernel stops unpacking there (\"broken padding\"); refusing", c, off)
		}
		afterNone = c == "none"
		if len(comps) == 0 || comps[len(comps)-1] != c {
			comps = append(comps, c)
		}
		if err := st.segment(c, br); err != nil {
			if off > 0 {
				return nil, fmt.Errorf("segment at byte %d (%s): %w", off, c, err)
			}
			return nil, err
		}
	}
	a := st.a
	if a.Archives == 0 {
		return nil, errors.New("no cpio archive found (only NUL bytes)")
	}
	a.Compression = strings.Join(comps, "+")
	a.Size = hc.n
	a.SHA256 = hex.EncodeToString(hc.h.Sum(nil))
	slices.SortStableFunc(a.Entries, func(x, y Entry) int { return strings.Compare(x.Path, y.Path) })
	if err := st.payload(); err != nil {
		return nil, err
	}
	if _, ok := st.index[initrdlayout.ContentsPath]; ok && st.contents.why == "" {
		a.contents, _ = initrdlayout.ParseContents(bytes.NewReader(st.contents.data))
	}
	if _, ok := st.index[initrdlayout.ModulesLoad]; ok && st.modules.why == "" {
		a.modules, _ = initrdlayout.ParseModuleList(bytes.NewReader(st.modules.data))
	}
	return a, nil
}

// checkVouched refuses what hostbuild pack does not write and the content
// list does not vouch for: an entry other than a folder with two or more
// links; a regular file the list does not cover with its bytes (the list
// itself aside), or one outside the operator's folders that pack does not
// make (the content list lives in the initrd too: whoever can add a file
// can list it); an entry that is neither a folder nor a regular file
// unless the layout makes it just so.
func (a *Archive) checkVouched() error {
	if a.linked != "" {
		return fmt.Errorf("%s: the kernel links such entries and writes their data through the first of their inode, possibly to a file no entry names (hostbuild pack writes no links)", a.linked)
	}
	layout, err := layoutFiles()
	if err != nil {
		return err
	}
	special := map[string]file{}
	packs := map[string]string{} // the files pack makes outside the operator's folders: path -> SHA-256, "" for any bytes
	for _, f := range layout {
		switch f.mode & newc.TypeMask {
		case newc.TypeDir:
		case newc.TypeReg:
			sum := sha256.Sum256(f.data)
			packs[f.path] = hex.EncodeToString(sum[:])
		default:
			special[f.path] = f
		}
	}
	for _, p := range []string{initrdlayout.InitPath, initrdlayout.PayloadPath, initrdlayout.PackedPayloadPath, initrdlayout.FramesPath,
		initrdlayout.ChunksPath, initrdlayout.ModulesLoad, initrdlayout.CABundlePath} {
		packs[p] = ""
	}
	for _, m := range a.modules {
		// lib/modules/<release>/...: the module, and its release's
		// modules.dep.
		packs[m.Path] = ""
		if root, ok := initrdlayout.ModuleRoot(m.Path); ok {
			packs[path.Join(root, initrdlayout.ModulesDepName)] = ""
		}
	}
	operator := func(p string) bool {
		return strings.HasPrefix(p, initrdlayout.OperatorDir+"/") || strings.HasPrefix(p, initrdlayout.OperatorBinDir+"/")
	}
	for _, e := range a.Entries {
		switch e.Type {
		case "dir":
		case "file":
			if e.Path == initrdlayout.ContentsPath {
				continue
			}
			if want, ok := packs[e.Path]; !operator(e.Path) && (!ok || want != "" && want != e.SHA256) {
				return fmt.Errorf("/%s is not a file hostbuild pack makes there (only the layout's, /init, the payload and its lists, the modules modules.load names, the CA bundle, and the operator's files under /%s/ and /%s/): Katana could run or read it", printable.Escape(e.Path), initrdlayout.OperatorDir, initrdlayout.OperatorBinDir)
			}
			sum, ok := a.contents[e.Path]
			if !ok {
				return fmt.Errorf("/%s is not in the content list: the init does not check it, yet Katana could run or read it (pack the initrd with hostbuild pack)", printable.Escape(e.Path))
			}
			if hex.EncodeToString(sum[:]) != e.SHA256 {
				return fmt.Errorf("/%s does not match the content list (the init would refuse to boot)", printable.Escape(e.Path))
			}
		default:
			f, ok := special[e.Path]
			want := Entry{Type: newc.TypeString(f.mode), Mode: fmt.Sprintf("%04o", f.mode&0o7777), Link: f.target}
			if f.mode&newc.TypeMask == newc.TypeChar || f.mode&newc.TypeMask == newc.TypeBlock {
				want.Device = fmt.Sprintf("%d:%d", f.rmaj, f.rmin)
			}
			// A symbolic link's mode is whatever the archive says: the
			// kernel applies none (and the init looks at none).
			if want.Type == "symlink" {
				want.Mode = e.Mode
			}
			if !ok || e.Type != want.Type || e.Mode != want.Mode || e.Link != want.Link || e.Device != want.Device {
				return fmt.Errorf("/%s is a %s the layout does not make (only folders, files the content list covers and the layout's %d device nodes and links are vouched for)", printable.Escape(e.Path), e.Type, len(special))
			}
		}
	}
	return nil
}

// checkMetadata refuses, after what checkVouched and OperatorFiles check
// first (the more precise errors), what the init refuses to boot on besides
// (integrity.Unvouched): owners other than root, folders pack does not
// make or in other modes, files in modes other than 0644 and 0755.
func (a *Archive) checkMetadata() error {
	base, err := initrdlayout.Base()
	if err != nil {
		return err
	}
	rules := initrdlayout.NewRules(base, a.contents, 0, 0)
	kinds := map[string]initrdlayout.Kind{"dir": initrdlayout.KindDir, "file": initrdlayout.KindFile}
	for _, e := range a.Entries {
		why := rules.Owner(e.Path, e.UID, e.GID)
		if why == "" {
			perm, _ := strconv.ParseUint(e.Mode, 8, 32)
			why = rules.Mode(e.Path, kinds[e.Type], uint32(perm))
		}
		if why != "" {
			return fmt.Errorf("%s (the init would refuse to boot)", printable.Escape(why))
		}
	}
	return nil
}

// ErrNoContentList is OperatorFiles' error for an initrd without a content
// list the init would read: not one hostbuild pack built.
var ErrNoContentList = errors.New("no content list (" + initrdlayout.ContentsPath + "): not an initrd hostbuild pack built")

// CommonMTime returns the mtime every entry has, if they all have one
// (hostbuild pack writes SOURCE_DATE_EPOCH into each).
func (a *Archive) CommonMTime() (uint32, bool) {
	if len(a.Entries) == 0 {
		return 0, false
	}
	t := a.Entries[0].MTime
	for _, e := range a.Entries[1:] {
		if e.MTime != t {
			return 0, false
		}
	}
	return t, true
}

// ModuleReleases returns the kernel releases whose module folders
// (lib/modules/<release>/) hold a file in the initrd, sorted.
func (a *Archive) ModuleReleases() []string {
	seen := map[string]bool{}
	for _, e := range a.Entries {
		rest, ok := strings.CutPrefix(e.Path, initrdlayout.ModulesDir+"/")
		if rel, _, found := strings.Cut(rest, "/"); ok && found && e.Type == "file" {
			seen[rel] = true
		}
	}
	rels := make([]string, 0, len(seen))
	for r := range seen {
		rels = append(rels, r)
	}
	slices.Sort(rels)
	return rels
}

// HasContentList reports whether the guest would find a content list that
// parses: the initrd is hostbuild pack's, or claims to be.
func (a *Archive) HasContentList() bool { return a.contents != nil }

// OperatorFiles returns the operator's files (pack --file under
// /etc/katana/, --exec in /usr/local/bin/, and the --ca-bundle) as a
// guest that boots has them: the init checks each against the content
// list before Katana starts. It refuses, with the reason, an initrd whose
// payload is unknown, one holding anything checkVouched refuses (Katana
// also looks for its sidecars on all of PATH and in ~/.katana/bin, and
// the init checks only what the list names), one whose list names an
// operator's file the initrd does not hold, and one without a content
// list (ErrNoContentList).
func (a *Archive) OperatorFiles() ([]Entry, error) {
	if a.PayloadUnknown != "" {
		return nil, fmt.Errorf("the guest's files cannot be told: %s", a.PayloadUnknown)
	}
	if a.contents == nil {
		return nil, ErrNoContentList
	}
	// Every entry, those under the operator's folders included, is a
	// folder, a covered file or one of the layout's nodes and links.
	if err := a.checkVouched(); err != nil {
		return nil, err
	}
	var files []Entry
	for _, dir := range []string{initrdlayout.OperatorDir, initrdlayout.OperatorBinDir} {
		under := func(p string) bool { return strings.HasPrefix(p, dir+"/") }
		for _, e := range a.Entries {
			if under(e.Path) && e.Type == "file" {
				files = append(files, e)
			}
		}
		for p := range a.contents {
			if e, ok := a.Lookup(p); under(p) && (!ok || e.Type != "file") {
				return nil, fmt.Errorf("the content list names /%s, which the initrd does not hold as a file (the init would refuse to boot)", printable.Escape(p))
			}
		}
	}
	if err := a.checkMetadata(); err != nil {
		return nil, err
	}
	// The CA bundle (pack --ca-bundle), which Katana trusts through
	// SSL_CERT_FILE, is the operator's too.
	if e, ok := a.Lookup(initrdlayout.CABundlePath); ok && e.Type == "file" {
		files = append(files, e)
	}
	slices.SortFunc(files, func(x, y Entry) int { return strings.Compare(x.Path, y.Path) })
	return files, nil
}

// payload fills a.Payload (entries sorted) with the payload the init runs,
// chosen as the init chooses it, or a.PayloadUnknown with why there is none;
// a frame list that does not parse or does not match bin/katana.zst (its
// size, a frame's SHA-256, the decoded payload) is an error.
func (st *readState) payload() error {
	a := st.a
	if st.unresolved != "" {
		a.PayloadUnknown = st.unresolved
		return nil
	}
	// The init runs what its content list covers: /bin/katana, or the
	// frames of the frame list it covers, and refuses to boot when the
	// list covers both or neither or the file differs. Report that, not
	// whichever payload files happen to be present. (An initrd without a
	// content list is not hostbuild's: its inline payload is reported.)
	framed := false
	if _, ok := st.index[initrdlayout.ContentsPath]; ok {
		mode, why := st.initPayload()
		if why != "" {
			a.PayloadUnknown = why + ": the init refuses to boot"
			return nil
		}
		framed = mode == "frames"
	} else {
		_, framed = st.index[initrdlayout.FramesPath]
	}
	if framed {
		if st.frames.why != "" {
			return fmt.Errorf("%s %s: not a frame list", initrdlayout.FramesPath, st.frames.why)
		}
		fr, err := initrdlayout.ParseFrames(bytes.NewReader(st.frames.data))
		if err != nil {
			return fmt.Errorf("%s: %w", initrdlayout.FramesPath, err)
		}
		e, ok := a.Lookup(initrdlayout.PackedPayloadPath)
		if !ok || e.Type != "file" || e.Size != fr.Packed() {
			return fmt.Errorf("%s lists %d bytes of frames, but %s is %s", initrdlayout.FramesPath, fr.Packed(), initrdlayout.PackedPayloadPath,
				map[bool]string{true: fmt.Sprintf("%d bytes", e.Size), false: "missing"}[ok])
		}
		// The frames were checked as they were read, against the list
		// then in force: it must be the list the guest ends up with.
		if !st.packed.checked || !bytes.Equal(st.packed.list, st.frames.data) {
			return fmt.Errorf("%s does not follow the %s it must match: its frames cannot be checked as the initrd is read; refusing",
				initrdlayout.PackedPayloadPath, initrdlayout.FramesPath)
		}
		if st.packed.err != nil {
			return st.packed.err
		}
		a.Payload = &Payload{Encoding: "frames", Stored: initrdlayout.PackedPayloadPath, Size: fr.Size,
			SHA256: hex.EncodeToString(fr.SHA256[:]), Frames: len(fr.List), Packed: fr.Packed()}
		return nil
	}
	if e, ok := a.Lookup(initrdlayout.PayloadPath); ok && e.Type == "file" {
		a.Payload = &Payload{Encoding: "inline", Stored: initrdlayout.PayloadPath, Size: e.Size, SHA256: e.SHA256}
	}
	return nil
}

// payloadPaths are the files that decide the payload the init runs.
var payloadPaths = map[string]bool{
	initrdlayout.PayloadPath: true, initrdlayout.PackedPayloadPath: true,
	initrdlayout.FramesPath: true, initrdlayout.ContentsPath: true,
}

// initPayload says which payload the init takes from its content list,
// "inline" or "frames", as guestinit does, or why it refuses to boot.
func (st *readState) initPayload() (mode, why string) {
	if st.contents.why != "" {
		return "", fmt.Sprintf("%s %s, not a content list", initrdlayout.ContentsPath, st.contents.why)
	}
	list, err := initrdlayout.ParseContents(bytes.NewReader(st.contents.data))
	if err != nil {
		return "", fmt.Sprintf("%s: %v", initrdlayout.ContentsPath, err)
	}
	path, cover, ok := list.PayloadFile()
	if !ok {
		return "", fmt.Sprintf("the content list covers %s %s and %s (it must cover exactly one)",
			cover, initrdlayout.PayloadPath, initrdlayout.FramesPath)
	}
	sum := list[path]
	framed := path == initrdlayout.FramesPath
	mode = map[bool]string{true: "frames", false: "inline"}[framed]
	e, ok := st.a.Lookup(path)
	if !ok || e.Type != "file" || e.SHA256 != hex.EncodeToString(sum[:]) {
		return "", fmt.Sprintf("%s does not match the content list", path)
	}
	if _, ok := st.index[initrdlayout.PayloadPath]; ok && framed {
		return "", fmt.Sprintf("%s is present although the payload comes in frames (the init writes it from them)", initrdlayout.PayloadPath)
	}
	return mode, ""
}

// maxPackedFrame bounds the compressed bytes of one payload frame held in
// memory to check and decode it: zstd adds a few bytes per 128 KiB block
// to incompressible data, far less than this to a frame of at most
// MaxFrameSize decoded bytes.
const maxPackedFrame = initrdlayout.MaxFrameSize + 1<<20

// frameCheck checks bin/katana.zst as it is written to it, as the init
// does before it writes /bin/katana: each frame's SHA-256 against the
// frame list, then its decoding with the init's decoder, to the listed
// size; and, beyond what the init checks, the decoded payload's SHA-256
// against the list's, so that the payload reported is the one the guest
// runs.
type frameCheck struct {
	list    initrdlayout.Frames
	i       int    // the frame being written
	buf     []byte // its compressed bytes so far
	out     []byte // decoded frame (reused)
	dec     *initrdlayout.FrameDecoder
	payload hash.Hash
	err     error // the first frame that does not match
}

func (c *frameCheck) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && c.err == nil && c.i < len(c.list.List) {
		f := c.list.List[c.i]
		if len(c.buf) == 0 && f.Len > maxPackedFrame {
			c.err = fmt.Errorf("%s: %s is %d bytes, more than %d: refusing", initrdlayout.FramesPath, c.where(), f.Len, maxPackedFrame)
			break
		}
		take := min(int64(len(p)), f.Len-int64(len(c.buf)))
		c.buf = append(c.buf, p[:take]...)
		p = p[take:]
		if int64(len(c.buf)) == f.Len {
			c.err = c.frame(f)
			c.buf = c.buf[:0]
			c.i++
		}
	}
	return n, nil // a mismatch is reported once the entry is read
}

func (c *frameCheck) where() string {
	f := c.list.List[c.i]
	return fmt.Sprintf("%s frame %d (bytes %d-%d)", initrdlayout.PackedPayloadPath, c.i, f.Off, f.Off+f.Len)
}

// frame checks and decodes the complete frame f in c.buf.
func (c *frameCheck) frame(f initrdlayout.Frame) error {
	if sum := sha256.Sum256(c.buf); sum != f.Sum {
		return fmt.Errorf("%s: sha256 %s, %s says %s", c.where(), hex.EncodeToString(sum[:8]), initrdlayout.FramesPath, hex.EncodeToString(f.Sum[:8]))
	}
	if c.dec == nil {
		d, err := initrdlayout.NewFrameDecoder()
		if err != nil {
			return err
		}
		c.dec = d
	}
	out, err := c.dec.Decode(c.buf, f.Size, c.out)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", c.where(), err)
	}
	c.out = out
	c.payload.Write(out)
	return nil
}

// finish releases the decoder and returns the first mismatch: a frame,
// or the decoded payload's SHA-256. A file shorter than the list is left
// to the size check.
func (c *frameCheck) finish() error {
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
	if c.err != nil || c.i < len(c.list.List) {
		return c.err
	}
	if sum := c.payload.Sum(nil); !bytes.Equal(sum, c.list.SHA256[:]) {
		return fmt.Errorf("%s decodes to a payload with sha256 %s, %s says %s", initrdlayout.PackedPayloadPath,
			hex.EncodeToString(sum), initrdlayout.FramesPath, hex.EncodeToString(c.list.SHA256[:]))
	}
	return nil
}

// skipNULs consumes the NUL bytes the kernel skips between segments. They
// count against the budget like unpacked bytes: a sparse file of zeros
// is small on disk but as long to read as any other.
func (st *readState) skipNULs(br *bufio.Reader) error {
	for {
		if _, err := br.Peek(1); err != nil {
			return err
		}
		buf, _ := br.Peek(br.Buffered())
		n := len(buf)
		if !bytes.Equal(buf, zeros[:n]) {
			n = 0
			for buf[n] == 0 {
				n++
			}
		}
		if int64(n) > st.budget {
			return fmt.Errorf("more than %d bytes uncompressed, NUL padding included: refusing", maxUnpacked)
		}
		st.budget -= int64(n)
		br.Discard(n)
		if n < len(buf) {
			return nil
		}
	}
}

// zeros is a run of NULs as long as Read's buffer.
var zeros = make([]byte, readBuffer)

type readState struct {
	a          *Archive
	index      map[string]int         // path -> its entry in a.Entries
	symlinks   map[string]bool        // paths whose last entry so far is a symlink
	dirs       map[string]bool        // paths whose last entry so far is a directory
	nonEmpty   map[string]bool        // directories an entry was created in
	links      map[linkKey]*linkGroup // this archive's entries with 2+ links, by inode
	unresolved string                 // the first entry a lexical reader cannot place, and why
	budget     int64                  // uncompressed bytes left
	headers    int                    // cpio headers read, in every archive
	nameBytes  int64                  // entry names and symlink targets read, in every archive
	frames     keptFile               // the payload frame list, as the last entry of its path leaves it
	contents   keptFile               // the content list, likewise
	modules    keptFile               // the module load list, likewise
	packed     packedCheck            // the last bin/katana.zst, checked against the list then in force
}

// keptFile is a small file the reader keeps to decide the payload (the
// content list, the frame list): the bytes of the last entry of its path,
// or why that entry cannot be such a list. The guest reads what the last
// entry leaves, so one that is no list replaces an earlier list, which is
// then never reported. Both zero: no entry of that path yet.
type keptFile struct {
	data []byte
	why  string
}

// record keeps entry e of the path, whose bytes are data when e is a
// regular file of at most maxFrameList bytes.
func (k *keptFile) record(e Entry, data []byte) {
	switch {
	case e.Type != "file":
		k.data, k.why = nil, "is a "+e.Type
	case e.Size > maxFrameList:
		k.data, k.why = nil, fmt.Sprintf("is %d bytes, more than %d", e.Size, maxFrameList)
	default:
		k.data, k.why = data, ""
	}
}

// kept is the keptFile of path, or nil for the other paths.
func (st *readState) kept(path string) *keptFile {
	switch path {
	case initrdlayout.FramesPath:
		return &st.frames
	case initrdlayout.ContentsPath:
		return &st.contents
	case initrdlayout.ModulesLoad:
		return &st.modules
	}
	return nil
}

// packedCheck is what checking bin/katana.zst's frames found.
type packedCheck struct {
	checked bool
	list    []byte // the frame list it was checked against
	err     error  // the first frame that does not match it
}

// maxFrameList bounds the frame list kept for Payload (a 64 GiB payload in
// 16 MiB frames lists 4096 frames of ~100 bytes).
const maxFrameList = 1 << 20

// The gzip header flags whose fields the kernel's gunzip does not skip
// (it skips a file name, FNAME, alone).
const (
	gzipFlagHCRC    = 0x02
	gzipFlagExtra   = 0x04
	gzipFlagComment = 0x10
)

// segment reads one segment of compression c starting at br.
func (st *readState) segment(c string, br *bufio.Reader) error {
	switch c {
	case "none":
		return st.archives(br, true)
	case "gzip":
		// The kernel's gunzip (lib/decompress_inflate.c) skips the
		// 10-byte header and a file name only, and inflates what
		// follows: an extra field, a comment or a header CRC would be
		// read as deflate data there, and skipped here.
		if h, _ := br.Peek(10); len(h) == 10 && h[3]&(gzipFlagHCRC|gzipFlagExtra|gzipFlagComment) != 0 {
			return fmt.Errorf("gzip header flags %#x (an extra field, a comment or a header CRC): the kernel's gunzip skips only the header and a file name and would inflate the rest as data; refusing", h[3])
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false) // one member; flate reads br byte-exactly
		defer zr.Close()
		return st.archives(errContext{zr, "gzip stream"}, false)
	case "zstd":
		frame, err := readZstdFrame(br, min(st.budget, maxZstdFrame))
		if err != nil {
			return err
		}
		zr, err := zstd.NewReader(bytes.NewReader(frame), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(uint64(maxUnpacked)))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		return st.archives(errContext{zr, "zstd stream"}, false)
	case "xz":
		// The decoder allocates the dictionary a block header declares,
		// up to 4 GiB, before it decodes anything: the stream, which
		// runs to the end of the file, is checked for such a header
		// first, held in memory, so bounded as a zstd frame is.
		limit := min(st.budget, maxZstdFrame)
		data, err := io.ReadAll(io.LimitReader(br, limit+1))
		if err != nil {
			return fmt.Errorf("xz: %w", err)
		}
		if int64(len(data)) > limit {
			return fmt.Errorf("xz stream of more than %d bytes: refusing", limit)
		}
		if dict, big := xzguard.BigDict(data, xzMaxDict); big {
			return fmt.Errorf("xz: a block declares a dictionary of %d bytes, more than %d: refusing", dict, xzMaxDict)
		}
		xr, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("xz: %w", err)
		}
		return st.archives(errContext{xr, "xz stream"}, false)
	case "unknown":
		return errors.New("not an initrd: no cpio header and no known compression magic")
	}
	return fmt.Errorf("%s-compressed initrds are not supported here (supported: gzip, zstd, xz, none)", c)
}

// archives parses newc archives from r: one (uncompressed segment, whose
// end is the trailer) or all until r ends (a decompressed stream).
func (st *readState) archives(r io.Reader, one bool) error {
	lim := &io.LimitedReader{R: r, N: st.budget + 1}
	defer func() { st.budget = lim.N - 1 }()
	nr := newc.NewReader(lim)
	a := st.a
	inArchive := false
	for {
		h, err := nr.Next()
		if err == newc.ErrTrailer {
			clear(st.links) // the kernel forgets its links at each trailer
			a.Archives++
			inArchive = false
			if one {
				return nil
			}
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if lim.N <= 0 {
				return fmt.Errorf("more than %d bytes uncompressed: refusing", maxUnpacked)
			}
			return err
		}
		if st.headers++; st.headers > maxEntries {
			return fmt.Errorf("more than %d entries: refusing (hostbuild pack writes a few hundred)", maxEntries)
		}
		if st.nameBytes += int64(len(h.Name)); h.Type() == newc.TypeLink {
			st.nameBytes += int64(h.Size)
		}
		if st.nameBytes > maxNameBytes {
			return fmt.Errorf("more than %d bytes of entry names and symlink targets: refusing (hostbuild pack writes a few KiB)", maxNameBytes)
		}
		inArchive = true
		key, lexical := kernelPath(h.Name)
		if st.unresolved == "" {
			last := h.Name[strings.LastIndexByte(h.Name, '/')+1:]
			if !lexical {
				st.unresolved = fmt.Sprintf("entry %q has a \"..\" component: which file it replaces depends on what the kernel finds on the way", h.Name)
			} else if l := st.symlinkOnPath(key); l != "" {
				st.unresolved = fmt.Sprintf("entry %q passes through symlink %q: the kernel follows it, so it may replace any file", h.Name, l)
			} else if h.Type() != newc.TypeDir && key != "." && (last == "" || last == ".") {
				st.unresolved = fmt.Sprintf("entry %q (a %s) ends in %q: the kernel cannot create a file by that name and drops it, where a reader would take it for %q", h.Name, newc.TypeString(h.Mode), "/"+last, key)
			} else if h.Type() != newc.TypeDir && st.dirs[key] && st.nonEmpty[key] && (payloadPaths[key] || key == initrdlayout.InitPath) {
				// clean_path's rmdir fails on a folder that is not
				// empty, and the entry is not created: the guest keeps
				// the folder (init/initramfs.c).
				st.unresolved = fmt.Sprintf("entry %q (a %s) comes after a folder of that name that is not empty: the kernel cannot remove the folder and drops the entry, where a reader would take the entry for it", h.Name, newc.TypeString(h.Mode))
			} else if d := st.missingFolder(key); d != "" && (payloadPaths[key] || key == initrdlayout.InitPath) {
				st.unresolved = fmt.Sprintf("entry %q comes before (or without) a folder %q: the kernel creates no missing folders, so it drops the entry", h.Name, d)
			}
		}
		// clean_path's rmdir fails on a folder that is not empty (the
		// root always), and an entry of another type is then not created
		// there (init/initramfs.c do_name, do_symlink): the guest keeps
		// the folder and what it holds.
		dropped := h.Type() != newc.TypeDir && (key == "." || st.dirs[key] && st.nonEmpty[key])
		if p := path.Dir(key); key != "." && st.dirs[p] {
			st.nonEmpty[p] = true
		}
		switch {
		case dropped:
		case h.Type() == newc.TypeDir:
			st.dirs[key] = true
		default:
			delete(st.dirs, key)
			delete(st.nonEmpty, key)
		}
		e := Entry{
			Path: key, Type: newc.TypeString(h.Mode), Mode: fmt.Sprintf("%04o", h.Mode&0o7777),
			UID: h.UID, GID: h.GID, Size: int64(h.Size), MTime: h.MTime, NLink: h.NLink,
		}
		var packed packedCheck // bin/katana.zst's frames, checked
		var data []byte        // the bytes of a file st.kept keeps
		switch h.Type() {
		case newc.TypeReg:
			sum := sha256.New()
			var w io.Writer = sum
			var list bytes.Buffer
			keep := st.kept(key) != nil && h.Size <= maxFrameList
			if keep {
				w = io.MultiWriter(sum, &list)
			}
			// The packed payload is checked frame by frame as it goes by
			// (it may be large), against the frame list read so far.
			var fc *frameCheck
			if key == initrdlayout.PackedPayloadPath && st.frames.data != nil {
				if fr, err := initrdlayout.ParseFrames(bytes.NewReader(st.frames.data)); err == nil {
					// Decoding counts against the budget like any unpacked
					// byte: a few KiB of frames can decode to gigabytes.
					if fr.Size >= lim.N {
						return fmt.Errorf("more than %d bytes uncompressed, with the %d bytes %s decodes to: refusing", maxUnpacked, fr.Size, h.Name)
					}
					lim.N -= fr.Size
					fc = &frameCheck{list: fr, payload: sha256.New()}
					w = io.MultiWriter(sum, fc)
				}
			}
			var crc byteSum
			if h.CRC {
				w = io.MultiWriter(w, &crc)
			}
			_, err := io.Copy(w, nr)
			if err == nil && h.CRC && uint32(crc) != h.Check && st.unresolved == "" {
				st.unresolved = fmt.Sprintf("entry %q fails its 070702 checksum (its bytes sum to %#x, the header says %#x): the kernel stops unpacking there, so nothing after it reaches the guest", h.Name, uint32(crc), h.Check)
			}
			if fc != nil {
				packed = packedCheck{checked: true, list: st.frames.data, err: fc.finish()}
			}
			if err != nil {
				if lim.N <= 0 {
					return fmt.Errorf("more than %d bytes uncompressed, in %q: refusing", maxUnpacked, h.Name)
				}
				return fmt.Errorf("reading %q: %w", h.Name, err)
			}
			e.SHA256 = hex.EncodeToString(sum.Sum(nil))
			if keep {
				data = list.Bytes()
			}
		case newc.TypeLink:
			b, err := io.ReadAll(nr)
			if err != nil {
				return fmt.Errorf("reading symlink %q: %w", h.Name, err)
			}
			e.Link = string(b)
		case newc.TypeChar, newc.TypeBlock:
			e.Device = fmt.Sprintf("%d:%d", h.RDevMajor, h.RDevMinor)
		}
		if k := st.kept(key); k != nil && !dropped {
			k.record(e, data)
		}
		if key == initrdlayout.PackedPayloadPath && !dropped {
			st.packed = packed
		}
		// Entries with two or more links and the same inode (device and
		// type too) are one file to the kernel within an archive: it links
		// a later one to the first, and the later one's data rewrites
		// both. Where such a group holds /init, the payload or one of its
		// lists, only the kernel knows their bytes. hostbuild pack writes
		// no links; other initrds' (dracut's) elsewhere do not matter.
		if h.Type() != newc.TypeDir && h.NLink >= 2 && a.linked == "" {
			a.linked = fmt.Sprintf("entry %q (a %s) has %d links", h.Name, newc.TypeString(h.Mode), h.NLink)
		}
		linkedToEarlier := false
		if t := h.Type(); t != newc.TypeDir && t != newc.TypeLink && h.NLink >= 2 {
			k := linkKey{h.Ino, h.DevMajor, h.DevMinor, t}
			g, ok := st.links[k]
			if !ok {
				g = &linkGroup{first: key}
				st.links[k] = g
			}
			linkedToEarlier = ok
			g.payload = g.payload || payloadPaths[key] || key == initrdlayout.InitPath
			if t == newc.TypeReg && st.unresolved == "" && ok && g.payload {
				st.unresolved = fmt.Sprintf("entry %q is a hard link of %q (inode %d): the kernel links them, and the later one's data rewrites both", h.Name, g.first, h.Ino)
			}
		}
		if dropped {
			// The folder keeps its entry, but for what the kernel
			// applies to it all the same: a symlink's owner (do_symlink
			// chowns the name), a node's owner and permission bits
			// (do_name chowns and chmods it, unless it linked it to an
			// earlier entry); a file's open fails before either.
			if i, ok := st.index[key]; ok {
				switch f := &a.Entries[i]; h.Type() {
				case newc.TypeLink:
					f.UID, f.GID = h.UID, h.GID
				case newc.TypeChar, newc.TypeBlock, newc.TypeFifo, newc.TypeSocket:
					if !linkedToEarlier {
						f.UID, f.GID, f.Mode = h.UID, h.GID, fmt.Sprintf("%04o", h.Mode&0o7777)
					}
				}
			}
			continue
		}
		// A later entry of the same name (as the kernel resolves it)
		// replaces the earlier one when the kernel unpacks; keep the last,
		// as the guest will see it, in its place (entries are sorted at
		// the end), so that many duplicates cost no more than other entries.
		if i, dup := st.index[e.Path]; dup {
			a.Entries[i] = e
		} else {
			st.index[e.Path] = len(a.Entries)
			a.Entries = append(a.Entries, e)
		}
		if e.Type == "symlink" {
			st.symlinks[e.Path] = true
		} else {
			delete(st.symlinks, e.Path)
		}
	}
	if inArchive {
		return errors.New("archive ends without a TRAILER!!! record (truncated?)")
	}
	return nil
}

// linkKey is what the kernel's unpacker matches hard links by (find_link):
// inode, device and file type.
type linkKey struct{ ino, major, minor, typ uint32 }

// linkGroup is what Read keeps of the entries of one linkKey: the first
// one's path, and whether any is /init, the payload or one of its lists.
// (Not the paths: looking through them at each entry made many links of
// one inode take quadratic time.)
type linkGroup struct {
	first   string
	payload bool
}

// byteSum is the newc 070702 checksum: the sum of a file's bytes, modulo 2^32.
type byteSum uint32

func (s *byteSum) Write(p []byte) (int, error) {
	for _, b := range p {
		*s += byteSum(b)
	}
	return len(p), nil
}

// missingFolder returns the first folder on key's path that no directory
// entry has made (or a later entry of another type has replaced) so far,
// or "".
func (st *readState) missingFolder(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' && !st.dirs[key[:i]] {
			return key[:i]
		}
	}
	return ""
}

// kernelPath returns the path, relative to the root, of the file the
// kernel's unpacker creates for an entry name: it looks names up from /,
// so "bin/katana", "/bin/katana", "./bin/katana" and "bin//katana" are one
// file. lexical is false when the name has a ".." component, which the
// lookup resolves against what exists (a missing directory drops the
// entry, a symlink leads elsewhere); the path keeps it then.
func kernelPath(name string) (key string, lexical bool) {
	var parts []string
	lexical = true
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			lexical = false
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ".", lexical // the root itself
	}
	return strings.Join(parts, "/"), lexical
}

// symlinkOnPath returns the first directory of key that is, so far, a
// symlink: the kernel follows it when it creates key.
func (st *readState) symlinkOnPath(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] != '/' {
			continue
		}
		if st.symlinks[key[:i]] {
			return key[:i]
		}
	}
	return ""
}

// maxZstdFrame bounds one zstd frame of an initrd, which is held in memory
// to find its end: a real initrd's frames are tens of MiB, and empty
// blocks (3 bytes each) can make a frame of any length that decodes to
// nothing, which no budget of decoded bytes would stop.
var maxZstdFrame int64 = 512 << 20

// readZstdFrame consumes one zstd frame of at most max bytes from br and
// returns its bytes. The frame's end is found from its block headers (RFC
// 8878 section 3.1.1), so whatever follows it is left for the next
// segment, as the kernel does.
func readZstdFrame(br *bufio.Reader, max int64) ([]byte, error) {
	var frame bytes.Buffer
	take := func(n int) ([]byte, error) {
		start := frame.Len()
		if int64(start)+int64(n) > max {
			return nil, fmt.Errorf("zstd frame of more than %d bytes: refusing", max)
		}
		if _, err := io.CopyN(&frame, br, int64(n)); err != nil {
			return nil, fmt.Errorf("zstd frame truncated at byte %d: %w", frame.Len(), unexpectedEOF(err))
		}
		return frame.Bytes()[start:], nil
	}
	if _, err := take(4); err != nil { // magic, already detected
		return nil, err
	}
	fhd, err := take(1)
	if err != nil {
		return nil, err
	}
	d := fhd[0]
	if d&0x08 != 0 {
		return nil, errors.New("zstd frame header: reserved bit set")
	}
	n := []int{0, 1, 2, 4}[d&3] // dictionary ID
	single := d&0x20 != 0
	if !single {
		n++ // window descriptor
	}
	n += []int{map[bool]int{true: 1, false: 0}[single], 2, 4, 8}[d>>6] // frame content size
	if _, err := take(n); err != nil {
		return nil, err
	}
	for {
		bh, err := take(3)
		if err != nil {
			return nil, err
		}
		v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last, typ, size := v&1 != 0, (v>>1)&3, int(v>>3)
		switch typ {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return nil, errors.New("zstd frame: reserved block type")
		}
		if _, err := take(size); err != nil {
			return nil, err
		}
		if last {
			break
		}
	}
	if d&0x04 != 0 { // content checksum
		if _, err := take(4); err != nil {
			return nil, err
		}
	}
	return frame.Bytes(), nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errContext names the decompressor in its errors ("gzip stream: unexpected EOF").
type errContext struct {
	r    io.Reader
	what string
}

func (e errContext) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", e.what, err)
	}
	return n, err
}

// Lookup returns the entry for path, if any.
func (a *Archive) Lookup(path string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(a.Entries, path, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return a.Entries[i], true
}

// modeString renders type and permissions like ls -l.
func modeString(e Entry) string {
	var perm uint32
	fmt.Sscanf(e.Mode, "%o", &perm)
	t := map[string]byte{"file": '-', "dir": 'd', "symlink": 'l', "chardev": 'c', "blockdev": 'b', "fifo": 'p', "socket": 's'}[e.Type]
	if t == 0 {
		t = '?'
	}
	b := []byte{t}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if perm&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	if perm&0o4000 != 0 {
		b[3] = map[bool]byte{true: 's', false: 'S'}[b[3] == 'x']
	}
	if perm&0o2000 != 0 {
		b[6] = map[bool]byte{true: 's', false: 'S'}[b[6] == 'x']
	}
	if perm&0o1000 != 0 {
		b[9] = map[bool]byte{true: 't', false: 'T'}[b[9] == 'x']
	}
	return string(b)
}

// WriteListing prints one line per entry: mode, uid/gid, size (or device
// numbers), SHA-256 (files) and path (with the target of a symlink), the
// last two with unprintable runes escaped (printable.Escape).
func (a *Archive) WriteListing(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, e := range a.Entries {
		size := fmt.Sprint(e.Size)
		if e.Device != "" {
			size = strings.Replace(e.Device, ":", ",", 1)
		}
		sum := e.SHA256
		if sum == "" {
			sum = "-"
		}
		// Names are the archive's text: escaped, a terminal does not run
		// their control sequences and a newline cannot forge a line.
		name := printable.Escape(e.Path)
		if e.Type == "symlink" {
			name += " -> " + printable.Escape(e.Link)
		}
		fmt.Fprintf(bw, "%s %4d/%-4d %10s %-64s %s\n", modeString(e), e.UID, e.GID, size, sum, name)
	}
	return bw.Flush()
}

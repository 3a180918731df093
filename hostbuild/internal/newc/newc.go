// Package newc reads and writes the "newc" (SVR4, magic 070701) cpio format
// that the Linux kernel unpacks as an initramfs (init/initramfs.c).
//
// It exists beside github.com/cavaliergopher/cpio because the packer and the
// inspector need three things that library does not give: device numbers
// (it always writes 0:0, so /dev/console cannot be created; it never reads
// them), strict parsing of untrusted archives (it turns malformed hex into 0
// and reads on), and no package-level state (a header with a checksum
// rewrites its shared magic for every later archive). The format is a fixed
// 110-byte header, so the whole codec is small; the tests check it against
// cavaliergopher/cpio and GNU cpio as independent readers.
package newc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// File type bits of Header.Mode (as in stat(2)).
const (
	TypeMask   = 0o170000
	TypeSocket = 0o140000
	TypeLink   = 0o120000
	TypeReg    = 0o100000
	TypeBlock  = 0o060000
	TypeDir    = 0o040000
	TypeChar   = 0o020000
	TypeFifo   = 0o010000
)

const (
	magic      = "070701"
	magicCRC   = "070702"
	headerLen  = 110
	trailer    = "TRAILER!!!"
	maxNameLen = 4096 // PATH_MAX, as the kernel's unpacker enforces
)

// Header is one newc record header. Size is the data length; for a symlink
// the data is the link target.
type Header struct {
	Name                 string
	Ino                  uint32
	Mode                 uint32 // type bits | permission bits
	UID, GID             uint32
	NLink                uint32
	MTime                uint32
	Size                 uint32
	DevMajor, DevMinor   uint32
	RDevMajor, RDevMinor uint32
	Check                uint32 // only meaningful with magic 070702
	// CRC is true for magic 070702: Check is the sum of the file's bytes,
	// which the kernel checks (it stops unpacking on a mismatch).
	CRC bool
}

// Type returns the file type bits of h.Mode.
func (h *Header) Type() uint32 { return h.Mode & TypeMask }

// TypeString names a file type for humans: "file", "dir", "symlink", ...
func TypeString(mode uint32) string {
	switch mode & TypeMask {
	case TypeReg:
		return "file"
	case TypeDir:
		return "dir"
	case TypeLink:
		return "symlink"
	case TypeChar:
		return "chardev"
	case TypeBlock:
		return "blockdev"
	case TypeFifo:
		return "fifo"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type(%o)", mode&TypeMask)
}

// Writer writes a newc archive. Call WriteHeader, then Write exactly
// Header.Size bytes, for each entry; Close writes the trailer.
type Writer struct {
	w       io.Writer
	off     int64  // bytes written, for padding
	remain  uint32 // data bytes still owed for the current entry
	pad     int    // padding after the current entry's data
	closed  bool
	scratch [headerLen]byte
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

var zeros [4]byte

func (w *Writer) write(p []byte) error {
	n, err := w.w.Write(p)
	w.off += int64(n)
	return err
}

func (w *Writer) finishEntry() error {
	if w.remain != 0 {
		return fmt.Errorf("newc: entry is %d bytes short of its header's size", w.remain)
	}
	if w.pad > 0 {
		if err := w.write(zeros[:w.pad]); err != nil {
			return err
		}
		w.pad = 0
	}
	return nil
}

// WriteHeader finishes the previous entry and writes h.
func (w *Writer) WriteHeader(h *Header) error {
	if w.closed {
		return errors.New("newc: write after close")
	}
	if err := w.finishEntry(); err != nil {
		return err
	}
	if h.Name == "" || strings.IndexByte(h.Name, 0) >= 0 || len(h.Name)+1 > maxNameLen {
		return fmt.Errorf("newc: invalid entry name %q", h.Name)
	}
	b := w.scratch[:]
	copy(b, magic)
	for i, v := range [...]uint32{h.Ino, h.Mode, h.UID, h.GID, h.NLink, h.MTime, h.Size,
		h.DevMajor, h.DevMinor, h.RDevMajor, h.RDevMinor, uint32(len(h.Name) + 1), 0} {
		putHex(b[6+8*i:], v)
	}
	if err := w.write(b); err != nil {
		return err
	}
	if err := w.write(append([]byte(h.Name), 0)); err != nil {
		return err
	}
	if p := pad4(w.off); p > 0 {
		if err := w.write(zeros[:p]); err != nil {
			return err
		}
	}
	w.remain = h.Size
	w.pad = pad4(int64(h.Size))
	return nil
}

// Write writes data of the current entry.
func (w *Writer) Write(p []byte) (int, error) {
	if uint64(len(p)) > uint64(w.remain) {
		return 0, fmt.Errorf("newc: write of %d bytes exceeds the entry's remaining %d", len(p), w.remain)
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	w.remain -= uint32(n)
	return n, err
}

// Close finishes the last entry and writes the TRAILER!!! record. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.WriteHeader(&Header{Name: trailer, NLink: 1}); err != nil {
		return err
	}
	w.closed = true
	return nil
}

func pad4(n int64) int { return int((4 - n%4) % 4) }

const hexdigits = "0123456789abcdef"

func putHex(b []byte, v uint32) {
	for i := 7; i >= 0; i-- {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
}

// FormatError describes a malformed archive: where and what.
type FormatError struct {
	Offset int64 // byte offset in the (uncompressed) cpio stream
	Entry  string
	Reason string
}

func (e *FormatError) Error() string {
	if e.Entry != "" {
		return fmt.Sprintf("malformed cpio at offset %d (entry %q): %s", e.Offset, e.Entry, e.Reason)
	}
	return fmt.Sprintf("malformed cpio at offset %d: %s", e.Offset, e.Reason)
}

// ErrTrailer is returned by Next at the end of one archive (TRAILER!!!).
// Several archives may follow each other in one initrd; call Next again to
// read the next one, which returns io.EOF when the stream ends cleanly.
var ErrTrailer = errors.New("newc: end of archive")

// Reader reads a newc archive strictly: every header field must be 8 hex
// digits, names must be NUL-terminated without embedded NULs and at most
// PATH_MAX, data must be complete. Zero bytes between archives are skipped
// as the kernel does.
type Reader struct {
	r      io.Reader
	off    int64
	remain int64
	pad    int
	cur    string
	hdr    [headerLen]byte
	inArch bool // inside an archive (after a header, before the trailer)
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) readFull(p []byte) error {
	n, err := io.ReadFull(r.r, p)
	r.off += int64(n)
	return err
}

func (r *Reader) fail(reason string, a ...any) error {
	return &FormatError{Offset: r.off, Entry: r.cur, Reason: fmt.Sprintf(reason, a...)}
}

// Next skips the rest of the current entry and returns the next header.
// It returns ErrTrailer at each archive's end and io.EOF at a clean end of
// the stream; a truncated or malformed stream gives a *FormatError.
func (r *Reader) Next() (*Header, error) {
	if r.remain > 0 || r.pad > 0 {
		// Copy from the underlying reader: through r.Read, io.CopyN would
		// drop the error of a non-zero padding after the data.
		n, err := io.CopyN(io.Discard, r.r, r.remain)
		r.off += n
		r.remain -= n
		if err != nil {
			return nil, r.fail("truncated data: %d bytes missing", r.remain)
		}
		if err := r.skipPad(); err != nil {
			return nil, err
		}
	}
	r.cur = ""
	// Between archives, skip zero padding (in 4-byte steps, as the kernel does).
	for {
		n, err := io.ReadFull(r.r, r.hdr[:4])
		r.off += int64(n)
		if err != nil && !r.inArch && (n == 0 && err == io.EOF || n > 0 && err == io.ErrUnexpectedEOF && allZero(r.hdr[:n])) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, r.fail("truncated header: %v", unexpected(err))
		}
		if r.inArch || !allZero(r.hdr[:4]) {
			break
		}
	}
	if err := r.readFull(r.hdr[4:]); err != nil {
		return nil, r.fail("truncated header: %v", unexpected(err))
	}
	hdrOff := r.off - headerLen
	m := string(r.hdr[:6])
	if m != magic && m != magicCRC {
		return nil, &FormatError{Offset: hdrOff, Reason: fmt.Sprintf("bad magic %q (want %q: newc cpio)", printable(r.hdr[:6]), magic)}
	}
	var f [13]uint32
	for i := range f {
		v, ok := parseHex(r.hdr[6+8*i : 14+8*i])
		if !ok {
			return nil, &FormatError{Offset: hdrOff, Reason: fmt.Sprintf("header field %d is not 8 hex digits: %q", i, printable(r.hdr[6+8*i:14+8*i]))}
		}
		f[i] = v
	}
	h := &Header{Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], NLink: f[4], MTime: f[5], Size: f[6],
		DevMajor: f[7], DevMinor: f[8], RDevMajor: f[9], RDevMinor: f[10], Check: f[12], CRC: m == magicCRC}
	namesize := f[11]
	if namesize < 2 || namesize > maxNameLen {
		return nil, &FormatError{Offset: hdrOff, Reason: fmt.Sprintf("name size %d out of range [2, %d]", namesize, maxNameLen)}
	}
	name := make([]byte, namesize)
	if err := r.readFull(name); err != nil {
		return nil, r.fail("truncated name: %v", unexpected(err))
	}
	if name[namesize-1] != 0 || bytes.IndexByte(name[:namesize-1], 0) >= 0 {
		return nil, &FormatError{Offset: hdrOff, Reason: "name is not a single NUL-terminated string"}
	}
	h.Name = string(name[:namesize-1])
	r.cur = h.Name
	if err := r.skipTo(pad4(r.off)); err != nil {
		return nil, err
	}
	if m == magic && h.Check != 0 {
		return nil, r.fail("check field is %#x but magic %s has no checksum", h.Check, magic)
	}
	if h.Name == trailer {
		// The kernel ends the archive (and forgets its hard links) on
		// this name only for an entry it reads the name of as a file's:
		// a symlink's goes down the symlink path instead, and what
		// follows stays in the same archive (init/initramfs.c do_header).
		if h.Type() == TypeLink {
			return nil, r.fail("a symlink named %s: the kernel does not take it as the end of the archive; refusing", trailer)
		}
		if h.Size != 0 {
			return nil, r.fail("trailer has size %d", h.Size)
		}
		r.inArch = false
		return nil, ErrTrailer
	}
	r.inArch = true
	t := h.Type()
	switch t {
	case TypeReg, TypeLink:
	case TypeDir, TypeChar, TypeBlock, TypeFifo, TypeSocket:
		if h.Size != 0 {
			return nil, r.fail("%s entry has data size %d", TypeString(h.Mode), h.Size)
		}
	default:
		return nil, r.fail("unknown file type %#o in mode %#o", t, h.Mode)
	}
	if t == TypeLink && (h.Size == 0 || h.Size >= maxNameLen) {
		return nil, r.fail("symlink target size %d out of range [1, %d)", h.Size, maxNameLen)
	}
	r.remain = int64(h.Size)
	r.pad = pad4(int64(h.Size))
	return h, nil
}

func (r *Reader) skipTo(n int) error {
	var p [4]byte
	if err := r.readFull(p[:n]); err != nil {
		return r.fail("truncated padding: %v", unexpected(err))
	}
	if p != [4]byte{} {
		return r.fail("non-zero padding bytes")
	}
	return nil
}

func (r *Reader) skipPad() error {
	n := r.pad
	r.pad = 0
	return r.skipTo(n)
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.off += int64(n)
	r.remain -= int64(n)
	if err == io.EOF && r.remain > 0 {
		return n, r.fail("truncated data: %d bytes missing", r.remain)
	}
	if r.remain == 0 && err == nil {
		if perr := r.skipPad(); perr != nil {
			return n, perr
		}
	}
	return n, err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseHex(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
	}
	return s.String()
}

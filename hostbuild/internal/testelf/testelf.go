// Package testelf makes minimal, valid ELF files for tests: x86-64
// executables (static, or with a PT_INTERP like a dynamically linked one)
// and kernel modules with a .modinfo section. debug/elf parses them.
package testelf

import (
	"bytes"
	"encoding/binary"
	"strings"
)

const (
	ehdrSize = 64
	phdrSize = 56
	shdrSize = 64
)

func ehdr(b *bytes.Buffer, typ, machine uint16, entry, phoff, shoff uint64, phnum, shnum, shstrndx uint16) {
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	le := binary.LittleEndian
	var x [48]byte
	le.PutUint16(x[0:], typ)
	le.PutUint16(x[2:], machine)
	le.PutUint32(x[4:], 1)
	le.PutUint64(x[8:], entry)
	le.PutUint64(x[16:], phoff)
	le.PutUint64(x[24:], shoff)
	le.PutUint32(x[32:], 0)
	le.PutUint16(x[36:], ehdrSize)
	le.PutUint16(x[38:], phdrSize)
	le.PutUint16(x[40:], phnum)
	le.PutUint16(x[42:], shdrSize)
	le.PutUint16(x[44:], shnum)
	le.PutUint16(x[46:], shstrndx)
	b.Write(x[:])
}

// Executable returns an ELF64 x86-64 executable whose body is payload. With
// interp != "" it carries a PT_INTERP naming that loader, as a dynamically
// linked program does.
func Executable(interp string, payload []byte) []byte {
	return executable(62, interp, payload, nil)
}

// ExecutableFor is Executable for another e_machine (e.g. 183 for arm64).
func ExecutableFor(machine uint16, payload []byte) []byte {
	return executable(machine, "", payload, nil)
}

// ExecutableWithNote is a static Executable with a PT_NOTE holding one
// note of the given owner (type 1, a 4-byte descriptor), as other systems'
// linkers tag their binaries ("NetBSD", "OpenBSD", ...).
func ExecutableWithNote(owner string, payload []byte) []byte {
	le := binary.LittleEndian
	var n bytes.Buffer
	binary.Write(&n, le, uint32(len(owner)+1))
	binary.Write(&n, le, uint32(4))
	binary.Write(&n, le, uint32(1))
	n.WriteString(owner)
	n.WriteByte(0)
	for n.Len()%4 != 0 {
		n.WriteByte(0)
	}
	n.Write([]byte{1, 0, 0, 0})
	return executable(62, "", payload, n.Bytes())
}

func executable(machine uint16, interp string, payload, note []byte) []byte {
	var b bytes.Buffer
	phnum := uint16(1)
	if interp != "" {
		phnum++
	}
	if note != nil {
		phnum++
	}
	dataOff := uint64(ehdrSize + int(phnum)*phdrSize)
	ehdr(&b, 2 /* ET_EXEC */, machine, 0x400000+dataOff, ehdrSize, 0, phnum, 0, 0)
	le := binary.LittleEndian
	ph := func(typ, flags uint32, off, size uint64) {
		var p [phdrSize]byte
		le.PutUint32(p[0:], typ)
		le.PutUint32(p[4:], flags)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], 0x400000+off)
		le.PutUint64(p[24:], 0x400000+off)
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
		le.PutUint64(p[48:], 0x1000)
		b.Write(p[:])
	}
	total := dataOff + uint64(len(payload))
	if interp != "" {
		ph(3 /* PT_INTERP */, 4, total, uint64(len(interp)+1))
	}
	noteOff := total + uint64(len(interp))
	if interp != "" {
		noteOff++
	}
	if note != nil {
		ph(4 /* PT_NOTE */, 4, noteOff, uint64(len(note)))
	}
	ph(1 /* PT_LOAD */, 5, 0, total)
	b.Write(payload)
	if interp != "" {
		b.WriteString(interp)
		b.WriteByte(0)
	}
	b.Write(note)
	return b.Bytes()
}

// Module returns an ELF64 relocatable object with a .modinfo section holding
// the given "key=value" strings, like a kernel module (.ko).
func Module(modinfo ...string) []byte { return ModuleImporting(nil, modinfo...) }

// ModuleImporting is Module with, when imports is not empty, a symbol
// table (.symtab, .strtab) whose symbols are the undefined (imported)
// names given, as a module's calls into the kernel are.
func ModuleImporting(imports []string, modinfo ...string) []byte {
	le := binary.LittleEndian
	type section struct {
		name, typ, link, info uint32
		entsize               uint64
		data                  []byte
	}
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	secs := []section{
		{name: 1, typ: 1 /* PROGBITS */, data: []byte(strings.Join(modinfo, "\x00") + "\x00")},
		{name: 10, typ: 3 /* STRTAB */}, // .shstrtab, data below
	}
	if len(imports) > 0 {
		shstr = append(shstr, ".symtab\x00.strtab\x00"...)
		strtab := []byte{0}
		symtab := make([]byte, 24) // the null symbol
		for _, name := range imports {
			var sym [24]byte
			le.PutUint32(sym[0:], uint32(len(strtab)))
			sym[4] = 1 << 4 // STB_GLOBAL, STT_NOTYPE; st_shndx 0 is SHN_UNDEF
			symtab = append(symtab, sym[:]...)
			strtab = append(append(strtab, name...), 0)
		}
		secs = append(secs,
			section{name: 20, typ: 2 /* SYMTAB */, link: 4 /* .strtab */, info: 1, entsize: 24, data: symtab},
			section{name: 28, typ: 3 /* STRTAB */, data: strtab})
	}
	secs[1].data = shstr
	var b bytes.Buffer
	offs := make([]uint64, len(secs))
	off := uint64(ehdrSize)
	for i, sec := range secs {
		if sec.entsize > 0 {
			off = (off + 7) &^ 7
		}
		offs[i] = off
		off += uint64(len(sec.data))
	}
	shoff := (off + 7) &^ 7
	ehdr(&b, 1 /* ET_REL */, 62, 0, 0, shoff, 0, uint16(len(secs)+1), 2)
	for i, sec := range secs {
		for uint64(b.Len()) < offs[i] {
			b.WriteByte(0)
		}
		b.Write(sec.data)
	}
	for uint64(b.Len()) < shoff {
		b.WriteByte(0)
	}
	for i, sec := range append([]section{{}}, secs...) { // the null section first
		var s [shdrSize]byte
		le.PutUint64(s[48:], 1) // sh_addralign
		if i == 0 {
			b.Write(s[:])
			continue
		}
		le.PutUint32(s[0:], sec.name)
		le.PutUint32(s[4:], sec.typ)
		le.PutUint64(s[24:], offs[i-1])
		le.PutUint64(s[32:], uint64(len(sec.data)))
		le.PutUint32(s[40:], sec.link)
		le.PutUint32(s[44:], sec.info)
		le.PutUint64(s[56:], sec.entsize)
		b.Write(s[:])
	}
	return b.Bytes()
}

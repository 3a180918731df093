// Package filekind names a file's type in words, for messages that say why
// a path cannot be used ("... is a FIFO, which an output would replace").
package filekind

import "io/fs"

// Describe names the type of a file of mode m: "a regular file", "a
// folder", "a symbolic link", "a character device", "a block device", "a
// FIFO", "a socket", or "a file of mode M" for any other.
func Describe(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeDir != 0:
		return "a folder"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t == 0:
		return "a regular file"
	}
	return "a file of mode " + m.String()
}

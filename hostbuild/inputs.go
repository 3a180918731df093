package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// input is a file or folder named by a flag.
type input struct {
	flag, path string
	folder     bool   // a folder (--kernel-modules), not a file
	hint       string // optional, appended to the fix, e.g. for a default path
}

// checkInputs checks, before any work, that each input given exists and is
// a file (or a folder), so that a wrong path is reported with the flag that
// named it and the fix, rather than as "opening kernel: open X: ..." after
// other inputs were read. Empty paths are skipped: whether a flag is
// required is the caller's check.
func checkInputs(ins ...input) error {
	for _, in := range ins {
		if in.path == "" {
			continue
		}
		fix := "check the path"
		if in.hint != "" {
			fix += "; " + in.hint
		}
		st, err := os.Stat(in.path)
		if err != nil {
			return fmt.Errorf("%s %s: %v (%s)", in.flag, in.path, withoutPath(err), fix)
		}
		switch {
		case in.folder && !st.IsDir():
			return fmt.Errorf("%s %s: not a folder (%s)", in.flag, in.path, fix)
		case !in.folder && st.IsDir():
			return fmt.Errorf("%s %s: a folder, not a file (%s)", in.flag, in.path, fix)
		}
	}
	return nil
}

// withoutPath drops the path of an *fs.PathError (the reason alone: "no
// such file or directory"), for messages that name the path themselves.
// Other errors are returned as they are.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

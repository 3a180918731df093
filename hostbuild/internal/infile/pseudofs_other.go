//go:build !linux

package infile

import "os"

// pseudoFS: only Linux's /proc and /sys are known here.
func pseudoFS(*os.File) string { return "" }

package newc

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// Zero bytes are skipped only between archives, as the kernel does; inside
// an archive (after a header, before its TRAILER!!!) the next record must
// start at once. A reader that skipped them there would accept a stream
// the kernel reads differently.
func TestZeroWordsOnlyBetweenArchives(t *testing.T) {
	one := write(t, sample()[:2]) // "bin" (116 bytes with padding), "bin/katana", trailer
	const firstEnd = 116
	zeros := []byte{0, 0, 0, 0}
	tests := []struct {
		name string
		data []byte
		want string // "" = reads cleanly
	}{
		{"zeros between archives", append(append(bytes.Clone(one), zeros...), one...), ""},
		{"zeros inside an archive", append(append(bytes.Clone(one[:firstEnd]), zeros...), one[firstEnd:]...), "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.data)
			if tc.want == "" {
				if err != nil {
					t.Errorf("readAll: %v, want a clean read", err)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("readAll: %v, want a *FormatError containing %q", err, tc.want)
			}
		})
	}
}

// A TRAILER!!! record with data is refused where it stands. The kernel
// skips a trailer's data before the next archive, so a reader that ended
// the archive without consuming it would read those bytes as the next
// header (or skip them unchecked if zero): the stream would no longer be
// what the kernel unpacks.
func TestTrailerWithDataRefused(t *testing.T) {
	good := write(t, sample())
	trailerOff := len(good) - 124 // 110-byte header, "TRAILER!!!\0" padded to 124
	bad := bytes.Clone(good)
	copy(bad[trailerOff+fieldOff(6):], "00000004") // size field
	bad = append(bad, "abcd"...)
	r := NewReader(bytes.NewReader(bad))
	var err error
	for err == nil {
		if _, err = r.Next(); err == nil {
			_, err = io.ReadAll(r)
		}
	}
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "trailer has size 4") {
		t.Errorf("first error reading a trailer with 4 data bytes = %v, want a *FormatError containing %q", err, "trailer has size 4")
	}
}

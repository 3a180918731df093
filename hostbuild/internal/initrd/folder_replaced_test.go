package initrd

import (
	"bytes"
	"strings"
	"testing"
)

// The kernel's unpacker (init/initramfs.c clean_path) replaces a folder
// by an entry of another type only by rmdir, which fails on a folder that
// is not empty: the later file is then not created (filp_open of a
// folder, EISDIR) and the guest keeps the folder. Read must not report
// that file as /init or the payload.
func TestFileOverNonEmptyFolder(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents []entry
		want string
	}{
		{"payload", []entry{{"bin", dirMode, ""}, {"bin/katana", dirMode, ""}, {"bin/katana/x", dirMode, ""}, {"bin/katana", regExec, "katana"}},
			`entry "bin/katana" (a file) comes after a folder of that name that is not empty`},
		{"init", []entry{{"init", dirMode, ""}, {"init/x", dirMode, ""}, {"init", regExec, "guestinit"}},
			`entry "init" (a file) comes after a folder of that name that is not empty`},
		{"symlink", []entry{{"bin", dirMode, ""}, {"bin/katana", dirMode, ""}, {"bin/katana/x", regExec, "x"}, {"bin/katana", symlink, "/x"}},
			`entry "bin/katana" (a symlink) comes after a folder of that name that is not empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(appendArchive(t, nil, tc.ents...)))
			if err != nil {
				t.Fatal(err)
			}
			if a.Payload != nil || !strings.Contains(a.PayloadUnknown, tc.want) {
				t.Errorf("payload %+v, unknown %q; want none, unknown containing %q", a.Payload, a.PayloadUnknown, tc.want)
			}
		})
	}
	// An empty folder is removed, and the file takes its place.
	a, err := Read(bytes.NewReader(appendArchive(t, nil, entry{"bin", dirMode, ""}, entry{"bin/katana", dirMode, ""}, entry{"bin/katana", regExec, "katana"})))
	if err != nil || a.PayloadUnknown != "" || a.Payload == nil {
		t.Errorf("file over an empty folder: %v, payload %+v, unknown %q; want the payload", err, a.Payload, a.PayloadUnknown)
	}
}

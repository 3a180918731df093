package initrd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/newc"
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

// The same holds for every path, not only /init and the payload: a later
// entry of another type over a folder that is not empty is not created, and
// the guest keeps the folder with what it holds. A symlink's entry still
// gives the folder its owner (do_symlink's chown), a device node's its owner
// and permission bits (do_name's chown and chmod); a file's changes nothing
// (filp_open fails first). The root is never empty: a file named "." is
// dropped likewise.
func TestEntryOverNonEmptyFolderKeepsFolder(t *testing.T) {
	defer func() { clear(ownerOf) }()
	ownerOf["opt/x"] = 0
	for _, tc := range []struct {
		name  string
		later entry
		owner uint32
		want  string // the folder's mode
	}{
		{"file", entry{"opt/x", regExec, "evil"}, 7, "0750"},
		{"symlink", entry{"opt/x", symlink, "/etc"}, 7, "0750"},
		{"chardev", entry{"opt/x", newc.TypeChar | 0o600, ""}, 7, "0600"},
		{"fifo", entry{"opt/x", newc.TypeFifo | 0o640, ""}, 7, "0640"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ownerOf["opt/x"] = 0
			base := appendArchive(t, nil, entry{"opt", dirMode, ""}, entry{"opt/x", newc.TypeDir | 0o750, ""}, entry{"opt/x/y", regExec, "y"})
			ownerOf["opt/x"] = tc.owner
			a, err := Read(bytes.NewReader(appendArchive(t, base, tc.later, entry{"opt/x/z", regExec, "z"})))
			if err != nil {
				t.Fatal(err)
			}
			e, ok := a.Lookup("opt/x")
			if !ok || e.Type != "dir" || e.Mode != tc.want {
				t.Fatalf("opt/x is %+v (found %v); want the folder kept, mode %s", e, ok, tc.want)
			}
			wantOwner := tc.owner
			if tc.later.mode&newc.TypeMask == newc.TypeReg {
				wantOwner = 0
			}
			if e.UID != wantOwner || e.GID != wantOwner {
				t.Errorf("opt/x owned by %d:%d, want %d:%d", e.UID, e.GID, wantOwner, wantOwner)
			}
			for _, p := range []string{"opt/x/y", "opt/x/z"} {
				if e, ok := a.Lookup(p); !ok || e.Type != "file" {
					t.Errorf("%s: %+v (found %v), want the file in the kept folder", p, e, ok)
				}
			}
		})
	}
	// An empty folder is removed and the entry takes its place.
	a, err := Read(bytes.NewReader(appendArchive(t, nil, entry{"opt", dirMode, ""}, entry{"opt/x", dirMode, ""}, entry{"opt/x", symlink, "/etc"})))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Lookup("opt/x"); e.Type != "symlink" {
		t.Errorf("symlink over an empty folder: opt/x is %+v, want the symlink", e)
	}
	// The root: a file named "." (or "/") is never created.
	a, err = Read(bytes.NewReader(appendArchive(t, nil, entry{".", dirMode, ""}, entry{"opt", dirMode, ""}, entry{"/", regExec, "evil"})))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Lookup("."); e.Type != "dir" {
		t.Errorf("file named \"/\": the root is %+v, want the folder", e)
	}
}

// A node with two links that the kernel links to an earlier one of its
// inode (maybe_link) is neither created nor chmodded: over a folder that
// is not empty, the folder keeps its mode.
func TestLinkedNodeOverNonEmptyFolder(t *testing.T) {
	base := appendArchive(t, nil, entry{"opt", dirMode, ""}, entry{"opt/x", newc.TypeDir | 0o750, ""}, entry{"opt/x/y", regExec, "y"})
	a, err := Read(bytes.NewReader(appendLinked(t, base, 5, entry{"z", newc.TypeChar | 0o600, ""}, entry{"opt/x", newc.TypeChar | 0o600, ""})))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Lookup("opt/x"); e.Type != "dir" || e.Mode != "0750" {
		t.Errorf("opt/x is %+v, want the folder in mode 0750", e)
	}
	if e, _ := a.Lookup("z"); e.Type != "chardev" {
		t.Errorf("z is %+v, want the node", e)
	}
}

package initrdlayout

import (
	"strings"
	"testing"
)

// Rules is what both the init (integrity.Unvouched) and the host tools
// hold an unpacked initrd to: every entry owned by one user AND one group,
// regular files 0644 or 0755 only, folders in the layout's mode or 0755 on
// the way to a listed file, and no other folder. A weaker rule here lets an
// appended archive change who may write a checked file, or add a folder no
// one vouches for.
func TestRulesOwner(t *testing.T) {
	r := NewRules(nil, Contents{"init": {}}, 0, 0)
	tests := []struct {
		name     string
		rel      string
		uid, gid uint32
		want     string // "" = fine, else a substring of the complaint
	}{
		{"root:root", "init", 0, 0, ""},
		{"other user", "init", 1000, 0, "/init is owned by 1000:0, not 0:0"},
		{"other group", "init", 0, 1000, "/init is owned by 0:1000, not 0:0"},
		{"root folder, other group", ".", 0, 1000, "/ is owned by 0:1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Owner(tc.rel, tc.uid, tc.gid)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("Owner(%q, %d, %d) = %q, want %q", tc.rel, tc.uid, tc.gid, got, tc.want)
			}
		})
	}
}

func TestRulesMode(t *testing.T) {
	layout := []Entry{{Path: "tmp", Kind: KindDir, Mode: permToMode(0o1777)}} // sticky, as layout.txt has it
	r := NewRules(layout, Contents{"bin/katana": {}, "etc/katana/chain.toml": {}}, 0, 0)
	tests := []struct {
		name string
		rel  string
		kind Kind
		perm uint32
		want string
	}{
		{"data file", "etc/katana/chain.toml", KindFile, 0o644, ""},
		{"executable", "bin/katana", KindFile, 0o755, ""},
		{"owner-only file", "bin/katana", KindFile, 0o600, "/bin/katana has mode 0600, not 0644 or 0755"},
		{"group-writable file", "bin/katana", KindFile, 0o664, "has mode 0664"},
		{"setuid file", "bin/katana", KindFile, 0o4755, "has mode 4755"},
		{"declared folder", "tmp", KindDir, 0o1777, ""},
		{"declared folder, other mode", "tmp", KindDir, 0o777, "folder /tmp has mode 0777, not 1777"},
		{"folder on the way", "etc/katana", KindDir, 0o755, ""},
		{"folder on the way, other mode", "etc/katana", KindDir, 0o775, "folder /etc/katana has mode 0775, not 0755"},
		{"undeclared folder", "opt", KindDir, 0o755, "folder /opt is neither the layout's"},
		{"root folder", ".", KindDir, 0o700, ""},
		{"other kinds unchecked", "dev/console", KindCharDev, 0o600, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Mode(tc.rel, tc.kind, tc.perm)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("Mode(%q, %v, %04o) = %q, want %q", tc.rel, tc.kind, tc.perm, got, tc.want)
			}
		})
	}
}

package manifest

import (
	"bytes"
	"debug/buildinfo"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// goExe is the smallest ELF executable debug/buildinfo reads: one
// writable PT_LOAD segment holding the build info blob (Go 1.18+ form,
// strings inline) with the version and the module text mod (path, mod,
// dep and build lines).
func goExe(vers, mod string) []byte {
	var blob bytes.Buffer
	blob.WriteString("\xff Go buildinf:")
	blob.Write([]byte{8, 2})
	blob.Write(make([]byte, 16))
	sentinel := strings.Repeat("\x00", 16)
	for _, s := range []string{vers, sentinel + mod + sentinel} {
		blob.Write(binary.AppendUvarint(nil, uint64(len(s))))
		blob.WriteString(s)
	}
	const off = 128
	b := make([]byte, off)
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], 0x400000+off)
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[56:], 1)  // e_phnum
	p := b[64:]
	le.PutUint32(p[0:], 1) // PT_LOAD
	le.PutUint32(p[4:], 6) // PF_R|PF_W
	le.PutUint64(p[8:], off)
	le.PutUint64(p[16:], 0x400000+off)
	le.PutUint64(p[24:], 0x400000+off)
	le.PutUint64(p[32:], uint64(blob.Len()))
	le.PutUint64(p[40:], uint64(blob.Len()))
	le.PutUint64(p[48:], 0x1000)
	return append(b, blob.Bytes()...)
}

// Whatever --init names, the build info read from it is refused with the
// path named, or it goes into a manifest that reads back with the same
// build info: build never writes a manifest that says other than the
// binary, or that it would then refuse.
func FuzzReadBuildInfo(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json"))
	if err != nil {
		f.Fatal(err)
	}
	base, err := Parse(golden)
	if err != nil {
		f.Fatal(err)
	}
	mod := "path\tgithub.com/katana-tee/snpboot/guestinit\nmod\tgithub.com/katana-tee/snpboot\t(devel)\t\n" +
		"dep\tgolang.org/x/sys\tv0.30.0\th1:x=\n=>\t../sys\t\t\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=0\nbuild\tGOOS=linux\n"
	f.Add(goExe("go1.26.8", mod))
	f.Add(goExe("go1.26.8", "path\tx\nbuild\tk=\"a\\xffb\"\nbuild\tj=2\n"))
	f.Add(goExe("go1.26.8", ""))
	f.Add([]byte("\x7fELF"))
	// The well-formed seed reads: the fuzzer starts past the format check.
	seed := filepath.Join(f.TempDir(), "init")
	if err := os.WriteFile(seed, goExe("go1.26.8", mod), 0o755); err != nil {
		f.Fatal(err)
	}
	if bi, err := ReadBuildInfo(seed); err != nil || bi.Path != "github.com/katana-tee/snpboot/guestinit" || len(bi.Deps) != 1 {
		f.Fatalf("the seed's build info: %+v, %v", bi, err)
	}
	f.Fuzz(func(t *testing.T, exe []byte) {
		p := filepath.Join(t.TempDir(), "init")
		if err := os.WriteFile(p, exe, 0o755); err != nil {
			t.Fatal(err)
		}
		bi, err := ReadBuildInfo(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name %s", err, p)
			}
			return
		}
		// What the binary says, as debug/buildinfo reads it: each setting
		// once, with its value, and every string as it is.
		raw, err := buildinfo.Read(bytes.NewReader(exe))
		if err != nil {
			t.Fatalf("ReadBuildInfo accepted what debug/buildinfo refuses: %v", err)
		}
		if len(raw.Settings) != len(bi.Settings) {
			t.Fatalf("%d build settings in the binary, %d recorded: %q", len(raw.Settings), len(bi.Settings), raw.Settings)
		}
		for _, st := range raw.Settings {
			if bi.Settings[st.Key] != st.Value {
				t.Fatalf("build setting %q is %q in the binary, %q recorded", st.Key, st.Value, bi.Settings[st.Key])
			}
		}
		m := *base
		m.InitBuildInfo = bi
		enc, err := Marshal(&m)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("a manifest with the build info %+v does not parse back: %v", bi, err)
		}
		if diff := cmp.Diff(bi, back.InitBuildInfo, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("the manifest says another build info than the binary (-binary +manifest):\n%s", diff)
		}
	})
}

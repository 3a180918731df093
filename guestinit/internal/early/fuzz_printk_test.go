package early

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Whatever /proc/sys/kernel/printk and printk's parameters hold,
// QuietConsole reads the first field as the console level or says that
// it cannot, naming the file; a level above MaxConsoleLoglevel comes down
// to it, a lower one stays, and ignore_loglevel ends "N" and
// console_no_auto_verbose "Y" when the kernel has them.
func FuzzQuietConsole(f *testing.F) {
	f.Add([]byte("7\t4\t1\t7\n"), []byte("N\n"), []byte("N\n"))
	f.Add([]byte("1 4 1 7\n"), []byte("Y\n"), []byte("Y\n"))
	f.Add([]byte("+15\n"), []byte(""), []byte(nil))
	f.Add([]byte(" x 4"), []byte(nil), []byte("Y"))
	f.Fuzz(func(t *testing.T, printk, ignore, noAuto []byte) {
		root := t.TempDir()
		files := map[string][]byte{PrintkPath: printk, IgnoreLoglevelPath: ignore, NoAutoVerbosePath: noAuto}
		for rel, b := range files {
			if b == nil {
				continue // a kernel without it
			}
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		was, err := QuietConsole(root)
		fields := bytes.Fields(printk)
		var want int
		var werr error = strconv.ErrSyntax
		if len(fields) > 0 {
			want, werr = strconv.Atoi(string(fields[0]))
		}
		if werr != nil || printk == nil {
			if err == nil || !strings.Contains(err.Error(), PrintkPath) {
				t.Fatalf("printk %q: QuietConsole = %d, %v; want an error naming %s", printk, was, err, PrintkPath)
			}
			return
		}
		if err != nil {
			t.Fatalf("printk %q: %v", printk, err)
		}
		if was != want {
			t.Fatalf("printk %q: level %d, want %d", printk, was, want)
		}
		got, _ := os.ReadFile(filepath.Join(root, PrintkPath))
		if want > MaxConsoleLoglevel && string(got) != strconv.Itoa(MaxConsoleLoglevel)+"\n" || want <= MaxConsoleLoglevel && !bytes.Equal(got, printk) {
			t.Fatalf("printk %q (level %d) became %q", printk, want, got)
		}
		for rel, v := range map[string]string{IgnoreLoglevelPath: "N", NoAutoVerbosePath: "Y"} {
			if files[rel] == nil {
				continue
			}
			if b, _ := os.ReadFile(filepath.Join(root, rel)); string(bytes.TrimSpace(b)) != v {
				t.Fatalf("%s %q became %q, want %s", rel, files[rel], b, v)
			}
		}
	})
}

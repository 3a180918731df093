package early

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The register dumps a host can provoke (soft lockup, RCU stall, WARN:
// KERN_DEFAULT, level 4 on Debian) stay off the host's serial console:
// Debian's console level 7 comes down to 4, ignore_loglevel goes off, a
// level already lower stays.
func TestQuietConsole(t *testing.T) {
	for _, c := range []struct {
		name, printk, ignore string
		wantWas              int
		wantPrintk           string // "" unchanged
		wantIgnore           string
	}{
		{"debian default", "7\t4\t1\t7\n", "N\n", 7, "4\n", "N\n"},
		{"debug", "10\t4\t1\t7\n", "N\n", 10, "4\n", "N\n"},
		{"ignore_loglevel", "7\t4\t1\t7\n", "Y\n", 7, "4\n", "N\n"},
		{"quiet", "4\t4\t1\t7\n", "N\n", 4, "", "N\n"},
		{"quiet ignore_loglevel", "4\t4\t1\t7\n", "Y\n", 4, "", "N\n"},
		{"loglevel=1", "1\t4\t1\t7\n", "N\n", 1, "", "N\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{PrintkPath: c.printk, IgnoreLoglevelPath: c.ignore})
			was, err := QuietConsole(root)
			if err != nil || was != c.wantWas {
				t.Fatalf("QuietConsole: %d, %v; want %d, nil", was, err, c.wantWas)
			}
			want := c.wantPrintk
			if want == "" {
				want = c.printk
			}
			if b, _ := os.ReadFile(filepath.Join(root, PrintkPath)); string(b) != want {
				t.Errorf("%s = %q, want %q", PrintkPath, b, want)
			}
			if b, _ := os.ReadFile(filepath.Join(root, IgnoreLoglevelPath)); string(b) != c.wantIgnore {
				t.Errorf("%s = %q, want %q", IgnoreLoglevelPath, b, c.wantIgnore)
			}
		})
	}
}

func TestQuietConsoleErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := QuietConsole(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("without %s: %v, want ErrNotExist", PrintkPath, err)
	}
	// No printk module parameters (a kernel without them): the level alone.
	writeTree(t, root, map[string]string{PrintkPath: "7 4 1 7\n"})
	if was, err := QuietConsole(root); err != nil || was != 7 {
		t.Errorf("without %s: %d, %v; want 7, nil", IgnoreLoglevelPath, was, err)
	}
	writeTree(t, root, map[string]string{PrintkPath: ""})
	if _, err := QuietConsole(root); err == nil || !strings.Contains(err.Error(), PrintkPath) {
		t.Errorf("an empty %s: %v, want an error naming it", PrintkPath, err)
	}
	writeTree(t, root, map[string]string{PrintkPath: "x 4 1 7\n"})
	if _, err := QuietConsole(root); err == nil || !strings.Contains(err.Error(), PrintkPath) {
		t.Errorf("an unreadable level: %v, want an error naming %s", err, PrintkPath)
	}
}

// An oops or a panic raises the console level to 15 (console_verbose()),
// for good after an oops, unless printk's console_no_auto_verbose is on;
// a host without SEV-SNP's restricted injection (Linux 6.1 has none)
// provokes one at will by injecting an exception, a #DF into Katana for
// one (die("double fault") prints Katana's registers, then panics). The
// init turns console_no_auto_verbose on, so that the oops's and the
// panic's register dumps (KERN_DEFAULT) stay off the console as the soft
// lockup's do, and only their EMERG and ALERT headlines print.
func TestQuietConsoleNoAutoVerbose(t *testing.T) {
	for _, c := range []struct{ name, had, want string }{
		{"off", "N\n", "Y\n"},
		{"on", "Y\n", "Y\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{PrintkPath: "7\t4\t1\t7\n", IgnoreLoglevelPath: "N\n", NoAutoVerbosePath: c.had})
			if _, err := QuietConsole(root); err != nil {
				t.Fatalf("QuietConsole: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(root, NoAutoVerbosePath)); string(b) != c.want {
				t.Errorf("%s = %q, want %q: an oops or a panic the host provokes puts the console back at level 15 and prints the registers", NoAutoVerbosePath, b, c.want)
			}
		})
	}
}

// A switch that cannot be set is reported, each by name, and the level
// found is still returned.
func TestQuietConsoleUnsettable(t *testing.T) {
	for _, c := range []struct{ name, dir, want string }{
		{"ignore_loglevel", IgnoreLoglevelPath, "ignore_loglevel off"},
		{"console_no_auto_verbose", NoAutoVerbosePath, "console_no_auto_verbose on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{PrintkPath: "7\t4\t1\t7\n", IgnoreLoglevelPath: "N\n", NoAutoVerbosePath: "Y\n"})
			p := filepath.Join(root, c.dir)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if was, err := QuietConsole(root); was != 7 || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s a folder: %d, %v; want 7 and an error naming it", c.dir, was, err)
			}
		})
	}
	// A console level that cannot be lowered (a read-only sysctl, which
	// root cannot write either, holding a level above 4).
	t.Run("level", func(t *testing.T) {
		const ro = "/proc/sys/kernel/random/poolsize"
		if _, err := os.ReadFile(ro); err != nil {
			t.Skip(err)
		}
		root := t.TempDir()
		p := filepath.Join(root, PrintkPath)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ro, p); err != nil {
			t.Fatal(err)
		}
		if _, err := QuietConsole(root); err == nil || !strings.Contains(err.Error(), "lowering the console log level") {
			t.Errorf("%s read-only: %v, want the failure to lower the level reported", PrintkPath, err)
		}
	})
}

// A switch already set is left alone, not written again (trailing newline
// and all, as sysfs shows it).
func TestQuietConsoleSetSwitchUntouched(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{PrintkPath: "4\t4\t1\t7\n", IgnoreLoglevelPath: "N\n", NoAutoVerbosePath: "Y\n"})
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, rel := range []string{PrintkPath, IgnoreLoglevelPath, NoAutoVerbosePath} {
		if err := os.Chtimes(filepath.Join(root, rel), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := QuietConsole(root); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{PrintkPath, IgnoreLoglevelPath, NoAutoVerbosePath} {
		if fi, err := os.Stat(filepath.Join(root, rel)); err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s written although it already held its value (%v)", rel, err)
		}
	}
}

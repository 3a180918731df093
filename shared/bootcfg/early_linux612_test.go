package bootcfg

import (
	"errors"
	"strings"
	"testing"
)

// TestEarlyOptionLinux612: the options Linux 6.12 x86_64 (Debian 13's, and
// bookworm-backports' and bookworm-security's linux-image-6.12) reads with
// arch/x86/lib/cmdline.c where 6.1 read none are refused inside
// katana.args, a quoted value or after "--", like 6.1's: the kernel would
// act on them while a verifier reading KernelParams sees an argument.
func TestEarlyOptionLinux612(t *testing.T) {
	for _, w := range []string{
		"nousershstk",                 // arch/x86/kernel/cpu/common.c cpu_parse_early_param(): user shadow stacks off
		"fred=on",                     // arch/x86/kernel/cpu/common.c cpu_parse_early_param()
		"microcode.amd_sha_check=off", // arch/x86/kernel/cpu/microcode/amd.c load_ucode_amd_bsp()
	} {
		for _, line := range []string{
			`console=ttyS0 katana.args="--name ` + w + ` --dev"`,
			`console=ttyS0 -- ` + w,
			`x="a ` + w + ` b"`,
		} {
			_, err := Parse(line)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrEarlyOption) || e.Text != w || e.Offset != strings.Index(line, w) {
				t.Errorf("Parse(%q) = %v, want ErrEarlyOption naming %q at byte %d", line, err, w, strings.Index(line, w))
			}
		}
		if _, err := Format(withDefaults(func(c *Config) { c.Args = []string{"--name", w, "--dev"} }), []string{"console=ttyS0"}); !errors.Is(err, ErrEarlyOption) {
			t.Errorf("Format with katana.args word %q: %v, want ErrEarlyOption", w, err)
		}
		if _, err := Parse("console=ttyS0 " + w + " katana.args=--dev"); err != nil {
			t.Errorf("Parse with kernel parameter %q: %v", w, err)
		}
	}
}

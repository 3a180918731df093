package kcrypto

import (
	"slices"
	"testing"
)

// A Linux 6.1 guest's /proc/crypto in part: aesni_intel's AES-GCM and its
// internal helper, the gcm template's instance, and other names.
const sample = `name         : __gcm(aes)
driver       : __generic-gcm-aesni
module       : aesni_intel
priority     : 400
internal     : yes

name         : gcm(aes)
driver       : gcm_base(ctr(aes-generic),ghash-generic)
module       : gcm
priority     : 100
selftest     : passed
type         : aead

name         : gcm(aes)
driver       : generic-gcm-aesni
module       : aesni_intel
priority     : 400
selftest     : passed
type         : aead

name         : sha256
driver       : sha256-generic
module       : kernel
priority     : 100

name         : sha256
driver       : sha256-ssse3
module       : sha256_ssse3
priority     : 150
`

func TestDrivers(t *testing.T) {
	for _, c := range []struct {
		text, name string
		want       []string
	}{
		{sample, "gcm(aes)", []string{"generic-gcm-aesni", "gcm_base(ctr(aes-generic),ghash-generic)"}},
		{sample, "sha256", []string{"sha256-ssse3", "sha256-generic"}},
		{sample, "__gcm(aes)", []string{"__generic-gcm-aesni"}},
		{sample, "gcm", nil},
		{"", "gcm(aes)", nil},
		{"name : a\ndriver : x\npriority : 1\n\nname : a\ndriver : y\npriority : 1\n\nname : a\ndriver : z\n", "a", []string{"x", "y", "z"}},
		{"name : a\npriority : 9\n\nname : a\ndriver : d\npriority : junk\n", "a", []string{"d"}},
	} {
		if got := Drivers([]byte(c.text), c.name); !slices.Equal(got, c.want) {
			t.Errorf("Drivers(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

package qemu

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// appendLine is a command line with the awkward parts a cmdline can have: a
// quoted parameter with spaces, a literal *, single quotes.
const appendLine = `console=ttyS0 panic=-1 katana.args="--http.addr 0.0.0.0 --name 'a b' *"`

// goldenCase is a command line Build makes, kept in testdata/NAME.golden.
type goldenCase struct {
	name string
	opts Options
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "plain-tcg-minimal",
			opts: Options{Kernel: "/k/vmlinuz", Append: "console=ttyS0", SerialLog: "/tmp/serial.log"},
		},
		{
			name: "plain-tcg-forwards-qmp",
			opts: Options{
				Kernel: "/k/vmlinuz", Initrd: "/out/initrd.img", Append: appendLine,
				SerialLog: "/tmp/a,b/serial.log", QMPSocket: "/tmp/qmp.sock",
				VCPUs: 2, MemoryMiB: 2048, RestrictNetwork: true,
				Forwards: []Forward{{HostPort: 15050, GuestPort: 5050}, {HostAddr: "0.0.0.0", HostPort: 11024, GuestPort: 1024}},
			},
		},
		{
			name: "plain-kvm-no-network",
			opts: Options{
				Binary: "/opt/qemu/bin/qemu-system-x86_64", Accel: KVM, Kernel: "/k/vmlinuz",
				Initrd: "/out/initrd.img", Append: "console=ttyS0", SerialLog: "/tmp/s.log", NoNetwork: true,
			},
		},
		{
			name: "snp-1vcpu",
			opts: Options{
				Kernel: "/k/vmlinuz", Initrd: "/out/initrd.img", Append: appendLine,
				SerialLog: "/var/log/katana-serial.log", QMPSocket: "/run/katana/qmp.sock",
				Forwards: []Forward{{HostPort: 15051, GuestPort: 5050}}, VsockCID: 3,
				SNP: &SNP{OVMF: "/fw/OVMF.fd"},
			},
		},
		{
			name: "snp-4vcpu-genoa",
			opts: Options{
				Kernel: "/k/vmlinuz", Initrd: "/out/initrd.img", Append: "console=ttyS0",
				SerialLog: "/tmp/s.log", VCPUs: 4, MemoryMiB: 4096, CPU: "EPYC-Genoa", VsockCID: 42,
				SNP: &SNP{OVMF: "/fw/OVMF.fd", Policy: 0x30000, CBitPos: 51, ReducedPhysBits: 1},
			},
		},
		{
			name: "snp-debug-swap",
			opts: Options{
				Kernel: "/k/vmlinuz", Initrd: "/out/initrd.img", Append: "console=ttyS0",
				SerialLog: "/tmp/s.log", VsockCID: 3,
				SNP: &SNP{OVMF: "/fw/OVMF.fd", DebugSwap: true},
			},
		},
	}
}

func TestBuildGolden(t *testing.T) {
	for _, tt := range goldenCases() {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Build(tt.opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got := c.String()
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run 'go test ./qemu -run TestBuildGolden -update' to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Build(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// The kernel command line must reach QEMU as one argv element, byte for
// byte: it is hashed into the SEV-SNP launch measurement.
func TestBuildAppendIsOneElement(t *testing.T) {
	for _, snp := range []*SNP{nil, {OVMF: "/fw/OVMF.fd"}} {
		c, err := Build(Options{Kernel: "k", Append: appendLine, SerialLog: "s", SNP: snp})
		if err != nil {
			t.Fatal(err)
		}
		args := c.Args()
		var got []string
		for i, a := range args {
			if a == "-append" {
				got = append(got, args[i+1])
			}
		}
		if diff := cmp.Diff([]string{appendLine}, got); diff != "" {
			t.Errorf("-append values (snp=%v) (-want +got):\n%s", snp != nil, diff)
		}
		if c.Argv()[0] != DefaultBinary {
			t.Errorf("Argv()[0] = %q, want %q", c.Argv()[0], DefaultBinary)
		}
	}
}

func TestBuildDoesNotWriteCallerForwards(t *testing.T) {
	fw := []Forward{{HostPort: 1, GuestPort: 2}}
	if _, err := Build(Options{Kernel: "k", SerialLog: "s", Forwards: fw}); err != nil {
		t.Fatal(err)
	}
	if fw[0].HostAddr != "" {
		t.Errorf("Build filled in the caller's Forwards: %+v", fw[0])
	}
}

func TestBuildErrors(t *testing.T) {
	ok := Options{Kernel: "k", SerialLog: "s"}
	snp := func(o Options) Options { o.SNP = &SNP{OVMF: "ovmf"}; return o }
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no kernel", func(o *Options) { o.Kernel = "" }, "no kernel"},
		{"no serial log", func(o *Options) { o.SerialLog = "" }, "no serial log"},
		{"bad accel", func(o *Options) { o.Accel = "hvf" }, `accelerator "hvf"`},
		{"snp with tcg", func(o *Options) { *o = snp(*o); o.Accel = TCG }, "SEV-SNP needs the kvm accelerator"},
		{"snp without ovmf", func(o *Options) { o.SNP = &SNP{} }, "needs an OVMF"},
		{"snp pc machine", func(o *Options) { *o = snp(*o); o.Machine = "pc" }, "q35 machine type"},
		{"snp policy reserved bit 17", func(o *Options) { *o = snp(*o); o.SNP.Policy = 0x10000 }, "bit 17"},
		{"snp policy high bits", func(o *Options) { *o = snp(*o); o.SNP.Policy = 1<<40 | 1<<17 }, "bits 32-63"},
		{"snp cbitpos", func(o *Options) { *o = snp(*o); o.SNP.CBitPos = 7 }, "cbitpos 7"},
		{"snp reduced phys bits", func(o *Options) { *o = snp(*o); o.SNP.ReducedPhysBits = -1 }, "reduced-phys-bits -1"},
		{"vcpus", func(o *Options) { o.VCPUs = -2 }, "vCPU count -2"},
		{"memory", func(o *Options) { o.MemoryMiB = 10 }, "memory 10 MiB"},
		{"nul in cmdline", func(o *Options) { o.Append = "a\x00b" }, "NUL byte"},
		{"cmdline too long", func(o *Options) { o.Append = strings.Repeat("a", 2048) }, "2048 bytes; the kernel keeps at most 2047"},
		{"cmdline too long for OVMF", func(o *Options) { o.SNP = &SNP{OVMF: "OVMF.fd"}; o.Append = strings.Repeat("a", MaxCmdline+1) }, "2034 bytes; at most 2033 fit"},
		{"forward without network", func(o *Options) { o.NoNetwork = true; o.Forwards = []Forward{{HostPort: 1, GuestPort: 1}} }, "NoNetwork"},
		{"forward port 0", func(o *Options) { o.Forwards = []Forward{{HostPort: 0, GuestPort: 1}} }, "ports 0->1"},
		{"forward port too big", func(o *Options) { o.Forwards = []Forward{{HostPort: 1, GuestPort: 70000}} }, "ports 1->70000"},
		{"forward ipv6", func(o *Options) { o.Forwards = []Forward{{HostAddr: "::1", HostPort: 1, GuestPort: 1}} }, "not an IPv4"},
		{"forward twice", func(o *Options) {
			o.Forwards = []Forward{{HostPort: 8, GuestPort: 1}, {HostAddr: "127.0.0.1", HostPort: 8, GuestPort: 2}}
		}, "forwarded twice"},
		{"vsock cid 2", func(o *Options) { o.VsockCID = 2 }, "vsock guest CID 2"},
		{"qmp path too long", func(o *Options) { o.QMPSocket = "/" + strings.Repeat("q", 120) }, "unix sockets allow 107"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			_, err := Build(o)
			if err == nil {
				t.Fatalf("Build succeeded, want an error containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseForward(t *testing.T) {
	tests := []struct {
		in      string
		want    Forward
		wantErr string
	}{
		{in: "15050:5050", want: Forward{HostAddr: "127.0.0.1", HostPort: 15050, GuestPort: 5050}},
		{in: "0.0.0.0:8080:80", want: Forward{HostAddr: "0.0.0.0", HostPort: 8080, GuestPort: 80}},
		{in: "65535:1", want: Forward{HostAddr: "127.0.0.1", HostPort: 65535, GuestPort: 1}},
		{in: "5050", wantErr: "want HOSTPORT:GUESTPORT"},
		{in: "a:b:c:d", wantErr: "want HOSTPORT:GUESTPORT"},
		{in: "0:5050", wantErr: "host port"},
		{in: "1:65536", wantErr: "guest port"},
		{in: "+1:2", wantErr: "not a port number"},
		{in: "1: 2", wantErr: "not a port number"},
		{in: "::1:1:2", wantErr: "want HOSTPORT:GUESTPORT"},
		{in: "localhost:1:2", wantErr: "not an IPv4 address"},
		{in: "", wantErr: "want HOSTPORT:GUESTPORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseForward(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseForward(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseForward(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseForward(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzParseForward: any accepted forward round-trips through String and is
// accepted by Build.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"15050:5050", "0.0.0.0:1:2", "1:65536", "::1", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fw, err := ParseForward(s)
		if err != nil {
			return
		}
		again, err := ParseForward(fw.String())
		if err != nil {
			t.Fatalf("ParseForward(%q) = %+v, but its String %q does not parse: %v", s, fw, fw.String(), err)
		}
		if again != fw {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, fw)
		}
		if _, err := Build(Options{Kernel: "k", SerialLog: "s", Forwards: []Forward{fw}}); err != nil {
			t.Fatalf("Build rejects parsed forward %+v: %v", fw, err)
		}
	})
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"":                 "''",
		"plain/path.img":   "plain/path.img",
		"a b":              "'a b'",
		`it's`:             `'it'\''s'`,
		"*":                "'*'",
		"user,id=n0,x=y:1": "user,id=n0,x=y:1",
		// The ends of each unquoted range, and their neighbours outside it.
		"AZaz09": "AZaz09",
		"@":      "@",
		"[":      "'['",
		"`":      "'`'",
		"{":      "'{'",
		";":      "';'",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// A control or format character (a manifest's cmdline holds what its
// writer chose) is written as bash's $'\xNN', never raw (run --dry-run
// printed ESC, CR and a newline of the manifest's own: found by review),
// and bash reads back the same bytes.
func TestShellQuoteControls(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH: install bash to check what it reads back")
	}
	for in, want := range map[string]string{
		"console=ttyS0 \x1b[2K\rOK": `$'console=ttyS0 \x1b[2K\x0dOK'`,
		"a\nb":                      `$'a\x0ab'`,
		"it's \u202eé":              `$'it\'s \xe2\x80\xaeé'`,
		"back\\slash\t\x01":         `$'back\\slash\x09\x01'`,
		"tab\tonly":                 "'tab\tonly'",
		"bad\xffutf8\x01":           `$'bad\xffutf8\x01'`,
		"\x1b2":                     `$'\x1b2'`,
		// Not UTF-8, no control character: a raw 0x9b is an 8-bit CSI to
		// a terminal not in UTF-8 mode.
		"csi\x9b2K": `$'csi\x9b2K'`,
		"bad\xffé":  `$'bad\xffé'`,
	} {
		got := shellQuote(in)
		if got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
		out, err := exec.Command(bash, "-c", "printf %s "+got).Output()
		if err != nil || string(out) != in {
			t.Errorf("bash reads %s back as %q (%v), want %q", got, out, err, in)
		}
	}
}

// A tab, which a cmdline may hold and the terminal shows as space, stays
// in '...': dash (Debian's /bin/sh) reads $'...' as a '$' and a quoted
// string, so sh -c "$(hostbuild run --dry-run ...)" would boot another
// cmdline (found by review).
func TestShellQuoteTabPOSIX(t *testing.T) {
	in := "console=ttyS0\tpanic=-1"
	for _, sh := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("no %s on PATH: not checked with it", sh)
			continue
		}
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("%s reads %s back as %q (%v), want %q", sh, shellQuote(in), out, err, in)
		}
	}
}

// Every bound Build checks, at the last accepted value and the first
// refused one.
func TestBuildBounds(t *testing.T) {
	snp := func(o *Options) { o.SNP = &SNP{OVMF: "ovmf"} }
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string // "" accepted; else part of the error
	}{
		{"1 vcpu", func(o *Options) { o.VCPUs = 1 }, ""},
		{"4096 vcpus", func(o *Options) { o.VCPUs = MaxVCPUs }, ""},
		{"4097 vcpus", func(o *Options) { o.VCPUs = MaxVCPUs + 1 }, "vCPU count 4097"},
		{"min memory", func(o *Options) { o.MemoryMiB = MinMemoryMiB }, ""},
		{"below min memory", func(o *Options) { o.MemoryMiB = MinMemoryMiB - 1 }, "memory 63 MiB"},
		{"NUL first", func(o *Options) { o.Append = "\x00a" }, "NUL byte"},
		{"plain cmdline 2047", func(o *Options) { o.Append = strings.Repeat("a", 2047) }, ""},
		{"snp cmdline MaxCmdline", func(o *Options) { snp(o); o.Append = strings.Repeat("a", MaxCmdline) }, ""},
		{"qmp path 107", func(o *Options) { o.QMPSocket = "/" + strings.Repeat("q", 106) }, ""},
		{"qmp path 108", func(o *Options) { o.QMPSocket = "/" + strings.Repeat("q", 107) }, "QMP socket path is 108 bytes"},
		{"ports 1 and 65535", func(o *Options) {
			o.Forwards = []Forward{{HostPort: 65535, GuestPort: 1}, {HostPort: 1, GuestPort: 65535}}
		}, ""},
		{"host port 65536", func(o *Options) { o.Forwards = []Forward{{HostPort: 65536, GuestPort: 1}} }, "ports 65536->1"},
		{"guest port 0", func(o *Options) { o.Forwards = []Forward{{HostPort: 1, GuestPort: 0}} }, "ports 1->0"},
		{"vsock cid 3", func(o *Options) { o.VsockCID = 3 }, ""},
		{"vsock cid 0xfffffffe", func(o *Options) { o.VsockCID = 0xfffffffe }, ""},
		{"vsock cid 0xffffffff", func(o *Options) { o.VsockCID = 0xffffffff }, "vsock guest CID 4294967295"},
		{"cbitpos 32", func(o *Options) { snp(o); o.SNP.CBitPos = 32 }, ""},
		{"cbitpos 63", func(o *Options) { snp(o); o.SNP.CBitPos = 63 }, ""},
		{"cbitpos 31", func(o *Options) { snp(o); o.SNP.CBitPos = 31 }, "cbitpos 31"},
		{"cbitpos 64", func(o *Options) { snp(o); o.SNP.CBitPos = 64 }, "cbitpos 64"},
		{"reduced phys bits 1", func(o *Options) { snp(o); o.SNP.ReducedPhysBits = 1 }, ""},
		{"reduced phys bits 63", func(o *Options) { snp(o); o.SNP.ReducedPhysBits = 63 }, ""},
		{"reduced phys bits 64", func(o *Options) { snp(o); o.SNP.ReducedPhysBits = 64 }, "reduced-phys-bits 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Kernel: "k", SerialLog: "s"}
			tt.mutate(&o)
			_, err := Build(o)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Build: %v, want it accepted", err)
			case tt.want != "" && err == nil:
				t.Errorf("Build accepted it, want an error containing %q", tt.want)
			case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// Without SEV-SNP the default CPU model follows the accelerator.
func TestBuildDefaultCPU(t *testing.T) {
	for accel, want := range map[Accel]string{TCG: "max", KVM: "host"} {
		c, err := Build(Options{Kernel: "k", SerialLog: "s", Accel: accel})
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(c.Argv(), "-cpu"); i < 0 || c.Argv()[i+1] != want {
			t.Errorf("accel %s: argv %q, want -cpu %s", accel, c.Argv(), want)
		}
	}
}

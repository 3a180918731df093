package launch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/hostbuild/internal/ovmf"
	"github.com/katana-tee/snpboot/qemu"
)

// fixture is a manifest measured over the AmdSevX64 OVMF suffix from the
// shared fixtures (all the measurement reads) and small made-up kernel and
// initrd files, as hostbuild's run tests use. Nothing here boots.
type fixture struct {
	dir, ovmf, kernel, initrd string
	m                         *manifest.Manifest
}

const fixtureCmdline = `console=ttyS0 panic=-1 katana.args="--http.addr 0.0.0.0 --name 'a b' *"`

// sharedFixture is the path of a file in the shared measurement fixtures;
// tests that need it skip without it.
func sharedFixture(t *testing.T, name string) string {
	t.Helper()
	shared := os.Getenv("SHARED_DIR")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "..", "shared")
	}
	p := filepath.Join(shared, "measure", "fixtures", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: the OVMF fixture is missing (%v); set SHARED_DIR to the shared folder (make test does)", err)
	}
	return p
}

func newFixture(t *testing.T, vcpus []int, types ...string) fixture {
	t.Helper()
	return newFixtureCmdline(t, fixtureCmdline, vcpus, types...)
}

// newFixtureCmdline is newFixture with a manifest for cmdline.
func newFixtureCmdline(t *testing.T, cmdline string, vcpus []int, types ...string) fixture {
	t.Helper()
	suffix, err := os.ReadFile(sharedFixture(t, "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := fixture{
		dir:    dir,
		ovmf:   filepath.Join(dir, "OVMF.fd"),
		kernel: filepath.Join(dir, "vmlinuz"),
		initrd: filepath.Join(dir, "initrd.img"),
	}
	// A whole image's size (QEMU's -bios takes 64 KiB blocks), its
	// footer the AmdSevX64 build's last 4 KiB.
	for p, b := range map[string][]byte{
		f.ovmf:   append(bytes.Repeat([]byte{0xff}, 4<<20-len(suffix)), suffix...),
		f.kernel: bytes.Repeat([]byte{'k'}, 50_000),
		f.initrd: bytes.Repeat([]byte{'i'}, 70_000),
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(types) == 0 {
		types = []string{"EPYC-v4"}
	}
	f.m, err = manifest.Generate(context.Background(), manifest.GenerateOptions{
		OVMF: f.ovmf, Kernel: f.kernel, Initrd: f.initrd, Cmdline: cmdline,
		VCPUs: vcpus, VCPUTypes: types, ToolVersion: "v0.0.0-test",
	})
	if err != nil {
		t.Fatalf("generating the fixture's manifest: %v", err)
	}
	return f
}

// snp is a complete SEV-SNP launch of the fixture.
func (f fixture) snp() Options {
	return Options{Manifest: f.m, OVMF: f.ovmf, Kernel: f.kernel, Initrd: f.initrd, CID: 3,
		SerialLog: filepath.Join(f.dir, "serial.log")}
}

// plain is a plain launch of the fixture, without the OVMF.
func (f fixture) plain() Options {
	return Options{Manifest: f.m, Kernel: f.kernel, Initrd: f.initrd, Plain: true,
		SerialLog: filepath.Join(f.dir, "serial.log")}
}

// file writes a file into the fixture's folder and returns its path.
func (f fixture) file(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// manifestWith is a copy of the fixture's manifest changed by mod.
func (f fixture) manifestWith(mod func(*manifest.Manifest)) *manifest.Manifest {
	m := *f.m
	m.Measurements = slices.Clone(f.m.Measurements)
	mod(&m)
	return &m
}

func prepare(t *testing.T, o Options) *Plan {
	t.Helper()
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sha256Of reads path to its end.
func sha256Of(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("skipping the descriptor count: %v (needs Linux's /proc)", err)
	}
	return len(es)
}

func TestPrepareSNP(t *testing.T) {
	f := newFixture(t, []int{4, 1})
	o := f.snp()
	o.CID, o.MemoryMiB, o.ManifestPath = 42, 4096, "/etc/katana/my manifest.json"
	o.Forwards = []qemu.Forward{{HostPort: 15051, GuestPort: 5050}}
	o.QMPSocket = filepath.Join(f.dir, "qmp.sock")
	p := prepare(t, o)

	want, _ := f.m.Lookup(1, "EPYC-v4")
	if p.VCPUs != 1 || p.VCPUType != "EPYC-v4" || p.Expected != want {
		t.Errorf("plan = %d × %s expecting %+v, want 1 × EPYC-v4 expecting %+v (1 when the matrix has it)", p.VCPUs, p.VCPUType, p.Expected, want)
	}
	if !p.Recomputed {
		t.Error("Recomputed = false, want true: the OVMF was given, so the digest is recomputed")
	}
	policy, err := f.m.GuestPolicyValue()
	if err != nil {
		t.Fatal(err)
	}
	wantQ := qemu.Options{
		VCPUs: 1, MemoryMiB: 4096, CPU: "EPYC-v4",
		Kernel: f.kernel, Initrd: f.initrd, Append: fixtureCmdline,
		SerialLog: o.SerialLog, QMPSocket: o.QMPSocket, Forwards: o.Forwards, VsockCID: 42,
		SNP: &qemu.SNP{OVMF: f.ovmf, Policy: policy},
	}
	checkQEMU(t, "QEMU", p.QEMU, wantQ)
	wantX := wantQ
	wantX.Kernel, wantX.Initrd = qemu.InheritedFile(1), qemu.InheritedFile(2)
	wantX.SNP = &qemu.SNP{OVMF: qemu.InheritedFile(0), Policy: policy}
	checkQEMU(t, "ExecQEMU", p.ExecQEMU, wantX)
	if *p.QEMU.SNP == *p.ExecQEMU.SNP {
		t.Error("QEMU and ExecQEMU share their SNP settings: setting the OVMF for QEMU changed the operator's")
	}
	for _, c := range []struct {
		name string
		cmd  qemu.Command
		q    qemu.Options
	}{{"Command", p.Command, p.QEMU}, {"ExecCommand", p.ExecCommand, p.ExecQEMU}} {
		b, err := qemu.Build(c.q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.cmd.Argv(), b.Argv()) {
			t.Errorf("%s = %q, want qemu.Build of its options, %q", c.name, c.cmd.Argv(), b.Argv())
		}
	}
	if got := argAfter(p.ExecCommand, "-append"); got != fixtureCmdline {
		t.Errorf("-append %q, want the manifest's cmdline %q byte for byte", got, fixtureCmdline)
	}
	const desc = "SEV-SNP: 1 × EPYC-v4, policy 0x30000, guest features 0x1"
	if p.Description != desc {
		t.Errorf("Description = %q, want %q", p.Description, desc)
	}
	if want := `hostbuild attest --cid 42 --manifest '/etc/katana/my manifest.json' --min-tcb MIN_TCB`; p.AttestHint != want {
		t.Errorf("AttestHint = %q, want %q", p.AttestHint, want)
	}
}

// checkQEMU compares the fields of qemu.Options that Prepare sets.
func checkQEMU(t *testing.T, name string, got, want qemu.Options) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// argAfter is the value of the first option named name in c.
func argAfter(c qemu.Command, name string) string {
	for _, o := range c.Options {
		if o.Name == name {
			return o.Value
		}
	}
	return ""
}

// TestPrepareBootsTheHashedFiles: what QEMU is told to open (ExecQEMU,
// in its own process /proc/self/fd/N of Files) is the very bytes that were
// hashed and measured, whatever the operator's path names after the check
// and whatever is written into the files: a sealed copy in memory.
func TestPrepareBootsTheHashedFiles(t *testing.T) {
	// Two ways an attacker racing the launch changes the files after the
	// check: a new file renamed over each path, or new bytes written into
	// the very file (same inode, same size).
	changes := map[string]func(t *testing.T, f fixture, path string){
		"renamed over": func(t *testing.T, f fixture, path string) {
			repl := f.file(t, filepath.Base(path)+".new", []byte("swapped in after the check"))
			if err := os.Rename(repl, path); err != nil {
				t.Fatal(err)
			}
		},
		"written into": func(t *testing.T, f fixture, path string) {
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.WriteAt([]byte("written in after the check"), 0); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, tc := range []struct {
		name string
		opts func(fixture) Options
		want []string // option names, in the order of Files
	}{
		{"snp", fixture.snp, []string{"-bios", "-kernel", "-initrd"}},
		{"plain", fixture.plain, []string{"-kernel", "-initrd"}},
		{"plain with the OVMF checked", func(f fixture) Options { o := f.plain(); o.OVMF = f.ovmf; return o }, []string{"-kernel", "-initrd"}},
	} {
		for change, apply := range changes {
			t.Run(tc.name+", "+change, func(t *testing.T) {
				testBootsTheHashedFiles(t, tc.opts, tc.want, apply)
			})
		}
	}
}

// testBootsTheHashedFiles prepares the launch, changes each file with
// change, and checks that Files[i] (QEMU's option want[i]) still reads as
// the manifest's component.
func testBootsTheHashedFiles(t *testing.T, opts func(fixture) Options, want []string, change func(*testing.T, fixture, string)) {
	f := newFixture(t, []int{1})
	p := prepare(t, opts(f))
	comp := map[string]manifest.File{"-bios": f.m.Components.OVMF, "-kernel": f.m.Components.Kernel, "-initrd": f.m.Components.Initrd}
	paths := map[string]string{"-bios": f.ovmf, "-kernel": f.kernel, "-initrd": f.initrd}
	for _, path := range paths {
		change(t, f, path)
	}
	if len(p.Files) != len(want) {
		t.Fatalf("Files has %d files, want %d (%v)", len(p.Files), len(want), want)
	}
	for i, opt := range want {
		if got := argAfter(p.ExecCommand, opt); got != qemu.InheritedFile(i) {
			t.Errorf("ExecCommand %s %s, want %s (Files[%d])", opt, got, qemu.InheritedFile(i), i)
		}
		if got := argAfter(p.Command, opt); got != paths[opt] {
			t.Errorf("Command %s %s, want the operator's path %s", opt, got, paths[opt])
		}
		// QEMU reopens the inherited descriptor by its /proc path.
		got := sha256Of(t, "/proc/self/fd/"+strconv.Itoa(int(p.Files[i].Fd())))
		if got != comp[opt].SHA256 {
			t.Errorf("Files[%d] (%s) reads with SHA-256 %s, want the manifest's %s %s", i, opt, got, comp[opt].Name, comp[opt].SHA256)
		}
	}
	if argAfter(p.ExecCommand, "-bios") != "" && !slices.Contains(want, "-bios") {
		t.Errorf("a plain launch has -bios %s", argAfter(p.ExecCommand, "-bios"))
	}
}

func TestPreparePlain(t *testing.T) {
	f := newFixture(t, []int{2, 4})
	for _, tc := range []struct {
		name       string
		mod        func(*Options)
		recomputed bool
		desc       string
	}{
		{"tcg", func(o *Options) {}, false, "plain mode (tcg, no SEV-SNP, nothing to attest): 2 vCPU(s)"},
		{"kvm, OVMF checked", func(o *Options) { o.Accel, o.OVMF = qemu.KVM, f.ovmf }, true, "plain mode (kvm, no SEV-SNP, nothing to attest): 2 vCPU(s)"},
		{"tcg, 4 vCPUs", func(o *Options) { o.Accel, o.VCPUs = qemu.TCG, 4 }, false, "plain mode (tcg, no SEV-SNP, nothing to attest): 4 vCPU(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := f.plain()
			tc.mod(&o)
			p := prepare(t, o)
			if p.Description != tc.desc {
				t.Errorf("Description = %q, want %q", p.Description, tc.desc)
			}
			if p.Recomputed != tc.recomputed {
				t.Errorf("Recomputed = %v, want %v", p.Recomputed, tc.recomputed)
			}
			if p.AttestHint != "" {
				t.Errorf("AttestHint = %q, want none: a plain guest has nothing to attest", p.AttestHint)
			}
			if p.QEMU.SNP != nil || p.ExecQEMU.SNP != nil || p.QEMU.CPU != "" {
				t.Errorf("plain plan with SEV-SNP settings: SNP %+v, exec SNP %+v, CPU %q", p.QEMU.SNP, p.ExecQEMU.SNP, p.QEMU.CPU)
			}
			if p.QEMU.Accel != o.Accel || p.ExecQEMU.Accel != o.Accel {
				t.Errorf("Accel = %q (exec %q), want %q", p.QEMU.Accel, p.ExecQEMU.Accel, o.Accel)
			}
			want, _ := f.m.Lookup(p.VCPUs, "EPYC-v4")
			if p.Expected != want || p.QEMU.VCPUs != p.VCPUs {
				t.Errorf("Expected = %+v for %d vCPUs (QEMU's %d), want %+v", p.Expected, p.VCPUs, p.QEMU.VCPUs, want)
			}
		})
	}
}

// TestPrepareAttestHint: the printed command names the manifest as a shell
// word.
func TestPrepareAttestHint(t *testing.T) {
	f := newFixture(t, []int{1})
	for _, tc := range []struct{ path, want string }{
		{"", "hostbuild attest --cid 3 --manifest manifest.json --min-tcb MIN_TCB"},
		{"out/manifest-v1.2_a+b@c%d=e,f:g.json", "hostbuild attest --cid 3 --manifest out/manifest-v1.2_a+b@c%d=e,f:g.json --min-tcb MIN_TCB"},
		{"it's here.json", `hostbuild attest --cid 3 --manifest 'it'\''s here.json' --min-tcb MIN_TCB`},
		{"$HOME/m.json", `hostbuild attest --cid 3 --manifest '$HOME/m.json' --min-tcb MIN_TCB`},
		{"a;b", `hostbuild attest --cid 3 --manifest 'a;b' --min-tcb MIN_TCB`},
	} {
		o := f.snp()
		o.ManifestPath = tc.path
		if got := prepare(t, o).AttestHint; got != tc.want {
			t.Errorf("ManifestPath %q: AttestHint = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// The printed command reaches the agent the manifest's cmdline sets up
// (it once said --cid N alone, port 1024, whatever katana.agent said).
func TestPrepareAttestHintAgent(t *testing.T) {
	for _, tc := range []struct{ agent, want string }{
		{"", "hostbuild attest --cid 3 --manifest m.json --min-tcb MIN_TCB"},
		{" katana.agent=vsock:1024", "hostbuild attest --cid 3 --manifest m.json --min-tcb MIN_TCB"},
		{" katana.agent=vsock:2000", "hostbuild attest --cid 3 --port 2000 --manifest m.json --min-tcb MIN_TCB"},
		{" katana.agent=tcp:0.0.0.0:1024", "hostbuild attest --addr tcp:127.0.0.1:6024 --manifest m.json --min-tcb MIN_TCB"},
		{" katana.agent=tcp:10.0.2.15:99", "hostbuild attest --addr tcp:127.0.0.2:7099 --manifest m.json --min-tcb MIN_TCB"},
		{" katana.agent=tcp:0.0.0.0:5", "hostbuild attest --addr tcp:127.0.0.1:HOSTPORT --manifest m.json --min-tcb MIN_TCB (the agent listens on TCP port 5 in the guest: forward it with --forward HOSTPORT:5)"},
		{" katana.agent=none", ""},
		// Not the guest's eth0 address: no forward reaches it.
		{" katana.agent=tcp:[fd00::1]:99", "hostbuild attest --addr 'tcp:[fd00::1]:99' --manifest m.json --min-tcb MIN_TCB"},
		{" katana.net=10.0.2.20/24 katana.agent=tcp:10.0.2.15:99", "hostbuild attest --addr tcp:10.0.2.15:99 --manifest m.json --min-tcb MIN_TCB"},
	} {
		f := newFixtureCmdline(t, "console=ttyS0 panic=-1"+tc.agent, []int{1})
		o := f.snp()
		o.ManifestPath = "m.json"
		o.Forwards = []qemu.Forward{{HostPort: 5050, GuestPort: 5050}, {HostPort: 6024, GuestPort: 1024}, {HostAddr: "127.0.0.2", HostPort: 7099, GuestPort: 99}}
		if got := prepare(t, o).AttestHint; got != tc.want {
			t.Errorf("%q: AttestHint = %q, want %q", tc.agent, got, tc.want)
		}
	}
}

// TestPrepareDefaultConfig: without --vcpus the count is 1 if the matrix
// has it, else its smallest; without --vcpu-type, the matrix's only type.
func TestPrepareDefaultConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vcpus  []int
		types  []string
		opts   func(*Options)
		wantN  int
		wantTy string
	}{
		{"1 in the matrix", []int{4, 2, 1}, nil, nil, 1, "EPYC-v4"},
		{"smallest", []int{8, 2, 4}, nil, nil, 2, "EPYC-v4"},
		{"given count", []int{8, 2, 4}, nil, func(o *Options) { o.VCPUs = 8 }, 8, "EPYC-v4"},
		{"given type", []int{2, 1}, []string{"EPYC-v4", "EPYC-Genoa"}, func(o *Options) { o.VCPUType = "EPYC-Genoa" }, 1, "EPYC-Genoa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.vcpus, tc.types...)
			for _, plain := range []bool{false, true} {
				o := f.snp()
				if plain {
					o = f.plain()
				}
				if tc.opts != nil {
					tc.opts(&o)
				}
				p := prepare(t, o)
				if p.VCPUs != tc.wantN || p.VCPUType != tc.wantTy || p.QEMU.VCPUs != tc.wantN {
					t.Errorf("plain %v: %d × %s (QEMU -smp %d), want %d × %s", plain, p.VCPUs, p.VCPUType, p.QEMU.VCPUs, tc.wantN, tc.wantTy)
				}
				if want, _ := f.m.Lookup(tc.wantN, tc.wantTy); p.Expected != want {
					t.Errorf("plain %v: Expected = %+v, want %+v", plain, p.Expected, want)
				}
			}
		})
	}
}

// TestPrepareRefusals: every way a launch can differ from its manifest is
// refused (a *Mismatch where the manifest does not allow the value), and a
// refused launch leaves no file open.
func TestPrepareRefusals(t *testing.T) {
	f := newFixture(t, []int{1, 4}, "EPYC-v4", "EPYC-Genoa")
	other := f.file(t, "other", bytes.Repeat([]byte{'j'}, 70_000))
	// A manifest edited after measuring: each file still matches, but its
	// own matrix entry no longer does.
	editedCmdline := f.manifestWith(func(m *manifest.Manifest) { m.Cmdline = strings.Replace(m.Cmdline, "0.0.0.0", "127.0.0.1", 1) })
	editedFeatures := f.manifestWith(func(m *manifest.Manifest) { m.GuestFeatures = "0x5" })
	editedDigest := f.manifestWith(func(m *manifest.Manifest) {
		for i := range m.Measurements {
			m.Measurements[i].Measurement = strings.Repeat("0", 96)
		}
	})
	snpWith := func(mod func(*Options)) Options { o := f.snp(); o.VCPUType = "EPYC-v4"; mod(&o); return o }
	plainWith := func(mod func(*Options)) Options { o := f.plain(); o.VCPUType = "EPYC-v4"; mod(&o); return o }
	tests := []struct {
		name     string
		o        Options
		mismatch bool
		want     []string
	}{
		{"no manifest", snpWith(func(o *Options) { o.Manifest = nil }), false, []string{"launch: no manifest"}},
		{"invalid manifest", snpWith(func(o *Options) { o.Manifest = f.manifestWith(func(m *manifest.Manifest) { m.Schema = "v0" }) }), false, []string{"invalid manifest", `schema "v0"`}},
		{"no kernel", snpWith(func(o *Options) { o.Kernel = "" }), false, []string{"the kernel and the initrd are required"}},
		{"no initrd", plainWith(func(o *Options) { o.Initrd = "" }), false, []string{"the kernel and the initrd are required"}},
		// Another size is refused before anything is read; the same size
		// with other bytes by the hash.
		{"changed OVMF", snpWith(func(o *Options) { o.OVMF = other }), true, []string{"the OVMF " + other + " is 70000 bytes, but the manifest allows 4194304 bytes (OVMF.fd, SHA-256 "}},
		{"changed kernel", snpWith(func(o *Options) { o.Kernel = other }), true, []string{"the kernel " + other + " is 70000 bytes, but the manifest allows 50000 bytes (vmlinuz, SHA-256 "}},
		{"changed initrd", snpWith(func(o *Options) { o.Initrd = other }), true, []string{"the initrd " + other + " is SHA-256 ", "initrd.img, 70000 bytes"}},
		{"changed kernel, plain", plainWith(func(o *Options) { o.Kernel = other }), true, []string{"the kernel " + other}},
		{"changed OVMF, plain", plainWith(func(o *Options) { o.OVMF = other }), true, []string{"the OVMF " + other}},
		{"kernel and initrd swapped", snpWith(func(o *Options) { o.Kernel, o.Initrd = f.initrd, f.kernel }), true, []string{"the kernel " + f.initrd}},
		{"missing initrd", snpWith(func(o *Options) { o.Initrd = filepath.Join(f.dir, "nope") }), false, []string{"opening the initrd", "nope"}},
		{"vCPU count not in the matrix", snpWith(func(o *Options) { o.VCPUs = 2 }), true, []string{"the vCPU count is 2, but the manifest allows 1, 4 for EPYC-v4"}},
		{"vCPU count not in the matrix, plain", plainWith(func(o *Options) { o.VCPUs = 3 }), true, []string{"the vCPU count is 3"}},
		{"negative vCPU count", snpWith(func(o *Options) { o.VCPUs = -1 }), true, []string{"the vCPU count is -1"}},
		{"vCPU type not in the matrix", snpWith(func(o *Options) { o.VCPUType = "EPYC-Milan" }), true, []string{`the vCPU type is "EPYC-Milan", but the manifest allows one of EPYC-Genoa, EPYC-v4`}},
		{"vCPU type not given, several", snpWith(func(o *Options) { o.VCPUType = "" }), false, []string{"the manifest allows the vCPU types EPYC-Genoa, EPYC-v4: choose with --vcpu-type"}},
		{"edited cmdline", snpWith(func(o *Options) { o.Manifest = editedCmdline }), true, []string{"the launch digest of these files with the manifest's cmdline", "127.0.0.1", "guest features 0x1 (1 × EPYC-v4)", "edited after measuring"}},
		{"edited guest features", snpWith(func(o *Options) { o.Manifest = editedFeatures }), true, []string{"guest features 0x5 (1 × EPYC-v4)", "edited after measuring"}},
		{"edited digest", snpWith(func(o *Options) { o.Manifest = editedDigest }), true, []string{"but the manifest allows " + strings.Repeat("0", 96)}},
		{"edited digest, plain with the OVMF", plainWith(func(o *Options) { o.Manifest, o.OVMF = editedDigest, f.ovmf }), true, []string{"launch digest"}},
		{"ec2 manifest in SEV-SNP mode", snpWith(func(o *Options) { o.Manifest = f.manifestWith(func(m *manifest.Manifest) { m.VMMType = "ec2" }) }), true, []string{"the VMM is QEMU", `VMM type "ec2" only`}},
		{"SEV-SNP under TCG", snpWith(func(o *Options) { o.Accel = qemu.TCG }), false, []string{`SEV-SNP needs the kvm accelerator, not "tcg"`}},
		{"SEV-SNP, unknown accelerator", snpWith(func(o *Options) { o.Accel = "hvf" }), false, []string{`SEV-SNP needs the kvm accelerator, not "hvf"`}},
		{"plain, unknown accelerator", plainWith(func(o *Options) { o.Accel = "hvf" }), false, []string{`accelerator "hvf"`}},
		{"no serial log", snpWith(func(o *Options) { o.SerialLog = "" }), false, []string{"no serial log"}},
		{"QMP socket path too long", snpWith(func(o *Options) { o.QMPSocket = "/" + strings.Repeat("q", 200) }), false, []string{"QMP socket path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := openFDs(t)
			p, err := Prepare(context.Background(), tt.o)
			if err == nil {
				p.Close()
				t.Fatalf("Prepare: a plan, want a refusal containing %q", tt.want)
			}
			if p != nil {
				t.Errorf("Prepare returned a plan with its error %v", err)
			}
			var mm *Mismatch
			if errors.As(err, &mm) != tt.mismatch {
				t.Errorf("Prepare: %v (%T); a *Mismatch: %v, want %v", err, err, !tt.mismatch, tt.mismatch)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Prepare: %v\nwant it to contain %q", err, w)
				}
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open after the refusal, %d before: the refused plan left files open", after, before)
			}
		})
	}
}

// TestPrepareOldManifestCmdline: a manifest written before Generate
// refused cmdlines OVMF would change still loads; SEV-SNP mode refuses it
// (the guest would not boot what was measured), plain mode boots it.
func TestPrepareOldManifestCmdline(t *testing.T) {
	f := newFixture(t, []int{1})
	old := f.manifestWith(func(m *manifest.Manifest) { m.Cmdline = "console=ttyS0 katana.args=\"--name caf\u00e9\"" })
	o := f.snp()
	o.Manifest = old
	_, err := Prepare(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "refusing this manifest in SEV-SNP mode") || !errors.Is(err, manifest.ErrInvalid) {
		t.Errorf("SEV-SNP: Prepare: %v, want a refusal of the cmdline wrapping manifest.ErrInvalid", err)
	}
	o = f.plain()
	o.Manifest = old
	if p := prepare(t, o); argAfter(p.ExecCommand, "-append") != old.Cmdline {
		t.Errorf("plain: -append %q, want the manifest's %q", argAfter(p.ExecCommand, "-append"), old.Cmdline)
	}
}

// TestPrepareMeasureErrorNamesOperatorPaths: the digest is recomputed
// from /proc/self/fd/N of the checked files; its errors name the
// operator's paths instead, and still wrap measure's error.
func TestPrepareMeasureErrorNamesOperatorPaths(t *testing.T) {
	f := newFixture(t, []int{1})
	// An OVMF without the kernel hashes table, which the manifest (edited
	// by hand) lists: hashes match, the measurement refuses the firmware.
	bad := sharedFixture(t, "ovmf_OvmfX64_suffix.bin")
	fw := f.file(t, "OvmfX64.fd", readFile(t, bad))
	m := f.manifestWith(func(m *manifest.Manifest) {
		m.Components.OVMF = manifest.File{Name: "OvmfX64.fd", Size: int64(len(readFile(t, bad))), SHA256: sha256Of(t, bad)}
	})
	o := f.snp()
	o.Manifest, o.OVMF = m, fw
	_, err := Prepare(context.Background(), o)
	if err == nil {
		t.Fatal("Prepare: a plan from an OVMF without the kernel hashes table")
	}
	if !strings.Contains(err.Error(), "recomputing the launch digest") || !strings.Contains(err.Error(), fw) || strings.Contains(err.Error(), "/proc/self/fd/") {
		t.Errorf("Prepare: %v\nwant it to name %s, not /proc/self/fd/N", err, fw)
	}
	if !errors.Is(err, ovmf.ErrNoKernelHashes) {
		t.Errorf("Prepare: %v: want it to wrap ovmf.ErrNoKernelHashes still", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanPlace: Place swaps the serial log and QMP socket into both
// commands and keeps the inherited files; a path Build refuses changes
// nothing.
func TestPlanPlace(t *testing.T) {
	f := newFixture(t, []int{1})
	p := prepare(t, f.snp())
	serial, qmp := filepath.Join(f.dir, "scratch", "serial.log"), filepath.Join(f.dir, "scratch", "qmp.sock")
	if err := p.Place(serial, qmp); err != nil {
		t.Fatalf("Place: %v", err)
	}
	for _, c := range []struct {
		name string
		q    qemu.Options
		cmd  qemu.Command
	}{{"QEMU", p.QEMU, p.Command}, {"ExecQEMU", p.ExecQEMU, p.ExecCommand}} {
		if c.q.SerialLog != serial || c.q.QMPSocket != qmp {
			t.Errorf("%s: serial log %q, QMP socket %q; want %q, %q", c.name, c.q.SerialLog, c.q.QMPSocket, serial, qmp)
		}
		args := strings.Join(c.cmd.Args(), " ")
		if !strings.Contains(args, "path="+serial) || !strings.Contains(args, "path="+qmp+",") {
			t.Errorf("%s's command does not use the new paths: %s", c.name, args)
		}
	}
	if p.ExecQEMU.Kernel != qemu.InheritedFile(1) || p.QEMU.Kernel != f.kernel {
		t.Errorf("after Place: kernel %q, exec kernel %q; want %q, %q", p.QEMU.Kernel, p.ExecQEMU.Kernel, f.kernel, qemu.InheritedFile(1))
	}

	before := *p
	if err := p.Place(serial, "/"+strings.Repeat("q", 200)); err == nil || !strings.Contains(err.Error(), "launch: ") {
		t.Errorf("Place with a QMP path too long: %v, want launch's error", err)
	}
	if err := p.Place("", qmp); err == nil {
		t.Error("Place without a serial log: no error")
	}
	if p.QEMU.QMPSocket != before.QEMU.QMPSocket || p.ExecQEMU.SerialLog != before.ExecQEMU.SerialLog ||
		!slices.Equal(p.Command.Args(), before.Command.Args()) || !slices.Equal(p.ExecCommand.Args(), before.ExecCommand.Args()) {
		t.Error("a refused Place changed the plan")
	}
}

// TestPlanRealPathsAndExecNote: QEMU's messages name /proc/self/fd/N;
// RealPaths gives the operator's paths back, and ExecNote says which
// options differ from the printed command.
func TestPlanRealPathsAndExecNote(t *testing.T) {
	f := newFixture(t, []int{1})
	p := prepare(t, f.snp())
	msg := "qemu: could not load " + qemu.InheritedFile(1) + " or " + qemu.InheritedFile(2) + " with " + qemu.InheritedFile(0)
	want := "qemu: could not load " + f.kernel + " or " + f.initrd + " with " + f.ovmf
	if got := p.RealPaths(msg); got != want {
		t.Errorf("RealPaths(%q) = %q, want %q", msg, got, want)
	}
	note := p.ExecNote()
	for _, w := range []string{"QEMU is started with -bios " + qemu.InheritedFile(0) + ", -kernel " + qemu.InheritedFile(1) + ", -initrd " + qemu.InheritedFile(2) + " in place of the paths printed", "sealed in-memory copies of the files hashed here", "is what boots"} {
		if !strings.Contains(note, w) {
			t.Errorf("ExecNote() = %q, want it to contain %q", note, w)
		}
	}

	// A plan with no inherited files changes nothing.
	var empty Plan
	if got := empty.RealPaths(msg); got != msg {
		t.Errorf("RealPaths of an empty plan = %q, want %q unchanged", got, msg)
	}
	if got := empty.ExecNote(); got != "" {
		t.Errorf("ExecNote of an empty plan = %q, want none", got)
	}
}

// TestPlanClose: Close closes the checked files (QEMU keeps its own
// copies) and may be called again.
func TestPlanClose(t *testing.T) {
	f := newFixture(t, []int{1})
	before := openFDs(t)
	p, err := Prepare(context.Background(), f.snp())
	if err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t) - before; n != 3 {
		t.Errorf("the plan holds %d descriptors open, want 3 (OVMF, kernel, initrd)", n)
	}
	files := slices.Clone(p.Files)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after Close, %d before", after, before)
	}
	if p.Files != nil {
		t.Errorf("Files = %v after Close, want nil", p.Files)
	}
	if _, err := files[0].Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("reading Files[0] after Close: %v, want os.ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func TestMismatchError(t *testing.T) {
	m := &Mismatch{What: "the vCPU count", Got: "3", Allowed: "1, 4 for EPYC-v4"}
	if got, want := m.Error(), "refusing to launch: the vCPU count is 3, but the manifest allows 1, 4 for EPYC-v4"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// The VMSAs' SEV_FEATURES are measured. run asks QEMU for DebugSwap
// (debug-swap=on) and for no other bit besides SNPActive: a manifest
// measured with DebugSwap launches with debug-swap=on and no warning; one
// measured with any other bit launches (its digest is recomputed with it)
// with a warning that names the bits the host must add by itself. Plain
// mode has neither.
func TestPrepareGuestFeatures(t *testing.T) {
	f := newFixture(t, []int{1})
	if p := prepare(t, f.snp()); len(p.Warnings) != 0 || p.QEMU.SNP.DebugSwap {
		t.Errorf("default features: warnings %q, debug-swap %v", p.Warnings, p.QEMU.SNP.DebugSwap)
	}
	for _, tc := range []struct {
		features  uint64
		debugSwap bool
		warn      string // "" for none
	}{
		{0x21, true, ""},
		{0x5, false, "measured with guest features 0x5, but run does not ask QEMU for 0x4"},
		{0x225, true, "measured with guest features 0x225, but run does not ask QEMU for 0x204"},
	} {
		m, err := manifest.Generate(context.Background(), manifest.GenerateOptions{
			OVMF: f.ovmf, Kernel: f.kernel, Initrd: f.initrd, Cmdline: fixtureCmdline,
			VCPUs: []int{1}, VCPUTypes: []string{"EPYC-v4"}, GuestFeatures: tc.features, ToolVersion: "v0.0.0-test",
		})
		if err != nil {
			t.Fatal(err)
		}
		o := f.snp()
		o.Manifest = m
		p := prepare(t, o)
		if p.QEMU.SNP.DebugSwap != tc.debugSwap || p.ExecQEMU.SNP.DebugSwap != tc.debugSwap {
			t.Errorf("features %#x: debug-swap %v (exec %v), want %v", tc.features, p.QEMU.SNP.DebugSwap, p.ExecQEMU.SNP.DebugSwap, tc.debugSwap)
		}
		if got := strings.Contains(p.Command.String(), ",debug-swap=on"); got != tc.debugSwap {
			t.Errorf("features %#x: debug-swap=on in the command %v, want %v:\n%s", tc.features, got, tc.debugSwap, p.Command)
		}
		if got := strings.Contains(p.Description, "debug-swap=on: QEMU 10.2 or newer"); got != tc.debugSwap {
			t.Errorf("features %#x: description %q", tc.features, p.Description)
		}
		switch {
		case tc.warn == "" && len(p.Warnings) != 0:
			t.Errorf("features %#x: warnings %q, want none", tc.features, p.Warnings)
		case tc.warn != "" && (len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], tc.warn)):
			t.Errorf("features %#x: warnings %q, want one containing %q", tc.features, p.Warnings, tc.warn)
		}
		o = f.plain()
		o.Manifest = m
		if p := prepare(t, o); len(p.Warnings) != 0 || p.QEMU.SNP != nil {
			t.Errorf("features %#x in plain mode: warnings %q, SNP %+v", tc.features, p.Warnings, p.QEMU.SNP)
		}
	}
}

// Too little memory for the initrd (the kernel holds the image and its
// unpacked files at once) is warned about, with the size to give: an
// operator walkthrough saw a 306 MiB initrd stop at 760 MiB with "no space
// left on device" and no word of memory.
func TestMemoryWarning(t *testing.T) {
	const MiB = 1 << 20
	m := &manifest.Manifest{}
	m.Components.Initrd.Size = 306 * MiB
	m.Components.Payload = &manifest.File{Size: 306 * MiB}
	for _, tc := range []struct {
		mib  int
		snp  bool
		want string
	}{
		{760, false, "760 MiB of guest memory may be too little for this initrd (306 MiB, payload 306 MiB)"},
		{0, false, ""},   // the plain default, 1 GiB
		{1024, true, ""}, // given
		{772, false, ""}, // exactly the estimate
		{771, false, "give --memory 772M or more"},
		// SEV-SNP: 64 MiB (6 %, at least 64) more for the bounce buffers.
		{800, true, "the kernel keeps 64 MiB for DMA bounce buffers; give --memory 836M or more"},
		{836, true, ""},
		{0, true, ""}, // the SEV-SNP default, 2 GiB: 772 + 122
	} {
		got := memoryWarning(m, tc.mib, tc.snp)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%d MiB: warning %q, want %q", tc.mib, got, tc.want)
		}
	}
	// A small initrd with a large payload: the payload decoded beside the
	// unpacked files counts.
	m.Components.Initrd.Size = 40 * MiB
	m.Components.Payload.Size = 900 * MiB
	if got := memoryWarning(m, 1024, false); !strings.Contains(got, "give --memory 1100M") {
		t.Errorf("900 MiB payload in 1 GiB: warning %q", got)
	}
}

// Launching a Turin guest warns that attest refuses its reports; a plain
// launch (nothing to attest) does not.
func TestPrepareWarnsTurin(t *testing.T) {
	f := newFixture(t, []int{1}, "EPYC-Turin")
	has := func(p *Plan) bool {
		return slices.ContainsFunc(p.Warnings, func(w string) bool {
			return strings.HasPrefix(w, "EPYC-Turin: hostbuild attest refuses reports from AMD Turin")
		})
	}
	if p := prepare(t, f.snp()); !has(p) {
		t.Errorf("SEV-SNP launch on EPYC-Turin: warnings %q", p.Warnings)
	}
	if p := prepare(t, f.plain()); has(p) {
		t.Errorf("plain launch: warnings %q", p.Warnings)
	}
}

// Without --vcpu-type a manifest of several types is refused for an
// SEV-SNP launch (the type is measured), and a plain launch, which runs
// -cpu max whatever the type, takes the first.
func TestPrepareTypeNotGiven(t *testing.T) {
	f := newFixture(t, []int{1}, "EPYC-v4", "EPYC-Genoa")
	var nf *NeedFlag
	if _, err := Prepare(context.Background(), f.snp()); !errors.As(err, &nf) || nf.Flag != "--vcpu-type" || !strings.Contains(err.Error(), "choose with --vcpu-type") {
		t.Errorf("SEV-SNP launch without --vcpu-type: %v, want a *NeedFlag for --vcpu-type", err)
	}
	if p, first := prepare(t, f.plain()), f.m.Measurements[0].VCPUType; p.VCPUType != first {
		t.Errorf("plain launch without --vcpu-type: type %q, want the manifest's first, %s", p.VCPUType, first)
	}
}

// In plain mode, run says how to reach the agent for a wiring check (a
// TCP agent through its forward, with --min-tcb none), or why a vsock
// agent cannot be reached; a guest without an agent gets no line.
func TestPreparePlainAgentHint(t *testing.T) {
	for _, tc := range []struct{ agent, want string }{
		{"", "the agent listens on vsock port 1024, and plain mode gives the guest no vsock device: to reach it without SEV-SNP, build with --agent tcp:0.0.0.0:1024 and run with --forward HOSTPORT:1024"},
		{" katana.agent=tcp:0.0.0.0:1024", "hostbuild attest --addr tcp:127.0.0.1:6024 --manifest m.json --min-tcb none (a wiring check: without SEV-SNP the agent answers no_snp_device, exit 3)"},
		{" katana.agent=none", ""},
	} {
		f := newFixtureCmdline(t, "console=ttyS0 panic=-1"+tc.agent, []int{1})
		o := f.plain()
		o.ManifestPath = "m.json"
		o.Forwards = []qemu.Forward{{HostPort: 6024, GuestPort: 1024}}
		p := prepare(t, o)
		if p.AgentHint != tc.want || p.AttestHint != "" {
			t.Errorf("%q: AgentHint = %q, AttestHint = %q; want %q and none", tc.agent, p.AgentHint, p.AttestHint, tc.want)
		}
	}
}

// An OVMF that measures but that QEMU cannot start an SEV-SNP guest on
// (the 4 KiB stand-in make demo measures with) is warned of before the
// launch; plain mode does not use it.
func TestPrepareWarnsUnlaunchableOVMF(t *testing.T) {
	suffix, err := os.ReadFile(sharedFixture(t, "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, []int{1})
	if err := os.WriteFile(f.ovmf, suffix, 0o644); err != nil {
		t.Fatal(err)
	}
	f.m, err = manifest.Generate(context.Background(), manifest.GenerateOptions{
		OVMF: f.ovmf, Kernel: f.kernel, Initrd: f.initrd, Cmdline: f.m.Cmdline,
		VCPUs: []int{1}, VCPUTypes: []string{"EPYC-v4"}, ToolVersion: "v0.0.0-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = "4096 bytes, not a multiple of 64 KiB: QEMU's -bios, which gives an SEV-SNP guest its firmware, refuses it; QEMU will not start this guest: give the whole AmdSevX64 OVMF.fd"
	if ws := strings.Join(prepare(t, f.snp()).Warnings, "\n"); !strings.Contains(ws, want) {
		t.Errorf("SEV-SNP warnings %q, want one saying %q", ws, want)
	}
	if ws := prepare(t, f.plain()).Warnings; slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "-bios") }) {
		t.Errorf("plain warnings %q name the OVMF, which plain mode does not start", ws)
	}
}

// A manifest whose cmdline 'hostbuild manifest' refuses (one handing the
// host a debugger on the serial line) is not launched in SEV-SNP mode;
// --plain boots it, for seeing the init refuse such lines.
func TestPrepareRefusesSteeringCmdline(t *testing.T) {
	f := newFixtureCmdline(t, "console=ttyS0 panic=-1 kgdboc=ttyS0 kgdbwait", []int{1})
	p, err := Prepare(context.Background(), f.snp())
	if err == nil {
		p.Close()
		t.Fatal("Prepare launched a cmdline that hands the host kgdb")
	}
	if !strings.Contains(err.Error(), "its cmdline is one the init refuses or that steers it") {
		t.Errorf("Prepare: %v", err)
	}
	prepare(t, f.plain())
}

// A vCPU type whose QEMU model the SEV-SNP firmware's CPUID check refuses
// (complex indexing in 0x8000001D: EPYC, EPYC-Rome, EPYC-Milan and their
// early versions) is refused for an SEV-SNP launch, naming the version
// with the same measurement; a plain launch (-cpu max) takes it.
func TestPrepareRefusesSNPCPUIDRefusedType(t *testing.T) {
	for typ, repl := range map[string]string{"EPYC": "EPYC-v4", "EPYC-Rome-v2": "EPYC-Rome-v3", "EPYC-Milan": "EPYC-Milan-v2"} {
		f := newFixture(t, []int{1}, typ)
		_, err := Prepare(context.Background(), f.snp())
		if err == nil || !strings.Contains(err.Error(), "CPUID check refuses") || !strings.Contains(err.Error(), "use "+repl+",") {
			t.Errorf("SEV-SNP launch on %s: %v, want refused naming %s", typ, err, repl)
		}
		prepare(t, f.plain())
	}
	for _, typ := range []string{"EPYC-v4", "EPYC-Rome-v3", "EPYC-Milan-v2", "EPYC-Genoa"} {
		prepare(t, newFixture(t, []int{1}, typ).snp())
	}
}

// A guest policy KVM never launches (a migration agent, bit 18) is
// refused for an SEV-SNP launch; bits only some KVM versions, firmware or
// hosts take are warned of; the default policy is neither.
func TestPrepareSNPPolicy(t *testing.T) {
	f := newFixture(t, []int{1})
	withPolicy := func(pol string) Options {
		o := f.snp()
		o.Manifest = f.manifestWith(func(m *manifest.Manifest) { m.GuestPolicy = pol })
		return o
	}
	if _, err := Prepare(context.Background(), withPolicy("0x70000")); err == nil || !strings.Contains(err.Error(), "migration agent (bit 18), which KVM never launches") {
		t.Errorf("policy 0x70000: %v, want refused", err)
	}
	for pol, want := range map[string]string{
		"0x30000":   "",
		"0xb0000":   "", // debug: KVM launches it (warned of elsewhere)
		"0x20000":   "does not allow SMT (bit 16)",
		"0x130000":  "single socket (bit 20)",
		"0x1030000": "bits 0x1000000 (21-25",
	} {
		p := prepare(t, withPolicy(pol))
		got := strings.Join(p.Warnings, "\n")
		if want == "" && strings.Contains(got, "guest policy") || want != "" && !strings.Contains(got, want) {
			t.Errorf("policy %s: warnings %q, want %q", pol, p.Warnings, want)
		}
	}
	// A plain launch does not run the policy.
	o := withPolicy("0x70000")
	o.Plain, o.OVMF = true, ""
	prepare(t, o)
}

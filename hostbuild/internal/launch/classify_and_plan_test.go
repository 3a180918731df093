package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/katana-tee/snpboot/hostbuild/internal/manifest"
	"github.com/katana-tee/snpboot/qemu"
)

// The init's exit marker glued after a line that starts with a timestamp
// but is not the init's (Katana's partial output that happens to start
// like a kernel line, killed mid-line) still counts: the run is not clean.
func TestClassifyExitGluedAfterStampedLine(t *testing.T) {
	lines := append(ts("guestinit: katana started pid=88 argv=[]"),
		`[   39.000000] [ 1.5, 2.5[   40.010000] guestinit: katana exited status=137 signal=SIGKILL`,
		`[   40.020000] guestinit: powering off`, `[   40.100000] reboot: Power down`)
	got := Classify(lines, qemu.Exit{})
	if got.Ending != EndedKatana || got.KatanaStatus == nil || *got.KatanaStatus != 137 {
		t.Errorf("Outcome %+v (%s), want EndedKatana with status 137", got, got)
	}
}

// The first boot error is the one reported, not a later one.
func TestClassifyKeepsFirstBootError(t *testing.T) {
	got := Classify(ts("guestinit: boot error: first", "guestinit: boot error: second", "guestinit: powering off"), qemu.Exit{})
	if got.Ending != EndedBootError || got.BootError != "guestinit: boot error: first" {
		t.Errorf("Outcome %+v, want the first boot error", got)
	}
}

// QEMU that stopped the VM (guest-panicked, internal-error) and was
// killed by the runner for it is EndedQEMUStopped, not merely killed.
func TestClassifyQEMUStopped(t *testing.T) {
	got := Classify(ts("guestinit: katana started pid=1"), qemu.Exit{Code: -1, Signal: "killed", Killed: true, Stopped: "guest-panicked"})
	if got.Ending != EndedQEMUStopped || !strings.Contains(got.String(), "SEV-ES guest requested termination") {
		t.Errorf("Outcome %d (%s), want EndedQEMUStopped", got.Ending, got)
	}
}

// Every policy bit of 21 to 25 is warned of, PAGE_SWAP_DISABLE (25) too.
func TestSNPPolicyLaunchableWarnsEveryHighBit(t *testing.T) {
	for bit := 21; bit <= 25; bit++ {
		var w []string
		if err := snpPolicyLaunchable(0x30000|1<<bit, &w); err != nil {
			t.Fatal(err)
		}
		if len(w) != 1 || !strings.Contains(w[0], "21-25") {
			t.Errorf("bit %d: warnings %q, want one about bits 21-25", bit, w)
		}
	}
}

// The SWIOTLB estimate is capped at 1 GiB (the kernel's cap), not less.
func TestMemoryWarningBounceCap(t *testing.T) {
	const MiB = 1 << 20
	m := &manifest.Manifest{}
	m.Components.Initrd.Size = 9500 * MiB
	// 2*9500 + 160 + min(6 % of 20000, 1024) = 20184 > 20000.
	if got := memoryWarning(m, 20000, true); !strings.Contains(got, "keeps 1024 MiB for DMA bounce buffers; give --memory 20184M") {
		t.Errorf("warning %q", got)
	}
}

// Prepare estimates the memory for the mode it launches: SEV-SNP counts
// the bounce buffers, a plain launch does not.
func TestPrepareMemoryWarningByMode(t *testing.T) {
	f := newFixture(t, []int{1})
	hasMem := func(p *Plan) bool {
		for _, w := range p.Warnings {
			if strings.Contains(w, "of guest memory may be too little") {
				return true
			}
		}
		return false
	}
	o := f.snp()
	o.MemoryMiB = 200 // 162 MiB for the files, 64 more for SWIOTLB under SEV-SNP
	if p := prepare(t, o); !hasMem(p) {
		t.Errorf("SEV-SNP, 200 MiB: warnings %q, want a memory warning", p.Warnings)
	}
	o = f.plain()
	o.MemoryMiB = 200
	if p := prepare(t, o); hasMem(p) {
		t.Errorf("plain, 200 MiB: warnings %q, want no memory warning", p.Warnings)
	}
}

// Every lifecycle event ends the domain, as -no-reboot does for run:
// katana.on_exit=reboot must not restart the guest under libvirt.
func TestLibvirtXMLLifecycleDestroys(t *testing.T) {
	f := newFixture(t, []int{1})
	d, _ := libvirtXML(t, prepare(t, f.snp()), "katana")
	if d.OnPoweroff != "destroy" || d.OnReboot != "destroy" || d.OnCrash != "destroy" {
		t.Errorf("on_poweroff %q, on_reboot %q, on_crash %q; want destroy for each", d.OnPoweroff, d.OnReboot, d.OnCrash)
	}
}

// A relative --qemu binary (found on PATH by run) is not written as the
// emulator, which libvirt wants absolute: the default emulator is.
func TestLibvirtXMLRelativeBinary(t *testing.T) {
	f := newFixture(t, []int{1})
	o := f.snp()
	o.QEMUBinary = "qemu-system-x86_64"
	d, _ := libvirtXML(t, prepare(t, o), "katana")
	if want := "/usr/bin/" + qemu.DefaultBinary; d.Devices.Emulator != want {
		t.Errorf("emulator %q, want %q", d.Devices.Emulator, want)
	}
}

// sealedCopy copies one byte more than the size it was given, so that a
// file that grew since it was sized hashes differently.
func TestSealedCopyCopiesOneByteMore(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, bytes.Repeat([]byte{'x'}, 10), 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := sealedCopy("file", f, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, err := m.Stat(); err != nil || st.Size() != 6 {
		t.Errorf("sealed copy of a 10-byte file sized 5: %v bytes (%v), want 6", st.Size(), err)
	}
}

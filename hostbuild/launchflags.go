package main

import (
	"flag"
	"math"
	"strconv"

	"github.com/katana-tee/snpboot/hostbuild/internal/launch"
	"github.com/katana-tee/snpboot/qemu"
)

// launchFlags are the flags that say what to launch and how, shared by run
// and libvirt so that both describe the same VM the same way.
type launchFlags struct {
	fs       *flag.FlagSet
	o        launch.Options
	manifest string
	memory   string
	cid      uint
	forwards stringList
}

// launchHelp holds the help texts that differ between run and libvirt.
type launchHelp struct{ ovmf, memory, cid, forward, serialLog, vcpuType string }

func addLaunchFlags(fs *flag.FlagSet, h launchHelp) *launchFlags {
	l := &launchFlags{fs: fs}
	fs.StringVar(&l.manifest, "manifest", "", "the launch manifest `file` (required)")
	fs.StringVar(&l.o.OVMF, "ovmf", "", h.ovmf)
	fs.StringVar(&l.o.Kernel, "kernel", "", "kernel `file` (required)")
	fs.StringVar(&l.o.Initrd, "initrd", "", "initrd `file` (required)")
	intVar(fs, &l.o.VCPUs, "vcpus", 0, "vCPU `count` (default: 1 if the manifest allows it, else its smallest)")
	fs.StringVar(&l.o.VCPUType, "vcpu-type", "", h.vcpuType)
	fs.StringVar(&l.memory, "memory", "", h.memory)
	uintVar(fs, &l.cid, "cid", 0, h.cid)
	fs.Var(&l.forwards, "forward", h.forward)
	fs.StringVar(&l.o.SerialLog, "serial-log", "", h.serialLog)
	return l
}

// check validates the flags into l.o (the manifest is not loaded yet); a
// non-empty message is a usage error. Everything a flag alone decides is
// checked here, before launch.Prepare, so that a wrong or missing flag is a
// usage error (exit 2) in run and libvirt alike, not a launch failure.
func (l *launchFlags) check(usageFail func(string, ...any) int) (int, bool) {
	// --vcpus left out means the manifest's default (Options.VCPUs 0); a
	// count given must be one.
	if given(l.fs, "vcpus") && l.o.VCPUs < 1 {
		return usageFail("--vcpus %d: want 1 or more (leave --vcpus out for the manifest's default)", l.o.VCPUs), false
	}
	if given(l.fs, "cid") && l.cid == 0 {
		// 0 is also "not given" below: say what is wrong with it.
		return usageFail("--cid 0: CIDs 0 to 2 and 4294967295 are reserved; want 3 to 4294967294, unique on this host"), false
	}
	if l.cid > math.MaxUint32 {
		return usageFail("--cid %d: out of range; want 3 to 4294967294, unique on this host", l.cid), false
	}
	l.o.CID = uint32(l.cid)
	if err := l.o.CheckSettings(); err != nil {
		return usageFail("%v", err), false
	}
	if l.memory != "" {
		mib, err := parseMemory(l.memory)
		if err != nil {
			return usageFail("--memory %q: %v", l.memory, err), false
		}
		if mib < qemu.MinMemoryMiB {
			return usageFail("--memory %q: want at least %d MiB (the init decodes Katana into memory: 1G or more is usual)", l.memory, qemu.MinMemoryMiB), false
		}
		l.o.MemoryMiB = mib
	}
	seen := map[string]string{}
	for _, f := range l.forwards {
		fw, err := qemu.ParseForward(f)
		if err != nil {
			return usageFail("--forward: %v", err), false
		}
		if prev, dup := seen[fw.HostAddr+":"+strconv.Itoa(fw.HostPort)]; dup {
			return usageFail("--forward %s: host port %s:%d is already forwarded by --forward %s", f, fw.HostAddr, fw.HostPort, prev), false
		}
		seen[fw.HostAddr+":"+strconv.Itoa(fw.HostPort)] = f
		l.o.Forwards = append(l.o.Forwards, fw)
	}
	return exitOK, true
}

// launchInputs are the files run and libvirt read, for checkOutput.
func launchInputs(o launch.Options) []input {
	return []input{{flag: "--manifest", path: o.ManifestPath}, {flag: "--ovmf", path: o.OVMF},
		{flag: "--kernel", path: o.Kernel}, {flag: "--initrd", path: o.Initrd}}
}

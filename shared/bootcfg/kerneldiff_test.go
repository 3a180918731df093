package bootcfg

// Differential test against Linux's own C parsers: next_arg() and
// parse_args(), the x86 early finders (cmdline_find_option{,_bool}), the
// x86 EFI stub's option parsing, crashkernel='s, and init/main.c's split
// into PID 1's argv and envp with its __setup handlers, copied verbatim
// from a kernel source tree by testdata/kernelharness/build.sh and run by
// its harness.c. KERNEL_SOURCE names the tree (make kernel-source fetches
// Debian's, at the version of the boot tests' kernel; make test sets it),
// or KERNEL_HARNESS a harness built already; KERNEL_DIFF_N sets the
// number of random inputs (default 100000).

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// x86 options: every cmdline_find_option{,_bool} caller in 6.1 and 6.12
// x86 (6.12: nousershstk, fred, microcode.amd_sha_check, and mem_encrypt
// as the whole words mem_encrypt=on and mem_encrypt=off).
var diffBools = []string{"nokaslr", "no5lvl", "nopti", "dis_ucode_ldr", "nospectre_v2", "nospec_store_bypass_disable",
	"noxsave", "noxsaveopt", "noxsaves", "debug", "quiet", "forcepae", "no387", "nofxsr", "nousershstk",
	"mem_encrypt=on", "mem_encrypt=off"}
var diffValues = []string{"acpi_rsdp", "acpi", "earlyprintk", "console", "mem_encrypt", "pti", "split_lock_detect",
	"tsx", "spectre_v2_user", "spectre_v2", "spec_store_bypass_disable", "clearcpuid", "edd", "fred", "microcode.amd_sha_check"}
var diffEFI = []string{"mem=", "memmap=", "efi_fake_mem=", "hugepages="}

type cParam struct {
	group  int
	off    int
	key    string
	hasVal bool
	val    string
}

type cResult struct {
	params     []cParam
	unbalanced bool
	bools      map[string]int
	values     map[string]string // absent: not found
	efiOver    string
	efiFlags   [7]bool // nokaslr quiet noinitrd no5lvl nochunk novamap nosoftreserve
	crash      map[string]int
	argv, envp []string
	panic      string
	hazards    []string // __setup handlers Hazard names that the kernel called (harness-hazard)
}

func unhex(t testing.TB, s string) string {
	if s == "-" {
		return ""
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("harness output %q: %v", s, err)
	}
	return string(b)
}

func readResult(t testing.TB, r *bufio.Reader) cResult {
	res := cResult{bools: map[string]int{}, values: map[string]string{}, crash: map[string]int{}}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "END":
			return res
		case "P":
			g, _ := strconv.Atoi(f[1])
			o, _ := strconv.Atoi(f[2])
			res.params = append(res.params, cParam{g, o, unhex(t, f[3]), f[4] == "1", unhex(t, f[5])})
		case "Q":
			res.unbalanced = f[1] == "1"
		case "B":
			n, _ := strconv.Atoi(f[2])
			res.bools[f[1]] = n
		case "V":
			if f[2] != "-1" {
				v := ""
				if len(f) > 3 {
					v = unhex(t, f[3])
				}
				res.values[f[1]] = v
			}
		case "S":
			res.efiOver = f[1]
		case "F":
			for i := 0; i < 7; i++ {
				res.efiFlags[i] = f[i+1] == "1"
			}
		case "C":
			n, _ := strconv.Atoi(f[2])
			res.crash[f[1]] = n
		case "A":
			for _, h := range f[2:] { // f[1] is argv[0] "init"
				res.argv = append(res.argv, unhex(t, h))
			}
		case "N":
			for _, h := range f[1:] {
				res.envp = append(res.envp, unhex(t, h))
			}
		case "X":
			res.panic = f[1]
		case "H":
			res.hazards = append(res.hazards, f[1])
		}
	}
}

// diffInputs: random lines over a hostile alphabet, the string literals of
// this package's tests and the fuzz corpora (testdata and GOCACHE).
func diffInputs(t *testing.T, n int) []string {
	var in []string
	// string literals of the package's tests
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*_test.go")
	var lits []string
	for _, fn := range files {
		f, err := parser.ParseFile(fset, fn, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					lits = append(lits, s)
				}
			}
			return true
		})
	}
	in = append(in, lits...)
	// fuzz corpora
	dirs, _ := filepath.Glob("testdata/fuzz/*")
	if c, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		more, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(c)), "fuzz/github.com/katana-tee/snpboot/shared/bootcfg/*"))
		dirs = append(dirs, more...)
	}
	corpus := 0
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			var parts []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "string(") && strings.HasSuffix(l, ")") {
					if s, err := strconv.Unquote(l[len("string(") : len(l)-1]); err == nil {
						parts = append(parts, s)
						in = append(in, s)
						corpus++
					}
				}
			}
			if len(parts) > 1 { // FuzzFormat-style: join the pieces as a line
				in = append(in, strings.Join(parts, " "))
				corpus++
			}
		}
	}
	t.Logf("inputs: %d test literals, %d fuzz corpus strings", len(lits), corpus)
	tokens := []string{`"`, `"`, `"`, "=", "=", " ", " ", " ", "\t", "\n", "\v", "\f", "\r", "\x85", "\xa0", "\xa0",
		"-", ".", "'", "\\", "\x7f", "--", "--", "katana.", "katana.args=", "katana.env=", "katana.net=none",
		"nokaslr", "init=", "rdinit=", "a", "b", "x", "0", "mem=", "memmap=", "hugepages=", "efi_fake_mem=",
		"crashkernel=", ",high", ",low", "pti=", "nopti", "spectre_v2=", "spectre_v2_user=", "console=", "acpi=",
		"clearcpuid=", "noxsave", "nousershstk", "fred=", "microcode.amd_sha_check=", "mem_encrypt=on", "GODEBUG=", "kgdboc=", "sysrq_always_enabled", "noinitrd", "initrd=initrd", "BOOT_IMAGE=", "kexec", "sysrq-always_enabled", "rd-init=", "rd_init=", "INIT=", "tp_printk", "tp-printk_stop_on_boot", "kprobe_event=", "kprobe-event", "ftrace_dump_on_oops", "noinitrd-", "panic_print=", "sysctl.kernel.sysrq=", "initrdmem="}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < n; i++ {
		var b strings.Builder
		k := rng.Intn(24)
		for j := 0; j < k; j++ {
			switch r := rng.Intn(20); {
			case r == 0:
				b.WriteByte(byte(1 + rng.Intn(32))) // \x01..\x20
			case r == 1 && rng.Intn(50) == 0:
				b.WriteByte(0)
			default:
				b.WriteString(tokens[rng.Intn(len(tokens))])
			}
		}
		in = append(in, b.String())
	}
	// many parameters (argv/envp limits)
	for i := 0; i < n/20; i++ {
		var w []string
		for j := rng.Intn(70); j > 0; j-- {
			switch rng.Intn(6) {
			case 0:
				w = append(w, "--")
			case 1:
				w = append(w, fmt.Sprintf("E%d=v", rng.Intn(40)))
			case 2:
				w = append(w, fmt.Sprintf("m.p%d=1", j))
			case 3:
				w = append(w, fmt.Sprintf(`"q%d=a b"`, rng.Intn(40)))
			default:
				w = append(w, fmt.Sprintf("w%d", j))
			}
		}
		in = append(in, strings.Join(w, " "))
	}
	// every byte as a separator, for isspace() and myisspace()
	for b := 1; b < 256; b++ {
		c := string([]byte{byte(b)})
		in = append(in, "a"+c+"nopti"+c+"b", c+"--"+c+"x"+c+"--"+c+"y", "k="+c+"v"+c+"mem=1", `"`+c+`"`+c+"pti=off")
	}
	// around the argv/envp limits
	for i := 0; i < n/10; i++ {
		var w []string
		pool := 28 + rng.Intn(10)
		for j := 30 + rng.Intn(60); j > 0; j-- {
			switch rng.Intn(8) {
			case 0:
				w = append(w, fmt.Sprintf("w%d", j))
			case 1:
				w = append(w, fmt.Sprintf(`"E%d=a b"`, rng.Intn(pool)))
			case 2:
				w = append(w, fmt.Sprintf("E%d", rng.Intn(pool)))
			case 3:
				w = append(w, fmt.Sprintf("E%d=", rng.Intn(pool)))
			default:
				w = append(w, fmt.Sprintf("E%d=v", rng.Intn(pool)))
			}
		}
		if rng.Intn(3) == 0 {
			w = append(w, "--", "a", "b")
		}
		in = append(in, strings.Join(w, " "))
	}
	// lines Format writes from random settings, checked for the round
	// trip through OVMF's suffix here and against the kernel below
	formatted, rt := 0, 0
	pieces := []string{"a", " ", "\t", "\v", "\f", "\r", "'", "\\", "=", "-", "--", ".", "nokaslr", "mem=1", "crashkernel=1",
		"pti=off", "$", "*", "katana.args=", "init=/x", "\"", "x", "A_1=", "RUST_LOG=", "\x01", "\xa0"}
	word := func() string {
		var b strings.Builder
		for j := rng.Intn(5); j > 0; j-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		return b.String()
	}
	for i := 0; i < n/5; i++ {
		c := Default()
		for j := rng.Intn(6); j > 0; j-- {
			c.Args = append(c.Args, word())
		}
		for j := rng.Intn(3); j > 0; j-- {
			c.Env = append(c.Env, fmt.Sprintf("V%d=%s", j, word()))
		}
		var kp []string
		if rng.Intn(3) == 0 {
			kp = append(kp, "console=ttyS0", `x="a b"`)
		}
		if rng.Intn(3) == 0 {
			c.InitArgs = []string{"i1", "i2=x"}
		}
		line, err := Format(c, kp)
		if err != nil {
			continue
		}
		formatted++
		in = append(in, line, "initrd=initrd "+line, line+" initrd=initrd")
		for _, g := range []string{line + " initrd=initrd", "initrd=initrd " + line} {
			back, err := Parse(g)
			if err != nil || !slices.Equal(back.Args, c.Args) || !slices.Equal(back.Env, c.Env) {
				t.Errorf("round trip of %q: %v args %q env %q", g, err, back.Args, back.Env)
			}
			rt++
		}
	}
	t.Logf("%d lines Format wrote (%d round trips through OVMF's suffix)", formatted, rt)
	return in
}

type harness struct {
	cmd *exec.Cmd
	w   io.WriteCloser
	r   *bufio.Reader
}

func startHarness(t testing.TB, path string, cleanup bool) *harness {
	var args []string
	for _, b := range diffBools {
		args = append(args, "b:"+b)
	}
	for _, v := range diffValues {
		args = append(args, "v:"+v)
	}
	// A fuzz worker talks to the coordinator over inherited fds 3 and 4
	// (not close-on-exec): the harness must not hold them.
	for fd := 3; fd < 5; fd++ {
		syscall.CloseOnExec(fd)
	}
	cmd := exec.Command(path, args...)
	w, _ := cmd.StdinPipe()
	rp, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if cleanup {
		t.Cleanup(func() { w.Close(); cmd.Wait() })
	}
	return &harness{cmd, w, bufio.NewReaderSize(rp, 1<<20)}
}

func (h *harness) send(t testing.TB, s string) {
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(len(s)))
	if _, err := h.w.Write(append(l[:], s...)); err != nil {
		t.Logf("harness write: %v", err)
	}
}

// goHits: the places Go's early-option model finds option o (no genuine
// parameters), in order, using findEarlyOption itself on one option at a time.
func goHits(line string, o earlyOption) []earlyHit {
	saved := earlyOptions
	earlyOptions = []earlyOption{o}
	defer func() { earlyOptions = saved }()
	var out []earlyHit
	for k := 0; k <= len(line); {
		h, ok := findEarlyOption(line[k:], nil)
		if !ok {
			break
		}
		h.offset += k
		out = append(out, h)
		if o.scan == scanX86Word {
			k = h.offset + len(h.word)
		} else {
			k = h.offset + 1
		}
	}
	return out
}

// kernelHarness returns $KERNEL_HARNESS, or a harness it builds from the
// kernel source tree $KERNEL_SOURCE, and skips, saying how to enable the
// test, when neither is set.
func kernelHarness(tb testing.TB, dir string) string {
	if p := os.Getenv("KERNEL_HARNESS"); p != "" {
		return p
	}
	src := os.Getenv("KERNEL_SOURCE")
	if src == "" {
		tb.Skip("no Linux source to compare with: set KERNEL_SOURCE to a kernel source tree (make kernel-source fetches Debian's at the version of the boot tests' kernel, into .cache/kernel-source; make test sets it), or KERNEL_HARNESS to a harness testdata/kernelharness/build.sh built")
	}
	if out, err := exec.Command("bash", filepath.Join("testdata", "kernelharness", "build.sh"), src, dir).CombinedOutput(); err != nil {
		tb.Fatalf("building the harness from KERNEL_SOURCE=%s: %v\n%s", src, err, out)
	}
	if b, err := os.ReadFile(filepath.Join(src, "VERSION")); err == nil {
		tb.Logf("Linux source: %s", strings.TrimSpace(string(b)))
	}
	return filepath.Join(dir, "harness")
}

func TestKernelDiff(t *testing.T) {
	path := kernelHarness(t, t.TempDir())
	n := 100000
	if s := os.Getenv("KERNEL_DIFF_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	inputs := diffInputs(t, n)
	h := startHarness(t, path, true)
	const ovmf = " " + OVMFInitrdParam
	// Feed in a goroutine; each input is sent twice: as is and with OVMF's suffix.
	go func() {
		for _, s := range inputs {
			h.send(t, s)
			h.send(t, s+ovmf)
		}
		h.w.Close()
	}()
	var count diffCount
	fails := 0
	fail := func(format string, a ...any) {
		fails++
		if fails <= 40 {
			t.Errorf(format, a...)
		}
	}
	for _, s := range inputs {
		c := readResult(t, h.r)
		cOVMF := readResult(t, h.r)
		count.all++
		diffCheck(s, c, cOVMF, &count, fail)
	}
	t.Logf("compared %d inputs: %d split alike, %d split errors, %d accepted by Parse; %d x86, %d EFI stub, %d crashkernel finds checked on accepted lines; argv compared on %d, limits on %d; %d __setup hazard calls; %d lines over a limit (%d envp)",
		count.all, count.split, count.splitErr, count.parsed, count.x86, count.efi, count.crash, count.initcmp, count.limits, count.hazard, count.limitHits, count.envHits)
	if fails > 0 {
		t.Errorf("%d mismatches", fails)
	}
}

type diffCount struct {
	limitHits, envHits, hazard, all, split, splitErr, parsed, x86, efi, crash, initcmp, limits int
}

// diffCheck compares the Go view of s with the kernel's: c is the harness's
// result on s, cOVMF on s with OVMF's " initrd=initrd".
func diffCheck(s string, c, cOVMF cResult, count *diffCount, fail func(format string, a ...any)) {
	if len(s) >= 2048 || strings.IndexByte(s, 0) >= 0 {
		return // the C side sees a cut line
	}
	// 1. next_arg()/parse_args() vs splitKernel.
	params, initArgs, ignored, err := splitKernel(s)
	if err != nil {
		count.splitErr++
		if errors.Is(err, ErrUnbalancedQuote) != c.unbalanced || !errors.Is(err, ErrUnbalancedQuote) {
			fail("splitKernel(%q): err %v, kernel unbalanced=%v", s, err, c.unbalanced)
		}
		return
	}
	if c.unbalanced {
		fail("splitKernel(%q) accepted a line on which next_arg() ends inside a quote", s)
	}
	count.split++
	var goP []cParam
	add := func(g int, ps []Param) {
		for _, p := range ps {
			if g == 2 && p.Key == "--" && !p.HasValue {
				continue
			}
			off := p.Offset
			if strings.HasPrefix(p.Raw, `"`) {
				off++
			}
			goP = append(goP, cParam{g, off, p.Key, p.HasValue, p.Value})
		}
	}
	add(0, params)
	add(1, initArgs)
	add(2, ignored)
	if !slices.Equal(goP, c.params) {
		fail("splitKernel(%q):\n go %+v\n  C %+v", s, goP, c.params)
	}
	// 2. x86 early parsers vs the Go word model.
	for _, o := range earlyOptions {
		if o.scan != scanX86Word {
			continue
		}
		hits := goHits(s, o)
		name := strings.TrimSuffix(o.name, "=")
		if strings.HasSuffix(o.name, "=") {
			cv, cok := c.values[name]
			if cok != (len(hits) > 0) || cok && cv != hits[len(hits)-1].word[len(o.name):] {
				fail("x86 %s on %q: C %v %q, go hits %v", name, s, cok, cv, hits)
			}
		} else {
			want := 0
			if len(hits) > 0 {
				want = hits[0].offset + 1
			}
			if c.bools[name] != want {
				fail("x86 %s on %q: C pos %d, go %d", name, s, c.bools[name], want)
			}
		}
	}
	// the x86 options the Go list leaves out: report any the C finds
	// on a line Parse accepts (below).
	// 3. EFI stub parse_options(): the first of mem=,... whose first
	// strstr() hit is at the start or after isspace().
	if c.efiOver != "-" {
		for _, o := range earlyOptions {
			if o.name == c.efiOver {
				hits := goHits(s, o)
				if len(hits) == 0 || hits[0].offset != strings.Index(s, o.name) {
					fail("EFI stub %s on %q: go hits %v", o.name, s, hits)
				}
			}
		}
	}
	// 4. init's argv as the kernel builds it (nothing known) vs initBound.
	{
		var argv []string
		for _, p := range params {
			if _, arg := initBound(p); arg {
				argv = append(argv, setupLine(p))
			}
		}
		for _, p := range initArgs {
			argv = append(argv, setupLine(p))
		}
		known := false // a parameter the harness's kernel knows (initrd, sysctl aliases)
		for _, p := range params {
			k := strings.ReplaceAll(p.Key, "-", "_")
			if k == "initrd" || strings.HasPrefix(setupLine(p), "initrd") || slices.Contains([]string{"hardlockup_all_cpu_backtrace", "hung_task_panic",
				"numa_zonelist_order", "softlockup_all_cpu_backtrace"}, p.Key) {
				known = true
			}
		}
		if len(c.hazards) > 0 {
			known = true
		}
		// Hazard vs the __setup handlers the kernel called.
		var goHz []string
		for _, p := range params {
			switch why := Hazard(p); {
			case strings.Contains(why, "names a program other than"):
				goHz = append(goHz, "init")
			case strings.Contains(why, "SysRq"):
				goHz = append(goHz, "sysrq_always_enabled")
			case strings.Contains(why, "measured initrd"), strings.Contains(why, "trace"):
				// The __setup ones; initrdmem=, initrd=ADDR,SIZE and
				// panic_print= are early or core parameters the
				// harness does not run (TestHazardMore has them).
				for _, str := range []string{"noinitrd", "kprobe_event=", "tp_printk", "ftrace_dump_on_oops"} {
					if setupMatches(setupLine(p), str) {
						goHz = append(goHz, strings.TrimSuffix(str, "="))
					}
				}
			}
		}
		var cHz []string
		for _, hz := range c.hazards {
			cHz = append(cHz, strings.TrimPrefix(strings.TrimSuffix(hz, "="), "rd"))
		}
		if c.panic == "-" && !slices.Equal(goHz, cHz) {
			fail("hazards for %q: go %q, kernel called %q", s, goHz, cHz)
		}
		count.hazard += len(cHz)
		if c.panic == "-" && !known {
			count.initcmp++
			if !slices.Equal(argv, c.argv) {
				fail("argv for %q:\n go %q\n  C %q", s, argv, c.argv)
			}
		}
		// limits: Go's checkInitLimits vs the kernel with OVMF's suffix.
		if !known && len(ignored) == 0 && !strings.HasSuffix(s, " --") { // Format never writes a second "--"
			count.limits++
			gerr := checkInitLimits(params, initArgs)
			if gerr != nil {
				count.limitHits++
				if strings.Contains(gerr.Error(), "environment") {
					count.envHits++
				}
			}
			if (gerr != nil) != (cOVMF.panic != "-") {
				fail("limits for %q: go %v, kernel panic_later=%s (argv %d, envp %d)", s, gerr, cOVMF.panic, len(cOVMF.argv), len(cOVMF.envp))
			}
		}
	}
	// 5. Safety: on a line Parse accepts, everything the early parsers
	// act on is a kernel parameter of its own before "--".
	_, perr := Parse(s)
	if perr != nil {
		return
	}
	count.parsed++
	genuine := map[int]Param{}
	for _, p := range params {
		genuine[p.Offset] = p
	}
	for _, b := range diffBools {
		if pos := c.bools[b]; pos > 0 {
			count.x86++
			if p, ok := genuine[pos-1]; !ok || p.Raw != b {
				fail("Parse accepted %q but the x86 kernel reads %s at byte %d, not a parameter of its own", s, b, pos-1)
			}
		}
	}
	for _, v := range diffValues {
		if val, ok := c.values[v]; ok {
			count.x86++
			found := false
			for _, p := range params {
				if p.Raw == v+"="+val {
					found = true
				}
			}
			if !found {
				fail("Parse accepted %q but the x86 kernel reads %s=%q, not a parameter of its own", s, v, val)
			}
		}
	}
	if c.efiOver != "-" {
		count.efi++
		if _, ok := genuine[strings.Index(s, c.efiOver)]; !ok {
			fail("Parse accepted %q but the EFI stub reads %s", s, c.efiOver)
		}
	}
	for sfx, off := range c.crash {
		if off >= 0 {
			count.crash++
			if _, ok := genuine[off]; !ok {
				fail("Parse accepted %q but crashkernel (%s) is read at byte %d", s, sfx, off)
			}
		}
	}
	if c.efiFlags[0] && !slices.ContainsFunc(params, func(p Param) bool { return p.Key == "nokaslr" }) {
		fail("EFI stub nokaslr on %q not in params", s)
	}
}

// FuzzKernelDiff: the same comparison, coverage-guided (KERNEL_SOURCE or
// KERNEL_HARNESS, as TestKernelDiff).
func FuzzKernelDiff(f *testing.F) {
	path := kernelHarness(f, f.TempDir())
	for _, s := range []string{`katana.args="--name nokaslr"`, "a\xa0nopti", `"init=/x y" -- z`, `k="a b" crashkernel=1`} {
		f.Add(s)
	}
	var h *harness
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) >= 2048 {
			return // the kernel keeps 2047 bytes; and a long line's output could fill the pipe while we write
		}
		if h == nil {
			h = startHarness(t, path, false) // one per fuzz worker, for its life
		}
		h.send(t, s)
		h.send(t, s+" "+OVMFInitrdParam)
		c, cOVMF := readResult(t, h.r), readResult(t, h.r)
		var count diffCount
		diffCheck(s, c, cOVMF, &count, t.Errorf)
	})
}

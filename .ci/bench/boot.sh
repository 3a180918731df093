#!/usr/bin/env bash
# Boot benchmark: boot-to-ready of our Go init against the busybox-script
# init of the seed's shape, same kernel, same payload, same QEMU line, same
# run, alternating, under TCG.
#
#   boot-to-ready: QEMU start -> first starknet_chainId answer through the
#                  forwarded port (wall clock, polled every 0.1 s as
#                  ../shared/bench/boot-to-ready.sh does);
#   init time:     the init's first console line -> Katana started (guest
#                  clock: our init's timestamps, the seed's /proc/uptime);
#   kernel -> katana: the kernel's "Run /init" -> Katana started (guest clock);
#   the split of boot-to-ready at the kernel's first console line (host
#                  clock, to 0.05 s): the part before it (SeaBIOS, loading and
#                  decompressing bzImage) is the same work for both and
#                  independent of the initrd, but on this shared machine it
#                  alone moves by several seconds from boot to boot; the part
#                  after it is what the initrd and the init decide;
#   init size:     out/guestinit vs busybox + the seed's init script.
#
# Payload: the stand-in Katana padded to ~58 MiB with Go toolchain bytes (a
# static ELF that runs, with code-like entropy; real Katana cannot be
# fetched here). Baseline initrd: ../shared/bench/mk-seed-initrd.sh (gzip -9);
# ours: hostbuild pack with its default compressor and module set.
# Prints a Markdown section. Env: KERNEL_DIR (default .cache/kernel),
# SHARED_DIR (default ../shared), BOOT_RUNS (boots of each, default 15: single
# boots vary by seconds on a shared machine, and 9 pairs left the paired
# interval ~0.1 wide; see BENCHMARKS.md; ~6 min), BOOT_PHASE_RUNS (pairs
# per delay of the poll's first try, default 2, 0 skips them; ~1.5 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
kernel=${KERNEL_DIR:-.cache/kernel}
shared=${SHARED_DIR:-../shared}
runs=${BOOT_RUNS:-15}
hb=out/hostbuild init=out/guestinit standin=out/standin-katana
for f in "$hb" "$init" "$standin" "$kernel/vmlinuz"; do
  [ -e "$f" ] || { echo "boot bench: $f is missing: run 'make build kernel' first" >&2; exit 1; }
done
for t in qemu-system-x86_64 curl bc cpio; do
  command -v $t >/dev/null || { echo "boot bench: $t not found (apt-get install qemu-system-x86 curl bc cpio)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ~58 MiB payload that still runs: the stand-in with toolchain bytes appended
# (the loader maps only the program headers' segments).
tools=/usr/local/go/pkg/tool/linux_amd64
cp "$standin" "$work/katana"
pad=$((58 * 1024 * 1024 - $(stat -c %s "$standin")))
(cat "$tools/compile" "$tools/link" "$tools/vet" "$tools/asm" "$tools/cgo" "$tools/cover" /usr/local/go/bin/go || true) \
  | head -c "$pad" >> "$work/katana"
chmod 755 "$work/katana"

"$hb" pack -q --init "$init" --payload "$work/katana" --kernel-modules "$kernel" -o "$work/ours.img" >/dev/null
"$shared/bench/mk-seed-initrd.sh" "$kernel" "$work/katana" "$work/seed.img" >/dev/null

# The seed's cmdline shape; our init reads the same katana.args.
append="console=ttyS0 panic=-1 katana.args=--http.addr=0.0.0.0"
# A host port nobody listens on (another bench or demo may run beside us).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
  echo "boot bench: no free port found" >&2
  exit 1
}

# boot NAME INITRD [OFFSET]: one boot with ../shared/bench/boot-to-ready.sh's
# QEMU line and readiness poll (its first try OFFSET s after QEMU starts,
# default 0 as in that script); keeps the serial log. Prints "ready_s init_s
# run_s modules_s integrity_s run_init_t prekernel_s kernel_to_ready_s
# payload_s".
boot() {
  local name=$1 initrd=$2 offset=${3:-0} log=$work/$1.log
  local start end ok=0 qpid port kline
  port=$(free_port)
  rm -f "$log" "$log.qemu" "$log.kline"
  start=$(date +%s.%N)
  qemu-system-x86_64 -accel tcg -m 2G -smp 2 -kernel "$kernel/vmlinuz" -initrd "$initrd" -append "$append" \
    -nographic -no-reboot -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5050 -device virtio-net-pci,netdev=n0 \
    -serial file:"$log" -monitor none -display none >/dev/null 2>"$log.qemu" &
  qpid=$!
  # Host time of the kernel's first console line (to 0.05 s), watched apart
  # from the readiness poll, whose curl waits up to 1 s while the guest has
  # no network: it splits the boot into the part before the kernel, the same
  # work for both inits, and the part the initrd and the init decide.
  (for _ in $(seq 1 1200); do
    if grep -aq 'Linux version' "$log" 2>/dev/null; then date +%s.%N >"$log.kline"; exit 0; fi
    sleep 0.05
  done) &
  local watcher=$!
  sleep "$offset"
  for _ in $(seq 1 1200); do
    if curl -s -m 1 -X POST -H 'Content-Type: application/json' \
      -d '{"jsonrpc":"2.0","method":"starknet_chainId","params":[],"id":1}' http://127.0.0.1:$port/ 2>/dev/null |
      grep -q 0x4b4154414e41; then ok=1; break; fi
    kill -0 $qpid 2>/dev/null || break
    sleep 0.1
  done
  end=$(date +%s.%N)
  kill $qpid $watcher 2>/dev/null || true
  wait $qpid $watcher 2>/dev/null || true
  kline=$(cat "$log.kline" 2>/dev/null || true)
  if [ $ok != 1 ]; then
    echo "boot bench: $name never answered starknet_chainId; qemu stderr and serial log tail:" >&2
    cat "$log.qemu" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  # Guest-clock times. Kernel lines: "[    2.345678] Run /init as init process".
  local run_t first_t katana_t
  run_t=$(grep -a -m1 'Run /init' "$log" | sed -E 's/^\[ *([0-9.]+)\].*/\1/')
  case $name in
  seed)
    first_t=$(grep -a -m1 'SEEDINIT start' "$log" | awk '{print $3}')
    katana_t=$(grep -a -m1 'SEEDINIT exec katana' "$log" | awk '{print $4}')
    ;;
  ours)
    # guestinit lines carry seconds since boot: "guestinit: [  1.234] ..." or
    # "[  1.234] guestinit: ..."; take the first number in brackets.
    first_t=$(grep -a -m1 'guestinit:' "$log" | grep -oE '\[ *[0-9]+\.[0-9]+\]' | head -1 | tr -d '[] ')
    katana_t=$(grep -a -m1 'guestinit: katana started' "$log" | grep -oE '\[ *[0-9]+\.[0-9]+\]' | head -1 | tr -d '[] ')
    ;;
  esac
  if [ -z "$run_t" ] || [ -z "$first_t" ] || [ -z "$katana_t" ]; then
    echo "boot bench: cannot read the $name timings from the serial log (run=$run_t first=$first_t katana=$katana_t)" >&2
    grep -a -E 'Run /init|SEEDINIT|guestinit' "$log" | head -20 >&2
    exit 1
  fi
  # Our init's own stage costs ("took=1.234s"; 0 for the seed).
  local mod_t=0 integ_t=0 pay_t=0
  if [ "$name" = ours ]; then
    mod_t=$(grep -a -m1 'guestinit: stage=modules ok' "$log" | grep -oE 'took=[0-9.]+' | cut -d= -f2 || true)
    integ_t=$(grep -a -m1 'guestinit: stage=integrity ok' "$log" | grep -oE 'took=[0-9.]+' | cut -d= -f2 || true)
    pay_t=$(grep -a -m1 'guestinit: stage=payload ok' "$log" | grep -oE 'took=[0-9.]+' | cut -d= -f2 || true)
  fi
  if [ -z "$kline" ]; then
    echo "boot bench: the $name boot answered, but its kernel's first line (Linux version) was never seen in $log" >&2
    exit 1
  fi
  echo "$(echo "$end - $start" | bc) $(echo "$katana_t - $first_t" | bc) $(echo "$katana_t - $run_t" | bc) ${mod_t:-0} ${integ_t:-0} $run_t $(echo "$kline - $start" | bc) $(echo "$end - $kline" | bc) ${pay_t:-0}"
}

declare -A ready initt runt modt integt kernt pre post payt kstart
for i in $(seq "$runs"); do
  for name in seed ours; do
    r="" it="" rt="" mt="" gt="" kt="" pk="" kr="" pt=""
    read -r r it rt mt gt kt pk kr pt < <(boot $name "$work/$name.img") || true
    [ -n "${kr:-}" ] || { echo "boot bench: the $name boot failed" >&2; exit 1; }
    echo "boot bench: run $i $name: ready ${r}s (before the kernel ${pk}s, kernel -> ready ${kr}s), init ${it}s, Run /init -> katana ${rt}s" >&2
    ready[$name]+="$r " initt[$name]+="$it " runt[$name]+="$rt " modt[$name]+="$mt " integt[$name]+="$gt " kernt[$name]+="$kt "
    pre[$name]+="$pk " post[$name]+="$kr " payt[$name]+="$pt "
    kstart[$name]+="$(echo "$pk + $kt + $rt" | bc) "
  done
done

# The poll's phase. While the guest does not answer on its address (no eth0
# yet), each try hangs for curl's 1 s, so readiness is seen on a ~1.1 s grid
# set by QEMU's start, and where each side's Katana falls on that grid moves
# its figure by up to a second: on a given machine the same phase repeats
# boot after boot and can favour either side. So pairs are also booted with
# the poll's first try delayed by a quarter, a half and three quarters of
# that step (BOOT_PHASE_RUNS pairs per delay, default 2; 0 skips this).
phase_runs=${BOOT_PHASE_RUNS:-2}
offsets="0.28 0.56 0.84"
declare -A pready
if [ "$phase_runs" -gt 0 ]; then
  for off in $offsets; do
    for i in $(seq "$phase_runs"); do
      for name in seed ours; do
        r=""
        read -r r _ < <(boot $name "$work/$name.img" "$off") || true
        [ -n "${r:-}" ] || { echo "boot bench: the $name boot failed" >&2; exit 1; }
        echo "boot bench: poll delayed ${off}s, run $i $name: ready ${r}s" >&2
        pready[$off,$name]+="$r "
      done
    done
  done
fi

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { local -n arr=$1; echo "${arr[$2]}" | median; }
size() { stat -c %s "$1"; }
r_seed=$(m ready seed) r_ours=$(m ready ours)
i_seed=$(m initt seed) i_ours=$(m initt ours)
k_seed=$(m runt seed) k_ours=$(m runt ours)
mod_ours=$(m modt ours) integ_ours=$(m integt ours) pay_ours=$(m payt ours)
kr_seed=$(m kernt seed) kr_ours=$(m kernt ours)
pk_seed=$(m pre seed) pk_ours=$(m pre ours)
# The part before the kernel is the same work for both; pooled over all
# boots its median is a steadier common term than either side's own.
pk_all=$(echo "${pre[seed]} ${pre[ours]}" | median)
po_seed=$(m post seed) po_ours=$(m post ours)
# Paired: each ours boot over the seed boot just before it (the host's load
# drifts over minutes), the median of those ratios with a bootstrap 95 %
# interval (2000 resamples, fixed seed), and how often ours was faster.
read -r pr_med pr_lo pr_hi pr_faster pr_n < <(awk -v s="${ready[seed]}" -v o="${ready[ours]}" '
  function med(v, n,   i, j, t, c) {
    for (i = 1; i <= n; i++) c[i] = v[i]
    for (i = 2; i <= n; i++) { t = c[i]; for (j = i - 1; j >= 1 && c[j] > t; j--) c[j + 1] = c[j]; c[j + 1] = t }
    return n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
  }
  BEGIN {
    n = split(s, a, " "); split(o, b, " "); f = 0
    for (i = 1; i <= n; i++) { r[i] = b[i] / a[i]; if (r[i] < 1) f++ }
    srand(1); B = 2000
    for (k = 1; k <= B; k++) { for (i = 1; i <= n; i++) x[i] = r[int(rand() * n) + 1]; bs[k] = med(x, n) }
    for (i = 2; i <= B; i++) { t = bs[i]; for (j = i - 1; j >= 1 && bs[j] > t; j--) bs[j + 1] = bs[j]; bs[j + 1] = t }
    printf "%.3f %.3f %.3f %d %d\n", med(r, n), bs[int(B * 0.025) + 1], bs[int(B * 0.975)], f, n
  }')
# Median pair ratio per poll delay (0: the main run's pairs), and their mean.
pair_median() {
  awk -v s="$1" -v o="$2" 'BEGIN {
    n = split(s, a, " "); split(o, b, " ")
    for (i = 1; i <= n; i++) r[i] = b[i] / a[i]
    for (i = 2; i <= n; i++) { t = r[i]; for (j = i - 1; j >= 1 && r[j] > t; j--) r[j + 1] = r[j]; r[j + 1] = t }
    printf "%.3f\n", n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
  }'
}
phase_row="" phase_mean=""
if [ "$phase_runs" -gt 0 ]; then
  pm0=$(pair_median "${ready[seed]}" "${ready[ours]}")
  phase_row="0 s: $pm0"
  sum=$pm0
  for off in $offsets; do
    pm=$(pair_median "${pready[$off,seed]}" "${pready[$off,ours]}")
    phase_row+=", ${off} s: $pm"
    sum=$(echo "$sum + $pm" | bc -l)
  done
  phase_mean=$(echo "$sum / 4" | bc -l)
fi
ks_seed=$(m kstart seed) ks_ours=$(m kstart ours)
bb=$(readlink -f /bin/busybox)
seed_init_size=$(($(size "$bb") + $(size "$shared/bench/seed-init.sh")))

echo "## boot: boot-to-ready under TCG, Go init vs the seed's busybox init"
echo
echo "Kernel $(cat "$kernel/release" 2>/dev/null || echo '?'), QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') TCG (-m 2G -smp 2, ../shared/bench/boot-to-ready.sh's line), payload $(size "$work/katana") bytes (stand-in padded to 58 MiB). Medians of $runs boots each, alternating, same run."
echo
echo "| | seed (busybox sh, gzip -9) | ours (guestinit, hostbuild pack) | ratio |"
echo "|---|---|---|---|"
printf '| boot-to-ready: QEMU start -> starknet_chainId (s) | %.2f | %.2f | %.3f |\n' "$r_seed" "$r_ours" "$(echo "$r_ours / $r_seed" | bc -l)"
printf '| boot-to-ready, paired: median of ours/seed over the %d pairs (bootstrap 95 %% interval %.3f–%.3f; ours faster in %d of %d) | | | %.3f |\n' "$pr_n" "$pr_lo" "$pr_hi" "$pr_faster" "$pr_n" "$pr_med"
if [ -n "$phase_mean" ]; then
  printf '| boot-to-ready, paired, over the poll'"'"'s phase: mean of the median pair ratios with its first try delayed by %s (%d pairs each but 0 s) | | | %.3f |\n' "$phase_row" "$phase_runs" "$phase_mean"
fi
printf '| QEMU start -> katana started, without the poll: kernel first line (host clock) + katana started (guest clock) (s) | %.2f | %.2f | %.3f |\n' "$ks_seed" "$ks_ours" "$(echo "$ks_ours / $ks_seed" | bc -l)"
printf '| boot-to-ready estimate: pooled median before the kernel (%.2f s, both sides) + each side'"'"'s median after it (s) | %.2f | %.2f | %.3f |\n' "$pk_all" "$(echo "$pk_all + $po_seed" | bc -l)" "$(echo "$pk_all + $po_ours" | bc -l)" "$(echo "($pk_all + $po_ours) / ($pk_all + $po_seed)" | bc -l)"
printf '| before the kernel: QEMU start -> kernel first line (s, host clock; SeaBIOS, bzImage; no init or initrd work) | %.2f | %.2f | %.3f |\n' "$pk_seed" "$pk_ours" "$(echo "$pk_ours / $pk_seed" | bc -l)"
printf '| kernel first line -> starknet_chainId (s, host clock; what the initrd and the init decide) | %.2f | %.2f | %.3f |\n' "$po_seed" "$po_ours" "$(echo "$po_ours / $po_seed" | bc -l)"
printf '| kernel: boot -> Run /init, incl. initrd unpack (s, guest clock) | %.3f | %.3f | %.3f |\n' "$kr_seed" "$kr_ours" "$(echo "$kr_ours / $kr_seed" | bc -l)"
printf '| init: first line -> katana started (s, guest clock) | %.3f | %.3f | %.3f |\n' "$i_seed" "$i_ours" "$(echo "$i_ours / $i_seed" | bc -l)"
printf '| kernel Run /init -> katana started (s, guest clock) | %.3f | %.3f | %.3f |\n' "$k_seed" "$k_ours" "$(echo "$k_ours / $k_seed" | bc -l)"
printf '| of which (ours), in parallel: modules stage / payload frames checked and decoded / other files checked (s, guest clock) | | %.3f / %.3f / %.3f | |\n' "$mod_ours" "$pay_ours" "$integ_ours"
printf '| initrd size (bytes) | %s | %s | %.3f |\n' "$(size "$work/seed.img")" "$(size "$work/ours.img")" "$(echo "$(size "$work/ours.img") / $(size "$work/seed.img")" | bc -l)"
printf '| init binary size (bytes) | %s (busybox + script) | %s | %.3f |\n' "$seed_init_size" "$(size "$init")" "$(echo "$(size "$init") / $seed_init_size" | bc -l)"
echo
echo "All boots: seed ready ${ready[seed]}s; ours ready ${ready[ours]}s."
echo "Before the kernel: seed ${pre[seed]}s; ours ${pre[ours]}s."
for off in $offsets; do
  if [ -n "${pready[$off,seed]:-}" ]; then
    echo "Poll delayed ${off} s: seed ready ${pready[$off,seed]}s; ours ready ${pready[$off,ours]}s."
  fi
done
echo "Target: boot-to-ready ratio ≤ 0.9. The seed's first line comes after its mounts; ours is the init's first line. The seed's kernel unpacks the whole payload (gzip) before its init runs; ours only copies the packed payload, and our init checks the SHA-256 of its frames, decodes them into /bin/katana on both vCPUs and checks every other file, while it loads the vsock, configfs, button and AF_ALG modules the seed lacks (outside SEV-SNP it leaves out sev_guest and the AES-GCM modules only it needs)."

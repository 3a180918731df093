#!/usr/bin/env bash
# Pack benchmark: `hostbuild pack` against the seed's shell pipeline
# (../shared/bench/seed-pipeline.sh: touch, find | sort | cpio | gzip -n -9)
# on the same staged content, side by side in one run, best of N each.
# Content: out/guestinit, the default module closure of the Debian kernel,
# and a ~58 MiB payload cut from Go toolchain binaries (a static ELF of
# Katana's size with code-like entropy; real Katana cannot be fetched here).
# Prints a Markdown section. Env: KERNEL_DIR (default .cache/kernel),
# SHARED_DIR (default ../shared), RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
kernel=${KERNEL_DIR:-.cache/kernel}
shared=${SHARED_DIR:-../shared}
runs=${RUNS:-3}
hb=out/hostbuild
init=${INIT:-out/guestinit}
[ -x "$hb" ] && [ -x "$init" ] || { echo "pack bench: run make build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ~58 MiB static ELF payload.
tools=/usr/local/go/pkg/tool/linux_amd64
(cat "$tools/compile" "$tools/link" "$tools/vet" "$tools/asm" "$tools/cgo" "$tools/cover" /usr/local/go/bin/go || true) \
  | head -c $((58 * 1024 * 1024)) > "$work/katana"
chmod 755 "$work/katana"

# Stage the same content as a root folder for the seed pipeline: our own
# uncompressed archive with the payload inline at /bin/katana (the seed's
# shape), unpacked by GNU cpio (as root: device nodes too).
"$hb" pack -q --init "$init" --payload "$work/katana" --kernel-modules "$kernel" --compress none --payload-encoding inline -o "$work/plain.img" >/dev/null
mkdir "$work/root"
(cd "$work/root" && cpio -idm --quiet < "$work/plain.img")

now() { date +%s.%N; }
best() { sort -n | head -1; }
declare -A t
for i in $(seq "$runs"); do
  # compression of the main archive : payload encoding
  for v in zstd:frames zstd:inline gzip:inline none:inline; do
    c=${v%:*} p=${v#*:}
    s=$(now); "$hb" pack -q --init "$init" --payload "$work/katana" --kernel-modules "$kernel" --compress $c --payload-encoding $p -o "$work/hb-$c-$p.img" >/dev/null; e=$(now)
    t[hb-$c-$p]+="$(echo "$e - $s" | bc) "
  done
  s=$(now); "$shared/bench/seed-pipeline.sh" "$work/root" "$work/seed.img" 9; e=$(now)
  t[seed]+="$(echo "$e - $s" | bc) "
done
tb() { echo ${t[$1]} | tr ' ' '\n' | best; }
size() { stat -c %s "$1"; }
seed_t=$(tb seed); seed_s=$(size "$work/seed.img")
row() { # name file time
  printf '| %s | %.3f | %s | %.3f | %.3f |\n' "$1" "$3" "$(size "$2")" "$(echo "$3 / $seed_t" | bc -l)" "$(echo "$(size "$2") / $seed_s" | bc -l)"
}
echo "## pack: hostbuild pack vs the seed pipeline"
echo
echo "Payload $(size "$work/katana") bytes (58 MiB of Go toolchain binaries), $(find "$work/root" -type f | wc -l) files; best of $runs runs each, same run."
echo
echo "| pipeline | time (s) | size (bytes) | time ratio | size ratio |"
echo "|---|---|---|---|---|"
printf '| seed: find, sort, cpio, gzip -n -9 | %.3f | %s | 1.000 | 1.000 |\n' "$seed_t" "$seed_s"
row "hostbuild pack (default: --compress zstd, payload in zstd frames)" "$work/hb-zstd-frames.img" "$(tb hb-zstd-frames)"
row "hostbuild pack --compress zstd --payload-encoding inline" "$work/hb-zstd-inline.img" "$(tb hb-zstd-inline)"
row "hostbuild pack --compress gzip --payload-encoding inline" "$work/hb-gzip-inline.img" "$(tb hb-gzip-inline)"
row "hostbuild pack --compress none --payload-encoding inline" "$work/hb-none-inline.img" "$(tb hb-none-inline)"
echo
echo "Targets: time ratio ≤ 0.15 and size ratio ≤ 0.95 with the default compressor."

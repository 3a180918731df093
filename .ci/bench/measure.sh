#!/usr/bin/env bash
# Measure benchmark: `hostbuild measure` against the floor of hashing the same
# inputs with OpenSSL (`openssl dgst -sha256 kernel initrd` plus `openssl dgst
# -sha384 ovmf`: its SHA code uses the CPU's SHA extensions, as Go's does;
# Debian's coreutils sha256sum does not, and is timed as a second row), side
# by side in one run, best of N each, warm page cache. Inputs: a 15 MiB kernel
# and a 60 MiB initrd of random bytes, and an OVMF: Debian's AmdSev build when
# installed, else a 4 MiB image synthesized from the upstream AmdSev suffix
# fixture (0xff padding + the last 4 KiB), as the tests do. sev-snp-measure is
# timed too when it is on PATH. Prints a Markdown section.
# Env: SHARED_DIR (default ../shared), RUNS (default 3), HOSTBUILD (default out/hostbuild).
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED_DIR:-../shared}
runs=${RUNS:-3}
hb=${HOSTBUILD:-out/hostbuild}
[ -x "$hb" ] || { echo "measure bench: run make build first" >&2; exit 1; }
for c in openssl bc /usr/bin/time; do
  command -v "$c" >/dev/null || { echo "measure bench: $c is missing (make deps installs it)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

head -c $((15 * 1024 * 1024)) /dev/urandom > "$work/kernel"
head -c $((60 * 1024 * 1024)) /dev/urandom > "$work/initrd"
ovmf=
for f in /usr/share/ovmf/OVMF.amdsev.fd /usr/share/OVMF/OVMF.amdsev.fd /usr/share/OVMF/OVMF_CODE.amdsev.fd; do
  if [ -f "$f" ]; then ovmf=$f; ovmf_desc="Debian AmdSev build $f"; break; fi
done
if [ -z "$ovmf" ]; then
  suffix="$shared/measure/fixtures/ovmf_AmdSev_suffix.bin"
  [ -f "$suffix" ] || { echo "measure bench: no AmdSev OVMF installed and no $suffix (set SHARED_DIR)" >&2; exit 1; }
  ovmf="$work/ovmf.fd"
  { head -c 4190208 /dev/zero | tr '\0' '\377'; cat "$suffix"; } > "$ovmf"
  ovmf_desc="synthetic 4 MiB AmdSev image (0xff + upstream suffix fixture; Debian 12's ovmf has no AmdSev build)"
fi
cmdline='console=ttyS0 katana.args="--http.addr 0.0.0.0 --dev"'
margs=(--mode snp --vcpus 4 --vcpu-type EPYC-Genoa --ovmf "$ovmf" --kernel "$work/kernel" --initrd "$work/initrd" --append "$cmdline")
cat "$ovmf" "$work/kernel" "$work/initrd" > /dev/null # warm the page cache

ref=$(command -v sev-snp-measure || true)
now() { date +%s.%N; }
best() { tr ' ' '\n' | grep . | sort -n | head -1; }
declare -A t
for i in $(seq "$runs"); do
  s=$(now); openssl dgst -sha256 "$work/kernel" "$work/initrd" > /dev/null; openssl dgst -sha384 "$ovmf" > /dev/null; e=$(now)
  t[floor]+="$(echo "$e - $s" | bc) "
  s=$(now); sha256sum "$work/kernel" "$work/initrd" > /dev/null; sha384sum "$ovmf" > /dev/null; e=$(now)
  t[coreutils]+="$(echo "$e - $s" | bc) "
  s=$(now); "$hb" measure "${margs[@]}" > "$work/hb.out"; e=$(now)
  t[hb]+="$(echo "$e - $s" | bc) "
  if [ -n "$ref" ]; then
    s=$(now); "$ref" "${margs[@]}" > "$work/ref.out"; e=$(now)
    t[ref]+="$(echo "$e - $s" | bc) "
  fi
done
floor=$(echo "${t[floor]}" | best)
hbt=$(echo "${t[hb]}" | best)
cut=$(echo "${t[coreutils]}" | best)
rss=$(/usr/bin/time -f %M "$hb" measure "${margs[@]}" 2>&1 >/dev/null | tail -1)

echo "## measure: hostbuild measure vs the hashing floor"
echo
echo "Inputs: 15 MiB kernel and 60 MiB initrd of random bytes, OVMF $(stat -c %s "$ovmf") bytes ($ovmf_desc); 4 vCPUs EPYC-Genoa; best of $runs runs each, same run, warm cache."
echo
echo "| command | time (s) | ratio to floor |"
echo "|---|---|---|"
printf '| floor: openssl dgst -sha256 kernel initrd + -sha384 ovmf | %.3f | 1.000 |\n' "$floor"
printf '| coreutils: sha256sum kernel initrd + sha384sum ovmf | %.3f | %.3f |\n' "$cut" "$(echo "$cut / $floor" | bc -l)"
printf '| hostbuild measure | %.3f | %.3f |\n' "$hbt" "$(echo "$hbt / $floor" | bc -l)"
if [ -n "$ref" ]; then
  reft=$(echo "${t[ref]}" | best)
  printf '| sev-snp-measure (%s) | %.3f | %.3f |\n' "$ref" "$reft" "$(echo "$reft / $floor" | bc -l)"
  if cmp -s "$work/hb.out" "$work/ref.out"; then same=yes; else same=NO; fi
fi
echo
echo "hostbuild measure max RSS: $rss KiB. Measurement: \`$(cat "$work/hb.out")\`."
[ -n "$ref" ] && echo "Same output as sev-snp-measure: $same."
echo
echo "Target: ratio ≤ 1.3."

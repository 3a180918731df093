#!/usr/bin/env bash
# Runs every benchmark script in .ci/bench/ and collects their Markdown
# sections into one file. Usage: .ci/bench.sh OUT.md
set -euo pipefail
cd "$(dirname "$0")/.."
# Go lives at /usr/local/go (README); use it when go is not on PATH.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
out=${1:-out/bench.md}
mkdir -p "$(dirname "$out")"
# Collected beside the result and moved in at the end: a failed bench
# leaves no file that looks like a result.
final=$out
out=$(mktemp "$final.tmp.XXXXXX")
trap 'rm -f "$out"' EXIT
{
  echo "# Benchmark run $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version | cut -d' ' -f3)"
  echo
} > "$out"
for s in .ci/bench/*.sh; do
  echo "== bench: $s" >&2
  bash "$s" | tee -a "$out"
  echo >> "$out"
done
mv "$out" "$final"
echo "bench: results in $final" >&2

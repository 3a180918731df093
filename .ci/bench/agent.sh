#!/usr/bin/env bash
# Agent benchmark: latency (p50, p99) and throughput of the guest attestation
# agent over TCP loopback with go-sev-guest's fake sev-guest device and fake
# AMD signer (the fake's ECDSA P-384 signature stands in for the PSP, whose
# own latency is not measured here), sequential and with 50 concurrent
# connections; the init-size cost of the agent against a stdlib-only HTTP
# server and against go-sev-guest's protobuf-based client package.
# Prints a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Go lives at /usr/local/go (README); use it when go is not on PATH.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
AGENT_BENCH_OUT="$work/agent.md" go test -count=1 -run '^TestAgentBench$' ./guestinit/internal/agent/ >&2
guest=(env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=')
for p in none agent base client; do
  "${guest[@]}" -o "$work/$p" ./guestinit/internal/agent/testdata/size/$p
done
sz() { stat -c %s "$1"; }
mb() { printf '%.2f' "$(echo "$1 / 1048576" | bc -l)"; }
none=$(sz "$work/none") agent=$(sz "$work/agent") base=$(sz "$work/base") client=$(sz "$work/client")
echo "## agent: attestation latency and throughput (fake device)"
echo
cat "$work/agent.md"
echo
echo "Each attestation request derives REPORT_DATA, waits for the single hardware slot"
echo "(one request at a time; a bounded queue answers 429 when full), asks the fake"
echo "device (which signs with ECDSA P-384), and returns JSON. The sev-guest ioctl path"
echo "does not sleep between commands; go-sev-guest's LinuxDevice would add its 2 s"
echo "self-throttle per ioctl (two ioctls per quote), i.e. >= 4 s per request."
echo
echo "| static guest probe (flags of out/guestinit) | bytes | MiB | vs no agent |"
echo "|---|---:|---:|---:|"
row() { printf '| %s | %s | %s | %.2f |\n' "$1" "$2" "$(mb "$2")" "$(echo "$2 / $none" | bc -l)"; }
row "no agent (boot config, status, net)" "$none"
row "+ agent (own HTTP/1.1 reader, vsock, configfs-tsm, linuxabi ioctl)" "$agent"
row "net/http JSON server alone (what the agent avoids)" "$base"
row "net/http + go-sev-guest client package" "$client"
printf '\nThe agent costs %s MiB; a net/http server alone would cost %s MiB, with go-sev-guest'"'"'s client %s MiB.\n' \
  "$(mb $((agent - none)))" "$(mb $((base - none)))" "$(mb $((client - none)))"

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
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
AGENT_BENCH_OUT="$work/agent.md" go test -count=1 -run '^TestAgentBench$' ./guestinit/internal/agent/ >&2
guest=(env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=')
for p in base agent client; do
  "${guest[@]}" -o "$work/$p" ./guestinit/internal/agent/testdata/size/$p
done
sz() { stat -c %s "$1"; }
mb() { printf '%.2f' "$(echo "$1 / 1048576" | bc -l)"; }
base=$(sz "$work/base") agent=$(sz "$work/agent") client=$(sz "$work/client")
echo "## agent: attestation latency and throughput (fake device)"
echo
cat "$work/agent.md"
echo
echo "Each attestation request derives REPORT_DATA, waits for the single hardware slot"
echo "(one request at a time, a bounded queue answers 429 when full), asks the fake"
echo "device (which signs with ECDSA P-384), and returns JSON. The sev-guest ioctl path"
echo "does not sleep between commands; go-sev-guest's LinuxDevice would add its 2 s"
echo "self-throttle per ioctl (two ioctls per quote), i.e. >= 4 s per request."
echo
echo "| static guest binary (same flags as out/guestinit) | bytes | MiB | vs stdlib server |"
echo "|---|---:|---:|---:|"
printf '| stdlib HTTP/JSON server only | %s | %s | 1.00 |\n' "$base" "$(mb "$base")"
printf '| + agent (vsock, configfs-tsm, linuxabi ioctl) | %s | %s | %.2f |\n' "$agent" "$(mb "$agent")" "$(echo "$agent / $base" | bc -l)"
printf '| + go-sev-guest client package instead | %s | %s | %.2f |\n' "$client" "$(mb "$client")" "$(echo "$client / $base" | bc -l)"
printf '\nThe agent adds %s MiB to a stdlib server; the client package would add %s MiB.\n' \
  "$(mb $((agent - base)))" "$(mb $((client - base)))"

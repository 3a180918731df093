#!/usr/bin/env bash
# make demo: build the initrd, cmdline and manifest with `hostbuild build`,
# list the initrd, boot it with `hostbuild run --plain` under QEMU TCG, call
# starknet_chainId through the forwarded port, ask the attestation agent for
# its status and a report (none under plain QEMU: exit 3, no_snp_device), and
# stop it gracefully (the ACPI power button), printing each step. `make demo`
# runs `make deps build kernel` first. Env: KERNEL_DIR (default
# .cache/kernel), OVMF (firmware for the measurement), DEMO_PORT (host port
# for Katana's RPC, default 15050), DEMO_AGENT_PORT (default 11024).
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=${KERNEL_DIR:-.cache/kernel}
port=${DEMO_PORT:-15050}
hb=out/hostbuild
demo=out/demo
n=0
step() { n=$((n + 1)); printf '\n== demo step %d: %s\n' "$n" "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

for f in "$hb" out/guestinit out/standin-katana "$kernel/vmlinuz"; do
  [ -e "$f" ] || die "$f is missing: run 'make build kernel' (or 'make demo', which does)"
done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
mkdir -p "$demo"
aport=${DEMO_AGENT_PORT:-11024}
# Another demo, bench or test may hold the port: then take a free one.
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "demo: port $port is in use; using $p"; port=$p; break; }
  done
fi
if (exec 3<>/dev/tcp/127.0.0.1/$aport) 2>/dev/null; then aport=$((port + 1)); fi

step "build: the static init and the stand-in Katana (make build)"
ls -l out/guestinit out/standin-katana out/hostbuild | awk '{printf "  %-22s %10s bytes\n", $9, $5}'
"$hb" version

step "build: pack the initrd, format the cmdline, write the manifest (hostbuild build)"
# Plain mode boots with SeaBIOS, not OVMF; the manifest still needs an
# AmdSevX64 OVMF to compute measurements, so the demo uses the footer of an
# AmdSevX64 build kept as test data (hostbuild/testdata/README.md) as a
# measurement-only stand-in. A real deployment passes its own OVMF.fd.
ovmf=${OVMF:-hostbuild/testdata/ovmf_AmdSev_suffix.bin}
if [ -z "${OVMF:-}" ]; then
  echo "  OVMF: $ovmf, the last 4 KiB of an AmdSevX64 build: enough to measure, not to boot"
  echo "  (so build warns that run cannot launch it under SEV-SNP; this demo boots plain, without OVMF)"
fi
"$hb" build --init out/guestinit --payload out/standin-katana --kernel-modules "$kernel" \
  --kernel "$kernel/vmlinuz" --ovmf "$ovmf" --vcpus 1,2 --vcpu-type EPYC-v4,EPYC-Genoa \
  --args "--http.addr 0.0.0.0 --http.port 5050 --dev" --agent tcp:0.0.0.0:1024 -o "$demo" \
  | sed 's/^/  expected measurement /'
echo "  cmdline: $(cat "$demo/cmdline")"

step "inspect: every entry of the initrd"
"$hb" inspect "$demo/initrd.img" | sed 's/^/  /'
echo "  size $(stat -c %s "$demo/initrd.img") bytes, sha256 $(sha256sum "$demo/initrd.img" | cut -d' ' -f1)"

step "reproduce: the manifest is what these files give (every measurement and hash recomputed)"
"$hb" reproduce --manifest "$demo/manifest.json" --ovmf "$ovmf" --kernel "$kernel/vmlinuz" --initrd "$demo/initrd.img" \
  --payload out/standin-katana --init out/guestinit 2>&1 | sed 's/^/  /'

step "boot: hostbuild run --plain (QEMU TCG, no SEV), RPC forwarded to 127.0.0.1:$port"
"$hb" run --plain --dry-run --vcpus 1 --vcpu-type EPYC-v4 --manifest "$demo/manifest.json" --kernel "$kernel/vmlinuz" --initrd "$demo/initrd.img" \
  --forward "$port:5050" --forward "$aport:1024" --serial-log "$demo/serial.log" 2>/dev/null | sed 's/^/  /'
: > "$demo/run.out"
"$hb" run --plain --vcpus 1 --vcpu-type EPYC-v4 --manifest "$demo/manifest.json" --kernel "$kernel/vmlinuz" --initrd "$demo/initrd.img" \
  --forward "$port:5050" --forward "$aport:1024" --serial-log "$demo/serial.log" >"$demo/run.out" 2>"$demo/run.err" &
run=$!
trap 'kill -INT $run 2>/dev/null || true; wait $run 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  grep -q '^ready:' "$demo/run.out" && break
  kill -0 $run 2>/dev/null || { cat "$demo/run.err" >&2; tail -20 "$demo/serial.log" >&2 || true; die "hostbuild run ended before the guest was ready"; }
  sleep 0.5
done
grep -q '^ready:' "$demo/run.out" || die "the guest was not ready after 300 s (serial log: $demo/serial.log)"
sed 's/^/  /' "$demo/run.out"
grep -a 'guestinit:' "$demo/serial.log" | sed 's/^/  console| /'

step "talk: starknet_chainId through the forwarded port"
answer=""
for _ in $(seq 100); do
  answer=$(curl -s -m 2 -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","method":"starknet_chainId","params":[],"id":1}' "http://127.0.0.1:$port/" || true)
  case $answer in *result*) break ;; esac
  sleep 0.2
done
echo "  POST http://127.0.0.1:$port/ starknet_chainId -> $answer"
case $answer in *'"0x4b4154414e41"'*) echo "  chain id 0x4b4154414e41 = \"KATANA\"" ;; *) die "unexpected answer" ;; esac

step "agent: status, and attestation (no SEV-SNP device under plain QEMU)"
status_json=$(curl -fsS -m 5 "http://127.0.0.1:$aport/v1/status") || die "GET /v1/status: the agent did not answer"
echo "  GET /v1/status -> $(head -c 400 <<<"$status_json")..."
case $status_json in *'"api_version"'*) ;; *) die "GET /v1/status: not the agent's status: $status_json" ;; esac
set +e
# --min-tcb none: no SEV-SNP here; on hardware, the TCB of AMD's latest bulletin.
attest_out=$("$hb" attest --addr "tcp:127.0.0.1:$aport" --manifest "$demo/manifest.json" --min-tcb none 2>&1)
code=$?
set -e
sed 's/^/  /' <<<"$attest_out"
echo "  hostbuild attest exit $code (3: transport or agent error; on SEV-SNP hardware it verifies the report)"
# Exit 3 is also what a refused connection gives: the agent itself must
# have said that there is no SEV-SNP device.
[ "$code" = 3 ] && grep -q no_snp_device <<<"$attest_out" ||
  die "attest: want exit 3 with the agent's no_snp_device under plain QEMU"

step "stop: SIGINT to hostbuild run -> ACPI power button -> SIGTERM to Katana -> power off"
kill -INT $run
status=0
wait $run || status=$?
trap - EXIT
sed 's/^/  /' "$demo/run.err" | grep -E 'stopping|guest|katana' || true
grep -a -E 'standin-katana: got|guestinit: (katana exited|powering off)|reboot: Power down' "$demo/serial.log" | sed 's/^/  console| /'
[ $status = 0 ] || die "hostbuild run exited with status $status"
echo
echo "demo: done: built, booted, answered starknet_chainId, agent answered, stopped gracefully (hostbuild run exit 0). Files in $demo/."

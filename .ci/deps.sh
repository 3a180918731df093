#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks need
# (run as root). Skips apt when everything is already there.
#   qemu-system-x86  boot tests and the demo (TCG)
#   ovmf             Debian's firmware builds for the OVMF parser tests
#   cpio             GNU cpio cross-checks our archives
#   busybox-static   the seed's busybox init, the boot benchmark's baseline
#   curl, bc, openssl, time
#                    benchmark scripts; zstd for manual inspection
#   libvirt-clients, libxml2-utils
#                    virt-xml-validate checks the XML of hostbuild libvirt
#   make             make test, make demo (not on a minimal Debian install)
#   gcc, libc6-dev   shared/bootcfg's differential test compiles the
#                    kernel's own command line parsers; go test -race (cgo)
#   xz-utils         fetch-kernel-source.sh unpacks linux-source's .tar.xz
#                    (priority standard: not on a minimal install)
#   strace           atomicfile's test reads the fsyncs around the rename
set -euo pipefail
pkgs=(make qemu-system-x86 ovmf cpio busybox-static curl bc openssl time ca-certificates zstd libvirt-clients libxml2-utils gcc libc6-dev xz-utils strace)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A mirror that drops a connection now and then must not fail CI: apt
# retries each download.
# A fresh VM's apt-daily or unattended-upgrades may hold apt's locks: wait
# for them rather than fail (DPkg::Lock::Timeout covers install only; the
# lists' lock of update is retried here, up to 10 minutes).
for try in $(seq 60); do
  apt-get -o Acquire::Retries=3 update -qq && break
  [ "$try" = 60 ] && { echo "deps: apt-get update kept failing" >&2; exit 1; }
  echo "deps: apt-get update failed (a lock held, a mirror down?); trying again in 10 s" >&2
  sleep 10
done
apt-get -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

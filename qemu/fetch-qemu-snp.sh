#!/usr/bin/env bash
# fetch-qemu-snp.sh DEST: fetch a QEMU of version 9.1 or newer (the SEV-SNP
# syntax hostbuild run and libvirt write) from Debian's bookworm-backports
# and unpack it into DEST, without installing it: qemu-system-x86 and
# qemu-system-data, unpacked with dpkg-deb -x, and libvirt-common's schemas
# (DEST/usr/share/libvirt/schemas: launchSecurity type='sev-snp'). Debian 12's own QEMU is 7.2,
# which has no sev-snp-guest; the boot tests keep using it (TCG), and
# qemu.TestSNPArgvAcceptedByQEMU runs the SEV-SNP command lines through
# this one (it cannot launch an SEV-SNP guest here: it checks that every
# option parses).
#
#   - apt uses a private source list and list folder (beside DEST), so the
#     machine's apt configuration is not changed;
#   - apt-get download verifies the packages against the signed lists;
#   - DEST is made in a temporary folder and renamed into place;
#   - prints DEST/usr/bin/qemu-system-x86_64 on success.
#
# Idempotent: when DEST holds a QEMU that runs it does nothing.
set -euo pipefail

prog=fetch-qemu-snp
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	printf 'usage: %s DEST\n' "$0" >&2
	printf "Fetches QEMU >= 9.1 from Debian's bookworm-backports and unpacks it into DEST.\n" >&2
	exit 2
fi
for tool in apt-get apt-cache dpkg-deb; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: this script needs a Debian host with apt and dpkg"
done

dest=$1
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
dest=${dest%/}
bin=$dest/usr/bin/qemu-system-x86_64
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1 && [ -e "$dest/usr/share/libvirt/schemas/domain.rng" ]; then
	echo "$bin"
	exit 0
fi
parent=$(dirname "$dest")
apt=$parent/apt-bpo
mkdir -p "$apt/lists/partial" "$apt/debs" || die "cannot create $apt"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$apt/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$apt/lists" -o "APT::Get::List-Cleanup=0" -o "Acquire::Retries=3")
say "updating the bookworm-backports package list (private to $apt)"
apt-get "${opts[@]}" update -qq || die "apt-get update of bookworm-backports failed"
ver=$(apt-cache "${opts[@]}" policy qemu-system-x86 | awk '/~bpo12/ && $1 ~ /^[0-9]/ { print $1; exit } /~bpo12/ && $1 == "***" { print $2; exit }')
[ -n "$ver" ] || die "bookworm-backports lists no qemu-system-x86"
# libvirt-common for its schemas: libvirt 10.5 or newer has launchSecurity
# type='sev-snp' (Debian 12's 9.0 has not), against which the tests validate
# hostbuild libvirt's domain XML.
lver=$(apt-cache "${opts[@]}" policy libvirt-common | awk '/~bpo12/ && $1 ~ /^[0-9]/ { print $1; exit } /~bpo12/ && $1 == "***" { print $2; exit }')
[ -n "$lver" ] || die "bookworm-backports lists no libvirt-common"
say "downloading qemu-system-x86 and qemu-system-data $ver, libvirt-common $lver (its schemas)"
(cd "$apt/debs" && apt-get "${opts[@]}" download -qq "qemu-system-x86=$ver" "qemu-system-data=$ver" "libvirt-common=$lver" 2>&1 | grep -v 'unsandboxed' >&2 || true)
tmp=$(mktemp -d "$parent/.qemu-snp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for pv in "qemu-system-x86 $ver" "qemu-system-data $ver" "libvirt-common $lver"; do
	p=${pv% *} v=${pv#* }
	deb=$(ls "$apt/debs/${p}_"*.deb 2>/dev/null | grep -F "$(printf '%s' "$v" | sed 's/:/%3a/')" | head -1 || true)
	[ -n "$deb" ] || die "$p $v was not downloaded"
	dpkg-deb -x "$deb" "$tmp" || die "unpacking $deb"
done
"$tmp/usr/bin/qemu-system-x86_64" --version >/dev/null 2>&1 ||
	die "the unpacked QEMU does not run (a library missing? ldd $tmp/usr/bin/qemu-system-x86_64)"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
say "$("$bin" --version | head -1) in $dest"
echo "$bin"

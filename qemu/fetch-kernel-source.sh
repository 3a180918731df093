#!/usr/bin/env bash
# fetch-kernel-source.sh DEST KERNEL_DIR: fetch the Linux source of the
# kernel in KERNEL_DIR (fetch-kernel.sh's DEST) for shared/bootcfg's
# differential test, which compiles the kernel's own command line parsers.
#
#   - the version is the kernel package's (its .deb in KERNEL_DEB_CACHE,
#     default KERNEL_DIR's parent/debs, as fetch-kernel.sh keeps it; else
#     apt-cache show linux-image-<release>), and the
#     package Debian's linux-source-<major.minor> at exactly that version,
#     downloaded with `apt-get download` (verified by apt against the
#     signed package lists);
#   - only the files shared/bootcfg/testdata/kernelharness/files lists are
#     extracted (and, from Linux 6.8 on, kernel/crash_reserve.c, which has
#     the crashkernel= parser that kernel/crash_core.c had before), into a
#     temporary folder renamed to DEST, so DEST is either complete or
#     absent; DEST/VERSION names the package and version; the 139 MB .deb
#     is removed afterwards.
#
# Idempotent: when DEST already holds that version it does nothing.
set -euo pipefail

prog=fetch-kernel-source
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

if [ $# -ne 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	printf 'usage: %s DEST KERNEL_DIR\n' "$0" >&2
	printf 'Fetches the Debian linux-source package of the kernel in KERNEL_DIR and extracts the files the differential test compiles into DEST.\n' >&2
	exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
list=$here/shared/bootcfg/testdata/kernelharness/files
dest=$1 kdir=$2
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
dest=${dest%/}
[ -f "$kdir/release" ] || die "$kdir/release is missing: give the folder fetch-kernel.sh unpacked (make kernel)"
release=$(cat "$kdir/release")
case $release in
[0-9]*.[0-9]*) ;;
*) die "$kdir/release says '$release', not a kernel release" ;;
esac
series=$(printf '%s' "$release" | cut -d. -f1,2)
pkg=linux-source-$series

# Where fetch-kernel.sh keeps the .deb it unpacked (KERNEL_DEB_CACHE, as
# there). No such folder (a kernel unpacked by hand): find fails, and
# apt-cache answers.
deb=$(find "${KERNEL_DEB_CACHE:-$(dirname "$kdir")/debs}" -maxdepth 1 -name "linux-image-${release}_*.deb" -print 2>/dev/null | sort | tail -n 1 || true)
if [ -n "$deb" ]; then
	version=$(dpkg-deb -f "$deb" Version)
else
	version=$(apt-cache show "linux-image-$release" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
fi
[ -n "$version" ] || die "cannot tell the version of linux-image-$release (no .deb beside $kdir, and apt-cache knows no such package)"
want="$pkg $version"
# Linux 6.8 moved get_last_crashkernel() from kernel/crash_core.c (listed)
# to kernel/crash_reserve.c, which older trees lack; build.sh takes it from
# there when it is present.
files=$(cat "$list")
if printf '6.8\n%s\n' "$series" | sort -V -C; then
	files=$(printf '%s\nkernel/crash_reserve.c\n' "$files")
fi
# Complete only with every file the list names: a checkout whose list
# grew extracts again.
complete=1
while read -r f; do
	[ -f "$dest/$f" ] || complete=0
done <<<"$files"
if [ $complete = 1 ] && [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$want" ]; then
	say "$dest already holds $want; nothing to do"
	exit 0
fi
command -v xz >/dev/null 2>&1 || die "xz not found: the source is a .tar.xz (apt-get install xz-utils, or ./.ci/deps.sh)"

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.kernel-source.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# As root, apt downloads through the unprivileged _apt user.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$tmp" 2>/dev/null || true
fi
say "downloading $pkg=$version with apt-get download (139 MB)"
(cd "$tmp" && apt-get -o Acquire::Retries=3 download -q "$pkg=$version" >&2) ||
	die "apt-get download $pkg=$version failed (run 'apt-get update' as root; the mirror may have moved on: then 'make kernel' first, so that both are current)"
got=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.deb" -print | head -n 1)
[ -n "$got" ] || die "apt-get download left no ${pkg}_*.deb"
say "extracting $(wc -l <<<"$files") files from $(basename "$got")"
mkdir "$tmp/src"
top=linux-source-$series
dpkg-deb --fsys-tarfile "$got" | tar -xO "./usr/src/$top.tar.xz" |
	tar -xJ -C "$tmp/src" --strip-components=1 $(sed "s|^|$top/|" <<<"$files") ||
	die "extracting the listed files from $(basename "$got") failed (a file moved in this kernel? see $list)"
while read -r f; do
	[ -f "$tmp/src/$f" ] || die "$(basename "$got") has no $f"
done <<<"$files"
printf '%s\n' "$want" >"$tmp/src/VERSION"
rm -f "$got"
if [ -e "$dest" ]; then
	old=$(mktemp -d "$parent/.kernel-source-old.XXXXXX")
	mv "$dest" "$old/"
	mv "$tmp/src" "$dest"
	rm -rf "$old"
else
	mv "$tmp/src" "$dest"
fi
say "ready: $dest ($want)"

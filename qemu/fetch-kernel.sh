#!/usr/bin/env bash
# fetch-kernel.sh DEST: fetch the current Debian kernel package and unpack it
# into DEST for the boot tests, the demo and the benchmarks.
#
#   - resolves the package behind the linux-image-amd64 meta package with
#     `apt-cache depends` (runs `apt-get update` once if the lists are empty);
#     KERNEL_PACKAGE=linux-image-<release> pins a package instead;
#   - downloads it with `apt-get download` into a cache folder
#     (KERNEL_DEB_CACHE, default DEST's parent/debs), which apt verifies
#     against the signed package lists;
#   - unpacks it with `dpkg-deb -x` into a temporary folder beside DEST and
#     renames it into place, so DEST is either complete or absent;
#   - writes DEST/release (e.g. 6.1.0-57-amd64) and makes DEST/vmlinuz a
#     stable path to the kernel image (a relative symlink into DEST/boot).
#
# Idempotent: when DEST already holds the resolved release it does nothing.
# Progress goes to stderr; on success the last stdout line is the release.
set -euo pipefail

prog=fetch-kernel
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	printf 'usage: %s DEST\n' "$0" >&2
	printf 'Fetches the Debian linux-image-amd64 kernel package and unpacks it into DEST.\n' >&2
	exit 2
fi

for tool in apt-cache apt-get dpkg-deb; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found: this script needs a Debian or Ubuntu host with apt and dpkg"
done

dest=$1
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
dest=${dest%/}
parent=$(dirname "$dest")
cache=${KERNEL_DEB_CACHE:-$parent/debs}
mkdir -p "$parent" "$cache" || die "cannot create $parent or $cache"

# resolve prints the versioned kernel package behind linux-image-amd64, or
# nothing (apt-cache exits 100 when its lists know no such package: under
# set -e and pipefail that would end the script before the apt-get update
# below could run).
resolve() {
	{ apt-cache depends linux-image-amd64 2>/dev/null || true; } |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# complete reports whether the .deb $1 is whole: its data archive reads to
# the end (dpkg-deb --info reads only the control part at the start, which
# a download cut short still has).
complete() { dpkg-deb --fsys-tarfile "$1" >/dev/null 2>&1; }

pkg=${KERNEL_PACKAGE:-}
if [ -z "$pkg" ]; then
	say "resolving linux-image-amd64 with apt-cache depends"
	pkg=$(resolve)
	if [ -z "$pkg" ]; then
		say "apt lists know no linux-image-amd64; running apt-get update"
		apt-get -o Acquire::Retries=3 update -qq >&2 ||
			die "apt-get update failed (run as root, and check /etc/apt/sources.list.d for a Debian mirror)"
		pkg=$(resolve)
	fi
	[ -n "$pkg" ] ||
		die "apt-cache depends linux-image-amd64 names no linux-image-<release> package (is a Debian main component in the apt sources?)"
fi
case $pkg in
linux-image-[0-9]*) ;;
*) die "package $pkg is not of the form linux-image-<release>" ;;
esac
release=${pkg#linux-image-}
release=${release%-unsigned}
say "kernel package $pkg (release $release)"

if [ -f "$dest/release" ] && [ "$(cat "$dest/release")" = "$release" ] &&
	[ -f "$dest/vmlinuz" ] && [ -d "$dest/lib/modules/$release" ]; then
	say "$dest already holds $release; nothing to do"
	echo "$release"
	exit 0
fi

# apt-get download names the file <pkg>_<version>_<arch>.deb in the current
# folder. Reuse a cached one when present and whole; one that is not (a
# download cut short by an older version of this script) is removed.
deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" -print | sort | tail -n 1)
if [ -n "$deb" ] && complete "$deb"; then
	say "using cached $deb"
else
	if [ -n "$deb" ]; then
		say "cached $deb is incomplete; removing it"
		rm -f "$deb"
	fi
	say "downloading $pkg with apt-get download into $cache"
	# Into a folder of its own, moved into the cache once whole: a download
	# cut short (Ctrl-C, a lost connection) leaves no .deb to be reused.
	dl=$(mktemp -d "$cache/.download.XXXXXX")
	trap 'rm -rf "$dl"' EXIT
	# As root, apt downloads through the unprivileged _apt user; a folder
	# it cannot write only costs a warning, so let it write there.
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
		chown _apt "$dl" 2>/dev/null || true
	fi
	(cd "$dl" && apt-get -o Acquire::Retries=3 download -q "$pkg" >&2) ||
		die "apt-get download $pkg failed (run 'apt-get update' as root, and check network access to the Debian mirror)"
	got=$(find "$dl" -maxdepth 1 -name "${pkg}_*.deb" -print | sort | tail -n 1)
	[ -n "$got" ] || die "apt-get download $pkg reported success but left no ${pkg}_*.deb"
	complete "$got" || die "$(basename "$got") as downloaded is not a whole Debian package; rerun"
	deb=$cache/$(basename "$got")
	mv "$got" "$deb"
	rm -rf "$dl"
	trap - EXIT
fi

tmp=$(mktemp -d "$parent/.kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "unpacking $(basename "$deb") into $dest"
dpkg-deb -x "$deb" "$tmp" || die "dpkg-deb -x $deb failed (disk full?)"

image=boot/vmlinuz-$release
[ -f "$tmp/$image" ] || die "$deb holds no /$image (the package layout is not the expected Debian one)"
[ -d "$tmp/lib/modules/$release" ] || die "$deb holds no /lib/modules/$release"
ln -s "$image" "$tmp/vmlinuz"
printf '%s\n' "$release" >"$tmp/release"

if [ -e "$dest" ]; then
	old=$(mktemp -d "$parent/.kernel-old.XXXXXX")
	mv "$dest" "$old/" || die "cannot move the old $dest out of the way"
	mv "$tmp" "$dest"
	rm -rf "$old"
else
	mv "$tmp" "$dest"
fi
trap - EXIT

say "ready: $dest/vmlinuz -> $image, $(find "$dest/lib/modules/$release" -name '*.ko*' | wc -l) modules"
echo "$release"

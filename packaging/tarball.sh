#!/bin/sh
# Writes dist/jitsi-agent_VERSION_linux_ARCH.tar.gz: the same files as the
# .deb (static binary in usr/bin, unit, man page, completions, examples),
# laid out from / for hosts without dpkg:  tar -xzf FILE -C /
# Reproducible like the .deb: sorted names, SOURCE_DATE_EPOCH mtimes,
# root:root, gzip without name/time.
# Usage: tarball.sh ARCH DEB_VERSION OUTDIR   (after build.sh made the .deb)
set -eu
arch=$1 debver=$2 out=$3
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
deb="$out/jitsi-agent_${debver}_${arch}.deb"
test -f "$deb" || { echo "tarball.sh: $deb missing: run make deb first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work"
rm -rf "$work/usr/share/lintian"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
	--format=gnu -C "$work" -cf - usr lib | gzip -9n >"$out/jitsi-agent_${debver}_linux_${arch}.tar.gz"
echo "$out/jitsi-agent_${debver}_linux_${arch}.tar.gz"

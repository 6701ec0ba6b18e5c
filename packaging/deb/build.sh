#!/bin/sh
# Builds dist/jitsi-agent_VERSION_ARCH.deb with dpkg-deb alone (no
# debhelper): `make deb` runs it once per architecture.
#
# Reproducible: the caller exports SOURCE_DATE_EPOCH (the Makefile takes the
# commit time); the binary is built with -trimpath and an empty build id, every
# file in the archive gets that mtime, owner root:root and a fixed mode, and
# gzip stores no name or time. Two runs from one commit give the same bytes
# (packaging/deb/deb_test.go checks this).
#
# Usage: build.sh ARCH DEB_VERSION VERSION COMMIT OUTDIR
set -eu

arch=$1 debver=$2 version=$3 commit=$4 out=$5
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (the Makefile takes it from the commit time)}"
GO=${GO:-go}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
ldflags="-buildid= -X main.version=$version -X main.commit=$commit -X main.date=$date"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

# The man page and completions come from the command table: generate them
# with a launcher for this machine (the packaged one may be for another arch).
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$work/host-jitsi-agent" "$top/cmd/jitsi-agent-launcher"
# The packaged binaries are stripped (-s -w: no symbol table or DWARF; panics
# still print Go stack traces). jitsi-agent is the launcher; it runs
# jitsi-agent-full for every command it does not answer itself, and that
# one runs jitsi-agent-import (README, Packaging).
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$work/jitsi-agent" "$top/cmd/jitsi-agent-launcher"
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$work/jitsi-agent-full" "$top/cmd/jitsi-agent"
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$GO" build -trimpath -ldflags "-s -w -buildid=" -o "$work/jitsi-agent-import" "$top/cmd/jitsi-agent-import"

r="$work/root"
doc="$r/usr/share/doc/jitsi-agent"
install -d "$r/DEBIAN" "$r/usr/bin" "$r/usr/libexec/jitsi-agent" "$r/lib/systemd/system" "$r/usr/share/man/man1" \
	"$r/usr/share/bash-completion/completions" "$r/usr/share/zsh/vendor-completions" \
	"$r/usr/share/fish/vendor_completions.d" "$doc/examples/cloud-init"

install -m 0755 "$work/jitsi-agent" "$r/usr/bin/jitsi-agent"
# The launcher finds jitsi-agent-full in ../libexec/jitsi-agent from
# /usr/bin; jitsi-agent-full finds jitsi-agent-import next to itself.
install -m 0755 "$work/jitsi-agent-full" "$r/usr/libexec/jitsi-agent/jitsi-agent-full"
install -m 0755 "$work/jitsi-agent-import" "$r/usr/libexec/jitsi-agent/jitsi-agent-import"
# The unit as embedded in the binary, with the packaged binary's path.
sed 's|/usr/local/bin/jitsi-agent|/usr/bin/jitsi-agent|g' "$top/systemd/jitsi-agent.service" >"$r/lib/systemd/system/jitsi-agent.service"
"$work/host-jitsi-agent" man | gzip -9n >"$r/usr/share/man/man1/jitsi-agent.1.gz"
"$work/host-jitsi-agent" completion bash >"$r/usr/share/bash-completion/completions/jitsi-agent"
"$work/host-jitsi-agent" completion zsh >"$r/usr/share/zsh/vendor-completions/_jitsi-agent"
"$work/host-jitsi-agent" completion fish >"$r/usr/share/fish/vendor_completions.d/jitsi-agent.fish"
install -m 0644 "$top/examples/meet.hcl" "$doc/examples/meet.hcl"
install -m 0644 "$top/examples/cloud-init/user-data.yaml" "$doc/examples/cloud-init/user-data.yaml"
install -m 0644 "$here/copyright" "$doc/copyright"
sed -e "s/@VERSION@/$debver/" -e "s/@DATE@/$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
	-e "s/@COMMIT@/$(printf %.12s "$commit")/" "$here/changelog.in" | gzip -9n >"$doc/changelog.gz"
install -d "$r/usr/share/lintian/overrides"
install -m 0644 "$here/lintian-overrides" "$r/usr/share/lintian/overrides/jitsi-agent"

for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$r/DEBIAN/$s"
done
(cd "$r" && find usr lib -type f | LC_ALL=C sort | xargs md5sum) >"$r/DEBIAN/md5sums"
size=$(du -sk --apparent-size --exclude=DEBIAN "$r" | cut -f1)
sed -e "s/@VERSION@/$debver/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/control.in" >"$r/DEBIAN/control"
chmod 0644 "$r/DEBIAN/control" "$r/DEBIAN/md5sums"

# Fixed modes and mtimes for every file; owners are set by --root-owner-group.
find "$r" -type d -exec chmod 0755 {} +
find "$r" -type f ! -path "$r/DEBIAN/*" ! -path "$r/usr/bin/*" ! -path "$r/usr/libexec/*" -exec chmod 0644 {} +
find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$r" "$out/jitsi-agent_${debver}_${arch}.deb" >/dev/null
echo "$out/jitsi-agent_${debver}_${arch}.deb"

#!/bin/sh
# Prints the Debian version for a `git describe` version (Debian versions
# must start with a digit and this package is native, so no "-"):
#   v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+4.gabc,
#   an untagged tree abc1234[-dirty] -> 0~gitYYYYMMDD.abc1234[+dirty]
#   (the date is SOURCE_DATE_EPOCH's, i.e. the commit's).
# Usage: debversion.sh VERSION
set -eu
v=$1
if echo "$v" | grep -Eq '^v?[0-9]+\.[0-9]'; then
	v=${v#v}
else
	# An abbreviated hash may start with a digit too: not a release tag.
	v="0~git$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y%m%d).$v"
fi
echo "$v" | sed 's/-/+/; s/-/./g'

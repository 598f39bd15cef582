#!/bin/sh
# obuspa (OB-USP-Agent, the Broadband Forum's reference USP agent) built once per machine for
# the USP tests: unpacked from ../shared/third_party/usp/obuspa.tar.gz into PREFIX (outside the
# repo), `autoreconf -fi && ./configure --disable-websockets && make` (Debian 12's libwebsockets
# is too old), stamped with the tarball's sha256: a rerun with the same tarball does nothing.
# Installs the Debian build dependencies it lacks when run as root.
#   sh tools/build-obuspa.sh [TARBALL [PREFIX]]    -> PREFIX/obuspa (the binary)
set -eu
TARBALL=${1:-${OBUSPA_TARBALL:-$(dirname "$0")/../../shared/third_party/usp/obuspa.tar.gz}}
PREFIX=${2:-${OBUSPA_DIR:-/opt/obuspa}}
if [ ! -f "$TARBALL" ]; then
    echo "build-obuspa: no $TARBALL: the USP tests will be skipped" >&2
    exit 0
fi
SUM=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ -x "$PREFIX/obuspa" ] && [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" = "$SUM" ]; then
    echo "build-obuspa: $PREFIX/obuspa is built from $SUM"
    exit 0
fi
DEPS="build-essential autoconf automake libtool pkg-config libssl-dev libcurl4-openssl-dev
      libsqlite3-dev zlib1g-dev libmosquitto-dev"
MISSING=""
for p in $DEPS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $MISSING
    else
        echo "build-obuspa: missing Debian packages:$MISSING (run as root to install them)" >&2
        exit 1
    fi
fi
SRC="$PREFIX/src"
rm -rf "$SRC" "$PREFIX/.stamp"
mkdir -p "$SRC"
tar -xzf "$TARBALL" -C "$SRC" --strip-components=1
cd "$SRC"
autoreconf -fi >/dev/null
./configure -q --disable-websockets
make -j"$(nproc)" >/dev/null
cp obuspa "$PREFIX/obuspa.new" && mv "$PREFIX/obuspa.new" "$PREFIX/obuspa"
echo "$SUM" > "$PREFIX/.stamp"
echo "build-obuspa: built $PREFIX/obuspa from $SUM"

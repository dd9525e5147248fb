#!/bin/sh
# Build Prosody 13 from Debian's source package for a given Lua (5.2, 5.3 or 5.4) and
# install it under a private prefix, so mod_minimix can be tested on a Lua other than the
# one Debian's prosody binaries are built for (5.4: their C modules, util.encodings and
# friends, refuse any other Lua with "version mismatch").
#
#   sh tests/prosody-source.sh LUA_VERSION [DIR]     (default DIR: build/prosody13-luaX.Y)
#
# Leaves DIR/bin/prosody and DIR/bin/prosodyctl (running on luaX.Y) and DIR/lib/prosody
# (Prosody's library tree, what the busted specs load util.stanza from). Prints DIR.
# Needs root for apt (as in CI). Idempotent: once DIR/.done exists, it only prints DIR.
# Prosody 13 supports Lua 5.2-5.4; its configure refuses 5.1 (and Debian has no 0.12 source
# tarball to fetch), so Lua 5.1/LuaJIT builds cannot be exercised against Prosody here.
set -eu

cd "$(dirname "$0")/.."
V=${1:?usage: $0 LUA_VERSION [DIR]}
case "$V" in
    5.2|5.3|5.4) ;;
    *) echo "prosody-source.sh: Prosody 13 builds for Lua 5.2, 5.3 or 5.4, not '$V'" >&2; exit 2 ;;
esac
DIR=${2:-build/prosody13-lua$V}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

log() { echo "prosody-source.sh: $*" >&2; }

if [ -f "$DIR/.done" ] && [ -x "$DIR/bin/prosody" ] && [ -f "$DIR/lib/prosody/util/encodings.so" ]; then
    echo "$DIR"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# 1. Source entries for bookworm-backports (where Prosody 13 is) on the machine's mirror.
if ! grep -rqsE '^[^#]*deb-src.*bookworm-backports|^Types:.*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    || ! apt-cache showsrc prosody 2>/dev/null | grep -q '^Version: 13\.'; then
    mirror=$(grep -rhsE '^[[:space:]]*URIs:[[:space:]]*[a-z]+://[^[:space:]]*/debian/?$' /etc/apt/sources.list.d/*.sources \
        | head -n1 | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//')
    if [ -z "$mirror" ]; then
        mirror=$(grep -rhsE '^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^[:space:]]*/debian/?[[:space:]]+bookworm' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list | head -n1 | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{print $1}')
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    log "adding deb-src bookworm-backports from $mirror"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    opts=""
    if [ -f "$keyring" ]; then opts="[signed-by=$keyring] "; fi
    echo "deb-src $opts$mirror bookworm-backports main" > /etc/apt/sources.list.d/minimix-prosody-src.list
    apt-get update -qq >/dev/null
fi

# 2. What building and running it needs on that Lua (the lua-* libraries Prosody uses ship
#    modules for every Lua Debian has; ICU for util.encodings, OpenSSL for util.crypto).
apt-get install -y -qq --no-install-recommends "lua$V" "liblua$V-dev" libicu-dev libssl-dev gcc make \
    lua-socket lua-expat lua-filesystem lua-sec lua-unbound lua-readline >/dev/null

# 3. The upstream tarball of the newest 13.x source. Only the orig tarball is needed (the
#    Debian packaging is not); apt verifies it against the Sources index it lists.
VERSION=$(apt-cache showsrc prosody | awk '/^Version: 13\./ { print $2; exit }')
[ -n "$VERSION" ] || { log "no Prosody 13 source package found"; exit 1; }
UPSTREAM=${VERSION%%-*}
SRC=$DIR/src
mkdir -p "$SRC"
TARBALL=$SRC/prosody_$UPSTREAM.orig.tar.gz
if [ ! -s "$TARBALL" ]; then
    log "downloading the source of prosody $VERSION"
    if id _apt >/dev/null 2>&1; then chown _apt "$SRC"; fi
    # apt-get fails the whole download if a side file (signature, Debian diff) is missing
    # on the mirror; what counts is that the tarball arrived (it is hash-checked as it comes).
    (cd "$SRC" && apt-get source --download-only -qq "prosody=$VERSION" >/dev/null 2>&1) || true
    [ -s "$TARBALL" ] || { log "could not download $TARBALL"; exit 1; }
fi

# 4. Build and install for that Lua under DIR.
rm -rf "$SRC/prosody-$UPSTREAM"
tar -xzf "$TARBALL" -C "$SRC"
(
    cd "$SRC/prosody-$UPSTREAM"
    ./configure --ostype=debian --lua-version="$V" --with-lua-include="/usr/include/lua$V" \
        --runwith="lua$V" --prefix="$DIR" --idn-library=icu --no-example-certs >/dev/null
    make -j2 >/dev/null
    make install >/dev/null
)

# 5. Check: its C modules load in that Lua, and prosodyctl runs on it.
"lua$V" -e "package.path='$DIR/lib/prosody/?.lua;'..package.path
package.cpath='$DIR/lib/prosody/?.so;'..package.cpath
dofile('$DIR/lib/prosody/loader.lua')
local st = require 'util.stanza'
assert(tostring(st.stanza('x', { a = 'é' })) == \"<x a='é'/>\")" \
    || { log "Prosody's util.stanza does not load under lua$V from $DIR"; exit 1; }
check=$DIR/var/check.cfg.lua
mkdir -p "$DIR/var"
mkdir -p "$DIR/var/certs"
printf 'run_as_root = true\ndata_path = "%s"\nlog = { error = "*stderr" }\n' "$DIR/var" > "$check"
about=$("$DIR/bin/prosodyctl" --config "$check" about 2>&1) || { log "prosodyctl about failed:"; echo "$about" >&2; exit 1; }
echo "$about" | grep -q "^Prosody $UPSTREAM" || { log "unexpected 'prosodyctl about':"; echo "$about" >&2; exit 1; }
echo "$about" | grep -q "^Lua version:.*Lua $V" || { log "prosodyctl does not run on Lua $V:"; echo "$about" >&2; exit 1; }
touch "$DIR/.done"
echo "$DIR"

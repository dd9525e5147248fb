#!/bin/sh
# Fetch Prosody 13 from Debian bookworm-backports and unpack it (dpkg -x) into a private
# directory, without installing it, so the integration suite can run against it next to
# the system's 0.12. Needs root for apt (as in CI).
#
#   sh tests/prosody13.sh [DIR]        (default DIR: build/prosody13)
#
# Prints the directory holding the wrappers: DIR/bin/prosody and DIR/bin/prosodyctl,
# copies of the .deb's scripts whose CFG_SOURCEDIR/CFG_PLUGINDIR point into the unpacked
# tree and CFG_CONFIGDIR/CFG_DATADIR to DIR/etc and DIR/var (the rig passes --config and data_path).
# Idempotent: once DIR/bin/prosody exists and works, it only prints the path.
set -eu

cd "$(dirname "$0")/.."
DIR=${1:-build/prosody13}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ROOT=$DIR/root
BIN=$DIR/bin

log() { echo "prosody13.sh: $*" >&2; }

# Quick path: already unpacked, wrapped and able to run.
if [ -f "$DIR/.done" ] && [ -x "$BIN/prosody" ] && [ -x "$BIN/prosodyctl" ] && [ -f "$ROOT/usr/lib/prosody/loader.lua" ]; then
    echo "$BIN"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# 1. bookworm-backports in the apt sources, on the same mirror as bookworm itself.
if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(grep -rhsE '^[[:space:]]*URIs:[[:space:]]*[a-z]+://[^[:space:]]*/debian/?$' /etc/apt/sources.list.d/*.sources \
        | head -n1 | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//')
    if [ -z "$mirror" ]; then
        mirror=$(grep -rhsE '^[[:space:]]*deb[[:space:]]+[a-z]+://[^[:space:]]*/debian/?[[:space:]]+bookworm[[:space:]]' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list | head -n1 | awk '{print $2}')
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    log "adding bookworm-backports from $mirror"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    opts=""
    if [ -f "$keyring" ]; then opts="[signed-by=$keyring] "; fi
    echo "deb $opts$mirror bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
    apt-get update -qq >/dev/null
elif ! apt-cache madison prosody 2>/dev/null | grep -q bookworm-backports; then
    apt-get update -qq >/dev/null
fi

# 2. Download the newest prosody 13.x of bookworm-backports.
VERSION=$(apt-cache madison prosody | awk -F'|' '/bookworm-backports/ { gsub(/ /, "", $2); print $2; exit }')
case "$VERSION" in
    13.*) ;;
    *) log "no Prosody 13 in bookworm-backports (found '${VERSION}')"; exit 1 ;;
esac
DEB=$DIR/prosody_${VERSION}.deb
if [ ! -s "$DEB" ]; then
    log "downloading prosody $VERSION"
    tmp=$(mktemp -d)
    # apt fetches as _apt where it can; let it write here (else apt warns and fetches as root).
    if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    (cd "$tmp" && apt-get download -qq "prosody=$VERSION" >/dev/null)
    mv "$tmp"/prosody_*.deb "$DEB"
    rmdir "$tmp"
fi

# 3. What 13 needs to run on this system's Lua 5.4: its Depends and Recommends (lua5.4-*
#    are provided by the lua-* packages 0.12 already uses; libicu72, libssl3...), plus the
#    SQLite driver the rig's SQL storage tests use. apt-get satisfy is a no-op when all is met.
deps=$(dpkg-deb -f "$DEB" Depends)
recs=$(dpkg-deb -f "$DEB" Recommends)
if ! apt-get satisfy -s "$deps, $recs, lua-dbi-sqlite3" 2>/dev/null | grep -q '^0 upgraded, 0 newly installed'; then
    log "installing what Prosody $VERSION depends on"
    apt-get satisfy -y -qq --no-install-recommends "$deps, $recs, lua-dbi-sqlite3" >/dev/null
fi

# 4. Unpack, and wrap: copies of the two scripts with their configure-time CFG_* lines
#    pointing into the unpacked tree (the .deb hard-codes /usr/lib/prosody and /etc/prosody;
#    environment variables do not override them).
rm -rf "$ROOT"
dpkg -x "$DEB" "$ROOT"
mkdir -p "$BIN" "$DIR/etc" "$DIR/var"
for tool in prosody prosodyctl; do
    sed -e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$ROOT/usr/lib/prosody';|" \
        -e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$ROOT/usr/lib/prosody/modules/';|" \
        -e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$DIR/etc';|" \
        -e "s|^CFG_DATADIR=.*|CFG_DATADIR='$DIR/var';|" \
        "$ROOT/usr/bin/$tool" > "$BIN/$tool"
    chmod 755 "$BIN/$tool"
    for v in SOURCEDIR PLUGINDIR CONFIGDIR DATADIR; do
        grep -q "^CFG_$v='$DIR" "$BIN/$tool" || { log "could not set CFG_$v in $BIN/$tool"; exit 1; }
    done
done

# The unpacked binaries hard-code CFG_* at /usr/...; check the wrapper really runs 13 from ROOT.
# (about needs a config file; DIR/etc gets none on purpose, so a wrapper run without
# --config fails instead of serving something.)
check=$DIR/var/check.cfg.lua
printf 'run_as_root = true\ndata_path = "%s"\nlog = { error = "*stderr" }\n' "$DIR/var" > "$check"
about=$("$BIN/prosodyctl" --config "$check" about 2>&1) || { log "prosodyctl about failed:"; echo "$about" >&2; exit 1; }
echo "$about" | grep -q "^Prosody 13" || { log "unexpected 'prosodyctl about':"; echo "$about" >&2; exit 1; }
echo "$about" | grep -q "$ROOT" || { log "wrapper does not use $ROOT:"; echo "$about" >&2; exit 1; }
touch "$DIR/.done"
echo "$BIN"

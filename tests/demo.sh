#!/bin/sh
# make demo: a real Prosody on loopback with mod_minimix, a MUC and two demo accounts.
# Installs what is missing (Debian), builds, and runs Prosody in the foreground (Ctrl-C stops).
set -eu
cd "$(dirname "$0")/.."

need=""
command -v prosody >/dev/null 2>&1 || need="$need prosody"
command -v lua5.4 >/dev/null 2>&1 || need="$need lua5.4"
if [ -n "$need" ]; then
	echo "Installing:$need"
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need
	service prosody stop >/dev/null 2>&1 || true
fi

PORT="${DEMO_PORT:-5222}"
DIR="${DEMO_DIR:-$(mktemp -d /tmp/minimix-demo.XXXXXX)}"
mkdir -p "$DIR/data" "$DIR/plugins"
make --no-print-directory install DESTDIR= MODULE_DIR="$DIR/plugins" >/dev/null

cat > "$DIR/prosody.cfg.lua" <<CFG
run_as_root = true
data_path = "$DIR/data"
pidfile = "$DIR/data/prosody.pid"
plugin_paths = { "$DIR/plugins" }
admin_socket = "$DIR/data/prosody.sock"
interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
s2s_ports = {}
http_ports = {}
https_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
log = { { levels = { min = "info" }, to = "console" } }
modules_enabled = { "roster", "saslauth", "disco", "ping", "carbons", "mam", "smacks", "pep", "bookmarks", "admin_shell", "minimix" }
modules_disabled = { "s2s", "s2s_auth_certs" }
VirtualHost "localhost"
Component "conference.localhost" "muc"
	muc_room_locking = false
CFG

for user in alice bob; do
	prosodyctl --config "$DIR/prosody.cfg.lua" register "$user" localhost "$user-pw" >/dev/null 2>&1 || true
done

cat <<MSG

mod_minimix demo: Prosody on 127.0.0.1:$PORT (no TLS), data in $DIR
  accounts: alice@localhost / alice-pw, bob@localhost / bob-pw
  MUC service: conference.localhost
Connect two clients as alice (e.g. Gajim or profanity with host 127.0.0.1, port $PORT,
plaintext allowed) and one as bob, and join room@conference.localhost from each.
Inspect the account's rooms from another terminal:
  prosodyctl --config $DIR/prosody.cfg.lua shell ">return require'util.serialization'.serialize(prosody.hosts['localhost'].modules.minimix.rooms_of('alice@localhost'))"
Ctrl-C stops the server.

MSG
exec prosody --config "$DIR/prosody.cfg.lua" -F

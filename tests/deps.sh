#!/bin/sh
# make deps (run by make test): installs what the test suite needs on a Debian machine when
# it is missing, so that `make test` works on a fresh machine with only Rust and make.
# Without root it names what is missing and the command to install it, and fails.
set -eu

missing=""
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || missing="$missing $1"; }

# Prosody 0.12 and its MUC, the Lua it runs, busted for the specs, SQLite storage for the
# persistence tests, prosody-modules for mod_cloud_notify (push tests).
for p in prosody lua5.4 lua-busted lua-dbi-sqlite3 prosody-modules ca-certificates; do
	need_pkg "$p"
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "Installing:$missing"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
		# The Debian package starts a system Prosody; the tests run their own on free ports.
		service prosody stop >/dev/null 2>&1 || true
	else
		echo "Missing Debian packages:$missing" >&2
		echo "Install them with: sudo apt-get install$missing" >&2
		exit 1
	fi
fi

if ! python3 -c "import pytest" >/dev/null 2>&1; then
	echo "Installing pytest"
	python3 -m pip install --quiet --disable-pip-version-check pytest
fi

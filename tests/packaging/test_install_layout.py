"""``make install`` honours DESTDIR, PREFIX and MODULE_DIR, and what it installs is what a
real Prosody loads from its plugin path."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import REPO, connect, module_path, start_server

MODULE_FILES = {"mod_minimix/mod_minimix.lua": 0o644, "mod_minimix/minimix.so": 0o755}


def make_install(destdir: Path, *args: str) -> str:
    res = subprocess.run(
        ["make", "--no-print-directory", "install", f"DESTDIR={destdir}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def installed(destdir: Path) -> dict[str, int]:
    """Every file under destdir, relative, with its permission bits."""
    return {
        str(p.relative_to(destdir)): p.stat().st_mode & 0o777
        for p in sorted(destdir.rglob("*")) if p.is_file()
    }


def test_prefix_usr_installs_into_debians_plugin_directory(tmp_path):
    make_install(tmp_path, "PREFIX=/usr")
    assert installed(tmp_path) == {f"usr/lib/prosody/modules/{f}": m for f, m in MODULE_FILES.items()}


def test_default_prefix_is_usr_local(tmp_path):
    out = make_install(tmp_path)
    assert installed(tmp_path) == {f"usr/local/lib/prosody/modules/{f}": m for f, m in MODULE_FILES.items()}
    assert f"Installed into {tmp_path}/usr/local/lib/prosody/modules/mod_minimix" in out


def test_module_dir_overrides_the_prefix(tmp_path):
    make_install(tmp_path, "PREFIX=/usr", "MODULE_DIR=/srv/prosody/plugins")
    assert installed(tmp_path) == {f"srv/prosody/plugins/{f}": m for f, m in MODULE_FILES.items()}


def test_installed_files_are_the_build_for_the_chosen_lua(tmp_path):
    make_install(tmp_path, "PREFIX=/usr")
    lib = tmp_path / "usr/lib/prosody/modules/mod_minimix/minimix.so"
    assert lib.read_bytes() == (REPO / "build/lua5.4/minimix.so").read_bytes()
    assert b"minimix-built-for=Lua 5.4;" in lib.read_bytes()
    shim = tmp_path / "usr/lib/prosody/modules/mod_minimix/mod_minimix.lua"
    assert shim.read_bytes() == (REPO / "lua/mod_minimix.lua").read_bytes()


def test_prosody_loads_the_installed_tree_and_serves_a_join(tmp_path, servers):
    """plugin_paths = { DESTDIR/PREFIX/lib/prosody/modules }: the module loads on its hosts
    and a session's join makes the account (bare JID) the room's occupant."""
    make_install(tmp_path / "root", "PREFIX=/opt/minimix")
    plugins = tmp_path / "root/opt/minimix/lib/prosody/modules"
    srv = start_server(module_dir=str(plugins))
    servers.append(srv)
    assert module_path(srv, "a.localhost") == f"{plugins}/mod_minimix/mod_minimix.lua", srv.log_tail(40)
    assert not srv.module_loaded("obs.localhost")

    alice = connect(srv, "alice", "phone")
    try:
        join = alice.join("installed@muc.localhost", "Alice")
        assert join.self_presence.get("to") == alice.full_jid
        assert srv.occupant_real_jids("installed@muc.localhost", "Alice") == ["alice@a.localhost"]
    finally:
        alice.close()
    assert srv.log_errors() == []

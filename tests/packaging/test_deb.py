"""The Debian package (make deb), installed (make test-deb does dpkg -i): its files are where
Debian's Prosody looks for plugins, and that Prosody, with no plugin_paths at all, loads
mod_minimix from there and serves a join through it."""

from __future__ import annotations

import subprocess

from conftest import PASSWORD, USERS, connect, module_path, required_env
from prosody_server import ProsodyServer

DEBIAN_PLUGIN_DIR = "/usr/lib/prosody/modules"
PACKAGE = "prosody-mod-minimix"


class DefaultPluginPathServer(ProsodyServer):
    """The rig's server without a plugin_paths line: only Prosody's own plugin directory."""

    def render_config(self) -> str:
        return "\n".join(
            line for line in super().render_config().splitlines() if not line.startswith("plugin_paths")
        )


def test_package_ships_the_module_into_prosodys_plugin_directory():
    deb = required_env("MINIMIX_DEB", "the .deb built by make deb")
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = sorted(line.split()[-1].lstrip(".") for line in listing.splitlines() if not line.startswith("d"))
    assert files == [
        f"{DEBIAN_PLUGIN_DIR}/mod_minimix/minimix.so",
        f"{DEBIAN_PLUGIN_DIR}/mod_minimix/mod_minimix.lua",
        "/usr/share/doc/prosody-mod-minimix/README.Debian",
        "/usr/share/doc/prosody-mod-minimix/README.md.gz",
        "/usr/share/doc/prosody-mod-minimix/changelog.gz",
        "/usr/share/doc/prosody-mod-minimix/copyright",
    ]
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True, check=True).stdout
    assert "prosody (>= 0.12)" in depends and "lua5.4" in depends


def test_package_is_installed_with_its_files():
    deb = required_env("MINIMIX_DEB", "the .deb built by make deb")
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True, check=True).stdout.strip()
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status} ${Version}", PACKAGE], capture_output=True, text=True
    ).stdout
    assert status == f"install ok installed {version}", status
    owned = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=True).stdout.split()
    assert f"{DEBIAN_PLUGIN_DIR}/mod_minimix/minimix.so" in owned


def test_debians_prosody_loads_the_packaged_module_from_its_default_path(servers):
    required_env("MINIMIX_DEB", "the .deb built by make deb")
    srv = DefaultPluginPathServer(module_dir=DEBIAN_PLUGIN_DIR)
    assert "plugin_paths" not in srv.config_path.read_text()
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    servers.append(srv)
    assert module_path(srv, "a.localhost") == f"{DEBIAN_PLUGIN_DIR}/mod_minimix/mod_minimix.lua", srv.log_tail(40)
    assert not srv.module_loaded("obs.localhost")

    room = "packaged@muc.localhost"
    phone, laptop = connect(srv, "alice", "phone"), connect(srv, "alice", "laptop")
    try:
        first = phone.join(room, "Alice")
        second = laptop.join(room, "Alice")
        assert first.self_presence.get("to") == phone.full_jid
        assert second.self_presence.get("to") == laptop.full_jid
        # Two sessions, one occupant: the account.
        assert srv.occupant_real_jids(room, "Alice") == ["alice@a.localhost"]
    finally:
        phone.close()
        laptop.close()
    assert srv.log_errors() == []

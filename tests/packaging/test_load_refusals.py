"""What an admin sees when the module cannot run: a build for another Lua, or a bad
``minimix_*`` value. Prosody keeps serving (without the module on that host) and its log
names the problem and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import connect, module_path, required_env, start_server


def test_a_build_for_another_lua_is_refused_with_a_clear_log_line(tmp_path, servers):
    other = Path(required_env(
        "MINIMIX_OTHER_LUA_DIR", "a build for another Lua than Prosody's (make test-packaging builds Lua 5.3's)"))
    plugins = tmp_path / "plugins"
    (plugins / "mod_minimix").mkdir(parents=True)
    for f in ("minimix.so", "mod_minimix.lua"):
        shutil.copy(other / f, plugins / "mod_minimix" / f)
    built_for = "Lua 5.3" if b"minimix-built-for=Lua 5.3;" in (other / "minimix.so").read_bytes() else None
    assert built_for, f"{other}/minimix.so is not a Lua 5.3 build"

    srv = start_server(module_dir=str(plugins))
    servers.append(srv)
    lib = plugins / "mod_minimix" / "minimix.so"
    expected = (
        f"mod_minimix: {lib} was built for Lua 5.3 but this Prosody runs on Lua 5.4; "
        "rebuild and reinstall it with make LUA_VERSION=5.4 install (or install the package built for Lua 5.4)"
    )
    log = srv.log_text()
    assert expected in log, srv.log_tail(40)
    # Only the refusal, not the linker's bare "undefined symbol" as the message.
    assert "cannot load the native library" not in log
    assert not srv.module_loaded("a.localhost")
    assert not srv.module_loaded("b.localhost")

    # The server still works: without the module the session itself joins the room.
    alice = connect(srv, "alice", "laptop")
    try:
        alice.join("wrong-lua@muc.localhost", "Alice")
        assert srv.occupant_real_jids("wrong-lua@muc.localhost", "Alice") == [alice.full_jid]
    finally:
        alice.close()


def test_bad_option_values_refuse_the_module_on_that_host_with_the_value_and_range(servers):
    module_dir = required_env("MINIMIX_MODULE_DIR", "the plugin tree with mod_minimix (make test-packaging)")
    srv = start_server(
        module_dir=module_dir,
        host_extra={
            "a.localhost": "  minimix_max_rooms = 0",
            "b.localhost": '  minimix_away_show = "busy"',
        },
    )
    servers.append(srv)
    log = srv.log_text()
    assert (
        "mod_minimix: minimix_max_rooms = 0 is out of range: "
        "expected a whole number from 1 to 100000 (default 256)"
    ) in log, srv.log_tail(40)
    assert (
        'mod_minimix: minimix_away_show = "busy" is not valid: '
        'expected one of "away", "xa", "dnd", "chat", "none"'
    ) in log, srv.log_tail(40)
    # Logged by Prosody at error level, attributed to the module's load on that host.
    lines = [line for line in log.splitlines() if "mod_minimix: minimix_" in line]
    assert len(lines) == 2 and all("\terror\t" in line for line in lines), lines
    assert any("a.localhost" in line for line in lines) and any("b.localhost" in line for line in lines), lines
    assert module_path(srv, "a.localhost") == "<none>"
    assert module_path(srv, "b.localhost") == "<none>"


def test_the_module_advertises_no_disco_feature_of_its_own(servers):
    """Hosts with and without the module offer the same service discovery features (the
    rig loads pep on both, the only module minimix depends on)."""
    module_dir = required_env("MINIMIX_MODULE_DIR", "the plugin tree with mod_minimix (make test-packaging)")
    srv = start_server(module_dir=module_dir)
    servers.append(srv)
    assert srv.module_loaded("a.localhost") and not srv.module_loaded("obs.localhost")

    def features(client, to):
        reply = client.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", to=to)
        assert reply.get("type") == "result"
        return sorted(f.get("var") for f in reply.iter("{http://jabber.org/protocol/disco#info}feature"))

    alice, carol = connect(srv, "alice", "a"), connect(srv, "carol", "c")
    try:
        assert features(alice, "a.localhost") == features(carol, "obs.localhost")
        assert features(alice, "alice@a.localhost") == features(carol, "carol@obs.localhost")
    finally:
        alice.close()
        carol.close()

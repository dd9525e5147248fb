"""Fixtures for the packaging tests: install layout, the Debian package, and the module's
refusals (wrong Lua, bad options) seen from a real Prosody on loopback.

They reuse the integration rig (tests/integration: ``ProsodyServer``, ``Client``).

Environment (set by ``make test-packaging`` / ``make test-deb``):

* ``MINIMIX_MODULE_DIR``: a plugin tree with mod_minimix for the Prosody under test.
* ``MINIMIX_OTHER_LUA_DIR``: a directory with ``minimix.so`` and ``mod_minimix.lua`` built
  for another Lua than Prosody's (the wrong-Lua refusal test).
* ``MINIMIX_DEB``: the .deb that ``make deb`` built and ``make test-deb`` installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from prosody_server import ProsodyError, ProsodyServer  # noqa: E402
from xmpp_client import Client  # noqa: E402

PASSWORD = "pw"
USERS = {"alice": "a.localhost", "bob": "a.localhost", "dave": "b.localhost", "carol": "obs.localhost"}


def required_env(name: str, what: str) -> str:
    """An environment variable the test cannot run without: a clear failure, never a skip."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {what}", pytrace=False)
    return value


def start_server(**kw) -> ProsodyServer:
    """A started Prosody with the rig's accounts; the caller cleans it up."""
    try:
        srv = ProsodyServer(**kw)
    except ProsodyError as e:
        pytest.fail(str(e), pytrace=False)
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    return srv


def module_path(srv: ProsodyServer, host: str) -> str:
    """The file Prosody loaded mod_minimix from on ``host`` ("<none>" when not loaded)."""
    return srv.lua(
        f"(function() local m = prosody.hosts[{host!r}].modules.minimix;"
        " return m and m.module.path or '<none>' end)()"
    )


def connect(srv: ProsodyServer, user: str, resource: str) -> Client:
    return Client(srv.c2s_port, f"{user}@{USERS[user]}", PASSWORD, resource)


@pytest.fixture
def servers():
    """Collects servers a test starts and cleans them all up (with the log kept on failure)."""
    started: list[ProsodyServer] = []
    yield started
    for srv in started:
        srv.cleanup()

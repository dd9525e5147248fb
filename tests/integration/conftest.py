"""Fixtures for the live-Prosody integration tests.

* ``plain_server``: session-scoped Prosody WITHOUT mod_minimix (validates the rig).
* ``server``: session-scoped Prosody WITH mod_minimix on a.localhost and
  b.localhost. Requires ``MINIMIX_MODULE_DIR``; fails loudly without it, so the
  scenario tests can never pass vacuously.
* ``fresh_server``: function-scoped variant of ``server`` for restart tests.
* ``connect`` / ``plain_connect``: client factories bound to those servers;
  every client is closed at teardown.
* ``room``: a unique room JID per test.
* ``s2s_pair`` / ``fresh_s2s_pair``: two servers linked by real s2s (``s2s_pair.py``):
  the module's server and a remote one hosting ``rooms.remote.localhost``;
  module-scoped and function-scoped (for restarts). ``remote_room``: a unique
  room JID on the remote MUC.
* ``prosody_version_info``: the version under test as a tuple, e.g. ``(0, 12, 3)`` or
  ``(13, 0, 1)`` (from ``$PROSODYCTL``), for the rare assertion that differs.

The run's header names the Prosody under test (``PROSODY``/``PROSODYCTL``:
0.12 by default, 13 via ``tests/prosody13.sh``'s wrappers).

On failure, the part of each running server's log written during the test is
attached to the report (section "prosody log").
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

from prosody_server import MUC_HOST, ProsodyError, ProsodyServer, prosody_version, version_tuple
from s2s_pair import REMOTE_MUC, S2SPair
from xmpp_client import Client

PASSWORD = "pw"
#: Pre-registered accounts: alice/bob/dave are on minimix hosts, carol/erin observe.
USERS = {
    "alice": "a.localhost",
    "bob": "a.localhost",
    "dave": "b.localhost",
    "carol": "obs.localhost",
    "erin": "obs.localhost",
}
LOG_TAIL_LINES = int(os.environ.get("MINIMIX_LOG_TAIL", "150"))


def jid_of(user: str) -> str:
    return f"{user}@{USERS[user]}"


# ---------------------------------------------------------------------- failure reporting


def _prosody_banner() -> str:
    prosody = os.environ.get("PROSODY", "prosody")
    prosodyctl = os.environ.get("PROSODYCTL", "prosodyctl")
    try:
        version = prosody_version(prosodyctl)
    except ProsodyError as e:
        version = f"unknown ({str(e).splitlines()[0]})"
    return f"prosody: {version} (PROSODY={prosody}, PROSODYCTL={prosodyctl})"


def pytest_report_header(config):
    """Say which Prosody the run is against (CI runs the suite on 0.12 and on 13)."""
    return _prosody_banner()


def pytest_sessionstart(session):
    """Under -q (make integration-test) pytest prints no header: say it anyway."""
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and session.config.getoption("verbose") < 0:
        tr.write_line(_prosody_banner())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the Prosody log written during a failing test to its report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        marks = getattr(item, "_prosody_log_marks", {})
        for srv in list(ProsodyServer.running):
            since = marks.get(id(srv), 0)
            rep.sections.append(
                (f"prosody log ({srv.log_path}, last {LOG_TAIL_LINES} lines of this test)", srv.log_tail(LOG_TAIL_LINES, since))
            )


@pytest.fixture(autouse=True)
def _prosody_log_marks(request):
    """Remember where each running server's log stood when the test began."""
    request.node._prosody_log_marks = {id(s): s.log_mark() for s in ProsodyServer.running}
    yield


# ---------------------------------------------------------------------- servers


def _start(with_module: bool, **kw) -> ProsodyServer:
    try:
        srv = ProsodyServer(with_module=with_module, **kw)
    except ProsodyError as e:
        pytest.fail(str(e), pytrace=False)
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    if with_module:
        loaded = {h: srv.module_loaded(h) for h in ("a.localhost", "b.localhost", "obs.localhost")}
        if loaded != {"a.localhost": True, "b.localhost": True, "obs.localhost": False}:
            errors = "\n".join(srv.log_errors()) or "(no error lines)"
            tail = srv.log_tail(40)
            srv.cleanup()
            pytest.fail(
                f"mod_minimix not loaded as expected: {loaded}\n--- errors in log ---\n{errors}\n--- log tail ---\n{tail}",
                pytrace=False,
            )
    return srv


@pytest.fixture(scope="session")
def module_dir() -> str:
    d = os.environ.get("MINIMIX_MODULE_DIR")
    if not d:
        pytest.fail(
            "MINIMIX_MODULE_DIR is not set. Set it to the directory that contains "
            "mod_minimix/mod_minimix.lua (e.g. MINIMIX_MODULE_DIR=$PWD/build) to run the "
            "mod_minimix scenario tests.",
            pytrace=False,
        )
    if not Path(d, "mod_minimix", "mod_minimix.lua").is_file():
        pytest.fail(f"MINIMIX_MODULE_DIR={d} does not contain mod_minimix/mod_minimix.lua", pytrace=False)
    return d


@pytest.fixture(scope="session")
def prosody_version_info() -> tuple[int, ...]:
    try:
        return version_tuple(prosody_version())
    except ProsodyError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def plain_server():
    """Prosody without mod_minimix: every host behaves like plain XEP-0045."""
    srv = _start(with_module=False)
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def server(module_dir):
    """Prosody with mod_minimix on a.localhost and b.localhost."""
    srv = _start(with_module=True, module_dir=module_dir)
    yield srv
    srv.cleanup()


@pytest.fixture
def fresh_server(module_dir):
    """Private server with the module, for tests that restart or reconfigure it."""
    srv = _start(with_module=True, module_dir=module_dir)
    yield srv
    srv.cleanup()


# ---------------------------------------------------------------------- clients and rooms


class Connector:
    """Factory for clients of one server; closes them all at teardown."""

    def __init__(self, srv: ProsodyServer):
        self.server = srv
        self.clients: list[Client] = []

    def __call__(self, user: str, resource: str = "test", **kw) -> Client:
        c = Client(self.server.c2s_port, jid_of(user), PASSWORD, resource, **kw)
        self.clients.append(c)
        return c

    def close_all(self) -> None:
        for c in self.clients:
            try:
                c.close(timeout=1)
            except Exception:
                pass


@pytest.fixture
def connect(server):
    conn = Connector(server)
    yield conn
    conn.close_all()


@pytest.fixture
def plain_connect(plain_server):
    conn = Connector(plain_server)
    yield conn
    conn.close_all()


_room_counter = itertools.count(1)


def _room_name(request) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{name}-{next(_room_counter)}"


@pytest.fixture
def room(request) -> str:
    """A fresh room JID, named after the test (so it is easy to grep in the log)."""
    return f"{_room_name(request)}@{MUC_HOST}"


@pytest.fixture
def remote_room(request) -> str:
    """A fresh room JID on the remote server's MUC (see ``s2s_pair``)."""
    return f"{_room_name(request)}@{REMOTE_MUC}"


# ---------------------------------------------------------------------- two servers over s2s


def start_s2s_pair(module_dir: str, **kw) -> S2SPair:
    """A started :class:`S2SPair` (``kw``: its options); fails the test if it cannot start."""
    pair = S2SPair(module_dir, **kw)
    try:
        pair.start()
    except ProsodyError as e:
        pair.cleanup()
        pytest.fail(str(e), pytrace=False)
    return pair


@pytest.fixture(scope="module")
def s2s_pair_shared(module_dir):
    pair = start_s2s_pair(module_dir)
    yield pair
    pair.cleanup()


@pytest.fixture
def s2s_pair(s2s_pair_shared):
    """The module's server and a remote MUC server over s2s, shared by a test module;
    each test's clients are closed at its end."""
    yield s2s_pair_shared
    s2s_pair_shared.close_clients()


@pytest.fixture
def fresh_s2s_pair(module_dir):
    """A private pair, for tests that restart either server."""
    pair = start_s2s_pair(module_dir)
    yield pair
    pair.cleanup()

"""Live-Prosody scenario for issue 5's admin visibility: the module's counts
(accounts, rooms, joined sessions per VirtualHost) reach Prosody's statistics
and show up on its metrics endpoint (mod_http_openmetrics), and follow joins,
leaves and disconnects."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from conftest import Connector, _start, jid_of
from xmpp_client import is_presence, muc_leave

ALICE = jid_of("alice")
METRICS = ("accounts", "rooms", "joined_sessions")


@pytest.fixture(scope="module")
def metrics_server(module_dir):
    srv = _start(with_module=True, module_dir=module_dir, metrics=True)
    yield srv
    srv.cleanup()


@pytest.fixture
def mconnect(metrics_server):
    conn = Connector(metrics_server)
    yield conn
    conn.close_all()


def scrape(srv) -> dict[tuple[str, str], float]:
    """The module's gauges from /metrics as {(name, host): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{srv.http_port}/metrics", timeout=5).read().decode()
    found = {}
    for m in re.finditer(r'^prosody_mod_minimix__(\w+)\{host="([^"]+)"\} (\S+)$', text, re.M):
        found[(m.group(1), m.group(2))] = float(m.group(3))
    return found


def wait_for(srv, host: str, want: dict[str, float], timeout: float = 8) -> dict:
    """Scrape until the host's gauges equal ``want`` (statistics update every second)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {name: scrape(srv).get((name, host)) for name in METRICS}
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_metrics_endpoint_counts_accounts_rooms_and_joined_sessions_per_host(metrics_server, mconnect, room):
    empty = {"accounts": 0, "rooms": 0, "joined_sessions": 0}
    assert wait_for(metrics_server, "a.localhost", empty) == empty
    assert wait_for(metrics_server, "b.localhost", empty) == empty

    phone, laptop = mconnect("alice", "phone"), mconnect("alice", "laptop")
    phone.join(room, "Alice")
    laptop.join(room, "Alice")
    bob = mconnect("bob", "desk")
    bob.join(room, "Bob")
    bob.join("second-" + room, "Bob")

    want = {"accounts": 2, "rooms": 3, "joined_sessions": 4}
    assert wait_for(metrics_server, "a.localhost", want) == want
    assert wait_for(metrics_server, "b.localhost", empty) == empty, "another host's module counts nothing"

    # One session leaves, another disconnects: the account stays in the room.
    laptop.send(muc_leave(f"{room}/Alice"))
    laptop.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), what="own leave")
    phone.close()
    want = {"accounts": 2, "rooms": 3, "joined_sessions": 2}
    assert wait_for(metrics_server, "a.localhost", want) == want

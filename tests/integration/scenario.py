"""Helpers the scenario files share: waiting for a room's traffic to settle and the
assertions about who got what. Each file binds its own ``QUIET`` (seconds without traffic
that count as "nothing more is coming") with ``functools.partial``."""

from __future__ import annotations

import time
from contextlib import contextmanager

import xml.etree.ElementTree as ET

from conftest import PASSWORD, USERS
from prosody_server import ProsodyServer
from xmpp_client import Client, body, from_room, is_presence, is_stanza, q, subject_text, subject_change, summarize, to_xml


def traffic(room: str, *clients: Client, quiet: float = 0.5, timeout: float = 15) -> list[list]:
    """Everything from ``room`` that reaches each of ``clients`` until all of them have
    been quiet for ``quiet`` seconds together (one wait, not one per client); a list per
    client, in the order given."""
    deadline = time.monotonic() + timeout
    counts = [len(c.received) for c in clients]
    quiet_until = time.monotonic() + quiet
    while time.monotonic() < min(quiet_until, deadline):
        time.sleep(0.02)
        now_counts = [len(c.received) for c in clients]
        if now_counts != counts:
            counts = now_counts
            quiet_until = time.monotonic() + quiet
    return [c.drain(lambda e: is_stanza(e) and from_room(e, room)) for c in clients]


def room_traffic(client: Client, room: str, quiet: float = 0.5) -> list:
    """Everything from ``room`` that reaches ``client`` until it goes quiet."""
    return traffic(room, client, quiet=quiet)[0]


def settle(room: str, *clients: Client, quiet: float = 0.5) -> None:
    """Consume whatever room traffic is still on its way to ``clients``."""
    traffic(room, *clients, quiet=quiet)


def presences_from(els, room_nick: str) -> list:
    return [e for e in els if is_presence(e, frm=room_nick)]


def assert_nothing(els, who) -> None:
    assert els == [], f"{who} got unexpected room traffic:\n{summarize(els)}"


def owned_room(client: Client, room: str, nick: str, subject: str | None) -> Client:
    """``client`` creates ``room`` (so it owns and moderates it) and, unless ``subject`` is
    None, sets a recognisable subject."""
    client.join(room, nick)
    if subject is not None:
        client.send(subject_change(room, subject))
        client.expect(lambda e: from_room(e, room) and subject_text(e) == subject, what="own subject change")
    return client


# ---------------------------------------------------------------------- remote rooms (s2s_pair)


def remote_owned_room(pair, room: str, subject: str = "Far away") -> Client:
    """frank (on the remote server) creates ``room``, so he owns and moderates it, and sets a
    subject."""
    return owned_room(pair.client("frank", "observer"), room, "Frank", subject)


def remote_joined(pair, room: str, *resources: str, nick: str = "Alice", timeout: float = 5) -> list[Client]:
    """One session of alice (on the module's server) per resource, each joined to ``room``."""
    sessions = []
    for r in resources:
        s = pair.client("alice", r)
        s.join(room, nick, timeout=timeout)
        sessions.append(s)
    return sessions


def assert_remote_occupant(pair, room: str, nick: str = "Alice", *, account: str) -> None:
    """What the REMOTE room's own state says: ``account``'s bare JID behind ``nick``, nothing else."""
    jids = pair.remote.occupant_real_jids(room, nick)
    assert jids == [account], f"remote room {room} has {jids} behind {nick}, expected only {account}"


def assert_no_remote_occupant(pair, room: str, nick: str = "Alice") -> None:
    jids = pair.remote.occupant_real_jids(room, nick)
    assert not jids, f"remote room {room} still lists {jids} behind {nick}"


NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"


def archived_groupchat(c: Client, room: str, timeout: float = 10) -> list[ET.Element]:
    """The groupchat messages from ``room`` in the client's own archive, in order: a MAM
    query to the account asking for everything with that room, ``include-groupchat`` on
    (the room's subject is archived too)."""
    form = (
        f"<x xmlns='jabber:x:data' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>"
        f"<field var='with'><value>{room}</value></field>"
        f"<field var='include-groupchat'><value>true</value></field></x>"
    )
    result = c.iq(f"<query xmlns='{NS_MAM}' queryid='q1'>{form}</query>", type="set", timeout=timeout)
    assert result.get("type") == "result", to_xml(result)
    found = c.drain(pred=lambda e: e.find(q(NS_MAM, "result")) is not None)
    inner = [m.find(q(NS_MAM, "result")).find(q(NS_FORWARD, "forwarded")).find(q("jabber:client", "message")) for m in found]
    return [m for m in inner if m is not None and m.get("type") == "groupchat"]


def archived_bodies(c: Client, room: str) -> list[str]:
    """The bodies of :func:`archived_groupchat` (the subject has none)."""
    return [body(m) for m in archived_groupchat(c, room) if body(m) is not None]


def wait_for(predicate, timeout: float, what: str) -> None:
    """Polls ``predicate`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@contextmanager
def own_server(module_dir, **kw):
    """A server of its own (a test restarts it, or sets options) with the module and the
    test users; ``kw`` goes to ``ProsodyServer``."""
    srv = ProsodyServer(with_module=True, module_dir=module_dir, **kw)
    try:
        for user, host in USERS.items():
            srv.register(user, host, PASSWORD)
        srv.start()
        assert srv.module_loaded("a.localhost"), srv.log_tail(40)
        yield srv
    finally:
        srv.cleanup()

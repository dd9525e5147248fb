"""Live-Prosody hardening scenarios (issue 8): limits, spoofing, bad input.

Cast (see conftest.USERS): alice and bob use a.localhost WITH mod_minimix, dave
uses b.localhost WITH it; carol and erin are plain XEP-0045 users on
obs.localhost. Unless a test says otherwise, carol (resource "observer")
creates the room, so she is its owner and sees what the room does.

What every scenario here asserts besides its own point:

* over-limit or malformed requests get one clear XMPP error addressed to the
  session that sent them, and change nothing anybody else sees, nor the
  module's state (``minimix:rooms(...)`` in the admin shell);
* the server is still alive and serving afterwards: a fresh client can log in
  and a joined session still gets groupchat (:func:`assert_serving`);
* the Prosody log has no Lua error or traceback (autouse fixture, and the
  ``private_server`` fixture for servers with their own options).

Limits run on private servers (``private_server``) whose a.localhost sets the
option under test, e.g. ``minimix_max_rooms = 2``.
"""

from __future__ import annotations

import functools

import base64
import time
from xml.sax.saxutils import quoteattr

import pytest

from conftest import PASSWORD, Connector, _start, jid_of
from prosody_server import MUC_HOST, ProsodyServer
import scenario
from xmpp_client import (
    NS_CLIENT,
    NS_MUC,
    NS_MUC_USER,
    NS_PING,
    NS_STANZAS,
    Client,
    body,
    delay,
    error_condition,
    from_room,
    groupchat,
    is_groupchat,
    is_iq,
    is_message,
    is_presence,
    is_stanza,
    muc_join,
    muc_leave,
    new_id,
    parse_join_sequence,
    q,
    status_codes,
    subject_change,
    subject_text,
    summarize,
)

QUIET = 0.5  # seconds without traffic that count as "nothing more is coming"

traffic = functools.partial(scenario.traffic, quiet=QUIET)
room_traffic = functools.partial(scenario.room_traffic, quiet=QUIET)
settle = functools.partial(scenario.settle, quiet=QUIET)
presences_from = scenario.presences_from
assert_nothing = scenario.assert_nothing
ALICE = jid_of("alice")
BOB = jid_of("bob")
DAVE = jid_of("dave")
NS_VERSION = "jabber:iq:version"
NS_UNKNOWN = "urn:example:minimix:unknown"


@pytest.fixture(autouse=True)
def no_new_lua_errors():
    """No Lua error/traceback in the log of any server running during the test
    (a server started during the test is checked from its first line)."""
    marks = {id(s): s.log_mark() for s in ProsodyServer.running}
    yield
    errors = []
    for s in list(ProsodyServer.running):
        errors += s.log_errors(since=marks.get(id(s), 0))
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


@pytest.fixture
def private_server(module_dir):
    """Factory: ``private_server("  minimix_max_rooms = 2")`` starts a server whose
    a.localhost has those option lines; returns ``(server, connect)``. At teardown
    every client is closed and the server's whole log must be free of errors."""
    made: list[tuple[ProsodyServer, Connector]] = []

    def start(a_localhost_options: str) -> tuple[ProsodyServer, Connector]:
        srv = _start(with_module=True, module_dir=module_dir, host_extra={"a.localhost": a_localhost_options})
        conn = Connector(srv)
        made.append((srv, conn))
        return srv, conn

    yield start
    errors = []
    for srv, conn in made:
        conn.close_all()
        errors += srv.log_errors()
        srv.cleanup()
    assert errors == [], "a private server logged errors:\n" + "\n".join(errors)


def observer_room(connect, room: str, subject: str | None = "Welcome", user: str = "carol") -> Client:
    """``user`` (an observer) creates ``room`` and sets a recognisable subject."""
    return scenario.owned_room(connect(user, "observer"), room, user.capitalize(), subject)


# ---------------------------------------------------------------------- helpers


def everything(client: Client, quiet: float = QUIET) -> list:
    """Every stanza that reaches ``client`` until it goes quiet (from anyone)."""
    return [e for e in client.collect(quiet) if is_stanza(e)]


def joined(connect, room: str, *resources: str, user: str = "alice", nick: str = "Alice") -> list[Client]:
    sessions = []
    for r in resources:
        s = connect(user, r)
        s.join(room, nick)
        sessions.append(s)
    return sessions


def available(client: Client) -> Client:
    """Wait until the server processed ``client``'s initial presence (its echo
    arrives), so stanzas to its bare JID are delivered rather than bounced."""
    client.expect(lambda e: is_presence(e, frm=client.full_jid), what="own initial presence")
    return client


def assert_account_is_the_occupant(srv, room: str, nick: str, account: str = ALICE) -> None:
    assert srv.occupant_real_jids(room, nick) == [account], (
        f"room {room} has {srv.occupant_real_jids(room, nick)} behind nick {nick}, expected only {account}"
    )


def assert_not_in_room(srv, room: str, nick: str) -> None:
    jids = srv.occupant_real_jids(room, nick)
    assert not jids, f"room {room} still lists {jids} behind {nick}"


def assert_session_error(els, kind: str, session: Client, condition: str, frm: str | None = None, stream_level: bool = False):
    """``els`` is exactly one ``kind`` error to ``session`` with ``condition`` (and from ``frm``).

    ``stream_level``: Prosody's own answers to stanzas it refuses before routing may
    carry no ``to`` (on a c2s stream that means the session)."""
    assert len(els) == 1, f"{session}: expected exactly one {kind} error:\n{summarize(els)}"
    el = els[0]
    assert el.tag == q(NS_CLIENT, kind) and el.get("type") == "error", summarize(els)
    allowed_to = (session.full_jid, None) if stream_level else (session.full_jid,)
    assert el.get("to") in allowed_to, f"error not addressed to the session:\n{summarize(els)}"
    if frm is not None:
        assert el.get("from") == frm, f"error from {el.get('from')!r}, expected {frm!r}:\n{summarize(els)}"
    assert error_condition(el) == condition, f"expected <{condition}/>:\n{summarize(els)}"
    return el


def no_kicks(*clients: Client) -> None:
    kicks = [
        e
        for c in clients
        for e in c.received
        if is_presence(e) and e.get("from", "").split("@", 1)[-1].split("/", 1)[0] == MUC_HOST
        and status_codes(e) & {307, 301, 321, 322, 332, 333}
    ]
    assert kicks == [], "someone was removed from a room:\n" + summarize(kicks)


def module_rooms(srv, account: str) -> str:
    """The admin shell's view of the account's rooms (``minimix:rooms``)."""
    return srv.shell(f"minimix:rooms({account!r})")


def module_room_lines(srv, account: str) -> list[str]:
    """One line per room from ``minimix:rooms`` (without the ``OK: n room(s)`` summary)."""
    return sorted(l for l in module_rooms(srv, account).splitlines() if " as " in l and not l.startswith("OK"))


def assert_serving(srv, room: str, speaker: Client, *listeners: Client, account: str = ALICE) -> None:
    """The server is alive and serving: the process runs, a fresh client of
    ``account`` logs in and gets a ping answered, and a groupchat from
    ``speaker`` reaches ``speaker`` and every one of ``listeners``."""
    assert srv.is_running, f"prosody is not running (exit status {srv.proc.poll() if srv.proc else None})"
    fresh = Client(srv.c2s_port, account, PASSWORD, new_id("alive-"))
    try:
        pong = fresh.iq(f"<ping xmlns='{NS_PING}'/>", to=account.split("@", 1)[1])
        assert pong.get("type") == "result", summarize([pong])
    finally:
        fresh.close()
    text = new_id("still-serving-")
    speaker.send(groupchat(room, text))
    for c in (speaker, *listeners):
        c.expect(lambda e: is_groupchat(e, room, text), what=f"groupchat {text!r} (is the server still serving?)")


def replay_summary(seq) -> list[tuple]:
    """A join sequence without addressing and timestamps, to compare replays."""
    out = []
    for e in seq.raw:
        out.append(
            (
                e.tag,
                e.get("from"),
                e.get("type"),
                tuple(sorted(status_codes(e))),
                body(e),
                subject_text(e),
                delay(e) is not None,
            )
        )
    return out


def nested(depth: int, ns: str = NS_UNKNOWN) -> str:
    return f"<n xmlns='{ns}'>" + "<n>" * (depth - 1) + "deep" + "</n>" * depth


def nesting_depth(el, ns: str = NS_UNKNOWN) -> int:
    """How deep the ``nested()`` payload in ``el`` still is (0: none)."""
    depth, cur = 0, el.find(q(ns, "n"))
    while cur is not None:
        depth += 1
        cur = cur.find(q(ns, "n"))
    return depth


# ====================================================================== 1. limits


def test_max_rooms_third_join_gets_resource_constraint_and_changes_nothing_else(private_server):
    srv, connect = private_server("  minimix_max_rooms = 2")
    rooms = [f"max-rooms-{i}@muc.localhost" for i in (1, 2, 3)]
    carol = connect("carol", "observer")
    for r in rooms:
        carol.join(r, "Carol")
    phone, laptop = connect("alice", "phone"), connect("alice", "laptop")
    phone.join(rooms[0], "Alice")
    phone.join(rooms[1], "Alice")
    laptop.join(rooms[0], "Alice")  # a late session in a room already joined is no new room
    for r in rooms:
        settle(r, carol, phone, laptop)
    before = module_room_lines(srv, ALICE)
    assert len(before) == 2, before

    refused = phone.join_room(rooms[2], "Alice")

    assert_session_error(refused, "presence", phone, "resource-constraint", frm=f"{rooms[2]}/Alice")
    at_carol, at_laptop = traffic(rooms[2], carol, laptop)
    assert_nothing(at_carol, "the observer of the refused room")
    assert_nothing(at_laptop, "the session that did not ask")
    assert_not_in_room(srv, rooms[2], "Alice")
    assert module_room_lines(srv, ALICE) == before
    for r in rooms[:2]:
        assert_account_is_the_occupant(srv, r, "Alice")
        assert_nothing(room_traffic(carol, r), f"the observer of {r}")
    assert_serving(srv, rooms[0], carol, phone, laptop)
    assert_serving(srv, rooms[1], carol, phone)

    # The limit is on rooms the account is in, not on joins ever made.
    phone.send(muc_leave(f"{rooms[1]}/Alice"))
    phone.expect(lambda e: is_presence(e, frm=f"{rooms[1]}/Alice", type="unavailable"), what="leave")
    join = phone.join(rooms[2], "Alice")
    assert join.self_presence.get("to") == phone.full_jid, join
    assert_account_is_the_occupant(srv, rooms[2], "Alice")
    no_kicks(carol, phone, laptop)


def test_max_joins_per_minute_fourth_join_gets_policy_violation_and_changes_nothing_else(private_server):
    """Only joins of rooms the account is not in count (README): attaching another
    session to a joined room is answered locally and is never refused."""
    srv, connect = private_server("  minimix_max_joins_per_minute = 3")
    rooms = [f"join-rate-{i}@muc.localhost" for i in (1, 2, 3, 4)]
    carol = connect("carol", "observer")
    for r in rooms:
        carol.join(r, "Carol")
    phone, laptop = connect("alice", "phone"), connect("alice", "laptop")
    phone.join(rooms[0], "Alice")
    laptop.join(rooms[0], "Alice")  # attaching: free
    phone.join(rooms[1], "Alice")
    phone.join(rooms[2], "Alice")  # the third room joined this minute: the most allowed
    for r in rooms:
        settle(r, carol, phone, laptop)
    before = module_room_lines(srv, ALICE)

    refused = phone.join_room(rooms[3], "Alice")

    assert_session_error(refused, "presence", phone, "policy-violation", frm=f"{rooms[3]}/Alice")
    assert_nothing(room_traffic(carol, rooms[3]), "the observer of the refused room")
    assert_nothing(room_traffic(laptop, rooms[3]), "the session that did not ask")
    assert_not_in_room(srv, rooms[3], "Alice")
    assert module_room_lines(srv, ALICE) == before
    # Still free after the limit is reached: a session attaching to a room the account is in.
    attach = laptop.join(rooms[1], "Alice")
    assert attach.self_presence.get("to") == laptop.full_jid, attach
    assert_nothing(room_traffic(carol, rooms[1]), "the observer (an attaching session)")
    for r in rooms[:3]:
        assert_account_is_the_occupant(srv, r, "Alice")
    assert_serving(srv, rooms[0], carol, phone, laptop)
    assert_serving(srv, rooms[1], carol, phone, laptop)
    assert_serving(srv, rooms[2], carol, phone)
    no_kicks(carol, phone, laptop)


def test_max_pending_iqs_second_iq_in_flight_gets_resource_constraint_and_the_first_still_completes(private_server):
    srv, connect = private_server("  minimix_max_pending_iqs = 1")
    room = "pending-iqs@muc.localhost"
    carol = observer_room(connect, room)  # carol never answers on her own: a raw client
    (phone,) = joined(connect, room, "phone")
    settle(room, carol, phone)

    phone.send(f"<iq type='get' to='{room}/Carol' id='q1'><query xmlns='{NS_VERSION}'/></iq>")
    first = carol.expect(lambda e: is_iq(e, frm=f"{room}/Alice", type="get"), what="the first iq at carol")
    phone.send(f"<iq type='get' to='{room}/Carol' id='q2'><query xmlns='{NS_VERSION}'/></iq>")

    refused = phone.expect(lambda e: is_iq(e, id="q2"), what="answer to the second iq")
    assert_session_error([refused], "iq", phone, "resource-constraint", frm=f"{room}/Carol")
    assert_nothing([e for e in everything(carol) if is_iq(e)], "the occupant (the refused iq must not reach it)")

    carol.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(first.get('id'))}><query xmlns='{NS_VERSION}'><name>c</name></query></iq>")
    answer = phone.expect(lambda e: is_iq(e, id="q1"), what="answer to the first iq")
    assert answer.get("type") == "result" and answer.get("from") == f"{room}/Carol", summarize([answer])
    # The slot is free again.
    phone.send(f"<iq type='get' to='{room}/Carol' id='q3'><query xmlns='{NS_VERSION}'/></iq>")
    third = carol.expect(lambda e: is_iq(e, frm=f"{room}/Alice", type="get"), what="the third iq at carol")
    carol.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(third.get('id'))}/>")
    assert phone.expect(lambda e: is_iq(e, id="q3")).get("type") == "result"
    assert_account_is_the_occupant(srv, room, "Alice")
    assert_serving(srv, room, carol, phone)
    no_kicks(carol, phone)


def test_unanswered_iq_to_an_occupant_times_out_to_the_session_and_frees_its_slot(private_server):
    srv, connect = private_server("  minimix_max_pending_iqs = 1\n  minimix_iq_timeout = 1")
    room = "iq-timeout@muc.localhost"
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol, phone)

    phone.send(f"<iq type='get' to='{room}/Carol' id='t1'><query xmlns='{NS_VERSION}'/></iq>")
    asked = carol.expect(lambda e: is_iq(e, frm=f"{room}/Alice", type="get"), what="the iq at carol")
    started = time.monotonic()

    timed_out = phone.expect(lambda e: is_iq(e, id="t1"), timeout=6, what="the timeout answer")
    waited = time.monotonic() - started
    assert_session_error([timed_out], "iq", phone, "remote-server-timeout", frm=f"{room}/Carol")
    assert 0.5 <= waited <= 5, f"answered after {waited:.1f}s, expected about 1s"
    # A late answer finds nobody waiting: the session got its one answer already.
    carol.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(asked.get('id'))}/>")
    assert_nothing([e for e in everything(phone) if is_iq(e)], "the session (a second answer to t1)")
    # The slot is free again.
    phone.send(f"<iq type='get' to='{room}/Carol' id='t2'><query xmlns='{NS_VERSION}'/></iq>")
    again = carol.expect(lambda e: is_iq(e, frm=f"{room}/Alice", type="get"), what="the next iq at carol")
    carol.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(again.get('id'))}/>")
    assert phone.expect(lambda e: is_iq(e, id="t2")).get("type") == "result"
    assert_account_is_the_occupant(srv, room, "Alice")
    assert_serving(srv, room, carol, phone)
    no_kicks(carol, phone)


def test_history_max_messages_caps_what_a_late_session_gets_however_much_it_asks(private_server):
    # history_length (the default replay) must not exceed history_max_messages: the
    # module refuses to load with history_max_messages = 3 and the default length of 20.
    srv, connect = private_server("  minimix_history_max_messages = 3\n  minimix_history_length = 2")
    room = "history-cap@muc.localhost"
    carol = observer_room(connect, room, subject="Capped")
    (phone,) = joined(connect, room, "phone")
    texts = [f"m{i}" for i in range(1, 6)]
    for t in texts:
        carol.send(groupchat(room, t))
    got = room_traffic(phone, room)
    assert [body(e) for e in got if is_groupchat(e, room)] == texts, summarize(got)
    settle(room, carol)
    laptop = connect("alice", "laptop")

    join = laptop.join(room, "Alice", history={"maxstanzas": 10})

    assert [body(h) for h in join.history] == texts[-3:], join
    assert all(delay(h) is not None for h in join.history), join
    assert subject_text(join.subject) == "Capped", join
    # Without <history/>, the default replay (minimix_history_length) applies.
    default = connect("alice", "tablet").join(room, "Alice")
    assert [body(h) for h in default.history] == texts[-2:], default
    assert "history: 3" in module_rooms(srv, ALICE), module_rooms(srv, ALICE)
    assert_nothing(room_traffic(carol, room), "the observer (a late session's join)")
    assert_account_is_the_occupant(srv, room, "Alice")
    assert_serving(srv, room, carol, phone, laptop)


# ====================================================================== 2. spoofing


def test_stranger_groupchat_and_fake_room_presences_to_the_account_never_become_room_traffic(server, connect, room):
    erin = observer_room(connect, room, subject="Real subject", user="erin")
    phone, laptop = joined(connect, room, "phone", "laptop")
    for t in ("one", "two"):
        erin.send(groupchat(room, t))
    settle(room, erin, phone, laptop)
    tablet = connect("alice", "tablet")
    replay_before = replay_summary(tablet.join(room, "Alice"))
    tablet.send(muc_leave(f"{room}/Alice"))
    tablet.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), what="tablet leaves")
    state_before = module_rooms(server, ALICE)
    carol = available(connect("carol", "stranger"))  # never joins anything
    fake_x = f"<x xmlns='{NS_MUC_USER}'><item affiliation='owner' role='moderator'/><status code='110'/></x>"
    fake_kick = (
        f"<x xmlns='{NS_MUC_USER}'><item affiliation='none' role='none'/>"
        "<status code='110'/><status code='307'/><status code='333'/></x>"
    )
    spoofs = [
        f"<message to='{ALICE}' type='groupchat' id='sp1'><body>spoofed groupchat</body></message>",
        # A forged from is overwritten by Prosody (c2s stamps the session's JID).
        f"<message to='{ALICE}' from='{room}/Erin' type='groupchat' id='sp2'><body>forged from</body></message>",
        f"<message to='{ALICE}' type='groupchat' id='sp3'><subject>spoofed subject</subject></message>",
        f"<presence to='{ALICE}' id='sp4'>{fake_x}</presence>",
        f"<presence to='{ALICE}' from='{room}/Alice' id='sp5'>{fake_x}</presence>",
        f"<presence to='{ALICE}' type='unavailable' id='sp6'>{fake_kick}</presence>",
        f"<presence to='{phone.full_jid}' type='unavailable' id='sp7'>{fake_kick}</presence>",
        f"<message to='{laptop.full_jid}' type='groupchat' id='sp8'><body>to a full JID</body></message>",
        f"<message to='{ALICE}' type='error' id='sp9'><error type='cancel'><item-not-found xmlns='{NS_STANZAS}'/></error></message>",
    ]
    for s in spoofs:
        carol.send(s)

    at_phone, at_laptop = everything(phone), everything(laptop)
    at_erin = room_traffic(erin, room)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert_nothing([e for e in got if from_room(e, room)], f"{s} (as room traffic)")
        # Nothing the stranger sent is re-addressed as if a room had sent it.
        assert_nothing([e for e in got if e.get("from", "").endswith("muc.localhost") or "muc.localhost/" in e.get("from", "")], s)
    # Only what Prosody delivers to anyone (directed presence to the bare JID, a message
    # to a full JID) arrives, from the stranger, never forked to the other session.
    assert_nothing([e for e in at_phone if e.get("id") == "sp8"], "the session the stanza was not for")
    assert_nothing([e for e in at_phone + at_laptop if e.get("id") in ("sp1", "sp2", "sp3", "sp9")], "alice's sessions (bare groupchat/error)")
    assert all(e.get("from") == carol.full_jid for e in at_phone + at_laptop if e.get("id", "").startswith("sp")), summarize(at_phone + at_laptop)
    assert_nothing(presences_from(at_erin, f"{room}/Alice"), "the room's owner")
    assert module_rooms(server, ALICE) == state_before
    assert_account_is_the_occupant(server, room, "Alice")
    replay_after = replay_summary(connect("alice", "desk").join(room, "Alice"))
    assert replay_after == replay_before
    assert_serving(server, room, erin, phone, laptop)
    no_kicks(erin, phone, laptop)


def test_forged_iq_answers_to_the_account_never_complete_a_sessions_iq_to_an_occupant(server, connect, room):
    erin = observer_room(connect, room, user="erin")
    (phone,) = joined(connect, room, "phone")
    settle(room, erin, phone)
    phone.send(f"<iq type='get' to='{room}/Erin' id='v1'><query xmlns='{NS_VERSION}'/></iq>")
    asked = erin.expect(lambda e: is_iq(e, frm=f"{room}/Alice", type="get"), what="the iq at erin")
    carol = available(connect("carol", "stranger"))

    # The id the account used: Prosody's MUC wraps it as base64(real JID NUL id NUL hash),
    # so an occupant (or anyone it tells) can read it. Forge answers with exactly that id,
    # and with the ids around it.
    account_id = base64.b64decode(asked.get("id")).split(b"\0")[1].decode()
    assert account_id.startswith("minimix-"), account_id
    n = int(account_id.rsplit("-", 1)[1], 16)
    forged = [account_id] + [f"minimix-{i:x}" for i in range(max(0, n - 200), n + 200)]
    for fid in forged:
        carol.send(f"<iq type='result' to='{ALICE}' id={quoteattr(fid)}><query xmlns='{NS_VERSION}'><name>forged</name></query></iq>")
        carol.send(f"<iq type='error' to='{ALICE}' id={quoteattr(fid)}><error type='cancel'><item-not-found xmlns='{NS_STANZAS}'/></error></iq>")
    carol.send(f"<iq type='result' to='{ALICE}' id='v1'/>")

    assert_nothing([e for e in everything(phone) if is_iq(e)], "the asking session (forged answers)")
    erin.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(asked.get('id'))}><query xmlns='{NS_VERSION}'><name>real</name></query></iq>")
    answers = [e for e in everything(phone) if is_iq(e)]
    assert len(answers) == 1, summarize(answers)
    assert is_iq(answers[0], frm=f"{room}/Erin", to=phone.full_jid, type="result", id="v1"), summarize(answers)
    name = answers[0].find(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}")
    assert name is not None and name.text == "real", summarize(answers)
    assert_serving(server, room, erin, phone)


def test_one_accounts_room_traffic_never_reaches_another_account_on_the_same_host(server, connect, room):
    other = room.replace("@", "-other@", 1)
    carol = observer_room(connect, room)
    erin = observer_room(connect, other, user="erin")
    phone, laptop = joined(connect, room, "phone", "laptop")
    (bob,) = joined(connect, other, "phone", user="bob", nick="Bob")
    bob_idle = connect("bob", "idle")
    settle(room, carol, phone, laptop)
    settle(other, erin, bob)

    carol.send(groupchat(room, "for alice's room"))
    carol.send(subject_change(room, "alice's topic"))
    carol.send(f"<presence to='{room}/Carol'><show>away</show></presence>")
    carol.send(f"<message to='{room}/Alice' type='chat' id='pm1'><body>private to Alice</body></message>")
    phone.send(groupchat(room, "from alice"))

    for s in (phone, laptop):
        got = room_traffic(s, room)
        assert {"for alice's room", "from alice"} <= {body(e) for e in got if is_groupchat(e, room)}, summarize(got)
    for b in (bob, bob_idle):
        assert_nothing([e for e in everything(b) if from_room(e, room)], f"bob's session {b}")
    bob_rooms = [l.split(" as ")[0] for l in module_room_lines(server, BOB)]
    assert other in bob_rooms and room not in bob_rooms, module_rooms(server, BOB)
    assert not any(other in line for line in module_room_lines(server, ALICE)), module_rooms(server, ALICE)
    assert_account_is_the_occupant(server, other, "Bob", BOB)
    assert_serving(server, other, erin, bob, account=BOB)
    assert_serving(server, room, carol, phone, laptop)


def test_accounts_on_different_virtual_hosts_keep_separate_module_state(fresh_server):
    srv = fresh_server
    connect = Connector(srv)
    try:
        room_a, room_d = "vhost-a@muc.localhost", "vhost-d@muc.localhost"
        carol = observer_room(connect, room_a)
        erin = observer_room(connect, room_d, user="erin")
        (phone,) = joined(connect, room_a, "phone")
        (dave,) = joined(connect, room_d, "phone", user="dave", nick="Dave")
        settle(room_a, carol, phone)
        settle(room_d, erin, dave)

        alice_rooms = module_room_lines(srv, ALICE)
        dave_rooms = module_room_lines(srv, DAVE)
        assert [l.split(" as ")[0] for l in alice_rooms] == [room_a], alice_rooms
        assert [l.split(" as ")[0] for l in dave_rooms] == [room_d], dave_rooms
        assert phone.full_jid in alice_rooms[0] and dave.full_jid not in alice_rooms[0], alice_rooms
        assert dave.full_jid in dave_rooms[0] and phone.full_jid not in dave_rooms[0], dave_rooms
        assert "accounts: 1, rooms: 1, joined sessions: 1" in srv.shell("minimix:stats('a.localhost')")
        assert "accounts: 1, rooms: 1, joined sessions: 1" in srv.shell("minimix:stats('b.localhost')")
        # A's admin shell cannot be tricked into listing b's accounts (each host its own core).
        assert "0 room(s)" in srv.shell("minimix:rooms('dave@a.localhost')")

        carol.send(groupchat(room_a, "only for a"))
        assert_nothing([e for e in everything(dave) if from_room(e, room_a)], "dave")
        assert_account_is_the_occupant(srv, room_a, "Alice")
        assert_account_is_the_occupant(srv, room_d, "Dave", DAVE)
        assert_serving(srv, room_d, erin, dave, account=DAVE)
        assert_serving(srv, room_a, carol, phone)
        assert srv.log_errors() == [], "\n".join(srv.log_errors())
    finally:
        connect.close_all()


# ====================================================================== 3. bad input


@pytest.mark.parametrize("joined_first", [False, True], ids=["session-not-joined", "session-joined"])
def test_nickless_join_to_the_room_bare_jid_gets_an_error_from_the_room_and_changes_nothing(server, connect, room, joined_first):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    laptop = connect("alice", "laptop")
    asking = phone if joined_first else laptop
    settle(room, carol, phone, laptop)
    state_before = module_rooms(server, ALICE)

    asking.send(f"<presence to='{room}' id='nickless'><x xmlns='{NS_MUC}'/></presence>")

    got, at_carol = traffic(room, asking, carol)
    # Plain Prosody answers a nickless presence from a non-occupant with service-unavailable;
    # jid-malformed or bad-request would do as well. The session is no occupant: the account is.
    assert len(got) == 1 and is_presence(got[0], frm=room, to=asking.full_jid, type="error"), summarize(got)
    assert error_condition(got[0]) in ("service-unavailable", "jid-malformed", "bad-request"), summarize(got)
    assert_nothing(at_carol, "the observer")
    other = laptop if joined_first else phone
    assert_nothing(room_traffic(other, room), "the other session")
    assert module_rooms(server, ALICE) == state_before
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone)
    no_kicks(carol, phone, laptop)


def test_join_with_a_1024_byte_nick_gets_jid_malformed_from_prosody(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    laptop = connect("alice", "laptop")
    settle(room, carol, phone)
    state_before = module_rooms(server, ALICE)
    nick = "n" * 1024  # resourceparts are at most 1023 bytes

    laptop.send(muc_join(f"{room}/{nick}"))

    got = [e for e in everything(laptop) if is_presence(e, type="error")]
    assert_session_error(got, "presence", laptop, "jid-malformed")
    assert_nothing(room_traffic(carol, room), "the observer")
    assert_nothing(room_traffic(phone, room), "the joined session")
    assert module_rooms(server, ALICE) == state_before
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone)


ODD_NICKS = [
    # (id, nick the client sends, nick Prosody makes of it (resourceprep: NFKC), or None when
    # Prosody itself refuses it, with the condition a direct XEP-0045 client gets)
    ("rtl-hebrew", "שלום", "שלום"),
    ("rtl-arabic", "مرحبا بكم", "مرحبا بكم"),
    ("combining-composed", "Zoe\u0308", "Zo\u00eb"),
    ("combining-stacked", "x\u0301\u0302\u0303\u0304", "x\u0301\u0302\u0303\u0304"),
    ("fullwidth", "Ｆｕｌｌｗｉｄｔｈ", "Fullwidth"),
    ("longest-1023-bytes", "é" * 400 + "x" * 223, "é" * 400 + "x" * 223),
    ("emoji", "Alice 😀", None),
]


@pytest.mark.parametrize("sent,prepped", [p[1:] for p in ODD_NICKS], ids=[p[0] for p in ODD_NICKS])
def test_odd_unicode_nicks_behave_as_for_a_direct_client_end_to_end(server, connect, plain_connect, room, sent, prepped):
    # What plain Prosody (no module) answers a direct client: the reference.
    p_carol = observer_room(plain_connect, room)
    p_bob = plain_connect("bob", "direct")
    direct = p_bob.join_room(room, sent)
    direct_error = error_condition(direct[-1]) if is_presence(direct[-1], type="error") else None
    direct_nick = None if direct_error else [e for e in direct if 110 in status_codes(e)][0].get("from").split("/", 1)[1]
    p_carol.close()
    p_bob.close()
    if prepped is None:
        assert direct_error is not None, f"plain Prosody accepted {sent!r}; update the expectation"
    else:
        assert direct_nick == prepped, (direct_nick, prepped)

    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    seq = phone.join_room(room, sent)

    if prepped is None:
        assert_session_error(seq, "presence", phone, direct_error)
        assert_nothing(room_traffic(carol, room), "the observer")
        assert not any(l.startswith(room + " ") for l in module_room_lines(server, ALICE)), module_rooms(server, ALICE)
        assert phone.join(room, "Alice").self_presence.get("to") == phone.full_jid  # no leftover state
        assert_serving(server, room, carol, phone)
        return
    selfs = [e for e in seq if is_presence(e) and 110 in status_codes(e)]
    assert len(selfs) == 1 and selfs[0].get("from") == f"{room}/{prepped}", summarize(seq)
    assert status_codes(selfs[0]) == {110}, summarize(seq)
    assert_account_is_the_occupant(server, room, prepped)
    arrived = presences_from(room_traffic(carol, room), f"{room}/{prepped}")
    assert len(arrived) == 1, summarize(arrived)

    carol.send(groupchat(room, "hello " + sent))
    for c in (carol, phone):
        c.expect(lambda e: is_groupchat(e, room, "hello " + sent), what="carol's groupchat")
    phone.send(groupchat(room, "from " + sent))
    for c in (carol, phone):
        got = c.expect(lambda e: is_groupchat(e, room, "from " + sent), what="the session's groupchat")
        assert got.get("from") == f"{room}/{prepped}", summarize([got])
    settle(room, carol, phone)

    laptop = connect("alice", "laptop")
    # The room's (prepped) nick, as a direct client would get: parse with it.
    late = parse_join_sequence(laptop.join_room(room, sent), room, prepped)
    assert status_codes(late.self_presence) == {110}, late
    assert [(h.get("from"), body(h)) for h in late.history] == [
        (f"{room}/Carol", "hello " + sent),
        (f"{room}/{prepped}", "from " + sent),
    ], late
    assert_nothing(room_traffic(carol, room), "the observer (a late session's join)")
    lines = [l for l in module_room_lines(server, ALICE) if l.startswith(room + " ")]
    assert len(lines) == 1 and f" as {prepped}: joined" in lines[0], lines
    assert_serving(server, room, carol, phone, laptop)


def test_unknown_payloads_in_presence_reach_the_room_and_break_nothing(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    unknown = f"<thing xmlns='{NS_UNKNOWN}' a='1'><inner xmlns='urn:example:other'>text</inner></thing>"

    phone.send(f"<presence to='{room}/Alice'><x xmlns='{NS_MUC}'><unknown-in-muc-x/></x>{unknown}</presence>")

    selfp = phone.expect(lambda e: is_presence(e, frm=f"{room}/Alice") and 110 in status_codes(e), what="self-presence")
    assert selfp.get("to") == phone.full_jid
    phone.expect(lambda e: from_room(e, room) and subject_text(e) is not None, what="subject")
    arrived = presences_from(room_traffic(carol, room), f"{room}/Alice")
    assert len(arrived) == 1 and arrived[0].find(q(NS_UNKNOWN, "thing")) is not None, summarize(arrived)

    other = f"<other xmlns='{NS_UNKNOWN}'/><status>with unknown</status>"
    phone.send(f"<presence to='{room}/Alice'>{other}</presence>")
    update = presences_from(room_traffic(carol, room), f"{room}/Alice")
    assert len(update) == 1 and update[0].find(q(NS_UNKNOWN, "other")) is not None, summarize(update)
    # An unknown presence type is no join, no leave: it never becomes the account's.
    phone.send(f"<presence to='{room}/Alice' type='bogus'>{unknown}</presence>")
    room_traffic(phone, room)
    assert_nothing(presences_from(room_traffic(carol, room), f"{room}/Alice"), "the observer (bogus presence type)")

    late = connect("alice", "laptop").join(room, "Alice")
    assert late.occupant_nicks() == ["Carol"], late
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone)
    no_kicks(carol, phone)


def test_message_without_id_to_an_occupant_and_to_the_room_is_delivered(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    phone.send(f"<message to='{room}/Carol' type='chat'><body>pm without id</body></message>")
    phone.send(f"<message to='{room}' type='groupchat'><body>groupchat without id</body></message>")

    pm = carol.expect(lambda e: is_message(e, frm=f"{room}/Alice", type="chat"), what="the PM")
    assert body(pm) == "pm without id", summarize([pm])
    carol.expect(lambda e: is_groupchat(e, room, "groupchat without id"), what="groupchat at carol")
    for s in (phone, laptop):
        gc = s.expect(lambda e: is_groupchat(e, room, "groupchat without id"), what="the reflection")
        assert gc.get("to") == s.full_jid, summarize([gc])
    errors = [e for c in (phone, laptop) for e in everything(c) if e.get("type") == "error"]
    assert errors == [], summarize(errors)
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone, laptop)


def test_iq_without_id_to_an_occupant_gets_bad_request_from_prosody(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol, phone)

    phone.send(f"<iq type='get' to='{room}/Carol'><query xmlns='{NS_VERSION}'/></iq>")

    got = [e for e in everything(phone) if is_iq(e)]
    assert_session_error(got, "iq", phone, "bad-request", stream_level=True)
    assert_nothing([e for e in everything(carol) if is_iq(e)], "the occupant")
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone)


def test_error_stanzas_from_a_joined_session_are_dropped_and_the_account_is_not_kicked(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    state_before = module_rooms(server, ALICE)
    # service-unavailable is a "kickable" error: the room removes an occupant sending it.
    err = f"<error type='cancel'><service-unavailable xmlns='{NS_STANZAS}'/></error>"
    for to in (room, f"{room}/Carol", f"{room}/Alice"):
        phone.send(f"<presence to='{to}' type='error' id='pe-{to}'>{err}</presence>")
        phone.send(f"<message to='{to}' type='error' id='me-{to}'>{err}</message>")
        phone.send(f"<iq to='{to}' type='error' id='ie-{to}'>{err}</iq>")
        laptop.send(f"<message to='{to}' type='error'>{err}</message>")  # without id too

    at_carol, at_phone, at_laptop = traffic(room, carol, phone, laptop, quiet=1.0)
    assert_nothing([e for e in at_carol if e.get("type") == "error" or is_presence(e, frm=f"{room}/Alice")], "the observer")
    assert_nothing([e for e in at_phone + at_laptop if is_presence(e)], "alice's sessions (presences)")
    assert_nothing([e for e in everything(carol) if e.get("type") == "error"], "the occupant (errors)")
    no_kicks(carol, phone, laptop)
    assert module_rooms(server, ALICE) == state_before
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone, laptop)
    phone.send(groupchat(room, "still in"))
    carol.expect(lambda e: is_groupchat(e, room, "still in") and e.get("from") == f"{room}/Alice")


@pytest.mark.parametrize("depth", [200, 1000])
def test_deeply_nested_payload_in_an_observers_groupchat_leaves_the_account_in_the_room(server, connect, room, depth):
    carol = observer_room(connect, room)
    erin = connect("erin", "phone")
    erin.join(room, "Erin")
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, erin, phone, laptop)

    carol.send(f"<message to='{room}' type='groupchat' id='deep'><body>deep</body>{nested(depth)}</message>")

    at_carol, at_erin, at_phone, at_laptop = traffic(room, carol, erin, phone, laptop, quiet=1.0)
    if carol.closed:
        # Prosody's parser may refuse the stanza and close the sender's stream: fine, as
        # long as everybody else carries on.
        assert_account_is_the_occupant(server, room, "Alice")
        assert_serving(server, room, erin, phone, laptop)
        return
    assert [e.get("id") for e in at_erin if is_groupchat(e, room)] == ["deep"], summarize(at_erin)
    # The account must stay: an unclaimed groupchat bounces and the room kicks for it (333).
    no_kicks(carol, erin, phone, laptop)
    assert_nothing(presences_from(at_carol + at_erin, f"{room}/Alice"), "the observers (Alice's presence)")
    assert_account_is_the_occupant(server, room, "Alice")
    # Like for a direct client, each joined session gets the message (a plain MUC delivers it).
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        msgs = [e for e in got if is_groupchat(e, room)]
        assert [e.get("id") for e in msgs] == ["deep"], f"{s}:\n{summarize(got)}"
        assert msgs[0].get("to") == s.full_jid, summarize(msgs)
        assert nesting_depth(msgs[0]) == depth, f"{s}: the payload arrived {nesting_depth(msgs[0])} deep, sent {depth}"
    assert_serving(server, room, erin, carol, phone, laptop)


def test_deeply_nested_payload_in_a_sessions_groupchat_breaks_nothing(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    phone.send(f"<message to='{room}' type='groupchat' id='deep-out'><body>deep</body>{nested(200)}</message>")

    at_carol, at_phone, at_laptop = traffic(room, carol, phone, laptop, quiet=1.0)
    no_kicks(carol, phone, laptop)
    assert_nothing(presences_from(at_carol, f"{room}/Alice"), "the observer (Alice's presence)")
    assert_account_is_the_occupant(server, room, "Alice")
    assert_nothing([e for e in at_laptop if is_presence(e)], "the other session (presences)")
    # As for a direct client: the message goes to the room from the account's nick, and each
    # joined session gets the room's reflection (the sender matches it by id).
    assert [e.get("id") for e in at_carol if is_groupchat(e, room)] == ["deep-out"], summarize(at_carol)
    assert at_carol[-1].get("from") == f"{room}/Alice", summarize(at_carol)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        msgs = [e for e in got if is_message(e)]
        assert [(e.get("type"), e.get("id")) for e in msgs] == [("groupchat", "deep-out")], f"{s}:\n{summarize(got)}"
    assert_serving(server, room, carol, phone, laptop)


def test_deeply_nested_payload_in_a_sessions_groupchat_reaches_the_room_intact(server, connect, room):
    """Transparency: what a joined session sends reaches the room as a direct client's
    would, payload and all (the room's own copy to the observer shows it)."""
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol, phone)

    phone.send(f"<message to='{room}' type='groupchat' id='deep-intact'><body>deep</body>{nested(200)}</message>")

    at_carol, at_phone = traffic(room, carol, phone, quiet=1.0)
    for who, got in (("the observer", at_carol), ("the sender's reflection", at_phone)):
        msgs = [e for e in got if is_groupchat(e, room) and e.get("id") == "deep-intact"]
        assert len(msgs) == 1, f"{who}:\n{summarize(got)}"
        assert nesting_depth(msgs[0]) == 200, f"{who}: the payload arrived {nesting_depth(msgs[0])} deep, sent 200"
    no_kicks(carol, phone)
    assert_serving(server, room, carol, phone)


@pytest.mark.parametrize("kind", ["join", "presence-update"])
def test_deeply_nested_payload_in_a_sessions_presence_never_makes_the_session_an_occupant(server, connect, room, kind):
    """A presence the module cannot take (nested deeper than its bridge converts) must not
    slip through to the room from the session's full JID: the room would then have the
    session itself as an occupant beside the account."""
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    asking = connect("alice", "tablet") if kind == "join" else laptop
    muc_x = f"<x xmlns='{NS_MUC}'/>" if kind == "join" else ""

    asking.send(f"<presence to='{room}/Alice'>{muc_x}<show>away</show>{nested(100)}</presence>")

    traffic(room, carol, phone, laptop, asking, quiet=1.0)
    assert_account_is_the_occupant(server, room, "Alice")
    no_kicks(carol, phone, laptop)
    assert_serving(server, room, carol, phone, laptop)


def test_groupchat_near_the_stanza_size_limit_reaches_each_joined_session_once(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    big = "x" * (200 * 1024)  # under c2s_stanza_size_limit (256 KiB on 0.12)

    carol.send(groupchat(room, big, id="big"))

    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room, quiet=1.0) if is_message(e)]
        assert [(e.get("id"), len(body(e) or "")) for e in got] == [("big", len(big))], f"{s}: {len(got)} messages"
    no_kicks(carol, phone, laptop)
    late = connect("alice", "tablet").join(room, "Alice", history={"maxstanzas": 5})
    assert [len(body(h) or "") for h in late.history] == [len(big)], late.history
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone, laptop)


def test_deeply_nested_payload_in_an_occupants_presence_reaches_only_joined_sessions(server, connect, room):
    carol = observer_room(connect, room)
    desk = connect("alice", "desk")  # available, never joins
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop, desk)

    carol.send(f"<presence to='{room}/Carol'><show>away</show>{nested(200)}</presence>")

    at_phone, at_laptop, at_desk = traffic(room, phone, laptop, desk, quiet=1.0)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        ups = presences_from(got, f"{room}/Carol")
        assert len(ups) == 1, f"{s}:\n{summarize(got)}"
        assert ups[0].get("to") == s.full_jid, f"{s}: not addressed to the session:\n{summarize(ups)}"
        # What a direct client gets: the presence as the room sent it.
        assert nesting_depth(ups[0]) == 200, f"{s}: the payload arrived {nesting_depth(ups[0])} deep, sent 200"
    assert_nothing(at_desk, "the session that never joined")
    no_kicks(carol, phone, laptop)
    assert_account_is_the_occupant(server, room, "Alice")
    assert_serving(server, room, carol, phone, laptop)

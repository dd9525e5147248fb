"""Live-Prosody scenarios for account-based joining and forking (issue 2).

Cast (see conftest.USERS): alice and dave use hosts WITH mod_minimix
(a.localhost, b.localhost); carol and erin are plain XEP-0045 observers on
obs.localhost. Carol always creates the room, so she is its owner and (as a
moderator) sees occupants' real JIDs even in the default semi-anonymous room.

Semantics under test: when a session of alice joins a room, the ACCOUNT
(alice@a.localhost) joins instead; room traffic is forked to the sessions
that joined, each re-addressed to the session's full JID; later sessions get
a replay from local state and the room sees nothing new. To each client it
must look like plain XEP-0045 (compare test_rig.py, which pins that
behaviour on a server without the module).
"""

from __future__ import annotations

import functools

import pytest

from conftest import jid_of
import scenario
from xmpp_client import (
    Client,
    body,
    delay,
    from_room,
    groupchat,
    is_groupchat,
    is_message,
    is_presence,
    is_stanza,
    muc_item,
    muc_items,
    muc_leave,
    room_config,
    status_codes,
    subject_change,
    subject_text,
    summarize,
)

QUIET = 0.7  # seconds without traffic that count as "nothing more is coming"

room_traffic = functools.partial(scenario.room_traffic, quiet=QUIET)
presences_from = scenario.presences_from
assert_nothing = scenario.assert_nothing


def observer_room(connect, room: str, subject: str | None = "Welcome") -> Client:
    """carol (an observer) creates ``room`` (owner) and sets a recognisable subject."""
    return scenario.owned_room(connect("carol", "observer"), room, "Carol", subject)
ALICE = jid_of("alice")
DAVE = jid_of("dave")


@pytest.fixture(autouse=True)
def no_new_lua_errors(server):
    """Each scenario must leave no Lua error/traceback in the Prosody log."""
    mark = server.log_mark()
    yield
    errors = server.log_errors(since=mark)
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


def assert_account_is_the_occupant(server, room: str, nick: str, account: str) -> None:
    """The defining property of the module: the room's occupant behind
    ``nick`` is the account's bare JID, and no session's full JID."""
    assert server.occupant_real_jids(room, nick) == [account], (
        f"room {room} has {server.occupant_real_jids(room, nick)} behind nick {nick}, expected only {account}"
    )


# ---------------------------------------------------------------------- first join


def test_first_session_gets_occupants_then_own_110_presence_then_subject(server, connect, room):
    observer_room(connect, room, subject="Welcome")
    phone = connect("alice", "phone")

    join = phone.join(room, "Alice")

    assert join.occupant_nicks() == ["Carol"], join
    assert join.self_presence.get("to") == phone.full_jid, join
    assert status_codes(join.self_presence) == {110}, join
    assert join.history == [], join
    assert subject_text(join.subject) == "Welcome", join
    assert {e.get("to") for e in join.raw} == {phone.full_jid}, join
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_room_sees_the_account_bare_jid_join_exactly_once(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")

    phone.join(room, "Alice")

    arrivals = presences_from(room_traffic(carol, room), f"{room}/Alice")
    assert len(arrivals) == 1, summarize(arrivals)
    assert arrivals[0].get("type") is None, summarize(arrivals)
    # carol is a moderator, so she sees the real JID: the account, not the session.
    assert [i.get("jid") for i in muc_items(arrivals[0])] == [ALICE], summarize(arrivals)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_non_anonymous_room_shows_the_account_bare_jid_to_every_occupant(server, connect, room):
    carol = observer_room(connect, room)
    carol.send(room_config(room, {"muc#roomconfig_whois": "anyone"}, id="cfg-whois"))
    assert carol.expect(lambda e: e.get("id") == "cfg-whois").get("type") == "result"
    erin = connect("erin", "phone")  # not a moderator: sees JIDs only because whois=anyone
    erin.join(room, "Erin")
    phone = connect("alice", "phone")

    join = phone.join(room, "Alice")

    assert status_codes(join.self_presence) == {100, 110}, join
    arrivals = presences_from(room_traffic(erin, room), f"{room}/Alice")
    assert len(arrivals) == 1, summarize(arrivals)
    assert [i.get("jid") for i in muc_items(arrivals[0])] == [ALICE], summarize(arrivals)


def test_session_whose_account_creates_the_room_gets_110_and_201(server, connect, room):
    phone = connect("alice", "phone")

    join = phone.join(room, "Alice")

    assert join.occupants == [], join
    assert status_codes(join.self_presence) >= {110, 201}, join
    assert join.self_presence.get("to") == phone.full_jid
    assert subject_text(join.subject) == "", join
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


# ---------------------------------------------------------------------- addressing


def test_everything_a_session_receives_is_addressed_to_its_full_jid(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    phone.join(room, "Alice")
    erin = connect("erin", "phone")
    erin.join(room, "Erin")
    phone.expect(lambda e: is_presence(e, frm=f"{room}/Erin"), what="erin joins")
    carol.send(groupchat(room, "to everyone"))
    phone.expect(lambda e: is_groupchat(e, room, "to everyone"))
    carol.send(subject_change(room, "New topic"))
    phone.expect(lambda e: from_room(e, room) and subject_text(e) == "New topic")
    erin.send(muc_leave(f"{room}/Erin"))
    left = phone.expect(lambda e: is_presence(e, frm=f"{room}/Erin", type="unavailable"), what="erin leaves")
    assert left.get("to") == phone.full_jid
    room_traffic(phone, room)

    stanzas = [e for e in phone.received if is_stanza(e)]
    to_bare = [e for e in stanzas if e.get("to") == ALICE]
    assert to_bare == [], "stanzas addressed to the bare JID:\n" + summarize(to_bare)
    from_the_room = [e for e in stanzas if from_room(e, room)]
    wrong = [e for e in from_the_room if e.get("to") != phone.full_jid]
    assert wrong == [], summarize(wrong)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


# ---------------------------------------------------------------------- second session


def test_second_session_gets_occupants_then_own_110_presence_last_then_subject(server, connect, room):
    carol = observer_room(connect, room, subject="Replay me")
    phone = connect("alice", "phone")
    first = phone.join(room, "Alice")
    room_traffic(carol, room)
    laptop = connect("alice", "laptop")

    join = laptop.join(room, "Alice")

    assert join.occupant_nicks() == ["Carol"], join  # never itself as "another occupant"
    assert join.self_presence.get("from") == f"{room}/Alice"
    assert join.self_presence.get("to") == laptop.full_jid
    assert status_codes(join.self_presence) == status_codes(first.self_presence) == {110}, join
    own, orig = muc_item(join.self_presence), muc_item(first.self_presence)
    assert (own.get("affiliation"), own.get("role")) == (orig.get("affiliation"), orig.get("role")), join
    assert subject_text(join.subject) == "Replay me", join
    assert {e.get("to") for e in join.raw} == {laptop.full_jid}, join
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_second_session_join_is_invisible_to_the_room_and_to_the_first_session(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    phone.join(room, "Alice")
    room_traffic(carol, room)
    room_traffic(phone, room)
    laptop = connect("alice", "laptop")

    laptop.join(room, "Alice")

    assert_nothing(room_traffic(carol, room), "the observer")
    assert_nothing(room_traffic(phone, room), "the first session")
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_second_session_replay_has_history_between_own_presence_and_subject(server, connect, room):
    carol = observer_room(connect, room, subject="With history")
    phone = connect("alice", "phone")
    phone.join(room, "Alice")
    for text in ("first", "second"):
        carol.send(groupchat(room, text))
        phone.expect(lambda e, t=text: is_groupchat(e, room, t))
    laptop = connect("alice", "laptop")

    join = laptop.join(room, "Alice")

    assert [body(h) for h in join.history] == ["first", "second"], join
    assert all(h.get("from") == f"{room}/Carol" for h in join.history), join
    assert all(delay(h) is not None for h in join.history), join
    assert subject_text(join.subject) == "With history", join
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


# ---------------------------------------------------------------------- forking


def test_observer_groupchat_reaches_each_joined_session_once_and_unjoined_session_nothing(server, connect, room):
    desk = connect("alice", "desk")  # available (initial presence) but never joins
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    laptop = connect("alice", "laptop")
    phone.join(room, "Alice")
    laptop.join(room, "Alice")

    carol.send(groupchat(room, "hello alice", id="obs-1"))

    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert is_groupchat(got[0], room, "hello alice")
        assert got[0].get("from") == f"{room}/Carol"
        assert got[0].get("to") == s.full_jid
        assert got[0].get("id") == "obs-1"
    desk.collect(QUIET)
    assert_nothing([e for e in desk.received if is_stanza(e) and from_room(e, room)], "the unjoined session")
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_session_groupchat_comes_from_the_account_nick_and_reflects_to_each_session_once(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    laptop = connect("alice", "laptop")
    phone.join(room, "Alice")
    laptop.join(room, "Alice")
    room_traffic(carol, room)

    phone.send(groupchat(room, "from the phone", id="phone-1"))

    at_carol = [e for e in room_traffic(carol, room) if is_message(e)]
    assert len(at_carol) == 1, summarize(at_carol)
    assert at_carol[0].get("from") == f"{room}/Alice"
    assert body(at_carol[0]) == "from the phone"
    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert is_groupchat(got[0], room, "from the phone")
        assert got[0].get("from") == f"{room}/Alice"
        assert got[0].get("to") == s.full_jid
        assert got[0].get("id") == "phone-1"  # clients match their reflection by id
    errors = [e for e in phone.drain() if is_stanza(e) and e.get("type") == "error"]
    assert errors == [], summarize(errors)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


# ---------------------------------------------------------------------- two hosts


def test_accounts_on_two_virtual_hosts_keep_separate_state(server, connect, room):
    carol = observer_room(connect, room)
    alice_phone = connect("alice", "phone")
    alice_phone.join(room, "Alice")
    dave_phone = connect("dave", "phone")

    dave_join = dave_phone.join(room, "Dave")

    assert sorted(dave_join.occupant_nicks()) == ["Alice", "Carol"], dave_join
    assert dave_join.self_presence.get("to") == dave_phone.full_jid
    dave_seen_by_alice = presences_from(room_traffic(alice_phone, room), f"{room}/Dave")
    assert len(dave_seen_by_alice) == 1, summarize(dave_seen_by_alice)
    assert 110 not in status_codes(dave_seen_by_alice[0])
    assert dave_seen_by_alice[0].get("to") == alice_phone.full_jid
    dave_seen_by_carol = presences_from(room_traffic(carol, room), f"{room}/Dave")
    assert [i.get("jid") for e in dave_seen_by_carol for i in muc_items(e)] == [DAVE], summarize(dave_seen_by_carol)
    room_traffic(dave_phone, room)

    dave_laptop = connect("dave", "laptop")
    dave_replay = dave_laptop.join(room, "Dave")
    assert sorted(dave_replay.occupant_nicks()) == ["Alice", "Carol"], dave_replay
    assert dave_replay.self_presence.get("from") == f"{room}/Dave"
    assert dave_replay.self_presence.get("to") == dave_laptop.full_jid

    alice_laptop = connect("alice", "laptop")
    alice_replay = alice_laptop.join(room, "Alice")
    assert sorted(alice_replay.occupant_nicks()) == ["Carol", "Dave"], alice_replay
    assert alice_replay.self_presence.get("from") == f"{room}/Alice"

    # Neither account's second session leaked to anyone.
    for c in (carol, alice_phone, dave_phone):
        assert_nothing(room_traffic(c, room), c)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)
    assert_account_is_the_occupant(server, room, "Dave", DAVE)


# ---------------------------------------------------------------------- staying in the room


def test_room_traffic_does_not_get_the_account_kicked(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone")
    phone.join(room, "Alice")
    room_traffic(carol, room)

    texts = [f"message {i}" for i in range(5)]
    for t in texts:
        carol.send(groupchat(room, t))
    carol.send(subject_change(room, "Still here?"))

    got = room_traffic(phone, room, quiet=1.0)
    assert [body(e) for e in got if is_groupchat(e, room)] == texts, summarize(got)
    assert [subject_text(e) for e in got if from_room(e, room) and subject_text(e) is not None] == ["Still here?"]
    assert_nothing([e for e in got if is_presence(e)], "alice's session")

    at_carol = room_traffic(carol, room, quiet=1.0)
    assert_nothing([e for e in at_carol if is_presence(e, frm=f"{room}/Alice")], "the observer")
    kicks = [e for e in carol.received + phone.received if 333 in status_codes(e)]
    assert kicks == [], summarize(kicks)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)

    # And the account still takes part.
    phone.send(groupchat(room, "still here"))
    carol.expect(lambda e: is_groupchat(e, room, "still here") and e.get("from") == f"{room}/Alice")


def test_prosody_logged_no_tracebacks_or_errors(server):
    errors = server.log_errors()
    assert errors == [], "\n".join(errors)

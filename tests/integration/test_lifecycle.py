"""Live-Prosody scenarios for the lifecycle of an account's membership (issue 3).

Cast (see conftest.USERS): alice (and bob) use a.localhost WITH mod_minimix;
carol and erin are plain XEP-0045 observers on obs.localhost. Carol always
creates the room, so she is its owner and a moderator: she kicks, bans,
configures and destroys, and she sees exactly what the room does.

Semantics under test: the ACCOUNT is the occupant, its sessions come and go.
A session leaving while others stay is answered locally; the last one leaving
makes the account leave; a session that merely disconnects leaves the account
in the room, shown "away from all devices". Kicks, bans and destruction reach
every joined session and drop the module's state; join errors reach only the
session that asked; nick changes and presence updates look to each client
exactly like plain XEP-0045, while the room sees one aggregated presence.
"""

from __future__ import annotations

import functools

import time
from xml.sax.saxutils import escape, quoteattr

import pytest

from conftest import Connector, _start, jid_of
import scenario
from xmpp_client import (
    NS_CLIENT,
    NS_MUC_OWNER,
    NS_MUC_USER,
    Client,
    body,
    error_condition,
    groupchat,
    is_groupchat,
    is_message,
    is_presence,
    muc_item,
    muc_join,
    muc_leave,
    muc_user_x,
    q,
    room_config,
    status_codes,
    subject_text,
    summarize,
)

QUIET = 0.4  # seconds without traffic that count as "nothing more is coming"

traffic = functools.partial(scenario.traffic, quiet=QUIET)
room_traffic = functools.partial(scenario.room_traffic, quiet=QUIET)
settle = functools.partial(scenario.settle, quiet=QUIET)
presences_from = scenario.presences_from
assert_nothing = scenario.assert_nothing


def observer_room(connect, room: str, subject: str | None = "Welcome") -> Client:
    """carol (an observer) creates ``room`` (owner) and sets a recognisable subject."""
    return scenario.owned_room(connect("carol", "observer"), room, "Carol", subject)
ALICE = jid_of("alice")
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"


@pytest.fixture(autouse=True)
def no_new_lua_errors(server):
    """Each scenario must leave no Lua error/traceback in the Prosody log."""
    mark = server.log_mark()
    yield
    errors = server.log_errors(since=mark)
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


# ---------------------------------------------------------------------- helpers


def joined(connect, room: str, *resources: str, nick: str = "Alice") -> list[Client]:
    """One session of alice per resource, each joined to ``room`` as ``nick``."""
    sessions = []
    for r in resources:
        s = connect("alice", r)
        s.join(room, nick)
        sessions.append(s)
    return sessions


def presence_update(room_nick: str, show: str | None = None) -> str:
    """A presence to an occupant JID without <x xmlns=muc>: a status update or nick change."""
    inner = f"<show>{escape(show)}</show>" if show else ""
    return f"<presence to={quoteattr(room_nick)}>{inner}</presence>"


def admin_item(**attrs: str) -> str:
    """muc#admin query payload with one <item/> (reason given as ``reason=``)."""
    reason = attrs.pop("reason", None)
    a = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    inner = f"<reason>{escape(reason)}</reason>" if reason else ""
    return f"<query xmlns='{NS_MUC_ADMIN}'><item{a}>{inner}</item></query>"


def admin_set(owner: Client, room: str, **attrs: str) -> None:
    reply = owner.iq(admin_item(**attrs), to=room, type="set")
    assert reply.get("type") == "result", summarize([reply])


def configure(owner: Client, room: str, fields: dict) -> None:
    owner.send(room_config(room, fields, id="cfg-" + room))
    reply = owner.expect(lambda e: e.get("id") == "cfg-" + room, what="config result")
    assert reply.get("type") == "result", summarize([reply])


def show_of(el) -> str | None:
    s = el.find(q(NS_CLIENT, "show"))
    return None if s is None else (s.text or "")


def assert_account_is_the_occupant(server, room: str, nick: str) -> None:
    assert server.occupant_real_jids(room, nick) == [ALICE], (
        f"room {room} has {server.occupant_real_jids(room, nick)} behind {nick}, expected only {ALICE}"
    )


def assert_not_in_room(server, room: str, nick: str) -> None:
    jids = server.occupant_real_jids(room, nick)
    assert not jids, f"room {room} still lists {jids} behind {nick}"


def assert_self_unavailable(els, room_nick: str, session: Client, codes: set[int]) -> object:
    """``els`` (one session's room traffic) is exactly one unavailable self-presence
    from ``room_nick`` to the session, carrying at least ``codes`` (110 included)."""
    assert len(els) == 1, f"{session}: expected exactly one self-unavailable:\n{summarize(els)}"
    el = els[0]
    assert is_presence(el, frm=room_nick, to=session.full_jid, type="unavailable"), summarize(els)
    assert status_codes(el) >= codes | {110}, summarize(els)
    return el


def assert_join_refused(seq, room_nick: str, session: Client, condition: str) -> None:
    """The join sequence is nothing but one presence error for the session that asked."""
    assert len(seq) == 1, f"{session}: expected only a presence error:\n{summarize(seq)}"
    err = seq[0]
    assert is_presence(err, frm=room_nick, to=session.full_jid, type="error"), summarize(seq)
    assert error_condition(err) == condition, summarize(seq)


# ---------------------------------------------------------------------- leaving


def test_session_leaving_while_another_stays_gets_self_unavailable_and_the_room_sees_nothing(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone)

    laptop.send(muc_leave(f"{room}/Alice"))

    at_laptop, at_carol, at_phone = traffic(room, laptop, carol, phone)
    assert_self_unavailable(at_laptop, f"{room}/Alice", laptop, {110})
    assert_nothing(at_carol, "the observer")
    assert_nothing(at_phone, "the session that stays")
    assert_account_is_the_occupant(server, room, "Alice")

    carol.send(groupchat(room, "after the laptop left"))
    at_phone, at_laptop = traffic(room, phone, laptop)
    assert [body(e) for e in at_phone if is_groupchat(e, room)] == ["after the laptop left"], summarize(at_phone)
    assert_nothing(at_laptop, "the session that left")


def test_last_session_leaving_makes_the_account_leave_and_a_later_join_works(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol)

    phone.send(muc_leave(f"{room}/Alice"))

    at_phone, at_carol = traffic(room, phone, carol)
    assert_self_unavailable(at_phone, f"{room}/Alice", phone, {110})
    seen = presences_from(at_carol, f"{room}/Alice")
    assert len(seen) == 1 and seen[0].get("type") == "unavailable", summarize(at_carol)
    assert_not_in_room(server, room, "Alice")

    again = phone.join(room, "Alice")
    assert again.occupant_nicks() == ["Carol"], again
    assert again.self_presence.get("to") == phone.full_jid, again
    back = presences_from(room_traffic(carol, room), f"{room}/Alice")
    assert len(back) == 1 and back[0].get("type") is None, summarize(back)
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- disconnecting


@pytest.mark.parametrize("ending", ["close", "kill"])
def test_last_session_ending_without_leaving_keeps_the_account_in_the_room_shown_xa(server, connect, room, ending):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol)

    getattr(phone, ending)()  # close(): </stream:stream>; kill(): TCP dropped, no SM

    seen = room_traffic(carol, room)
    assert len(seen) == 1, f"expected one presence update for Alice:\n{summarize(seen)}"
    assert is_presence(seen[0], frm=f"{room}/Alice", type="available"), summarize(seen)
    assert show_of(seen[0]) == "xa", summarize(seen)
    assert_account_is_the_occupant(server, room, "Alice")

    # Room traffic with no session joined must not get the account kicked (a bounce would).
    carol.send(groupchat(room, "while you were away"))
    after = room_traffic(carol, room)
    assert [body(e) for e in after if is_groupchat(e, room)] == ["while you were away"], summarize(after)
    assert_nothing(presences_from(after, f"{room}/Alice"), "the observer")
    assert_account_is_the_occupant(server, room, "Alice")


def test_new_session_after_a_disconnect_gets_the_replay_and_the_room_sees_alice_available_again(server, connect, room):
    carol = observer_room(connect, room, subject="Still here")
    (phone,) = joined(connect, room, "phone")
    settle(room, carol)
    phone.close()
    away = room_traffic(carol, room)
    assert [show_of(e) for e in presences_from(away, f"{room}/Alice")] == ["xa"], summarize(away)
    laptop = connect("alice", "laptop")

    join = laptop.join(room, "Alice")

    assert join.occupant_nicks() == ["Carol"], join
    assert join.self_presence.get("to") == laptop.full_jid, join
    assert status_codes(join.self_presence) == {110}, join
    assert show_of(join.self_presence) is None, f"the laptop is available, not away:\n{join}"
    assert subject_text(join.subject) == "Still here", join
    at_carol, extra = traffic(room, carol, laptop)
    assert len(at_carol) == 1, f"expected one presence update for Alice:\n{summarize(at_carol)}"
    assert is_presence(at_carol[0], frm=f"{room}/Alice", type="available"), summarize(at_carol)
    assert show_of(at_carol[0]) is None, summarize(at_carol)
    # The room's reflection of that update, if forwarded, is the laptop's own current presence.
    for e in extra:
        assert is_presence(e, frm=f"{room}/Alice", to=laptop.full_jid, type="available"), summarize(extra)
        assert show_of(e) is None and 110 in status_codes(e), summarize(extra)
    assert_account_is_the_occupant(server, room, "Alice")


def test_session_disconnecting_while_another_stays_joined_changes_nothing_anyone_sees(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone)

    laptop.kill()

    at_carol, at_phone = traffic(room, carol, phone)
    assert_nothing(at_carol, "the observer")
    assert_nothing(at_phone, "the session that stays")
    carol.send(groupchat(room, "still reaching the phone"))
    got = room_traffic(phone, room)
    assert [body(e) for e in got if is_groupchat(e, room)] == ["still reaching the phone"], summarize(got)
    assert_account_is_the_occupant(server, room, "Alice")


def test_session_hibernating_after_a_lost_connection_stays_joined_and_gets_the_traffic_on_resume(server, connect, room):
    carol = observer_room(connect, room)
    phone = connect("alice", "phone", sm=True)
    phone.join(room, "Alice")
    settle(room, carol)

    phone.kill()  # with XEP-0198 resumption the server hibernates the session

    assert_nothing(room_traffic(carol, room), "the observer (the session is only hibernating)")
    carol.send(groupchat(room, "while hibernating"))
    resumed = connect("alice", "phone", resume=phone)
    got = room_traffic(resumed, room)
    assert [body(e) for e in got if is_groupchat(e, room)] == ["while hibernating"], summarize(got)
    assert all(e.get("to") == phone.full_jid for e in got), summarize(got)
    assert_nothing(presences_from(room_traffic(carol, room), f"{room}/Alice"), "the observer")
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- other occupants


def test_others_joining_changing_presence_and_leaving_reach_every_joined_session_and_the_replay(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    erin = connect("erin", "phone")

    def each_session_gets_one(nick: str, type: str, show: str | None = None) -> None:
        for s, got in zip((phone, laptop), traffic(room, phone, laptop)):
            assert len(got) == 1, f"{s}: " + summarize(got)
            assert is_presence(got[0], frm=f"{room}/{nick}", to=s.full_jid, type=type), summarize(got)
            assert show_of(got[0]) == show, summarize(got)

    erin.join(room, "Erin")
    each_session_gets_one("Erin", "available")

    carol.send(presence_update(f"{room}/Carol", show="away"))
    each_session_gets_one("Carol", "available", show="away")

    erin.send(muc_leave(f"{room}/Erin"))
    each_session_gets_one("Erin", "unavailable")

    tablet = connect("alice", "tablet")
    replay = tablet.join(room, "Alice")
    assert replay.occupant_nicks() == ["Carol"], replay
    assert show_of(replay.occupants[0]) == "away", replay
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- kick, ban, destroy


def test_kick_reaches_every_joined_session_with_307_and_then_the_session_is_a_non_occupant(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    admin_set(carol, room, nick="Alice", role="none", reason="bye")

    at_carol, *at_sessions = traffic(room, carol, phone, laptop)
    for s, got in zip((phone, laptop), at_sessions):
        el = assert_self_unavailable(got, f"{room}/Alice", s, {307})
        item = muc_item(el)
        assert item is not None and item.get("role") == "none", summarize([el])
        reason = item.find(q(NS_MUC_USER, "reason"))
        assert reason is not None and reason.text == "bye", summarize([el])
    kicked = presences_from(at_carol, f"{room}/Alice")
    assert len(kicked) == 1 and 307 in status_codes(kicked[0]), summarize(at_carol)
    assert_not_in_room(server, room, "Alice")

    phone.send(groupchat(room, "am I still here?", id="after-kick"))
    refused, at_carol = traffic(room, phone, carol)
    assert len(refused) == 1, summarize(refused)
    assert is_message(refused[0], frm=room, to=phone.full_jid, type="error"), summarize(refused)
    assert refused[0].get("id") == "after-kick", summarize(refused)
    assert error_condition(refused[0]) == "not-acceptable", summarize(refused)
    assert_nothing(at_carol, "the observer")

    rejoin = laptop.join(room, "Alice")
    assert rejoin.occupant_nicks() == ["Carol"], rejoin
    assert rejoin.self_presence.get("to") == laptop.full_jid, rejoin
    at_carol, at_phone = traffic(room, carol, phone)
    back = presences_from(at_carol, f"{room}/Alice")
    assert len(back) == 1 and back[0].get("type") is None, summarize(at_carol)
    assert_nothing(at_phone, "the kicked session that did not rejoin")
    assert_account_is_the_occupant(server, room, "Alice")


def test_ban_reaches_every_joined_session_with_301_and_a_rejoin_is_forbidden_until_unbanned(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    admin_set(carol, room, jid=ALICE, affiliation="outcast", reason="go away")

    _, *at_sessions = traffic(room, carol, phone, laptop)
    for s, got in zip((phone, laptop), at_sessions):
        el = assert_self_unavailable(got, f"{room}/Alice", s, {301})
        item = muc_item(el)
        assert item is not None and item.get("affiliation") == "outcast", summarize([el])
    assert_not_in_room(server, room, "Alice")

    assert_join_refused(phone.join_room(room, "Alice"), f"{room}/Alice", phone, "forbidden")
    at_laptop, at_carol = traffic(room, laptop, carol)
    assert_nothing(at_laptop, "the session that did not ask")
    assert_nothing(at_carol, "the observer")

    admin_set(carol, room, jid=ALICE, affiliation="none")
    join = phone.join(room, "Alice")
    assert join.self_presence.get("to") == phone.full_jid, join
    assert_account_is_the_occupant(server, room, "Alice")


def test_room_destruction_reaches_every_joined_session_with_destroy_and_110(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    reply = carol.iq(f"<query xmlns='{NS_MUC_OWNER}'><destroy><reason>closing</reason></destroy></query>", to=room, type="set")
    assert reply.get("type") == "result", summarize([reply])

    for s, got in zip((phone, laptop), traffic(room, phone, laptop)):
        el = assert_self_unavailable(got, f"{room}/Alice", s, {110})
        destroy = muc_user_x(el).find(q(NS_MUC_USER, "destroy"))
        assert destroy is not None, summarize([el])
        reason = destroy.find(q(NS_MUC_USER, "reason"))
        assert reason is not None and reason.text == "closing", summarize([el])

    # Nothing of the old room blocks a later join: it creates the room afresh.
    again = phone.join(room, "Alice")
    assert again.occupants == [], again
    assert status_codes(again.self_presence) >= {110, 201}, again
    assert_nothing(room_traffic(laptop, room), "the session that did not rejoin")
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- join errors


def test_nick_conflict_error_reaches_only_the_session_that_asked_and_a_later_join_works(server, connect, room):
    carol = observer_room(connect, room)
    desk = connect("alice", "desk")  # available, never joins
    phone = connect("alice", "phone")

    assert_join_refused(phone.join_room(room, "Carol"), f"{room}/Carol", phone, "conflict")
    at_carol, at_desk = traffic(room, carol, desk)
    assert_nothing(at_carol, "the observer")
    assert_nothing(at_desk, "the session that did not ask")

    join = phone.join(room, "Alice")
    assert join.occupant_nicks() == ["Carol"], join
    assert join.self_presence.get("to") == phone.full_jid, join
    assert_account_is_the_occupant(server, room, "Alice")


def test_password_protected_room_refuses_a_join_without_password_and_accepts_one_with_it(server, connect, room):
    carol = observer_room(connect, room)
    configure(carol, room, {"muc#roomconfig_passwordprotectedroom": True, "muc#roomconfig_roomsecret": "s3cret"})
    phone = connect("alice", "phone")

    assert_join_refused(phone.join_room(room, "Alice"), f"{room}/Alice", phone, "not-authorized")
    assert_not_in_room(server, room, "Alice")

    join = phone.join(room, "Alice", password="s3cret")
    assert join.occupant_nicks() == ["Carol"], join
    assert join.self_presence.get("to") == phone.full_jid, join
    assert_account_is_the_occupant(server, room, "Alice")


def test_members_only_room_refuses_a_non_member_with_registration_required_and_accepts_a_member(server, connect, room):
    carol = observer_room(connect, room)
    configure(carol, room, {"muc#roomconfig_membersonly": True})
    settle(room, carol)
    phone = connect("alice", "phone")

    assert_join_refused(phone.join_room(room, "Alice"), f"{room}/Alice", phone, "registration-required")
    assert_nothing(room_traffic(carol, room), "the observer")

    admin_set(carol, room, jid=ALICE, affiliation="member")
    join = phone.join(room, "Alice")
    assert join.self_presence.get("to") == phone.full_jid, join
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- nicks


def test_nick_change_from_one_session_is_one_change_for_the_room_and_every_session_sees_303(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    phone.send(presence_update(f"{room}/Alicia"))

    at_carol, *at_sessions = traffic(room, carol, phone, laptop)
    seen = [e for e in at_carol if is_presence(e)]
    assert len(seen) == 2, f"expected one nick change (303, then the new nick):\n{summarize(seen)}"
    assert is_presence(seen[0], frm=f"{room}/Alice", type="unavailable") and 303 in status_codes(seen[0]), summarize(seen)
    assert muc_item(seen[0]).get("nick") == "Alicia", summarize(seen)
    assert is_presence(seen[1], frm=f"{room}/Alicia", type="available"), summarize(seen)
    for s, got in zip((phone, laptop), at_sessions):
        assert len(got) == 2, f"{s}: expected 303 then the new self-presence:\n{summarize(got)}"
        old, new = got
        assert is_presence(old, frm=f"{room}/Alice", to=s.full_jid, type="unavailable"), summarize(got)
        assert status_codes(old) >= {303, 110}, summarize(got)
        assert muc_item(old).get("nick") == "Alicia", summarize(got)
        assert is_presence(new, frm=f"{room}/Alicia", to=s.full_jid, type="available"), summarize(got)
        assert 110 in status_codes(new) and 303 not in status_codes(new), summarize(got)
    assert_account_is_the_occupant(server, room, "Alicia")
    assert_not_in_room(server, room, "Alice")


def test_nick_change_to_a_taken_nick_gives_conflict_only_to_the_asking_session_and_keeps_the_nick(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    laptop.send(presence_update(f"{room}/Carol"))

    got, at_phone, at_carol = traffic(room, laptop, phone, carol)
    assert len(got) == 1, summarize(got)
    assert is_presence(got[0], frm=f"{room}/Carol", to=laptop.full_jid, type="error"), summarize(got)
    assert error_condition(got[0]) == "conflict", summarize(got)
    assert_nothing(at_phone, "the session that did not ask")
    assert_nothing(at_carol, "the observer")
    assert_account_is_the_occupant(server, room, "Alice")

    laptop.send(groupchat(room, "same nick"))
    msg = carol.expect(lambda e: is_groupchat(e, room, "same nick"), what="groupchat after the refused nick change")
    assert msg.get("from") == f"{room}/Alice"


def test_session_joining_with_another_nick_gets_the_account_nick_with_210_and_the_room_sees_nothing(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol, phone)
    laptop = connect("alice", "laptop")

    seq = laptop.join_room(room, "Alicia")

    selfs = [e for e in seq if is_presence(e) and 110 in status_codes(e)]
    assert len(selfs) == 1, summarize(seq)
    assert is_presence(selfs[0], frm=f"{room}/Alice", to=laptop.full_jid, type="available"), summarize(seq)
    assert status_codes(selfs[0]) == {110, 210}, summarize(seq)
    assert subject_text(seq[-1]) == "Welcome", summarize(seq)
    at_carol, at_phone = traffic(room, carol, phone)
    assert_nothing(at_carol, "the observer")
    assert_nothing(at_phone, "the other session")
    assert_account_is_the_occupant(server, room, "Alice")
    assert_not_in_room(server, room, "Alicia")


# ---------------------------------------------------------------------- aggregated presence


def test_room_sees_one_update_per_change_of_the_accounts_aggregated_presence(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol)
    laptop = connect("alice", "laptop")

    def alice_updates():
        at_carol, _, _ = traffic(room, carol, phone, laptop)  # sessions' reflections are not under test
        return presences_from(at_carol, f"{room}/Alice")

    laptop.send(muc_join(f"{room}/Alice", show="away"))
    assert_nothing(alice_updates(), "the observer (laptop joins away while the phone is available)")

    phone.send(presence_update(f"{room}/Alice", show="dnd"))
    seen = alice_updates()
    assert len(seen) == 1 and show_of(seen[0]) == "dnd", summarize(seen)

    phone.send(presence_update(f"{room}/Alice", show="dnd"))
    assert_nothing(alice_updates(), "the observer (same dnd again)")

    laptop.send(presence_update(f"{room}/Alice", show="chat"))
    seen = alice_updates()
    assert len(seen) == 1 and show_of(seen[0]) == "chat", summarize(seen)
    assert seen[0].get("type") is None, summarize(seen)
    assert_account_is_the_occupant(server, room, "Alice")


# ---------------------------------------------------------------------- minimix_leave_after


@pytest.fixture
def leave_after_server(module_dir):
    """Private server whose a.localhost has ``minimix_leave_after = 2``."""
    srv = _start(with_module=True, module_dir=module_dir, host_extra={"a.localhost": "  minimix_leave_after = 2"})
    conn = Connector(srv)
    yield srv, conn
    conn.close_all()
    srv.cleanup()


def test_with_leave_after_the_account_leaves_two_seconds_after_its_last_session_disconnects(leave_after_server, room):
    srv, connect = leave_after_server
    mark = srv.log_mark()
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone")
    settle(room, carol)

    phone.close()
    gone_at = time.monotonic()

    away = carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice"), timeout=2, what="Alice's away presence")
    assert away.get("type") is None and show_of(away) == "xa", summarize([away])
    left = carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice"), timeout=6, what="Alice leaving")
    waited = time.monotonic() - gone_at
    assert left.get("type") == "unavailable", summarize([left])
    assert 1.5 <= waited <= 6, f"the account left after {waited:.1f}s, expected about 2s"
    assert_not_in_room(srv, room, "Alice")
    assert_nothing(room_traffic(carol, room), "the observer (after the leave)")

    again = connect("alice", "laptop").join(room, "Alice")
    assert again.occupant_nicks() == ["Carol"], again
    errors = srv.log_errors(since=mark)
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)

"""Remote rooms over real s2s (issue 9, and the remote half of issue 5).

Two Prosody servers on loopback (``s2s_pair.py``): alice's account lives on the
server WITH mod_minimix; the room lives on ``rooms.remote.localhost``, served by
another Prosody that knows nothing of the module, reached over s2s with dialback.
frank and grace are plain XEP-0045 clients of the remote server: they see what
the room does, so "the room saw exactly one leave" is asserted on frank's stream.

Against a local MUC the room answers inside the module's own ``module:send``;
here every answer comes later, in another turn of the event loop, after a trip
over a TCP connection that may be slow, break, or lead to a server that restarted.
"""

from __future__ import annotations

import functools

import time
from xml.sax.saxutils import quoteattr

import pytest

from conftest import start_s2s_pair
import scenario
from s2s_pair import LOCAL_HOST
from xmpp_client import (
    NS_MUC_USER,
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
    muc_item,
    muc_items,
    muc_leave,
    q,
    room_config,
    status_codes,
    subject_text,
    summarize,
    to_xml,
)

QUIET = 0.5  # seconds without traffic that count as "nothing more is coming"
ALICE = f"alice@{LOCAL_HOST}"
NS_VERSION = "jabber:iq:version"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"

traffic = functools.partial(scenario.traffic, quiet=QUIET)
presences_from = scenario.presences_from
assert_nothing = scenario.assert_nothing
wait_for = scenario.wait_for
archived_bodies = scenario.archived_bodies
remote_owned_room = scenario.remote_owned_room
joined = scenario.remote_joined
assert_account_is_the_occupant = functools.partial(scenario.assert_remote_occupant, account=ALICE)
assert_not_in_room = scenario.assert_no_remote_occupant


@pytest.fixture(autouse=True)
def no_new_errors(request):
    """No Lua error or traceback in either server's log during the scenario."""
    pair = None
    for name in ("s2s_pair", "fresh_s2s_pair", "pinging_pair"):
        if name in request.fixturenames:
            pair = request.getfixturevalue(name)
    marks = pair.log_marks() if pair else {}
    yield
    if pair:
        errors = pair.log_errors(marks)
        assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


@pytest.fixture
def pinging_pair(module_dir):
    """A private pair whose accounts self-ping their rooms every second (XEP-0410)."""
    pair = start_s2s_pair(module_dir, local_extra="minimix_ping_interval = 1")
    yield pair
    pair.cleanup()


# ---------------------------------------------------------------------- helpers


def assert_self_unavailable(els, room_nick: str, session: Client, codes: set[int]):
    assert len(els) == 1, f"{session}: expected exactly one self-unavailable:\n{summarize(els)}"
    el = els[0]
    assert is_presence(el, frm=room_nick, to=session.full_jid, type="unavailable"), summarize(els)
    assert status_codes(el) >= codes | {110}, summarize(els)
    return el


def configure(owner: Client, room: str, fields: dict) -> None:
    owner.send(room_config(room, fields, id="cfg-" + room))
    reply = owner.expect(lambda e: e.get("id") == "cfg-" + room, what="config result")
    assert reply.get("type") == "result", summarize([reply])


def at_the_start_of_a_second() -> None:
    """Waits until just after the wall clock's next whole second (both servers share it):
    what follows within the next few hundred milliseconds is stamped with one second."""
    time.sleep(1.02 - time.time() % 1)


def stamp_second(el) -> str:
    """The whole second of a history message's XEP-0203 stamp (0.12 stamps whole seconds,
    13's archive adds a fraction)."""
    d = delay(el)
    assert d is not None, to_xml(el)
    return d.get("stamp")[:19]


# ---------------------------------------------------------------------- joining


def test_join_completes_only_when_the_remote_room_answers_and_is_sent_once(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = pair.client("alice", "phone"), pair.client("alice", "laptop")

    pair.remote.pause()  # the room's server is reachable but does not answer
    try:
        phone.send(f"<presence to={quoteattr(room + '/Alice')}><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        laptop.send(f"<presence to={quoteattr(room + '/Alice')}><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        early = traffic(room, phone, laptop, quiet=1.0)
    finally:
        pair.remote.resume()
    assert_nothing(early[0], "the phone before the room answered")
    assert_nothing(early[1], "the laptop before the room answered")

    for s in (phone, laptop):
        seq = []
        while not seq or not is_subject_or_error(seq[-1], room):
            seq.append(s.expect(lambda e: is_stanza(e) and from_room(e, room), 10, f"join sequence at {s}"))
        presences = [e for e in seq if is_presence(e)]
        assert [e.get("from") for e in presences] == [f"{room}/Frank", f"{room}/Alice"], summarize(seq)
        assert 110 in status_codes(presences[-1]) and presences[-1].get("to") == s.full_jid, summarize(seq)
        assert subject_text(seq[-1]) == "Far away", summarize(seq)
        assert {e.get("to") for e in seq} == {s.full_jid}, summarize(seq)
    arrivals = presences_from(traffic(room, frank)[0], f"{room}/Alice")
    assert len(arrivals) == 1 and arrivals[0].get("type") is None, summarize(arrivals)
    # frank owns the room, so he sees the real JID: the account, never a session.
    assert [i.get("jid") for i in muc_items(arrivals[0])] == [ALICE], summarize(arrivals)
    assert_account_is_the_occupant(pair, room)


def is_subject_or_error(el, room: str) -> bool:
    return (is_message(el, type="groupchat") and subject_text(el) is not None and body(el) is None) or is_presence(
        el, type="error"
    )


def test_join_refused_by_the_remote_room_reaches_the_session_as_its_error(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    configure(frank, room, {"muc#roomconfig_passwordprotectedroom": True, "muc#roomconfig_roomsecret": "sesame"})
    phone = pair.client("alice", "phone")

    seq = phone.join_room(room, "Alice", timeout=10)

    assert len(seq) == 1 and is_presence(seq[0], to=phone.full_jid, type="error"), summarize(seq)
    assert error_condition(seq[0]) == "not-authorized", summarize(seq)
    assert_not_in_room(pair, room)
    again = phone.join(room, "Alice", timeout=10, password="sesame")
    assert again.self_presence.get("to") == phone.full_jid, again
    assert_account_is_the_occupant(pair, room)


# ---------------------------------------------------------------------- forking


def test_remote_groupchat_is_forked_to_each_joined_session_once_and_to_no_other(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    desk = pair.client("alice", "desk")  # available, never joins
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop, desk)

    frank.send(groupchat(room, "hello from afar", id="far-1"))

    _, at_phone, at_laptop, at_desk = traffic(room, frank, phone, laptop, desk)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert is_groupchat(got[0], room, "hello from afar"), summarize(got)
        assert got[0].get("from") == f"{room}/Frank" and got[0].get("to") == s.full_jid, summarize(got)
        assert got[0].get("id") == "far-1", summarize(got)
    assert_nothing(at_desk, "the session that never joined")

    phone.send(groupchat(room, "hello back", id="back-1"))

    at_frank, at_phone, at_laptop = traffic(room, frank, phone, laptop)
    assert [(e.get("from"), body(e)) for e in at_frank] == [(f"{room}/Alice", "hello back")], summarize(at_frank)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert is_groupchat(got[0], room, "hello back") and got[0].get("id") == "back-1", summarize(got)
        assert got[0].get("from") == f"{room}/Alice" and got[0].get("to") == s.full_jid, summarize(got)
    assert_account_is_the_occupant(pair, room)


def test_late_session_gets_occupants_history_and_subject_from_local_state_even_while_the_remote_is_silent(
    s2s_pair, remote_room
):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room, subject="Replayed")
    grace = pair.client("grace", "observer")
    grace.join(room, "Grace")
    (phone,) = joined(pair, room, "phone")
    for text in ("first", "second"):
        frank.send(groupchat(room, text))
        phone.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
    traffic(room, frank, grace, phone)
    laptop = pair.client("alice", "laptop")

    pair.remote.pause()  # nothing can come from the room now: the replay is local
    try:
        join = laptop.join(room, "Alice", timeout=5)
    finally:
        pair.remote.resume()

    assert sorted(join.occupant_nicks()) == ["Frank", "Grace"], join
    assert join.self_presence.get("to") == laptop.full_jid and 110 in status_codes(join.self_presence), join
    assert [body(h) for h in join.history] == ["first", "second"], join
    assert all(h.get("from") == f"{room}/Frank" and delay(h) is not None for h in join.history), join
    assert subject_text(join.subject) == "Replayed", join
    at_frank, at_grace, at_phone = traffic(room, frank, grace, phone)
    assert_nothing(at_frank, "the room's owner")
    assert_nothing(at_grace, "another occupant")
    assert_nothing(at_phone, "the session already joined")
    assert_account_is_the_occupant(pair, room)


# ---------------------------------------------------------------------- leaving, nick, kick


def test_one_session_leaving_is_local_and_the_last_one_makes_the_room_see_exactly_one_leave(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop)

    laptop.send(muc_leave(f"{room}/Alice"))

    at_laptop, at_frank, at_phone = traffic(room, laptop, frank, phone)
    assert_self_unavailable(at_laptop, f"{room}/Alice", laptop, {110})
    assert_nothing(at_frank, "the remote observer")
    assert_nothing(at_phone, "the session that stays")
    assert_account_is_the_occupant(pair, room)

    phone.send(muc_leave(f"{room}/Alice"))

    at_phone, at_frank, at_laptop = traffic(room, phone, frank, laptop)
    assert_self_unavailable(at_phone, f"{room}/Alice", phone, {110})
    left = presences_from(at_frank, f"{room}/Alice")
    assert len(left) == 1 and left[0].get("type") == "unavailable", summarize(at_frank)
    assert_nothing(at_laptop, "the session that left first")
    assert_not_in_room(pair, room)

    frank.send(groupchat(room, "anyone?"))
    at_phone, at_laptop = traffic(room, phone, laptop)
    assert_nothing(at_phone, "a session after the account left")
    assert_nothing(at_laptop, "a session after the account left")


def test_nick_change_is_one_change_for_the_remote_room_and_every_session_sees_303(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop)

    phone.send(f"<presence to={quoteattr(room + '/Alicia')}/>")

    at_frank, *at_sessions = traffic(room, frank, phone, laptop)
    seen = [e for e in at_frank if is_presence(e)]
    assert len(seen) == 2, f"expected one nick change (303, then the new nick):\n{summarize(seen)}"
    assert is_presence(seen[0], frm=f"{room}/Alice", type="unavailable") and 303 in status_codes(seen[0]), summarize(seen)
    assert is_presence(seen[1], frm=f"{room}/Alicia", type="available"), summarize(seen)
    for s, got in zip((phone, laptop), at_sessions):
        assert len(got) == 2, f"{s}: expected 303 then the new self-presence:\n{summarize(got)}"
        old, new = got
        assert is_presence(old, frm=f"{room}/Alice", to=s.full_jid, type="unavailable"), summarize(got)
        assert status_codes(old) >= {303, 110} and muc_item(old).get("nick") == "Alicia", summarize(got)
        assert is_presence(new, frm=f"{room}/Alicia", to=s.full_jid, type="available"), summarize(got)
        assert 110 in status_codes(new), summarize(got)
    assert_account_is_the_occupant(pair, room, "Alicia")
    assert_not_in_room(pair, room, "Alice")


def test_kick_by_the_remote_moderator_reaches_every_joined_session_and_ends_the_membership(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop)

    reply = frank.iq(
        f"<query xmlns='{NS_MUC_ADMIN}'><item nick='Alice' role='none'><reason>out</reason></item></query>",
        to=room,
        type="set",
    )
    assert reply.get("type") == "result", to_xml(reply)

    at_frank, *at_sessions = traffic(room, frank, phone, laptop)
    for s, got in zip((phone, laptop), at_sessions):
        el = assert_self_unavailable(got, f"{room}/Alice", s, {307})
        reason = muc_item(el).find(q(NS_MUC_USER, "reason"))
        assert reason is not None and reason.text == "out", summarize(got)
    kicked = presences_from(at_frank, f"{room}/Alice")
    assert len(kicked) == 1 and 307 in status_codes(kicked[0]), summarize(at_frank)
    assert_not_in_room(pair, room)

    frank.send(groupchat(room, "after the kick"))
    at_phone, at_laptop = traffic(room, phone, laptop)
    assert_nothing(at_phone, "a kicked session")
    assert_nothing(at_laptop, "a kicked session")


# ---------------------------------------------------------------------- private messages and iq


def test_private_messages_cross_s2s_both_ways_and_reach_only_joined_sessions(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    desk = pair.client("alice", "desk")
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop, desk)

    frank.send(f"<message type='chat' to={quoteattr(room + '/Alice')} id='pm-in'><body>psst alice</body></message>")

    _, at_phone, at_laptop, at_desk = traffic(room, frank, phone, laptop, desk)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        pms = [e for e in got if is_message(e, type="chat")]
        assert len(pms) == 1 and body(pms[0]) == "psst alice", f"{s}: " + summarize(got)
        assert pms[0].get("from") == f"{room}/Frank" and pms[0].get("to") == s.full_jid, summarize(got)
    assert_nothing(at_desk, "the session that never joined")

    phone.send(f"<message type='chat' to={quoteattr(room + '/Frank')} id='pm-out'><body>psst frank</body></message>")

    pm = frank.expect(lambda e: is_message(e, type="chat") and body(e) == "psst frank", 10, "alice's PM")
    assert pm.get("from") == f"{room}/Alice" and pm.get("to") == frank.full_jid, to_xml(pm)
    errors = [e for e in traffic(room, phone)[0] if e.get("type") == "error"]
    assert_nothing(errors, "the sending session (errors)")
    assert_account_is_the_occupant(pair, room)


def test_iqs_to_and_from_occupants_are_routed_to_the_right_session(s2s_pair, remote_room):
    pair, room = s2s_pair, remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, phone, laptop)

    # A session asks a remote occupant; the answer comes back to that session only.
    phone.send(f"<iq type='get' to={quoteattr(room + '/Frank')} id='v-out'><query xmlns='{NS_VERSION}'/></iq>")
    req = frank.expect(lambda e: is_iq(e, type="get") and e.find(q(NS_VERSION, "query")) is not None, 10, "version request")
    assert req.get("from") == f"{room}/Alice", to_xml(req)
    frank.send(
        f"<iq type='result' to={quoteattr(room + '/Alice')} id={quoteattr(req.get('id'))}>"
        f"<query xmlns='{NS_VERSION}'><name>frank-client</name></query></iq>"
    )
    res = phone.expect(lambda e: is_iq(e, id="v-out"), 10, "answer to v-out")
    assert res.get("type") == "result" and res.get("from") == f"{room}/Frank", to_xml(res)
    assert res.findtext(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}") == "frank-client", to_xml(res)
    assert_nothing([e for e in laptop.collect(QUIET) if is_iq(e)], "the other joined session")

    # A remote occupant asks the account's nick: one joined session answers.
    frank.send(f"<iq type='get' to={quoteattr(room + '/Alice')} id='v-in'><query xmlns='{NS_VERSION}'/></iq>")
    got = {s: [e for e in s.collect(QUIET * 2) if is_iq(e)] for s in (phone, laptop)}
    asked = [s for s, els in got.items() if els]
    assert len(asked) == 1 and len(got[asked[0]]) == 1, {str(s): summarize(els) for s, els in got.items()}
    session, asked_req = asked[0], got[asked[0]][0]
    assert asked_req.get("from") == f"{room}/Frank" and asked_req.get("to") == session.full_jid, to_xml(asked_req)
    session.send(
        f"<iq type='result' to={quoteattr(room + '/Frank')} id={quoteattr(asked_req.get('id'))}>"
        f"<query xmlns='{NS_VERSION}'><name>alice-client</name></query></iq>"
    )
    answer = frank.expect(lambda e: is_iq(e, id="v-in"), 10, "answer to v-in")
    assert answer.get("type") == "result" and answer.get("from") == f"{room}/Alice", to_xml(answer)
    assert answer.findtext(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}") == "alice-client", to_xml(answer)
    assert_account_is_the_occupant(pair, room)


# ---------------------------------------------------------------------- restarts


def test_remote_server_crash_the_self_ping_notices_and_the_account_rejoins_without_sessions_seeing_a_leave(
    pinging_pair, remote_room
):
    pair, room = pinging_pair, remote_room
    frank = remote_owned_room(pair, room, subject="Survives")
    configure(frank, room, {"muc#roomconfig_persistentroom": True})
    grace = pair.client("grace", "observer")
    grace.join(room, "Grace")
    phone, laptop = joined(pair, room, "phone", "laptop")
    traffic(room, frank, grace, phone, laptop)
    assert_account_is_the_occupant(pair, room)

    pair.remote.crash()
    pair.remote.start()
    # The persistent room came back from disk, without its occupants.
    assert_not_in_room(pair, room)

    # The account's next self-ping gets not-acceptable; it rejoins by itself.
    wait_for(lambda: pair.remote.occupant_real_jids(room, "Alice") == [ALICE], 20, "the account back in the room")
    at_phone, at_laptop = traffic(room, phone, laptop, quiet=1.5)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        # No leave, no second self-presence, no repeated subject: only that the others
        # (whose sessions died with the server, unannounced) are gone.
        assert sorted((e.get("from"), e.get("type")) for e in got) == [
            (f"{room}/Frank", "unavailable"),
            (f"{room}/Grace", "unavailable"),
        ], f"{s}: " + summarize(got)
        assert all(e.get("to") == s.full_jid for e in got), summarize(got)

    frank = pair.client("frank", "again")
    join = frank.join(room, "Frank", timeout=10)
    assert join.occupant_nicks() == ["Alice"], join
    frank.send(groupchat(room, "you are back"))
    _, at_phone, at_laptop = traffic(room, frank, phone, laptop)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert [(e.get("from"), e.get("type")) for e in got if is_presence(e)] == [(f"{room}/Frank", None)], summarize(got)
        assert [body(e) for e in got if is_groupchat(e, room)] == ["you are back"], f"{s}: " + summarize(got)
    desk = pair.client("alice", "desk")
    late = desk.join(room, "Alice", timeout=10)
    assert late.occupant_nicks() == ["Frank"], late
    assert subject_text(late.subject) == "Survives", late
    assert_account_is_the_occupant(pair, room)


def test_quiet_local_restart_keeps_the_account_in_the_remote_room_with_at_most_one_presence_update(
    fresh_s2s_pair, remote_room
):
    pair, room = fresh_s2s_pair, remote_room
    frank = remote_owned_room(pair, room, subject="Kept")
    (phone,) = joined(pair, room, "phone")
    frank.send(groupchat(room, "older"))
    phone.expect(lambda e: is_groupchat(e, room, "older"), 10)
    time.sleep(3)
    for text in ("before-1", "before-2"):
        frank.send(groupchat(room, text))
        phone.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
    traffic(room, frank)

    pair.local.restart()

    # The account is back on its own: the room sees at most one presence update (the
    # account shown away, no session being online), never a leave or a new join.
    at_frank = presences_from(traffic(room, frank, quiet=1.5)[0], f"{room}/Alice")
    assert len(at_frank) <= 1, summarize(at_frank)
    assert all(e.get("type") is None and not status_codes(e) - {100} for e in at_frank), summarize(at_frank)
    assert_account_is_the_occupant(pair, room)

    laptop = pair.client("alice", "laptop")
    join = laptop.join(room, "Alice", timeout=10)

    # The rejoin asked for history from a little before the last message heard (the room
    # stamps whole seconds): before-1 and before-2 came back once, as this session's
    # history; "older" (long before) was not asked for, as a full-history rejoin would.
    assert [body(h) for h in join.history] == ["before-1", "before-2"], join
    assert join.occupant_nicks() == ["Frank"], join
    assert subject_text(join.subject) == "Kept", join
    back = presences_from(traffic(room, frank)[0], f"{room}/Alice")
    assert len(back) <= 1 and all(e.get("type") is None for e in back), summarize(back)
    frank.send(groupchat(room, "after the restart"))
    got = [body(e) for e in traffic(room, laptop)[0] if is_groupchat(e, room)]
    assert got == ["after the restart"], got
    assert_account_is_the_occupant(pair, room)


def test_local_restart_after_traffic_in_the_outage_rejoins_asking_for_the_history_it_missed(
    fresh_s2s_pair, remote_room
):
    pair, room = fresh_s2s_pair, remote_room
    frank = remote_owned_room(pair, room, subject="Kept")
    (phone,) = joined(pair, room, "phone")
    for text in ("before-1", "before-2"):
        frank.send(groupchat(room, text))
        phone.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
    traffic(room, frank)

    pair.local.stop()
    for text in ("missed-1", "missed-2"):
        frank.send(groupchat(room, text))
        frank.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
    # The remote room could not deliver to the stopped server: it removed the account
    # itself (Prosody's MUC drops an occupant whose server bounces, status 333).
    gone = presences_from(traffic(room, frank, quiet=1.0)[0], f"{room}/Alice")
    assert len(gone) == 1 and gone[0].get("type") == "unavailable" and 333 in status_codes(gone[0]), summarize(gone)

    pair.local.start()

    wait_for(lambda: pair.remote.occupant_real_jids(room, "Alice") == [ALICE], 10, "the account back in the room")
    back = presences_from(traffic(room, frank)[0], f"{room}/Alice")
    assert len(back) == 1 and back[0].get("type") is None, summarize(back)
    laptop = pair.client("alice", "laptop")
    join = laptop.join(room, "Alice", timeout=10)
    # What the account heard last came back once with what it missed (the rejoin asks from
    # a little before the last message heard); nothing twice.
    assert [body(h) for h in join.history] == ["before-1", "before-2", "missed-1", "missed-2"], join
    assert join.occupant_nicks() == ["Frank"], join
    assert subject_text(join.subject) == "Kept", join
    assert_account_is_the_occupant(pair, room)


@pytest.mark.parametrize("room_ids", [True, False], ids=["room-stanza-ids", "no-room-ids"])
def test_a_local_restart_loses_nothing_sent_in_the_last_heard_second_and_repeats_nothing(
    module_dir, remote_room, room_ids
):
    """The room stamps history with whole seconds. Messages sent in the same second right
    before the last one the account heard, and right after it while the server is down,
    are each in a later session's history and in the account's archive exactly once. With
    ``room_ids`` the room adds its XEP-0359 stanza-id (muc_mam); without, the replays are
    recognised by their content."""
    pair = start_s2s_pair(module_dir, local_mam=True, remote_mam=room_ids)
    try:
        room = remote_room
        frank = remote_owned_room(pair, room, subject="Kept")
        (phone,) = joined(pair, room, "phone")
        frank.send(groupchat(room, "older"))
        phone.expect(lambda e: is_groupchat(e, room, "older"), 10)

        at_the_start_of_a_second()
        started = time.time()
        for text in ("before-1", "before-2"):
            frank.send(groupchat(room, text))
            phone.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
        # The server shuts down (it saves what it heard and closes its streams at once);
        # the room goes on in the same second.
        pair.local.begin_stop()
        time.sleep(0.1)
        frank.send(groupchat(room, "missed-1"))
        frank.expect(lambda e: is_groupchat(e, room, "missed-1"), 10)
        same_second = int(time.time()) == int(started)
        pair.local.stop()
        time.sleep(1.1)
        frank.send(groupchat(room, "missed-2"))
        frank.expect(lambda e: is_groupchat(e, room, "missed-2"), 10)
        # (The account may first be shown away, its session having gone with the server.)
        at_frank = presences_from(traffic(room, frank, quiet=1.0)[0], f"{room}/Alice")
        gone = [e for e in at_frank if e.get("type") == "unavailable"]
        assert len(gone) == 1 and 333 in status_codes(gone[0]), summarize(at_frank)

        pair.local.start()
        wait_for(lambda: pair.remote.occupant_real_jids(room, "Alice") == [ALICE], 10, "the account back in the room")
        traffic(room, frank)
        laptop = pair.client("alice", "laptop")
        join = laptop.join(room, "Alice", timeout=10)
        expected = ["older", "before-1", "before-2", "missed-1", "missed-2"]
        assert [body(h) for h in join.history] == expected, join
        # The scenario did happen: missed-1 was stamped in before-2's second.
        stamps = {body(h): stamp_second(h) for h in join.history}
        assert same_second and stamps["missed-1"] == stamps["before-2"], (same_second, stamps)
        assert archived_bodies(laptop, room) == expected
        frank.send(groupchat(room, "after"))
        got = [body(e) for e in traffic(room, laptop)[0] if is_groupchat(e, room)]
        assert got == ["after"], got
        assert archived_bodies(laptop, room) == expected + ["after"]
        assert pair.log_errors() == []
    finally:
        pair.cleanup()


def test_a_quiet_rejoin_after_the_remote_restarts_repeats_nothing_to_joined_sessions_nor_in_the_archive(
    module_dir, remote_room
):
    """The remote server restarts; the room (persistent, muc_mam) keeps its history on disk
    but forgets its occupants. The self-ping notices and the account rejoins, asking for
    history from a little before the last message it heard: the joined sessions get only
    what they missed, once; a later session's history and the archive have each once."""
    pair = start_s2s_pair(module_dir, local_extra="minimix_ping_interval = 1", local_mam=True, remote_mam=True)
    try:
        room = remote_room
        frank = remote_owned_room(pair, room, subject="Survives")
        configure(frank, room, {"muc#roomconfig_persistentroom": True})
        phone, laptop = joined(pair, room, "phone", "laptop")
        at_the_start_of_a_second()
        for text in ("before-1", "before-2"):
            frank.send(groupchat(room, text))
            for s in (phone, laptop):
                s.expect(lambda e, t=text: is_groupchat(e, room, t), 10)
        traffic(room, frank, phone, laptop)

        pair.remote.crash()
        pair.remote.start()
        frank = pair.client("frank", "again")
        frank.join(room, "Frank", timeout=10)
        frank.send(groupchat(room, "while-out"))
        wait_for(lambda: pair.remote.occupant_real_jids(room, "Alice") == [ALICE], 20, "the account back in the room")
        frank.send(groupchat(room, "after"))
        at_phone, at_laptop = traffic(room, phone, laptop, quiet=1.5)
        for s, got in ((phone, at_phone), (laptop, at_laptop)):
            # Whether "while-out" came live or as history of the rejoin: once, and nothing
            # heard before comes again.
            assert [body(e) for e in got if is_groupchat(e, room) and body(e)] == ["while-out", "after"], f"{s}: " + summarize(got)

        desk = pair.client("alice", "desk")
        join = desk.join(room, "Alice", timeout=10)
        expected = ["before-1", "before-2", "while-out", "after"]
        assert [body(h) for h in join.history] == expected, join
        assert archived_bodies(desk, room) == expected
        assert pair.log_errors() == []
    finally:
        pair.cleanup()


def test_a_quiet_rejoin_does_not_hand_a_session_again_what_it_got_from_the_archive(module_dir, remote_room):
    """phone hears "old" (its join's history; archived), leaves, and joins again at once asking
    for no history; laptop joins asking for history and gets "old" from the archive. The remote
    restarts and forgets its occupants; the quiet rejoin asks for history from a little before
    the last thing the account heard (the subject of phone's second join), so the room replays
    "old". laptop already had it and does not get it again; the archive keeps one copy."""
    pair = start_s2s_pair(module_dir, local_extra="minimix_ping_interval = 1", local_mam=True, remote_mam=True)
    try:
        room = remote_room
        frank = remote_owned_room(pair, room, subject="Survives")
        configure(frank, room, {"muc#roomconfig_persistentroom": True})
        phone = pair.client("alice", "phone")
        at_the_start_of_a_second()
        frank.send(groupchat(room, "old"))
        frank.expect(lambda e: is_groupchat(e, room, "old"), 10)
        assert [body(h) for h in phone.join(room, "Alice", timeout=10).history] == ["old"]
        phone.send(muc_leave(f"{room}/Alice"))
        phone.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), 10)
        assert phone.join(room, "Alice", timeout=10, history={"maxstanzas": 0}).history == []
        laptop = pair.client("alice", "laptop")
        assert [body(h) for h in laptop.join(room, "Alice", timeout=10).history] == ["old"]
        traffic(room, frank, phone, laptop)

        pair.remote.crash()
        pair.remote.start()
        wait_for(lambda: pair.remote.occupant_real_jids(room, "Alice") == [ALICE], 20, "the account back in the room")
        frank = pair.client("frank", "again")
        frank.join(room, "Frank", timeout=10)
        frank.send(groupchat(room, "after"))
        at_phone, at_laptop = traffic(room, phone, laptop, quiet=1.5)
        assert [body(e) for e in at_laptop if is_groupchat(e, room) and body(e)] == ["after"], summarize(at_laptop)
        # The room did replay "old": phone, which asked for no history, gets it once (nothing
        # heard since its join shows that "old" came before it; README, Known issues).
        assert [body(e) for e in at_phone if is_groupchat(e, room) and body(e)] == ["old", "after"], summarize(at_phone)
        assert archived_bodies(laptop, room) == ["old", "after"]
        assert pair.log_errors() == []
    finally:
        pair.cleanup()


def test_prosody_logged_no_errors_on_either_server(s2s_pair):
    assert s2s_pair.log_errors() == []

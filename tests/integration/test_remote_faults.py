"""Remote rooms when things go wrong over real s2s (issues 8 and 9).

The two-server rig of ``s2s_pair.py``: alice's account on the server WITH
mod_minimix, rooms on ``rooms.remote.localhost`` served by another Prosody.
frank and grace are plain clients of the remote server; paul is a plain client
of the module's own server (``plain.a.localhost``, no module): what paul gets
over the same s2s link is what a directly joined client gets, so "each session
sees what a direct client would" is asserted against his stream.

* a join the frozen remote never answers times out; the room's late answer to
  it reaches nobody, bounces nothing, and a new join (even one sent before the
  late answer arrives) completes normally;
* a room on a domain that does not exist: Prosody's own s2s error, to the
  asking session only;
* a stranger on the room's server cannot make anything look like room traffic
  (Prosody stamps ``from`` on c2s and checks it on s2s);
* the remote owner destroys the room; the remote server shuts down cleanly and
  comes back.
"""

from __future__ import annotations

import functools

import re
import time

import pytest

from conftest import start_s2s_pair
from s2s_pair import LOCAL_HOST, PLAIN_HOST, REMOTE_MUC, S2SPair
import scenario
from xmpp_client import (
    NS_MUC_USER,
    NS_STANZAS,
    Client,
    body,
    error_condition,
    from_room,
    groupchat,
    is_groupchat,
    is_message,
    is_presence,
    is_stanza,
    muc_join,
    muc_user_x,
    q,
    status_codes,
    subject_text,
    summarize,
    to_xml,
)

QUIET = 0.5  # seconds without traffic that count as "nothing more is coming"

traffic = functools.partial(scenario.traffic, quiet=QUIET)
presences_from = scenario.presences_from
assert_nothing = scenario.assert_nothing
wait_for = scenario.wait_for
remote_owned_room = scenario.remote_owned_room
joined = functools.partial(scenario.remote_joined, timeout=10)


JOIN_TIMEOUT = 2  # minimix_join_timeout on the module's server
ALICE = f"alice@{LOCAL_HOST}"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"

assert_account_is_the_occupant = functools.partial(scenario.assert_remote_occupant, account=ALICE)
assert_not_in_room = scenario.assert_no_remote_occupant


@pytest.fixture(scope="module")
def pair(module_dir):
    """One pair for the file: short join timeout, self-pings every second."""
    p = start_s2s_pair(module_dir, local_extra=f"minimix_join_timeout = {JOIN_TIMEOUT}\nminimix_ping_interval = 1")
    yield p
    p.cleanup()


@pytest.fixture(autouse=True)
def no_new_errors(pair):
    """No Lua error or traceback in either server's log during the scenario; clients closed after."""
    marks = pair.log_marks()
    yield
    pair.close_clients()
    errors = pair.log_errors(marks)
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


# ---------------------------------------------------------------------- helpers


def everything(client: Client, quiet: float = QUIET) -> list:
    """Every stanza that reaches ``client`` until it has been quiet for ``quiet`` seconds."""
    return [e for e in client.collect(quiet=quiet) if is_stanza(e)]


def module_rooms(pair: S2SPair) -> str:
    return pair.local.shell(f"minimix:rooms('{ALICE}')")



def error_of(el):
    return el.find(q("jabber:client", "error"))


def send_join(session: Client, room: str, nick: str = "Alice") -> None:
    session.send(muc_join(f"{room}/{nick}"))


def join_sequence(session: Client, room: str, timeout: float = 10) -> list:
    """The rest of a join's answer at ``session``: up to the subject or an error."""
    seq = []
    while not seq or not (subject_text(seq[-1]) is not None and body(seq[-1]) is None or is_presence(seq[-1], type="error")):
        seq.append(session.expect(lambda e: is_stanza(e) and from_room(e, room), timeout, f"join sequence at {session}"))
    return seq


# ---------------------------------------------------------------------- 1. join timeout


def freeze_and_time_out(pair: S2SPair, room: str, *sessions: Client) -> None:
    """With the remote frozen, each session asks to join and gets remote-server-timeout from
    room/Alice, addressed to its full JID; the remote stays frozen (the caller resumes it)."""
    pair.remote.pause()
    for s in sessions:
        send_join(s, room)
    for s in sessions:
        err = s.expect(lambda e: is_stanza(e) and from_room(e, room), JOIN_TIMEOUT + 8, f"the join's end at {s}")
        assert is_presence(err, frm=f"{room}/Alice", to=s.full_jid, type="error"), to_xml(err)
        assert error_condition(err) == "remote-server-timeout", to_xml(err)
        assert error_of(err).get("type") == "wait", to_xml(err)


def test_join_to_a_frozen_remote_times_out_for_each_session_and_its_late_answer_reaches_nobody(pair, remote_room):
    room = remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop, desk = (pair.client("alice", r) for r in ("phone", "laptop", "desk"))
    everything(desk)

    try:
        freeze_and_time_out(pair, room, phone, laptop)
    finally:
        pair.remote.resume()

    # The room gets the join after all; the module answers its late "you are in" with a leave.
    at_frank, at_phone, at_laptop, at_desk = traffic(room, frank, phone, laptop, desk, quiet=1.5)
    seen = presences_from(at_frank, f"{room}/Alice")
    assert [e.get("type") for e in seen] == [None, "unavailable"], summarize(at_frank)
    for s, got in ((phone, at_phone), (laptop, at_laptop), (desk, at_desk)):
        # Not the occupants, not a self-presence, not the subject, not the leave: a session
        # told the join failed never hears of that join again.
        assert_nothing(got, f"{s} after the timed-out join")
    assert_not_in_room(pair, room)
    assert "0 room(s)" in module_rooms(pair), module_rooms(pair)
    # Nothing of the late answer bounced back at the room (a bounce would be a kick, 333).
    assert_nothing([e for e in at_frank if 333 in status_codes(e)], "the room's owner (kicks)")

    # A new join works, with the room's current state, for the session that asks only.
    join = phone.join(room, "Alice", timeout=10)
    assert join.occupant_nicks() == ["Frank"], join
    assert join.self_presence.get("to") == phone.full_jid and 110 in status_codes(join.self_presence), join
    assert subject_text(join.subject) == "Far away", join
    _, at_laptop, at_desk = traffic(room, frank, laptop, desk)
    assert_nothing(at_laptop, "the session that did not ask again")
    assert_nothing(at_desk, "the session that never asked")
    assert_account_is_the_occupant(pair, room)


def test_a_join_sent_again_before_the_late_answer_arrives_completes_once_and_the_account_stays(pair, remote_room):
    room = remote_room
    frank = remote_owned_room(pair, room)
    phone, desk = pair.client("alice", "phone"), pair.client("alice", "desk")
    everything(desk)

    try:
        freeze_and_time_out(pair, room, phone)
        send_join(phone, room)  # the user tries again at once: it waits for the join in flight
        time.sleep(0.3)
    finally:
        pair.remote.resume()

    seq = join_sequence(phone, room)
    presences = [e for e in seq if is_presence(e)]
    assert [e.get("from") for e in presences] == [f"{room}/Frank", f"{room}/Alice"], summarize(seq)
    assert 110 in status_codes(presences[-1]) and subject_text(seq[-1]) == "Far away", summarize(seq)
    at_frank, at_phone, at_desk = traffic(room, frank, phone, desk, quiet=1.5)
    # The account's join that timed out is still in flight: the new request waits for it
    # instead of sending another, so the room sees one join and no leave.
    assert_nothing(at_phone, "the session after its join completed")
    assert_nothing(at_desk, "the session that never asked")
    seen = [(e.get("type"), sorted(status_codes(e))) for e in presences_from(at_frank, f"{room}/Alice")]
    assert seen == [(None, [])], summarize(at_frank)
    assert_account_is_the_occupant(pair, room)

    frank.send(groupchat(room, "still there?"))
    got = traffic(room, phone)[0]
    assert [body(e) for e in got if is_groupchat(e, room)] == ["still there?"], summarize(got)


# ---------------------------------------------------------------------- 2. no such domain


def test_a_room_on_a_domain_that_does_not_resolve_gets_prosodys_s2s_error_at_the_asking_session_only(pair, remote_room):
    nowhere = "room@conference.nowhere.invalid"
    phone, desk, paul = pair.client("alice", "phone"), pair.client("alice", "desk"), pair.client("paul", "direct")
    everything(desk)

    direct = paul.join_room(nowhere, "Paul", timeout=15)
    seq = phone.join_room(nowhere, "Alice", timeout=15)

    # What Prosody tells a plain client: its s2s layer bounces the join, cancel /
    # remote-server-not-found, with the resolver's reason as text.
    assert len(direct) == 1 and error_condition(direct[0]) == "remote-server-not-found", summarize(direct)
    assert len(seq) == 1, summarize(seq)
    err = seq[0]
    assert is_presence(err, frm=f"{nowhere}/Alice", to=phone.full_jid, type="error"), summarize(seq)
    assert error_condition(err) == "remote-server-not-found", summarize(seq)
    assert error_of(err).get("type") == error_of(direct[0]).get("type") == "cancel", summarize(seq + direct)
    # 0.12 says which server gave up ("by" the account's domain); 13 does not.
    by = (error_of(err).get("by"), error_of(direct[0]).get("by"))
    assert by in ((LOCAL_HOST, PLAIN_HOST), (None, None)), summarize(seq + direct)
    text = error_of(err).findtext(q(NS_STANZAS, "text"))
    assert text and text == error_of(direct[0]).findtext(q(NS_STANZAS, "text")), summarize(seq + direct)
    assert_nothing([e for e in everything(desk) if from_room(e, nowhere)], "the session that did not ask")
    assert nowhere not in module_rooms(pair), module_rooms(pair)

    # A later join elsewhere works.
    frank = remote_owned_room(pair, remote_room)
    join = phone.join(remote_room, "Alice", timeout=10)
    assert join.occupant_nicks() == ["Frank"], join
    assert_account_is_the_occupant(pair, remote_room)
    traffic(remote_room, frank)


# ---------------------------------------------------------------------- 3. spoofing over s2s


def replay_summary(join) -> tuple:
    return (
        sorted(join.occupant_nicks()),
        [(e.get("from"), body(e)) for e in join.history],
        subject_text(join.subject),
    )


def test_a_stranger_on_the_rooms_server_cannot_make_anything_look_like_room_traffic(pair, remote_room):
    room = remote_room
    frank = remote_owned_room(pair, room, subject="Real subject")
    phone, laptop = joined(pair, room, "phone", "laptop")
    for text in ("one", "two"):
        frank.send(groupchat(room, text))
    traffic(room, frank, phone, laptop)
    replay_before = replay_summary(pair.client("alice", "tablet").join(room, "Alice", timeout=10))
    traffic(room, frank, phone, laptop)
    grace = pair.client("grace", "stranger")  # on the room's own server, never joins
    everything(grace)

    fake_x = f"<x xmlns='{NS_MUC_USER}'><item affiliation='owner' role='moderator'/><status code='110'/></x>"
    fake_kick = f"<x xmlns='{NS_MUC_USER}'><item affiliation='none' role='none'/><status code='110'/><status code='307'/></x>"
    spoofs = [
        f"<message to='{ALICE}' type='groupchat' id='sp1'><body>spoofed groupchat</body></message>",
        # Forged from: Prosody's c2s stamps grace's full JID over it, so over s2s the
        # stanza is grace's (and the module's server would refuse a from outside
        # remote.localhost on that stream anyway).
        f"<message to='{ALICE}' from='{room}/Frank' type='groupchat' id='sp2'><body>forged from</body></message>",
        f"<message to='{ALICE}' from='{room}' type='groupchat' id='sp3'><subject>spoofed subject</subject></message>",
        f"<presence to='{ALICE}' from='{room}/Mallory' id='sp4'>{fake_x}</presence>",
        f"<presence to='{ALICE}' from='{room}/Alice' type='unavailable' id='sp5'>{fake_kick}</presence>",
        f"<presence to='{phone.full_jid}' from='{room}/Alice' type='unavailable' id='sp6'>{fake_kick}</presence>",
        f"<message to='{laptop.full_jid}' from='{room}/Frank' type='groupchat' id='sp7'><body>to a full JID</body></message>",
    ]
    for s in spoofs:
        grace.send(s)

    at_phone, at_laptop = everything(phone, quiet=1.0), everything(laptop)
    at_frank = traffic(room, frank)[0]
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert_nothing([e for e in got if from_room(e, room) or REMOTE_MUC in e.get("from", "")], f"{s} (as room traffic)")
        # Whatever Prosody delivers (a directed presence to the bare JID, a message to a
        # full JID) comes from grace's own JID, never re-addressed as the room.
        assert all(e.get("from") == grace.full_jid for e in got if e.get("id", "").startswith("sp")), summarize(got)
    assert_nothing([e for e in at_phone + at_laptop if e.get("id") in ("sp1", "sp2", "sp3")], "alice's sessions (groupchat to the account)")
    assert_nothing([e for e in at_phone if e.get("id") == "sp7"], "the session the stanza was not for")
    # Groupchat to the account's bare JID is refused as for any account, to grace.
    bounced = {e.get("id"): error_condition(e) for e in everything(grace) if is_message(e, type="error")}
    assert bounced == {"sp1": "service-unavailable", "sp2": "service-unavailable", "sp3": "service-unavailable"}, bounced
    # The room saw nothing: no kick, no leave, no presence of the account.
    assert_nothing(presences_from(at_frank, f"{room}/Alice"), "the room's owner")
    assert_account_is_the_occupant(pair, room)
    replay_after = replay_summary(pair.client("alice", "desk").join(room, "Alice", timeout=10))
    assert replay_after == replay_before
    assert replay_before == (["Frank"], [(f"{room}/Frank", "one"), (f"{room}/Frank", "two")], "Real subject")
    frank.send(groupchat(room, "real"))
    for s in (phone, laptop):
        got = traffic(room, s)[0]
        assert [body(e) for e in got if is_groupchat(e, room)] == ["real"], f"{s}: " + summarize(got)


# ---------------------------------------------------------------------- 4. destroyed, shut down


def test_room_destroyed_by_its_remote_owner_reaches_every_joined_session_as_it_reaches_a_direct_client(pair, remote_room):
    room = remote_room
    frank = remote_owned_room(pair, room)
    phone, laptop = joined(pair, room, "phone", "laptop")
    paul = pair.client("paul", "direct")
    paul.join(room, "Paul", timeout=10)
    traffic(room, frank, phone, laptop, paul)

    reply = frank.iq(f"<query xmlns='{NS_MUC_OWNER}'><destroy><reason>closing</reason></destroy></query>", to=room, type="set")
    assert reply.get("type") == "result", to_xml(reply)

    _, at_phone, at_laptop, at_paul = traffic(room, frank, phone, laptop, paul)
    assert len(at_paul) == 1, summarize(at_paul)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert len(got) == 1, f"{s}: " + summarize(got)
        el = got[0]
        assert is_presence(el, frm=f"{room}/Alice", to=s.full_jid, type="unavailable"), summarize(got)
        # The same as paul's, but for the nick: 110, and the destroy with its reason.
        assert status_codes(el) == status_codes(at_paul[0]) == {110}, summarize(got + at_paul)
        destroy = muc_user_x(el).find(q(NS_MUC_USER, "destroy"))
        assert destroy is not None and destroy.findtext(q(NS_MUC_USER, "reason")) == "closing", summarize(got)
        assert muc_user_x(at_paul[0]).find(q(NS_MUC_USER, "destroy")) is not None, summarize(at_paul)
    assert room not in module_rooms(pair), module_rooms(pair)

    # The room is gone; joining again creates a new one, where alice is the owner.
    join = phone.join(room, "Alice", timeout=10)
    assert join.occupant_nicks() == [] and 201 in status_codes(join.self_presence), join
    assert_nothing(traffic(room, laptop)[0], "the session that did not join again")
    assert_account_is_the_occupant(pair, room)


def pings_answered(pair: S2SPair, room: str, since: int) -> int:
    """Self-pings of ``room`` the module's server got a result for, after ``since``."""
    pattern = re.compile(r"Received\[s2sin\]: <iq[^>]*(?=[^>]*type='result')(?=[^>]*id='minimix-ping-)(?=[^>]*from='" + re.escape(room) + "/Alice')")
    return len(pattern.findall(pair.local.log_since(since)))


def test_clean_remote_shutdown_looks_to_each_session_as_to_a_direct_client_and_the_account_stays_in(pair, remote_room):
    room = remote_room
    frank = remote_owned_room(pair, room, subject="Survives")
    phone, laptop = joined(pair, room, "phone", "laptop")
    paul = pair.client("paul", "direct")
    paul.join(room, "Paul", timeout=10)
    traffic(room, frank, phone, laptop, paul)

    pair.remote.stop()

    # Prosody (0.12 and 13) sends no 332: at shutdown each room saves its state, occupants
    # included; the remote server's own clients disconnecting are all a client sees.
    at_phone, at_laptop, at_paul = traffic(room, phone, laptop, paul, quiet=1.0)
    assert [(e.get("from"), e.get("type")) for e in at_paul] == [(f"{room}/Frank", "unavailable")], summarize(at_paul)
    for s, got in ((phone, at_phone), (laptop, at_laptop)):
        assert [(e.get("from"), e.get("to"), e.get("type")) for e in got] == [
            (f"{room}/Frank", s.full_jid, "unavailable")
        ], f"{s}: " + summarize(got)
        assert status_codes(got[0]) == status_codes(at_paul[0]) and got[0].findtext("{jabber:client}status") == at_paul[0].findtext(
            "{jabber:client}status"
        ), summarize(got + at_paul)

    mark = pair.local.log_mark()
    pair.remote.start()
    # The room came back with the account in it; the account's self-ping (every second
    # here) is answered with a result, so it does not rejoin and no session hears a thing.
    assert_account_is_the_occupant(pair, room)
    wait_for(lambda: pings_answered(pair, room, mark) >= 2, 15, "two self-pings answered by the restarted room")
    at_phone, at_laptop, at_paul = traffic(room, phone, laptop, paul)
    assert_nothing(at_phone, "a joined session after the restart")
    assert_nothing(at_laptop, "a joined session after the restart")
    assert_nothing(at_paul, "the direct client after the restart")
    assert "rejoining" not in pair.local.log_since(mark)

    frank = pair.client("frank", "again")
    join = frank.join(room, "Frank", timeout=10)
    assert sorted(join.occupant_nicks()) == ["Alice", "Paul"], join
    frank.send(groupchat(room, "back"))
    _, at_phone, at_laptop, at_paul = traffic(room, frank, phone, laptop, paul)
    for s, got in ((phone, at_phone), (laptop, at_laptop), (paul, at_paul)):
        assert [(e.get("from"), e.get("type")) for e in got if is_presence(e)] == [(f"{room}/Frank", None)], f"{s}: " + summarize(got)
        assert [body(e) for e in got if is_groupchat(e, room)] == ["back"], f"{s}: " + summarize(got)
    late = pair.client("alice", "desk").join(room, "Alice", timeout=10)
    assert sorted(late.occupant_nicks()) == ["Frank", "Paul"] and subject_text(late.subject) == "Survives", late
    assert_account_is_the_occupant(pair, room)

"""Proves the rig itself against Prosody WITHOUT mod_minimix.

If these fail, the scenario tests mean nothing: they rely on the same server
set-up, the same client and the same join-sequence parser. They also pin the
plain XEP-0045 behaviour the module must imitate.
"""

from __future__ import annotations

import pytest

from conftest import jid_of
from xmpp_client import (
    NS_PING,
    Client,
    StreamClosed,
    body,
    delay,
    from_room,
    groupchat,
    is_groupchat,
    is_iq,
    is_presence,
    muc_item,
    room_config,
    status_codes,
    subject_change,
    subject_text,
    summarize,
)


def test_server_starts_without_the_module_and_answers_admin_shell(plain_server):
    assert plain_server.is_running
    assert plain_server.lua("1+1") == "2"
    assert not plain_server.module_loaded("a.localhost")
    assert plain_server.module_loaded("muc.localhost", "muc")


def test_client_binds_the_chosen_resource_and_gets_a_ping_reply(plain_connect):
    carol = plain_connect("carol", "phone")
    assert carol.full_jid == "carol@obs.localhost/phone"
    reply = carol.iq(f"<ping xmlns='{NS_PING}'/>", to="obs.localhost")
    assert reply.get("type") == "result"


def test_wrong_password_is_refused(plain_server):
    with pytest.raises(Exception, match="SASL failed"):
        Client(plain_server.c2s_port, "carol@obs.localhost", "wrong", "x")


def test_first_joiner_gets_self_presence_with_110_and_201_then_empty_subject(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    join = carol.join(room, "Carol")
    assert join.occupants == []
    assert {110, 201} <= status_codes(join.self_presence)
    assert join.self_presence.get("to") == carol.full_jid
    assert subject_text(join.subject) == ""
    assert join.subject.get("to") == carol.full_jid
    # Without the module the room's occupant is the session itself.
    assert plain_connect.server.occupant_real_jids(room, "Carol") == [carol.full_jid]
    assert plain_connect.server.occupant_real_jids(room, "Nobody") is None


def test_second_joiner_gets_others_then_self_then_history_then_subject(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    erin = plain_connect("erin", "phone")
    carol.join(room, "Carol")
    carol.send(subject_change(room, "Rig subject"))
    carol.expect(lambda e: from_room(e, room) and subject_text(e) == "Rig subject")
    carol.send(groupchat(room, "before erin"))
    carol.expect(lambda e: is_groupchat(e, room, "before erin"))

    join = erin.join(room, "Erin")

    assert join.occupant_nicks() == ["Carol"]
    assert status_codes(join.self_presence) == {110}
    assert [body(h) for h in join.history] == ["before erin"]
    assert all(delay(h) is not None for h in join.history)
    assert subject_text(join.subject) == "Rig subject"
    # Everything from the room is addressed to the joining session's full JID.
    assert {e.get("to") for e in join.raw} == {erin.full_jid}

    # carol (owner, hence moderator) sees erin arrive once, with her real full JID.
    arrivals = carol.collect(0.5, pred=lambda e: is_presence(e, frm=f"{room}/Erin"))
    assert len(arrivals) == 1, summarize(arrivals)
    assert muc_item(arrivals[0]).get("jid") == erin.full_jid


def test_groupchat_reaches_every_occupant_exactly_once(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    erin = plain_connect("erin", "phone")
    carol.join(room, "Carol")
    erin.join(room, "Erin")
    carol.collect(0.3)

    erin.send(groupchat(room, "hello all", id="rig-gc-1"))

    for c in (carol, erin):
        got = c.collect(0.5, pred=lambda e: is_groupchat(e, room))
        assert len(got) == 1, summarize(got)
        assert got[0].get("from") == f"{room}/Erin"
        assert got[0].get("to") == c.full_jid
        assert got[0].get("id") == "rig-gc-1"  # reflections keep the id (XEP-0045 §7.2.2)


def test_session_that_did_not_join_gets_nothing_from_the_room(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    carol_desk = plain_connect("carol", "desk")
    erin = plain_connect("erin", "phone")
    carol.join(room, "Carol")
    erin.join(room, "Erin")
    erin.send(groupchat(room, "only for joined"))
    carol.expect(lambda e: is_groupchat(e, room, "only for joined"))
    assert carol_desk.collect(0.5, pred=lambda e: from_room(e, room)) == []


def test_non_anonymous_room_shows_real_jids_to_everyone(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    erin = plain_connect("erin", "phone")
    carol.join(room, "Carol")
    carol.send(room_config(room, {"muc#roomconfig_whois": "anyone"}, id="cfg-1"))
    assert carol.expect(lambda e: is_iq(e, id="cfg-1")).get("type") == "result"
    # Status 172: the room is now non-anonymous.
    carol.expect(lambda e: from_room(e, room) and 172 in status_codes(e), what="status 172 notice")

    join = erin.join(room, "Erin")
    assert muc_item(join.occupants[0]).get("jid") == carol.full_jid
    assert {100, 110} <= status_codes(join.self_presence)


def test_leave_sends_unavailable_with_110_to_the_leaver(plain_connect, room):
    carol = plain_connect("carol", "laptop")
    carol.join(room, "Carol")
    carol.send(f"<presence to='{room}/Carol' type='unavailable'/>")
    left = carol.expect(lambda e: is_presence(e, frm=f"{room}/Carol", type="unavailable"))
    assert 110 in status_codes(left)


def test_stream_management_acks_and_resumes_a_killed_session(plain_server, plain_connect, room):
    carol = plain_connect("carol", "mobile", sm=True)
    erin = plain_connect("erin", "phone")
    assert carol.sm_enabled and carol.sm_id
    carol.join(room, "Carol")
    erin.join(room, "Erin")
    for i in range(3):
        erin.send(groupchat(room, f"sm {i}"))
    for i in range(3):
        carol.expect(lambda e, i=i: is_groupchat(e, room, f"sm {i}"))

    # Our counters agree with the server's: it acks all we sent, and our
    # answers to its <r/> (if any) do not make it close the stream.
    carol.send(f"<iq type='get' id='sm-ping' to='obs.localhost'><ping xmlns='{NS_PING}'/></iq>")
    carol.expect(lambda e: is_iq(e, id="sm-ping"))
    assert carol.sync_acks() == carol.outbound_count
    assert carol._unacked_out == []
    carol.send_ack()
    carol.collect(0.5)
    assert not carol.closed, carol.close_reason

    carol.kill()
    erin.send(groupchat(room, "while hibernating"))
    erin.expect(lambda e: is_groupchat(e, room, "while hibernating"))

    resumed = plain_connect("carol", "mobile", resume=carol)
    assert resumed.sm_resumed and resumed.full_jid == carol.full_jid
    got = resumed.expect(lambda e: is_groupchat(e, room, "while hibernating"))
    assert got.get("to") == carol.full_jid
    # Still an occupant (no rejoin needed): a new message arrives normally.
    erin.send(groupchat(room, "after resume"))
    resumed.expect(lambda e: is_groupchat(e, room, "after resume"))
    resumed.collect(0.5)
    assert not resumed.closed, resumed.close_reason


def test_closed_client_refuses_to_send(plain_connect):
    carol = plain_connect("carol", "gone")
    carol.close()
    with pytest.raises(StreamClosed):
        carol.send("<presence/>")


def test_server_restart_keeps_accounts(plain_server, plain_connect):
    plain_server.restart()
    carol = plain_connect("carol", "again")
    assert carol.full_jid == jid_of("carol") + "/again"


def test_prosody_logged_no_lua_errors(plain_server):
    errors = plain_server.log_errors()
    assert errors == [], "\n".join(errors)

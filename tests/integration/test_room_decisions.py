"""Live-Prosody scenarios for the room's decisions about the account that
test_lifecycle.py does not cover: affiliation removed (321), room turned
members-only (322), joining a destroyed room's tombstone (gone) and a room on a
domain the server cannot reach.

For each: every joined session gets what a directly joined client would get,
the module forgets the room (the admin shell lists no room), and a later join
starts afresh and works.
"""

from __future__ import annotations

from conftest import jid_of
from test_lifecycle import (
    NS_MUC_OWNER,
    admin_set,
    assert_account_is_the_occupant,
    assert_join_refused,
    assert_not_in_room,
    assert_nothing,
    assert_self_unavailable,
    configure,
    joined,
    no_new_lua_errors,  # noqa: F401  (autouse fixture: no Lua errors in the log)
    observer_room,
    presences_from,
    room_traffic,
    settle,
    traffic,
)
from xmpp_client import error_condition, from_room, is_presence, muc_item, q, status_codes, summarize

ALICE = jid_of("alice")


def module_rooms(server, account: str = ALICE) -> str:
    """What the admin shell's minimix:rooms() says about ``account``."""
    return server.shell(f"minimix:rooms('{account}')")


def assert_module_forgot(server, room: str) -> None:
    out = module_rooms(server)
    assert room not in out, f"the module still tracks {room}:\n{out}"


def test_affiliation_removed_in_a_members_only_room_reaches_every_joined_session_with_321(server, connect, room):
    carol = observer_room(connect, room)
    configure(carol, room, {"muc#roomconfig_membersonly": True})
    admin_set(carol, room, jid=ALICE, affiliation="member")
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    assert room in module_rooms(server)

    admin_set(carol, room, jid=ALICE, affiliation="none")

    at_carol, *at_sessions = traffic(room, carol, phone, laptop)
    for s, got in zip((phone, laptop), at_sessions):
        el = assert_self_unavailable(got, f"{room}/Alice", s, {321})
        item = muc_item(el)
        assert item is not None and item.get("affiliation") == "none", summarize([el])
    removed = presences_from(at_carol, f"{room}/Alice")
    assert len(removed) == 1 and 321 in status_codes(removed[0]), summarize(at_carol)
    assert_not_in_room(server, room, "Alice")
    assert_module_forgot(server, room)

    # Not a member any more: the room refuses, and only the asking session hears it.
    assert_join_refused(phone.join_room(room, "Alice"), f"{room}/Alice", phone, "registration-required")
    assert_nothing(room_traffic(laptop, room), "the session that did not ask")

    admin_set(carol, room, jid=ALICE, affiliation="member")
    again = laptop.join(room, "Alice")
    assert again.occupant_nicks() == ["Carol"], again
    assert again.self_presence.get("to") == laptop.full_jid, again
    assert_nothing(room_traffic(phone, room), "the session that did not rejoin")
    assert_account_is_the_occupant(server, room, "Alice")


def test_room_turned_members_only_removes_the_non_member_account_from_every_joined_session_with_322(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)

    configure(carol, room, {"muc#roomconfig_membersonly": True})

    _, *at_sessions = traffic(room, carol, phone, laptop)
    for s, got in zip((phone, laptop), at_sessions):
        # The room also tells occupants about the configuration change (status 104):
        # that is a groupchat message, not a presence; only the removal matters here.
        presences = [e for e in got if is_presence(e)]
        assert_self_unavailable(presences, f"{room}/Alice", s, {322})
    # (Prosody 0.12 tells only the removed occupant, not the others: nothing to
    # assert about the observer beyond what the room's own state says.)
    # The module's own log line carries the host, at info level, as Prosody's modules do.
    assert f"a.localhost:minimix\tinfo\t{ALICE} removed from {room}" in server.log_text(), "no host-tagged log line"
    assert_not_in_room(server, room, "Alice")
    assert_module_forgot(server, room)

    configure(carol, room, {"muc#roomconfig_membersonly": False})
    settle(room, carol)
    again = phone.join(room, "Alice")
    assert again.occupant_nicks() == ["Carol"], again
    assert_account_is_the_occupant(server, room, "Alice")


def test_joining_a_destroyed_persistent_room_gets_gone_with_the_new_address_and_leaves_nothing_behind(server, connect, room):
    carol = observer_room(connect, room)
    # Made persistent from inside the server: Prosody 13 lets only admins do it by form.
    assert server.lua(
        f"prosody.hosts['muc.localhost'].modules.muc.get_room_from_jid('{room}'):set_persistent(true)"
    ) in ("true", "false", "nil"), "could not make the room persistent"
    phone, laptop = joined(connect, room, "phone", "laptop")
    settle(room, carol, phone, laptop)
    new_room = "moved-" + room

    reply = carol.iq(
        f"<query xmlns='{NS_MUC_OWNER}'><destroy jid='{new_room}'><reason>moved</reason></destroy></query>",
        to=room,
        type="set",
    )
    assert reply.get("type") == "result", summarize([reply])
    for s, got in zip((phone, laptop), traffic(room, phone, laptop)):
        assert_self_unavailable(got, f"{room}/Alice", s, {110})
    assert_module_forgot(server, room)

    # The tombstone answers every join with <gone/> pointing at the new room.
    seq = phone.join_room(room, "Alice")
    assert_join_refused(seq, f"{room}/Alice", phone, "gone")
    gone = seq[0].find(".//" + q("urn:ietf:params:xml:ns:xmpp-stanzas", "gone"))
    assert gone is not None and gone.text == f"xmpp:{new_room}?join", summarize(seq)
    assert_nothing(room_traffic(laptop, room), "the session that did not ask")
    assert_module_forgot(server, room)

    # Following the pointer works for every session.
    moved = laptop.join(new_room, "Alice")
    assert status_codes(moved.self_presence) >= {110, 201}, moved
    assert_account_is_the_occupant(server, new_room, "Alice")


def test_joining_a_room_on_a_domain_the_server_cannot_reach_gets_the_servers_error_and_a_later_join_works(server, connect, room):
    phone = connect("alice", "phone")
    desk = connect("alice", "desk")  # online, never asks
    nowhere = "room@conference.nowhere.invalid"

    seq = phone.join_room(nowhere, "Alice", timeout=30)
    assert len(seq) == 1, summarize(seq)
    assert is_presence(seq[0], frm=f"{nowhere}/Alice", to=phone.full_jid, type="error"), summarize(seq)
    # This rig's server has no s2s: Prosody itself refuses with not-allowed (the
    # two-server rig covers remote rooms); either way the error reaches the asker.
    assert error_condition(seq[0]) == "not-allowed", summarize(seq)
    assert_nothing(desk.collect(quiet=0.5, pred=lambda e: from_room(e, nowhere)), "the session that did not ask")
    assert_module_forgot(server, nowhere)

    # Nothing is left that blocks the next join, there or anywhere.
    again = phone.join_room(nowhere, "Alice", timeout=30)
    assert error_condition(again[0]) == "not-allowed", summarize(again)
    carol = observer_room(connect, room)
    join = phone.join(room, "Alice")
    assert join.occupant_nicks() == ["Carol"], join
    assert_account_is_the_occupant(server, room, "Alice")
    settle(room, carol)

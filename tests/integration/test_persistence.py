"""Live-Prosody scenarios for issue 5 (persistence): the account stays in its rooms across
restarts and module reloads, with the file store and with SQL on SQLite.

The observer (carol, obs.localhost, no module) cannot survive a restart of the one
server, so what the *room* thinks is read from mod_muc's own state
(``occupant_real_jids``), and carol rejoins after the restart to see what occupants see.
"""

from __future__ import annotations


import pytest

from conftest import PASSWORD, jid_of
from scenario import archived_bodies, own_server
from xmpp_client import Client, body, from_room, groupchat, is_groupchat, is_presence, status_codes, summarize

ALICE = jid_of("alice")
QUIET = 0.7

# Per host (a global `storage` would repeat the rig's option and make prosodyctl warn).
STORAGE = {
    "internal": "",
    "sqlite": '  storage = { minimix = "sql" }\n  sql = { driver = "SQLite3", database = "minimix.sqlite" }',
}


@pytest.fixture(params=sorted(STORAGE))
def restartable(request, module_dir):
    """A private server with the module whose minimix store uses the given backend."""
    with own_server(module_dir, host_extra={"a.localhost": STORAGE[request.param]}) as srv:
        yield srv


def client(srv, user, resource, **kw) -> Client:
    return Client(srv.c2s_port, jid_of(user), PASSWORD, resource, **kw)


def test_account_stays_in_its_room_across_a_restart_and_the_first_message_does_not_get_it_kicked(restartable, room):
    srv = restartable
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(srv, "alice", "phone")
    phone.join(room, "Alice")
    phone.close()
    assert srv.occupant_real_jids(room, "Alice") == [ALICE]
    carol.close()

    srv.restart()

    # The room still has the account, with no session connected.
    assert srv.occupant_real_jids(room, "Alice") == [ALICE], srv.log_tail(60)
    carol = client(srv, "carol", "observer")
    join = carol.join(room, "Carol")
    assert "Alice" in join.occupant_nicks(), join
    carol.send(groupchat(room, "first after restart"))
    carol.expect(lambda e: is_groupchat(e) and body(e) == "first after restart", what="own reflection")
    later = carol.collect(QUIET, pred=lambda e: is_presence(e, frm=f"{room}/Alice"))
    kicked = [e for e in later if e.get("type") == "unavailable"]
    assert kicked == [], "the account was removed after the first message:\n" + summarize(kicked)
    assert srv.occupant_real_jids(room, "Alice") == [ALICE], srv.log_tail(60)

    # A session coming back gets the full replay and the message it missed, from local state.
    laptop = client(srv, "alice", "laptop")
    seq = laptop.join(room, "Alice")
    assert "Carol" in seq.occupant_nicks(), seq
    assert 110 in status_codes(seq.self_presence), seq
    assert "first after restart" in [body(m) for m in seq.history], seq
    assert srv.log_errors() == []
    carol.close()
    laptop.close()





def back_after_restart(srv, room: str):
    """After a restart: the room still has the account; carol comes back and says "after";
    alice's laptop joins. Returns carol, laptop and the laptop's join sequence."""
    assert srv.occupant_real_jids(room, "Alice") == [ALICE], srv.log_tail(60)
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    carol.send(groupchat(room, "after"))
    carol.expect(lambda e: is_groupchat(e) and body(e) == "after", what="own reflection")
    laptop = client(srv, "alice", "laptop")
    return carol, laptop, laptop.join(room, "Alice")


def test_a_restart_repeats_nothing_the_account_heard_in_later_history_or_the_archive(module_dir, room):
    """After a restart the account rejoins the local room asking for history from a little
    before the last message it heard (the room stamps whole seconds); the room's replays of
    what it heard are recognised (muc_mam gives them the room's stanza-id): a later
    session's history and the account's archive have each message once."""
    with own_server(module_dir, mam=True) as srv:
        carol = client(srv, "carol", "observer")
        carol.join(room, "Carol")
        phone = client(srv, "alice", "phone")
        phone.join(room, "Alice")
        for text in ("older", "before-1", "before-2"):
            carol.send(groupchat(room, text))
            phone.expect(lambda e, t=text: is_groupchat(e) and body(e) == t, what=text)

        srv.restart()

        carol, laptop, seq = back_after_restart(srv, room)
        expected = ["older", "before-1", "before-2", "after"]
        assert [body(m) for m in seq.history] == expected, seq
        assert archived_bodies(laptop, room) == expected
        assert srv.log_errors() == []
        carol.close()
        laptop.close()


ARCHIVE_STORAGE = {
    "internal": "",
    "sqlite": '  storage = { archive = "sql" }\n  sql = { driver = "SQLite3", database = "archive.sqlite" }',
}


@pytest.mark.parametrize("archive_storage", sorted(ARCHIVE_STORAGE))
def test_a_message_said_just_before_the_account_joined_is_not_taken_for_a_missed_one(module_dir, room, archive_storage):
    """alice joins without history just after carol said "just before", and hears "heard"
    live. After a restart the rejoin asks for history from a little before "heard" (rooms
    stamp whole seconds), so the room replays "just before" too, which the account never
    heard and mod_mam stores as it arrives. The room replays it before "heard": it was said
    before the account joined, not missed. Nobody is handed it, and it is taken back out of
    the archive (file or SQL store), which keeps the room's order."""
    with own_server(module_dir, mam=True, host_extra={"a.localhost": ARCHIVE_STORAGE[archive_storage]}) as srv:
        carol = client(srv, "carol", "observer")
        carol.join(room, "Carol")
        phone = client(srv, "alice", "phone")
        carol.send(groupchat(room, "just before"))
        carol.expect(lambda e: is_groupchat(e) and body(e) == "just before", what="own reflection")
        seq = phone.join(room, "Alice", history={"maxstanzas": 0})
        assert seq.history == [], seq
        carol.send(groupchat(room, "heard"))
        phone.expect(lambda e: is_groupchat(e) and body(e) == "heard", what="heard")
        assert archived_bodies(phone, room) == ["heard"]

        srv.restart()

        carol, laptop, seq = back_after_restart(srv, room)
        assert [body(m) for m in seq.history] == ["heard", "after"], seq
        assert archived_bodies(laptop, room) == ["heard", "after"]
        log = srv.log_text()
        assert "replayed 1 message(s) from before it joined" in log, srv.log_tail(80)
        assert "could not take message" not in log, srv.log_tail(80)
        assert srv.log_errors() == []
        carol.close()
        laptop.close()


def test_module_reload_keeps_rooms_and_sessions_with_no_visible_change(fresh_server, room):
    srv = fresh_server
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(srv, "alice", "phone")
    phone.join(room, "Alice")
    carol.collect(QUIET)

    srv.shell("module", "reload", "minimix", "a.localhost")

    assert carol.collect(QUIET, pred=lambda e: from_room(e, room)) == [], "the room saw the reload"
    carol.send(groupchat(room, "after reload"))
    got = phone.collect(QUIET, pred=lambda e: is_groupchat(e) and from_room(e, room))
    assert [body(e) for e in got] == ["after reload"], summarize(got)
    assert all(e.get("to") == phone.full_jid for e in got)
    assert srv.occupant_real_jids(room, "Alice") == [ALICE]
    assert srv.log_errors() == []
    carol.close()
    phone.close()


def test_deleting_an_account_leaves_its_rooms(fresh_server, room):
    srv = fresh_server
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(srv, "alice", "phone")
    phone.join(room, "Alice")
    phone.close()
    carol.collect(QUIET)

    srv.shell(">return require'core.usermanager'.delete_user('alice', 'a.localhost')")

    left = carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), what="Alice leaving")
    assert left is not None
    assert srv.occupant_real_jids(room, "Alice") is None or srv.occupant_real_jids(room, "Alice") == []
    carol.close()

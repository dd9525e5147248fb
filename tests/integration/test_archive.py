"""Live-Prosody scenarios for issue 6 (personal archive): each groupchat message from a
room the account is in is stored once in the account's own archive (XEP-0313), whether or
not a session is online, and the copies forked to sessions carry the archive's id."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, USERS, jid_of
from prosody_server import ProsodyServer
from scenario import archived_groupchat, own_server
from xmpp_client import Client, body, groupchat, is_groupchat, q, summarize

ALICE = jid_of("alice")
NS_SID = "urn:xmpp:sid:0"


@pytest.fixture(scope="module")
def mam_server(module_dir):
    srv = ProsodyServer(with_module=True, module_dir=module_dir, mam=True)
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    assert srv.module_loaded("a.localhost"), srv.log_tail(40)
    yield srv
    srv.cleanup()


def client(srv, user, resource) -> Client:
    return Client(srv.c2s_port, jid_of(user), PASSWORD, resource)



def own_stanza_id(el: ET.Element) -> str | None:
    for sid in el.findall(q(NS_SID, "stanza-id")):
        if sid.get("by") == ALICE:
            return sid.get("id")
    return None


def test_each_groupchat_message_is_archived_once_and_forked_copies_carry_the_archive_id(mam_server, room):
    carol = client(mam_server, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(mam_server, "alice", "phone")
    laptop = client(mam_server, "alice", "laptop")
    phone.join(room, "Alice")
    laptop.join(room, "Alice")

    carol.send(groupchat(room, "archive me"))
    got_phone = phone.expect(lambda e: is_groupchat(e, room, "archive me"), what="message on phone")
    got_laptop = laptop.expect(lambda e: is_groupchat(e, room, "archive me"), what="message on laptop")
    archive_id = own_stanza_id(got_phone)
    assert archive_id, "the forked copy carries no stanza-id from the account's archive"
    assert own_stanza_id(got_laptop) == archive_id, "both sessions see the same archived copy"

    archived = [m for m in archived_groupchat(phone, room) if body(m) == "archive me"]
    assert len(archived) == 1, "expected one archived copy, got:\n" + summarize(archived)
    assert mam_server.log_errors() == []
    for c in (carol, phone, laptop):
        c.close()


def test_messages_sent_while_no_session_is_online_are_in_the_archive_afterwards(mam_server, room):
    carol = client(mam_server, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(mam_server, "alice", "phone")
    phone.join(room, "Alice")
    phone.close()

    carol.send(groupchat(room, "while you were away"))
    carol.expect(lambda e: is_groupchat(e, room, "while you were away"), what="reflection")

    back = client(mam_server, "alice", "back")
    archived = [m for m in archived_groupchat(back, room) if body(m) == "while you were away"]
    assert len(archived) == 1, summarize(archived)
    assert mam_server.occupant_real_jids(room, "Alice") == [ALICE]
    for c in (carol, back):
        c.close()


def test_after_a_restart_a_late_session_gets_history_older_than_the_buffer_from_the_archive(module_dir, room):
    with own_server(module_dir, mam=True) as srv:
        carol = client(srv, "carol", "observer")
        carol.join(room, "Carol")
        phone = client(srv, "alice", "phone")
        phone.join(room, "Alice")
        for i in range(3):
            carol.send(groupchat(room, f"before restart {i}"))
            phone.expect(lambda e, i=i: is_groupchat(e, room, f"before restart {i}"), what=f"message {i}")
        phone.close()
        carol.close()

        srv.restart()

        laptop = client(srv, "alice", "laptop")
        seq = laptop.join(room, "Alice", history={"maxstanzas": "3"})
        bodies = [body(m) for m in seq.history]
        assert bodies == ["before restart 0", "before restart 1", "before restart 2"], seq
        assert all(own_stanza_id(m) for m in seq.history), "archived history carries the archive's ids"
        assert srv.log_errors() == []
        laptop.close()


def test_a_late_session_gets_every_message_of_one_second_from_buffer_and_archive(module_dir, room):
    """The buffer has room for one of these messages (by bytes); a late session asking for
    four gets the other three from the archive. Said back to back, they share a second: the
    archive is asked for what it stored before the buffered message (by its id), not for what
    is older than that message's second (Prosody 13's mod_mam stores sub-second times: asked
    by time, the first three were skipped)."""
    with own_server(module_dir, mam=True,
                    host_extra={"a.localhost": "  minimix_history_max_bytes = 1200"}) as srv:
        carol = client(srv, "carol", "observer")
        carol.join(room, "Carol")
        phone = client(srv, "alice", "phone")
        phone.join(room, "Alice")
        said = [f"burst {i} " + "x" * 200 for i in range(4)]
        for text in said:
            carol.send(groupchat(room, text))
        for text in said:
            phone.expect(lambda e, t=text: is_groupchat(e, room, t), what=text)

        laptop = client(srv, "alice", "laptop")
        seq = laptop.join(room, "Alice", history={"maxstanzas": "4"})
        assert [body(m) for m in seq.history] == said, seq
        assert srv.log_errors() == []
        for c in (carol, phone, laptop):
            c.close()

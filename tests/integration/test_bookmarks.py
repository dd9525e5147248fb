"""Live-Prosody scenarios for issue 5 (bookmarks, liveness, admin): XEP-0402 autojoin
bookmarks make the account join with no client in the room, clearing them makes it leave,
leaving for good clears autojoin (bookmark sync), and admins can list an account's rooms."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, USERS, jid_of
from prosody_server import ProsodyServer
from xmpp_client import Client, from_room, is_presence, q, status_codes

ALICE = jid_of("alice")
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
QUIET = 0.7


@pytest.fixture(scope="module")
def bm_server(module_dir):
    srv = ProsodyServer(with_module=True, module_dir=module_dir, bookmarks=True)
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    assert srv.module_loaded("a.localhost"), srv.log_tail(40)
    yield srv
    srv.cleanup()


def client(srv, user, resource) -> Client:
    return Client(srv.c2s_port, jid_of(user), PASSWORD, resource)


def publish_bookmark(c: Client, room: str, nick: str, autojoin: bool) -> None:
    options = (
        "<publish-options><x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        "<field var='pubsub#persist_items'><value>true</value></field>"
        "<field var='pubsub#max_items'><value>max</value></field>"
        "<field var='pubsub#send_last_published_item'><value>never</value></field>"
        "<field var='pubsub#access_model'><value>whitelist</value></field>"
        "</x></publish-options>"
    )
    payload = (
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{NS_BOOKMARKS}'><item id='{room}'>"
        f"<conference xmlns='{NS_BOOKMARKS}' name='test' autojoin='{'true' if autojoin else 'false'}'>"
        f"<nick>{nick}</nick></conference></item></publish>{options}</pubsub>"
    )
    result = c.iq(payload, type="set")
    assert result.get("type") == "result", ET.tostring(result)


def bookmark_autojoin(c: Client, room: str) -> str | None:
    result = c.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NS_BOOKMARKS}'/></pubsub>")
    assert result.get("type") == "result", ET.tostring(result)
    for item in result.iter(q(NS_PUBSUB, "item")):
        if item.get("id") == room:
            return item.find(q(NS_BOOKMARKS, "conference")).get("autojoin")
    return None


def test_an_autojoin_bookmark_makes_the_account_join_and_clearing_it_makes_it_leave(bm_server, room):
    carol = client(bm_server, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(bm_server, "alice", "phone")

    publish_bookmark(phone, room, "Alice", autojoin=True)

    joined = carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice") and e.get("type") is None, what="Alice joining")
    assert joined is not None
    assert bm_server.occupant_real_jids(room, "Alice") == [ALICE]
    # No session of alice joined the room: none gets its traffic.
    assert phone.collect(QUIET, pred=lambda e: from_room(e, room)) == []

    publish_bookmark(phone, room, "Alice", autojoin=False)
    carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), what="Alice leaving")
    assert not bm_server.occupant_real_jids(room, "Alice")
    for c in (carol, phone):
        c.close()


def test_being_kicked_from_a_bookmarked_room_clears_autojoin(bm_server, room):
    carol = client(bm_server, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(bm_server, "alice", "phone")
    publish_bookmark(phone, room, "Alice", autojoin=True)
    carol.expect(lambda e: is_presence(e, frm=f"{room}/Alice") and e.get("type") is None, what="Alice joining")
    phone.join(room, "Alice")

    kick = (
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Alice' role='none'/></query>"
    )
    assert carol.iq(kick, to=room, type="set").get("type") == "result"
    gone = phone.expect(lambda e: is_presence(e, frm=f"{room}/Alice", type="unavailable"), what="kick")
    assert {110, 307} <= status_codes(gone)

    assert bookmark_autojoin(phone, room) == "false", "other devices would keep rejoining"
    for c in (carol, phone):
        c.close()


def test_admins_can_list_an_accounts_rooms_and_sessions_from_the_shell(bm_server, room):
    phone = client(bm_server, "alice", "phone")
    phone.join(room, "Alice")
    out = bm_server.shell(f"minimix:rooms('{ALICE}')")
    assert room in out and "joined" in out and phone.full_jid in out, out
    stats = bm_server.shell("minimix:stats('a.localhost')")
    assert "rooms:" in stats, stats
    phone.close()


def test_autojoin_bookmarks_are_joined_at_server_start(module_dir, room):
    """With only the bookmark to go by (the module's own store removed while the server was
    down), the account is back in the room after a start, tracked by the module, with no
    client online."""
    srv = ProsodyServer(with_module=True, module_dir=module_dir, bookmarks=True)
    try:
        for user, host in USERS.items():
            srv.register(user, host, PASSWORD)
        srv.start()
        phone = client(srv, "alice", "phone")
        publish_bookmark(phone, room, "Alice", autojoin=True)
        phone.close()
        srv.stop()
        stores = list(srv.data_dir.glob("a%2elocalhost/minimix/*"))
        assert stores, "the module stored the account's rooms"
        for f in stores:
            f.unlink()

        srv.start()

        out = ""
        for _ in range(20):
            out = srv.shell(f"minimix:rooms('{ALICE}')")
            if room in out and "joined" in out:
                break
            time.sleep(0.25)
        assert room in out and "joined" in out, out
        assert srv.occupant_real_jids(room, "Alice") == [ALICE]
        assert srv.log_errors() == []
    finally:
        srv.cleanup()

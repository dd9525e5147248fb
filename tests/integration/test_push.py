"""Live-Prosody scenarios for issue 6 (push notifications, XEP-0357, through Prosody's
mod_cloud_notify): with none of the account's sessions joined to a room, a room message
that concerns the account (``minimix_push``: mentions of its nick by default, or all, or
none) reaches the push service the account's client registered, once; nothing else does.

The "app server" is Erin's connected client: mod_cloud_notify publishes each notification
to the JID the client enabled, here Erin's full JID, and Erin answers like a push service."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, USERS, jid_of
from prosody_server import ProsodyServer
from xmpp_client import Client, groupchat, is_groupchat, is_iq, q, summarize

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
APP = f"{jid_of('erin')}/app"
NODE = "alice-phone"
QUIET = 1.5


class PushServer(ProsodyServer):
    """The rig's server with mod_cloud_notify (prosody-modules on 0.12, core on 13)."""

    def modules_enabled(self) -> list[str]:
        return super().modules_enabled() + ["cloud_notify"]


def push_server(module_dir, push: str | None = None, mam: bool = True) -> ProsodyServer:
    extra = f'minimix_push = "{push}"' if push is not None else ""
    srv = PushServer(with_module=True, module_dir=module_dir, mam=mam, host_extra={"a.localhost": extra})
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    assert srv.module_loaded("a.localhost"), srv.log_tail(40)
    assert srv.module_loaded("a.localhost", "cloud_notify"), srv.log_tail(40)
    return srv


@pytest.fixture
def mentions_server(module_dir):
    srv = push_server(module_dir)
    yield srv
    srv.cleanup()


def client(srv, user, resource) -> Client:
    return Client(srv.c2s_port, jid_of(user), PASSWORD, resource)


def is_push(el: ET.Element) -> bool:
    return is_iq(el, type="set") and el.find(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'publish')}") is not None


def pushes(app: Client) -> list[ET.Element]:
    """Every push that reached the app server since the last call (answered as a push
    service would), after a quiet period."""
    got = app.collect(QUIET, pred=is_push)
    for iq in got:
        app.send(f"<iq type='result' id='{iq.get('id')}' to='{iq.get('from')}'/>")
    return got


def phone_with_push(srv, room: str) -> None:
    """Alice's phone joins the room as Alice, registers the app server for push, and goes
    offline; the account stays in the room."""
    phone = client(srv, "alice", "phone")
    phone.join(room, "Alice")
    enabled = phone.iq(f"<enable xmlns='{NS_PUSH}' jid='{APP}' node='{NODE}'/>", type="set")
    assert enabled.get("type") == "result", ET.tostring(enabled)
    phone.close()


def say(carol: Client, room: str, text: str) -> None:
    carol.send(groupchat(room, text))
    carol.expect(lambda e: is_groupchat(e, room, text), what=f"reflection of {text!r}")


def test_a_mention_while_no_session_is_online_is_pushed_once_and_other_messages_are_not(mentions_server, room):
    srv = mentions_server
    app = client(srv, "erin", "app")
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone_with_push(srv, room)
    assert srv.occupant_real_jids(room, "Alice") == [jid_of("alice")], "the account stays in the room"

    say(carol, room, "lunch anyone?")
    assert pushes(app) == [], "a message that does not mention the account is not pushed"

    say(carol, room, "alice: are you there?")
    got = pushes(app)
    assert len(got) == 1, summarize(got)
    publish = got[0].find(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'publish')}")
    assert publish.get("node") == NODE
    assert got[0].get("from") == "a.localhost"

    say(carol, room, "the malice of objects")
    assert pushes(app) == [], "a nick inside another word is no mention"
    assert srv.log_errors() == []
    for c in (app, carol):
        c.close()


def test_a_session_online_elsewhere_gets_one_push_and_a_session_in_the_room_none(mentions_server, room):
    srv = mentions_server
    app = client(srv, "erin", "app")
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone_with_push(srv, room)

    # The laptop is online but not in the room: the mention is pushed to the phone's
    # service once (mod_cloud_notify would also push the archived copy; that one is not).
    laptop = client(srv, "alice", "laptop")
    say(carol, room, "Alice: see this?")
    got = pushes(app)
    assert len(got) == 1, summarize(got)

    # The laptop joins: the user reads the room there, nothing is pushed for it.
    laptop.join(room, "Alice")
    say(carol, room, "Alice, and this")
    laptop.expect(lambda e: is_groupchat(e, room, "Alice, and this"), what="message on the laptop")
    assert pushes(app) == []
    assert srv.log_errors() == []
    for c in (app, carol, laptop):
        c.close()


def test_a_hibernating_session_in_the_room_gets_a_push_for_a_mention_only(mentions_server, room):
    """A joined session whose connection dropped (XEP-0198 hibernation) still gets the room's
    messages queued; mod_cloud_notify pushes for queued stanzas, and only the mention goes."""
    srv = mentions_server
    app = client(srv, "erin", "app")
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    phone = client(srv, "alice", "phone")
    phone.enable_sm(resume=True)
    phone.join(room, "Alice")
    enabled = phone.iq(f"<enable xmlns='{NS_PUSH}' jid='{APP}' node='{NODE}'/>", type="set")
    assert enabled.get("type") == "result", ET.tostring(enabled)
    phone.send_ack()
    phone.sync_acks()
    phone.kill()
    mark = srv.log_mark()
    say(carol, room, "lunch anyone?")
    say(carol, room, "ALICE lunch?")
    got = pushes(app)
    assert len(got) == 1, summarize(got)
    assert "hibernat" in srv.log_since(mark).lower(), "the session hibernated (not closed)"
    assert srv.occupant_real_jids(room, "Alice") == [jid_of("alice")]
    assert srv.log_errors() == []
    for c in (app, carol):
        c.close()


@pytest.mark.parametrize("mode, pushed", [("all", 2), ("none", 0)])
def test_the_push_mode_decides_which_messages_are_pushed(module_dir, room, mode, pushed):
    srv = push_server(module_dir, push=mode, mam=False)
    try:
        app = client(srv, "erin", "app")
        carol = client(srv, "carol", "observer")
        carol.join(room, "Carol")
        phone_with_push(srv, room)

        say(carol, room, "lunch anyone?")
        say(carol, room, "alice: lunch?")
        got = pushes(app)
        assert len(got) == pushed, summarize(got)
        assert srv.log_errors() == []
        for c in (app, carol):
            c.close()
    finally:
        srv.cleanup()


def test_an_invalid_push_mode_refuses_to_load(module_dir):
    srv = ProsodyServer(
        with_module=True,
        module_dir=module_dir,
        host_extra={"a.localhost": 'minimix_push = "loud"'},
    )
    try:
        srv.start()
        assert not srv.module_loaded("a.localhost")
        assert any("minimix_push" in line or "push:" in line for line in srv.log_errors()), srv.log_tail(30)
    finally:
        srv.cleanup()

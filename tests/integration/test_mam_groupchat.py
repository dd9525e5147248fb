"""Live-Prosody scenarios for issue 6 (groupchat in the account's own archive, XEP-0313):
the module stores each room message there once, and a MAM query decides with the
``include-groupchat`` field whether its results contain them. A client that does not ask
gets only its one-to-one messages; the server advertises the field and the features."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, USERS, jid_of
from prosody_server import ProsodyServer
from xmpp_client import Client, body, error_condition, groupchat, is_groupchat, is_message, q, summarize

ALICE = jid_of("alice")
BOB = jid_of("bob")
NS_MAM = "urn:xmpp:mam:2"
NS_DATA = "jabber:x:data"
NS_FORWARD = "urn:xmpp:forward:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_DISCO = "http://jabber.org/protocol/disco#info"


def start_server(module_dir, **kw) -> ProsodyServer:
    srv = ProsodyServer(with_module=True, module_dir=module_dir, mam=True, **kw)
    for user, host in USERS.items():
        srv.register(user, host, PASSWORD)
    srv.start()
    assert srv.module_loaded("a.localhost"), srv.log_tail(40)
    return srv


@pytest.fixture
def mam_server(module_dir):
    srv = start_server(module_dir)
    yield srv
    srv.cleanup()


def client(srv, user, resource) -> Client:
    return Client(srv.c2s_port, jid_of(user), PASSWORD, resource)


def chat(to: str, text: str) -> str:
    return f"<message to='{to}' type='chat' id='c-{abs(hash(text))}'><body>{text}</body></message>"


def mam_query(c: Client, fields: dict[str, str] | None = None, rsm: str = "") -> tuple[ET.Element, list[ET.Element]]:
    """Queries the client's own archive; returns the final iq and the archived messages
    (unwrapped from their <result/>), in the order they came."""
    form = ""
    if fields is not None:
        form = (
            f"<x xmlns='{NS_DATA}' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>"
            + "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
            + "</x>"
        )
    result = c.iq(f"<query xmlns='{NS_MAM}' queryid='q'>{form}{rsm}</query>", type="set")
    found = c.drain(pred=lambda e: e.find(q(NS_MAM, "result")) is not None)
    messages = [m.find(q(NS_MAM, "result")).find(q(NS_FORWARD, "forwarded")).find(q("jabber:client", "message")) for m in found]
    return result, messages


def bodies(messages: list[ET.Element]) -> list[tuple[str | None, str | None]]:
    """(type, body) of each message with a body (the room's subject is archived too)."""
    return [(m.get("type"), body(m)) for m in messages if body(m) is not None]


def fill_archive(srv, room: str, before: int = 1, groupchat_count: int = 2) -> Client:
    """Alice (in the room, online) gets from Bob `direct 0..before-1`, then from Carol in
    the room `room 0..groupchat_count-1`, then `direct last`. Returns Alice's client."""
    carol = client(srv, "carol", "observer")
    carol.join(room, "Carol")
    alice = client(srv, "alice", "phone")
    alice.join(room, "Alice")
    bob = client(srv, "bob", "desk")
    for i in range(before):
        bob.send(chat(ALICE, f"direct {i}"))
        alice.expect(lambda e, i=i: is_message(e, type="chat") and body(e) == f"direct {i}", what=f"direct {i}")
    for i in range(groupchat_count):
        carol.send(groupchat(room, f"room {i}"))
        alice.expect(lambda e, i=i: is_groupchat(e, room, f"room {i}"), what=f"room {i}")
    bob.send(chat(ALICE, "direct last"))
    alice.expect(lambda e: is_message(e, type="chat") and body(e) == "direct last", what="direct last")
    carol.close()
    bob.close()
    return alice


def test_a_query_without_include_groupchat_gets_only_one_to_one_messages(mam_server, room):
    alice = fill_archive(mam_server, room)

    for fields in (None, {}, {"include-groupchat": "false"}, {"include-groupchat": "0"}):
        result, messages = mam_query(alice, fields)
        assert result.get("type") == "result", ET.tostring(result)
        assert bodies(messages) == [("chat", "direct 0"), ("chat", "direct last")], (fields, summarize(messages))

    result, messages = mam_query(alice, {"include-groupchat": "true"})
    assert result.get("type") == "result", ET.tostring(result)
    assert bodies(messages) == [
        ("chat", "direct 0"),
        ("groupchat", "room 0"),
        ("groupchat", "room 1"),
        ("chat", "direct last"),
    ], summarize(messages)

    # Asking for the room's messages alone still needs the field.
    _, messages = mam_query(alice, {"with": room})
    assert messages == [], summarize(messages)
    _, messages = mam_query(alice, {"with": room, "include-groupchat": "1"})
    assert bodies(messages) == [("groupchat", "room 0"), ("groupchat", "room 1")], summarize(messages)
    assert mam_server.log_errors() == []
    alice.close()


def test_a_bad_include_groupchat_value_is_a_bad_request(mam_server, room):
    alice = client(mam_server, "alice", "phone")
    result, messages = mam_query(alice, {"include-groupchat": "maybe"})
    assert result.get("type") == "error" and error_condition(result) == "bad-request", ET.tostring(result)
    assert messages == []
    alice.close()


def test_the_field_and_the_features_are_advertised(mam_server):
    alice = client(mam_server, "alice", "phone")
    info = alice.iq(f"<query xmlns='{NS_DISCO}'/>", to=ALICE)
    features = {f.get("var") for f in info.iter(q(NS_DISCO, "feature"))}
    assert {NS_MAM, f"{NS_MAM}#groupchat-field", f"{NS_MAM}#groupchat-available"} <= features, features

    form = alice.iq(f"<query xmlns='{NS_MAM}'/>")
    assert form.get("type") == "result", ET.tostring(form)
    fields = {f.get("var"): f.get("type") for f in form.iter(q(NS_DATA, "field"))}
    assert fields.get("include-groupchat") == "boolean", fields
    assert "with" in fields and "start" in fields, "mod_mam's own fields are kept"
    alice.close()


def test_pages_that_leave_groupchat_out_are_full_and_page_on_without_gaps(mam_server, room):
    alice = fill_archive(mam_server, room, before=3, groupchat_count=6)

    # The newest page of two (RSM <before/>), then the page before it.
    result, messages = mam_query(alice, {}, rsm=f"<set xmlns='{NS_RSM}'><max>2</max><before/></set>")
    assert bodies(messages) == [("chat", "direct 2"), ("chat", "direct last")], summarize(messages)
    fin = result.find(q(NS_MAM, "fin"))
    assert fin is not None and fin.get("complete") != "true", ET.tostring(result)
    first = fin.find(q(NS_RSM, "set")).find(q(NS_RSM, "first")).text
    result, messages = mam_query(alice, {}, rsm=f"<set xmlns='{NS_RSM}'><max>2</max><before>{first}</before></set>")
    assert bodies(messages) == [("chat", "direct 0"), ("chat", "direct 1")], summarize(messages)

    # Forwards, one at a time: the six room messages between are skipped.
    seen = []
    after = ""
    for _ in range(6):
        rsm = f"<set xmlns='{NS_RSM}'><max>1</max>{after}</set>"
        result, messages = mam_query(alice, {}, rsm=rsm)
        seen += bodies(messages)
        fin = result.find(q(NS_MAM, "fin"))
        if fin.get("complete") == "true":
            break
        last = fin.find(q(NS_RSM, "set")).find(q(NS_RSM, "last")).text
        after = f"<after>{last}</after>"
    assert seen == [("chat", f"direct {i}") for i in range(3)] + [("chat", "direct last")], seen
    alice.close()


def test_skipping_is_bounded_and_past_the_bound_the_page_keeps_groupchat(module_dir, room):
    srv = start_server(module_dir, global_extra="minimix_mam_max_skipped = 3")
    try:
        alice = fill_archive(srv, room, before=1, groupchat_count=5)
        _, everything = mam_query(alice, {"include-groupchat": "true"})
        # The first three groupchat items of the archive (the room's subject is stored
        # too) are skipped, then the page goes on unfiltered: contiguous, so paging on from
        # its last id misses nothing.
        groupchat_seen, expected = 0, []
        for m in everything:
            if m.get("type") == "groupchat" and groupchat_seen < 3:
                groupchat_seen += 1
                continue
            expected.append(m)
        result, messages = mam_query(alice, {})
        assert result.get("type") == "result", ET.tostring(result)
        assert [ET.tostring(m) for m in messages] == [ET.tostring(m) for m in expected], summarize(messages)
        assert ("groupchat", "room 4") in bodies(messages) and ("chat", "direct last") in bodies(messages)
        assert ("groupchat", "room 0") not in bodies(messages)
        assert srv.log_errors() == []
        alice.close()
    finally:
        srv.cleanup()


def test_mod_mam_loaded_before_the_module_still_gets_the_filter(mam_server, room):
    """With mod_mam loaded (its store open) before mod_minimix, loading mod_minimix reopens
    mod_mam's store through the filter."""
    srv = mam_server
    srv.shell("module", "unload", "minimix", "a.localhost")
    srv.shell("module", "reload", "mam", "a.localhost")
    assert not srv.module_loaded("a.localhost")
    srv.shell("module", "load", "minimix", "a.localhost")
    assert srv.module_loaded("a.localhost"), srv.log_tail(40)

    alice = fill_archive(srv, room)
    _, messages = mam_query(alice, {})
    assert bodies(messages) == [("chat", "direct 0"), ("chat", "direct last")], summarize(messages)
    _, messages = mam_query(alice, {"include-groupchat": "true"})
    assert len(bodies(messages)) == 4, summarize(messages)

    # A reload of mod_minimix keeps the filter working.
    srv.shell("module", "reload", "minimix", "a.localhost")
    _, messages = mam_query(alice, {})
    assert bodies(messages) == [("chat", "direct 0"), ("chat", "direct last")], summarize(messages)
    assert srv.log_errors() == []
    alice.close()

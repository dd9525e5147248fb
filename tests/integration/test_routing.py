"""Live-Prosody scenarios for routing between sessions and rooms (issue 4).

Cast (see conftest.USERS): alice's sessions are on a.localhost (mod_minimix);
carol and erin are plain XEP-0045 observers on obs.localhost. Unless a test
says otherwise carol creates the room (owner, moderator); where alice must be
the moderator, alice's phone creates the room first.

Semantics under test (src/core/from_client.rs): private messages, iqs to
occupants, subject changes, invites, muc#admin iqs and answers to occupants'
iqs from a joined session go to the room from the ACCOUNT, and whatever the
room answers reaches the asking session, with the id it chose, addressed to
its full JID; XEP-0410 self-pings are answered locally; MAM, disco and owner
iqs pass from the session's full JID; stanzas from a session that did not
join pass unchanged, so the room answers them as for any non-occupant; errors
a session sends towards a room never reach the room (they would get the
account kicked, 333). To each client everything must look like plain XEP-0045.

Not covered here: MAM queries to the room, because the shared ``server``
fixture runs without mod_muc_mam.
"""

from __future__ import annotations

import functools

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import pytest

from conftest import jid_of
import scenario
from xmpp_client import (
    NS_DATA,
    NS_MUC_OWNER,
    NS_MUC_USER,
    NS_PING,
    Client,
    bare,
    body,
    error_condition,
    from_room,
    groupchat,
    is_groupchat,
    is_iq,
    is_message,
    is_presence,
    is_stanza,
    muc_user_x,
    new_id,
    q,
    status_codes,
    subject_change,
    subject_text,
    summarize,
    to_xml,
)

QUIET = 0.7  # seconds without traffic that count as "nothing more is coming"

room_traffic = functools.partial(scenario.room_traffic, quiet=QUIET)
assert_nothing = scenario.assert_nothing
ALICE = jid_of("alice")
ERIN = jid_of("erin")

NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_VERSION = "jabber:iq:version"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_STANZAS_DECL = "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"


@pytest.fixture(autouse=True)
def no_new_lua_errors(server):
    """Each scenario must leave no Lua error/traceback in the Prosody log."""
    mark = server.log_mark()
    yield
    errors = server.log_errors(since=mark)
    assert errors == [], "Prosody logged errors during this test:\n" + "\n".join(errors)


# ---------------------------------------------------------------------- helpers


def observer_room(connect, room: str, subject: str | None = "Welcome") -> Client:
    """carol creates ``room`` (and optionally sets a subject)."""
    carol = connect("carol", "observer")
    carol.join(room, "Carol")
    if subject is not None:
        carol.send(subject_change(room, subject))
        carol.expect(lambda e: from_room(e, room) and subject_text(e) == subject, what="own subject change")
    return carol


def alice_owned_room(connect, room: str) -> tuple[Client, Client]:
    """alice's phone creates ``room`` (so the account owns it), then carol joins.
    Returns (phone, carol) with their pending room traffic consumed."""
    phone = connect("alice", "phone")
    created = phone.join(room, "Alice")
    assert 201 in status_codes(created.self_presence), created
    carol = connect("carol", "observer")
    carol.join(room, "Carol")
    phone.expect(lambda e: is_presence(e, frm=f"{room}/Carol"), what="carol joins")
    return phone, carol


def joined(connect, room: str, *resources: str, observer: Client | None = None) -> list[Client]:
    """Sessions of alice that join ``room`` as Alice, in order. With
    ``observer``, the account's arrival is consumed from its pending traffic."""
    sessions = []
    for r in resources:
        s = connect("alice", r)
        s.join(room, "Alice")
        if observer is not None and not sessions:
            observer.expect(lambda e: is_presence(e, frm=f"{room}/Alice"), what="Alice arrives")
        sessions.append(s)
    return sessions


def available(client: Client) -> Client:
    """Wait until the server processed ``client``'s initial presence (its echo
    arrives), so messages to its bare JID are delivered rather than bounced."""
    client.expect(lambda e: is_presence(e, frm=client.full_jid), what="own initial presence")
    return client


def enable_carbons(client: Client) -> None:
    res = client.iq(f"<enable xmlns='{NS_CARBONS}'/>", type="set")
    assert res.get("type") == "result", to_xml(res)


def errors_in(els) -> list:
    return [e for e in els if is_stanza(e) and e.get("type") == "error"]


def assert_account_is_the_occupant(server, room: str, nick: str, account: str) -> None:
    assert server.occupant_real_jids(room, nick) == [account], (
        f"room {room} has {server.occupant_real_jids(room, nick)} behind nick {nick}, expected only {account}"
    )


def assert_account_still_in_room(server, carol: Client, phone: Client, room: str) -> None:
    """The account was not kicked: the observer saw no presence of Alice (a
    kick shows as unavailable with 333), nobody saw a 333, the room still has
    the account as occupant and a new groupchat still reaches the session."""
    seen = room_traffic(carol, room)
    assert_nothing([e for e in seen if is_presence(e, frm=f"{room}/Alice")], "the observer (Alice's presence)")
    kicks = [e for e in carol.received + phone.received if 333 in status_codes(e)]
    assert kicks == [], "someone was kicked for an error:\n" + summarize(kicks)
    assert_account_is_the_occupant(server, room, "Alice", ALICE)
    text = new_id("still-here-")
    carol.send(groupchat(room, text))
    phone.expect(lambda e: is_groupchat(e, room, text), what=f"groupchat {text!r} after the scenario")


def canonical(el: ET.Element):
    """Comparable form of an element: tag, attributes (order-insensitive:
    Prosody keeps attributes in a Lua table), text and children with tails."""
    return (
        el.tag,
        tuple(sorted(el.attrib.items())),
        el.text or "",
        tuple((canonical(c), c.tail or "") for c in el),
    )


def assert_payload_unchanged(got: ET.Element, payload_xml: str, who: str) -> None:
    """``got`` carries each top-level element of ``payload_xml`` exactly once, unchanged."""
    for sent in ET.fromstring(f"<wrap xmlns='jabber:client'>{payload_xml}</wrap>"):
        found = got.findall(sent.tag)
        assert len(found) == 1, f"{who}: expected one {to_xml(sent)} in\n{to_xml(got)}"
        assert canonical(found[0]) == canonical(sent), (
            f"{who}: payload changed\n sent: {to_xml(sent)}\n  got: {to_xml(found[0])}"
        )


def iq_with_id(id: str):
    return lambda e: is_iq(e, id=id) and e.get("type") in ("result", "error")


def iq_request_from(frm: str, ns: str, name: str):
    return lambda e: is_iq(e, frm=frm) and e.get("type") in ("get", "set") and e.find(q(ns, name)) is not None


# ---------------------------------------------------------------------- private messages


def test_private_message_from_a_joined_session_reaches_the_occupant_from_the_account_nick(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)

    phone.send(f"<message type='chat' to='{room}/Carol' id='pm-out-1'><body>psst carol</body></message>")

    pm = carol.expect(lambda e: is_message(e, frm=f"{room}/Alice"), what="alice's PM")
    assert pm.get("type") == "chat", to_xml(pm)
    assert body(pm) == "psst carol", to_xml(pm)
    assert pm.get("to") == carol.full_jid, to_xml(pm)
    assert_nothing(errors_in(room_traffic(phone, room)), "the sending session (errors)")
    assert_account_still_in_room(server, carol, phone, room)


def test_private_message_to_the_account_nick_reaches_every_joined_session_and_no_unjoined_session(server, connect, room):
    desk = connect("alice", "desk")  # available, carbons on, never joins
    enable_carbons(desk)
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)
    enable_carbons(laptop)

    carol.send(f"<message type='chat' to='{room}/Alice' id='pm-in-1'><body>hello alice</body></message>")

    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        pm = got[0]
        assert pm.get("type") == "chat" and body(pm) == "hello alice", to_xml(pm)
        assert pm.get("from") == f"{room}/Carol", to_xml(pm)
        assert pm.get("to") == s.full_jid, to_xml(pm)
        copies = [e for e in s.drain() if is_message(e)]
        assert_nothing(copies, f"{s} (carbons or copies of the PM)")
    desk.collect(QUIET)
    leaked = [e for e in desk.received if is_message(e) and (from_room(e, room) or e.find(q(NS_CARBONS, "received")) is not None)]
    assert_nothing(leaked, "the unjoined session")
    assert_account_still_in_room(server, carol, phone, room)


def test_private_message_from_a_joined_session_reaches_its_other_joined_session_as_a_sent_carbon(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)
    enable_carbons(laptop)

    phone.send(f"<message type='chat' to='{room}/Carol' id='pm-carbon-1'><body>seen elsewhere</body></message>")

    carol.expect(lambda e: is_message(e, frm=f"{room}/Alice") and body(e) == "seen elsewhere", what="alice's PM")
    carbon = laptop.expect(lambda e: is_message(e) and e.find(q(NS_CARBONS, "sent")) is not None, what="sent carbon")
    assert carbon.get("from") == ALICE, to_xml(carbon)
    assert carbon.get("to") == laptop.full_jid, to_xml(carbon)
    inner = carbon.find(f"{q(NS_CARBONS, 'sent')}/{q(NS_FORWARD, 'forwarded')}/{q('jabber:client', 'message')}")
    assert inner is not None, to_xml(carbon)
    assert inner.get("to") == f"{room}/Carol", to_xml(carbon)
    assert inner.get("from") == phone.full_jid, to_xml(carbon)
    assert body(inner) == "seen elsewhere", to_xml(carbon)
    assert_nothing([e for e in laptop.collect(QUIET) if is_message(e)], "the other session (more messages)")
    assert_nothing([e for e in phone.collect(0.1) if is_message(e)], "the sending session (own carbon or echo)")


def test_chat_state_only_private_message_reaches_joined_sessions_without_getting_the_account_kicked(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    carol.send(f"<message type='chat' to='{room}/Alice' id='cs-pm-1'><composing xmlns='{NS_CHATSTATES}'/></message>")

    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert got[0].get("from") == f"{room}/Carol", to_xml(got[0])
        assert got[0].get("to") == s.full_jid, to_xml(got[0])
        assert got[0].find(q(NS_CHATSTATES, "composing")) is not None, to_xml(got[0])
        assert body(got[0]) is None, to_xml(got[0])
    assert_account_still_in_room(server, carol, phone, room)


# ---------------------------------------------------------------------- iq to occupants


def test_iq_to_an_occupant_gets_its_result_back_to_the_asking_session_with_the_original_id(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    phone.send(f"<iq type='get' to='{room}/Carol' id='v1'><query xmlns='{NS_VERSION}'/></iq>")

    req = carol.expect(iq_request_from(f"{room}/Alice", NS_VERSION, "query"), what="version request from room/Alice")
    assert req.get("type") == "get" and req.get("to") == carol.full_jid, to_xml(req)
    carol.send(
        f"<iq type='result' to='{room}/Alice' id={quoteattr(req.get('id'))}>"
        f"<query xmlns='{NS_VERSION}'><name>carol-client</name><version>1.2</version></query></iq>"
    )
    res = phone.expect(iq_with_id("v1"), what="answer to v1")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == f"{room}/Carol", to_xml(res)
    assert res.get("to") == phone.full_jid, to_xml(res)
    assert res.findtext(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}") == "carol-client", to_xml(res)
    assert_nothing([e for e in laptop.collect(QUIET) if is_iq(e)], "the other joined session")
    assert_account_still_in_room(server, carol, phone, room)


def test_iq_error_from_an_occupant_gets_back_to_the_asking_session_with_the_original_id(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)

    phone.send(f"<iq type='get' to='{room}/Carol' id='v1'><query xmlns='{NS_VERSION}'/></iq>")

    req = carol.expect(iq_request_from(f"{room}/Alice", NS_VERSION, "query"), what="version request from room/Alice")
    carol.send(
        f"<iq type='error' to='{room}/Alice' id={quoteattr(req.get('id'))}>"
        f"<query xmlns='{NS_VERSION}'/><error type='cancel'><feature-not-implemented {NS_STANZAS_DECL}/></error></iq>"
    )
    res = phone.expect(iq_with_id("v1"), what="answer to v1")
    assert res.get("type") == "error", to_xml(res)
    assert error_condition(res) == "feature-not-implemented", to_xml(res)
    assert res.get("from") == f"{room}/Carol", to_xml(res)
    assert res.get("to") == phone.full_jid, to_xml(res)
    assert_account_still_in_room(server, carol, phone, room)


def test_ping_to_an_occupant_is_answered_to_the_asking_session_with_the_original_id(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)

    phone.send(f"<iq type='get' to='{room}/Carol' id='p1'><ping xmlns='{NS_PING}'/></iq>")

    req = carol.expect(iq_request_from(f"{room}/Alice", NS_PING, "ping"), what="ping from room/Alice")
    carol.send(f"<iq type='result' to='{room}/Alice' id={quoteattr(req.get('id'))}/>")
    res = phone.expect(iq_with_id("p1"), what="answer to p1")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == f"{room}/Carol", to_xml(res)
    assert res.get("to") == phone.full_jid, to_xml(res)


def test_two_sessions_asking_an_occupant_with_the_same_id_each_get_exactly_one_answer(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    phone.send(f"<iq type='get' to='{room}/Carol' id='same'><query xmlns='{NS_VERSION}'/></iq>")
    laptop.send(f"<iq type='get' to='{room}/Carol' id='same'><query xmlns='{NS_VERSION}'/></iq>")

    names = ["answer-one", "answer-two"]
    for name in names:
        req = carol.expect(iq_request_from(f"{room}/Alice", NS_VERSION, "query"), what="version request")
        carol.send(
            f"<iq type='result' to='{room}/Alice' id={quoteattr(req.get('id'))}>"
            f"<query xmlns='{NS_VERSION}'><name>{name}</name></query></iq>"
        )
    got = []
    for s in (phone, laptop):
        answers = [e for e in s.collect(QUIET) if is_iq(e, id="same")]
        assert len(answers) == 1, f"{s}: " + summarize(answers)
        assert answers[0].get("type") == "result" and answers[0].get("to") == s.full_jid, to_xml(answers[0])
        got.append(answers[0].findtext(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}"))
    assert sorted(got) == names, got


def test_occupant_iq_to_the_account_nick_is_answered_by_one_joined_session_with_the_original_id(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    carol.send(f"<iq type='get' to='{room}/Alice' id='cv1'><query xmlns='{NS_VERSION}'/></iq>")

    got = {s: [e for e in s.collect(QUIET) if is_iq(e)] for s in (phone, laptop)}
    asked = [s for s, els in got.items() if els]
    assert len(asked) == 1 and len(got[asked[0]]) == 1, {str(s): summarize(els) for s, els in got.items()}
    session = asked[0]
    req = got[session][0]
    assert req.get("type") == "get" and req.get("from") == f"{room}/Carol", to_xml(req)
    assert req.get("to") == session.full_jid, to_xml(req)
    session.send(
        f"<iq type='result' to='{room}/Carol' id={quoteattr(req.get('id'))}>"
        f"<query xmlns='{NS_VERSION}'><name>alice-client</name></query></iq>"
    )
    res = carol.expect(iq_with_id("cv1"), what="answer to cv1")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == f"{room}/Alice", to_xml(res)
    assert res.findtext(f"{q(NS_VERSION, 'query')}/{q(NS_VERSION, 'name')}") == "alice-client", to_xml(res)
    assert_account_still_in_room(server, carol, phone, room)


# ---------------------------------------------------------------------- XEP-0410 self-ping


def test_self_ping_from_a_joined_session_gets_a_result(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)

    phone.send(f"<iq type='get' to='{room}/Alice' id='sp1'><ping xmlns='{NS_PING}'/></iq>")

    res = phone.expect(iq_with_id("sp1"), what="self-ping answer")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == f"{room}/Alice", to_xml(res)
    assert res.get("to") == phone.full_jid, to_xml(res)
    assert_nothing(room_traffic(carol, room), "the observer")


def test_self_ping_from_a_session_that_did_not_join_gets_not_acceptable(server, connect, room):
    carol = observer_room(connect, room)
    joined(connect, room, "phone", observer=carol)
    desk = connect("alice", "desk")

    desk.send(f"<iq type='get' to='{room}/Alice' id='sp2'><ping xmlns='{NS_PING}'/></iq>")

    res = desk.expect(iq_with_id("sp2"), what="self-ping answer")
    assert res.get("type") == "error", to_xml(res)
    assert error_condition(res) == "not-acceptable", to_xml(res)
    assert res.get("to") == desk.full_jid, to_xml(res)
    assert bare(res.get("from")) == room, to_xml(res)


# ---------------------------------------------------------------------- room-level actions


def test_subject_change_from_a_joined_moderator_session_reaches_the_observer_from_the_account_nick(server, connect, room):
    phone, carol = alice_owned_room(connect, room)

    phone.send(subject_change(room, "New", id="subj-1"))

    subj = carol.expect(lambda e: from_room(e, room) and subject_text(e) == "New", what="new subject")
    assert subj.get("from") == f"{room}/Alice", to_xml(subj)
    reflected = phone.expect(lambda e: from_room(e, room) and subject_text(e) == "New", what="subject reflection")
    assert reflected.get("from") == f"{room}/Alice" and reflected.get("to") == phone.full_jid, to_xml(reflected)
    assert_nothing(errors_in(room_traffic(phone, room)), "the session (errors)")


def test_mediated_invite_from_a_joined_session_reaches_the_invitee_from_the_room(server, connect, room):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)
    erin = available(connect("erin", "phone"))

    phone.send(
        f"<message to='{room}' id='inv-1'><x xmlns='{NS_MUC_USER}'>"
        f"<invite to='{ERIN}'><reason>join us</reason></invite></x></message>"
    )

    inv = erin.expect(lambda e: is_message(e, frm=room) and muc_user_x(e) is not None, what="invite")
    invite = muc_user_x(inv).find(q(NS_MUC_USER, "invite"))
    assert invite is not None, to_xml(inv)
    # Semi-anonymous room: the room names the inviter by its occupant JID, as it
    # would for a directly joined client (only an occupant is named so).
    assert invite.get("from") == f"{room}/Alice", to_xml(inv)
    assert invite.findtext(q(NS_MUC_USER, "reason")) == "join us", to_xml(inv)
    assert_nothing(errors_in(room_traffic(phone, room)), "the inviting session (errors)")
    assert_account_still_in_room(server, carol, phone, room)


def test_owner_kick_from_a_joined_session_removes_the_occupant_with_307_and_answers_that_session(server, connect, room):
    phone, carol = alice_owned_room(connect, room)
    (laptop,) = joined(connect, room, "laptop")

    phone.send(
        f"<iq type='set' to='{room}' id='kick-1'><query xmlns='{NS_MUC_ADMIN}'>"
        f"<item nick='Carol' role='none'><reason>bye</reason></item></query></iq>"
    )

    res = phone.expect(iq_with_id("kick-1"), what="kick answer")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == room and res.get("to") == phone.full_jid, to_xml(res)
    gone = carol.expect(lambda e: is_presence(e, frm=f"{room}/Carol", type="unavailable"), what="carol's own kick")
    assert status_codes(gone) >= {307, 110}, to_xml(gone)
    for s in (phone, laptop):
        seen = s.expect(lambda e: is_presence(e, frm=f"{room}/Carol", type="unavailable"), what="carol kicked")
        assert 307 in status_codes(seen) and 110 not in status_codes(seen), to_xml(seen)
        assert seen.get("to") == s.full_jid, to_xml(seen)
    assert_nothing([e for e in laptop.collect(QUIET) if is_iq(e)], "the other session (iqs)")
    assert_account_is_the_occupant(server, room, "Alice", ALICE)


def test_owner_configuration_form_request_from_a_joined_session_is_answered_to_that_session(server, connect, room):
    phone, _carol = alice_owned_room(connect, room)
    (laptop,) = joined(connect, room, "laptop")

    phone.send(f"<iq type='get' to='{room}' id='cfg-get-1'><query xmlns='{NS_MUC_OWNER}'/></iq>")

    res = phone.expect(iq_with_id("cfg-get-1"), what="configuration form")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == room and res.get("to") == phone.full_jid, to_xml(res)
    form = res.find(f"{q(NS_MUC_OWNER, 'query')}/{q(NS_DATA, 'x')}")
    assert form is not None and form.get("type") == "form", to_xml(res)
    form_type = [f.findtext(q(NS_DATA, "value")) for f in form.findall(q(NS_DATA, "field")) if f.get("var") == "FORM_TYPE"]
    assert form_type == ["http://jabber.org/protocol/muc#roomconfig"], to_xml(res)
    assert_nothing([e for e in laptop.collect(QUIET) if is_iq(e)], "the other session (iqs)")


# ---------------------------------------------------------------------- left alone on purpose


def test_disco_info_to_the_room_from_a_joined_session_is_answered_to_its_full_jid(server, connect, room):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    phone.send(f"<iq type='get' to='{room}' id='disco-1'><query xmlns='{NS_DISCO_INFO}'/></iq>")

    res = phone.expect(iq_with_id("disco-1"), what="disco#info answer")
    assert res.get("type") == "result", to_xml(res)
    assert res.get("from") == room and res.get("to") == phone.full_jid, to_xml(res)
    identities = res.findall(f"{q(NS_DISCO_INFO, 'query')}/{q(NS_DISCO_INFO, 'identity')}")
    assert ("conference", "text") in {(i.get("category"), i.get("type")) for i in identities}, to_xml(res)
    assert_nothing([e for e in laptop.collect(QUIET) if is_iq(e)], "the other session (iqs)")


# ---------------------------------------------------------------------- pass-through payloads


PAYLOADS = {
    "chat-state": f"<composing xmlns='{NS_CHATSTATES}'/>",
    "correction": "<body>fixed text</body><replace xmlns='urn:xmpp:message-correct:0' id='orig-msg-1'/>",
    "reaction": "<reactions xmlns='urn:xmpp:reactions:0' id='orig-msg-2'><reaction>\U0001F44D</reaction></reactions>",
    "unknown-payload": "<body>with extras</body><foo xmlns='urn:example:unknown'><bar a='1'>text</bar></foo>",
}


def payload_groupchat(room: str, id: str, payload: str) -> str:
    return f"<message to={quoteattr(room)} type='groupchat' id={quoteattr(id)}>{payload}</message>"


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_groupchat_payload_from_a_session_reaches_the_observer_and_every_joined_session_unchanged(server, connect, room, kind):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)
    id = f"pt-{kind}"

    phone.send(payload_groupchat(room, id, PAYLOADS[kind]))

    at_carol = [e for e in room_traffic(carol, room) if is_message(e)]
    assert len(at_carol) == 1, summarize(at_carol)
    assert at_carol[0].get("from") == f"{room}/Alice" and at_carol[0].get("type") == "groupchat", to_xml(at_carol[0])
    assert_payload_unchanged(at_carol[0], PAYLOADS[kind], "the observer")
    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert got[0].get("id") == id and got[0].get("to") == s.full_jid, to_xml(got[0])
        assert got[0].get("from") == f"{room}/Alice", to_xml(got[0])
        assert_payload_unchanged(got[0], PAYLOADS[kind], f"{s} (reflection)")


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_groupchat_payload_from_the_observer_reaches_every_joined_session_unchanged(server, connect, room, kind):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)
    id = f"obs-{kind}"

    carol.send(payload_groupchat(room, id, PAYLOADS[kind]))

    for s in (phone, laptop):
        got = [e for e in room_traffic(s, room) if is_message(e)]
        assert len(got) == 1, f"{s}: " + summarize(got)
        assert got[0].get("id") == id and got[0].get("to") == s.full_jid, to_xml(got[0])
        assert got[0].get("from") == f"{room}/Carol" and got[0].get("type") == "groupchat", to_xml(got[0])
        assert_payload_unchanged(got[0], PAYLOADS[kind], str(s))
    assert_account_still_in_room(server, carol, phone, room)


# ---------------------------------------------------------------------- errors towards the room


SERVICE_UNAVAILABLE = f"<error type='cancel'><service-unavailable {NS_STANZAS_DECL}/></error>"
SESSION_ERRORS = {
    "message-error-to-an-occupant": "<message type='error' to='{room}/Carol' id='err-1'>" + SERVICE_UNAVAILABLE + "</message>",
    "message-error-to-the-room": "<message type='error' to='{room}' id='err-2'>" + SERVICE_UNAVAILABLE + "</message>",
    "presence-error-to-an-occupant": "<presence type='error' to='{room}/Carol' id='err-3'>" + SERVICE_UNAVAILABLE + "</presence>",
}


@pytest.mark.parametrize("kind", list(SESSION_ERRORS))
def test_error_a_joined_session_sends_towards_the_room_does_not_get_the_account_kicked(server, connect, room, kind):
    carol = observer_room(connect, room)
    phone, laptop = joined(connect, room, "phone", "laptop", observer=carol)

    phone.send(SESSION_ERRORS[kind].format(room=room))

    at_carol = room_traffic(carol, room)
    assert_nothing(errors_in(at_carol), "the observer (errors)")
    assert_nothing([e for e in at_carol if is_presence(e, frm=f"{room}/Alice")], "the observer (Alice's presence)")
    for s in (phone, laptop):
        assert_nothing([e for e in room_traffic(s, room) if is_presence(e, frm=f"{room}/Alice")], f"{s} (own presence)")
    assert_account_still_in_room(server, carol, phone, room)
    laptop.expect(lambda e: is_groupchat(e, room) and body(e).startswith("still-here-"), what="groupchat on the laptop")


# ---------------------------------------------------------------------- sessions that did not join


NON_OCCUPANT_STANZAS = {
    "groupchat": "<message type='groupchat' to='{room}' id='nj-1'><body>not joined</body></message>",
    "private-message": "<message type='chat' to='{room}/Carol' id='nj-1'><body>not joined</body></message>",
    "iq-to-an-occupant": f"<iq type='get' to='{{room}}/Carol' id='nj-1'><query xmlns='{NS_VERSION}'/></iq>",
}


@pytest.mark.parametrize("kind", list(NON_OCCUPANT_STANZAS))
def test_stanza_from_a_session_that_did_not_join_is_refused_by_the_room_as_from_a_non_occupant(server, connect, room, kind):
    carol = observer_room(connect, room)
    (phone,) = joined(connect, room, "phone", observer=carol)
    desk = connect("alice", "desk")

    desk.send(NON_OCCUPANT_STANZAS[kind].format(room=room))

    err = desk.expect(lambda e: is_stanza(e) and e.get("id") == "nj-1", what="the room's refusal")
    assert err.get("type") == "error", to_xml(err)
    assert error_condition(err) == "not-acceptable", to_xml(err)
    assert err.get("to") == desk.full_jid, to_xml(err)
    assert bare(err.get("from")) == room, to_xml(err)
    assert_nothing(room_traffic(carol, room), "the observer")
    assert_nothing(room_traffic(phone, room), "the joined session")
    assert_account_still_in_room(server, carol, phone, room)

"""A deliberately raw XMPP client for integration tests.

The point of the integration tests is to see *exactly* what each session
receives, so this client hides nothing: no roster handling, no presence
logic, no MUC state. Every top-level element the server sends is parsed into
an ``xml.etree.ElementTree.Element`` and

* appended to :attr:`Client.received` (the full record), and
* put into a pending list that :meth:`Client.expect`, :meth:`Client.collect`
  and :meth:`Client.drain` consume.

The only things answered automatically are those needed to stay connected:
XEP-0198 ``<r/>`` (when stream management is enabled) and, if
``answer_pings=True``, XEP-0199 pings. ``<r/>`` and ``<a/>`` are never put into
the pending list (they are recorded in :attr:`Client.sm_log`).

Tags are in Clark notation, e.g. ``{jabber:client}presence``; use the helper
predicates (:func:`is_presence`, :func:`is_message`, :func:`status_codes` ...)
rather than comparing tags by hand.
"""

from __future__ import annotations

import base64
import itertools
import socket
import threading
import time
import xml.etree.ElementTree as ET
from typing import Callable, Iterable
from xml.sax.saxutils import escape, quoteattr

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_SM = "urn:xmpp:sm:3"
NS_PING = "urn:xmpp:ping"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_DELAY = "urn:xmpp:delay"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

STANZA_NAMES = ("message", "presence", "iq")
Predicate = Callable[[ET.Element], bool]

_ids = itertools.count(1)


def new_id(prefix: str = "t") -> str:
    return f"{prefix}{next(_ids)}"


class XmppError(RuntimeError):
    pass


class StreamClosed(XmppError):
    pass


# ---------------------------------------------------------------------- element helpers


def q(ns: str, name: str) -> str:
    """Clark-notation tag: q(NS_CLIENT, 'presence') == '{jabber:client}presence'."""
    return f"{{{ns}}}{name}"


def local_name(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def namespace(el: ET.Element) -> str:
    return el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else ""


def is_stanza(el: ET.Element) -> bool:
    return namespace(el) == NS_CLIENT and local_name(el) in STANZA_NAMES


def bare(jid: str | None) -> str | None:
    return None if jid is None else jid.split("/", 1)[0]


def _attr_matches(el: ET.Element, frm, to, type_) -> bool:
    if frm is not None and el.get("from") != frm:
        return False
    if to is not None and el.get("to") != to:
        return False
    if type_ is not None and el.get("type") != type_:
        # type_=="available" means "no type attribute" for presence
        if not (type_ == "available" and el.get("type") is None):
            return False
    return True


def is_presence(el: ET.Element, frm: str | None = None, to: str | None = None, type: str | None = None) -> bool:
    """Presence stanza, optionally with exact from/to/type (type='available' = no type attr)."""
    return el.tag == q(NS_CLIENT, "presence") and _attr_matches(el, frm, to, type)


def is_message(el: ET.Element, frm: str | None = None, to: str | None = None, type: str | None = None) -> bool:
    return el.tag == q(NS_CLIENT, "message") and _attr_matches(el, frm, to, type)


def is_iq(el: ET.Element, frm: str | None = None, to: str | None = None, type: str | None = None, id: str | None = None) -> bool:
    return el.tag == q(NS_CLIENT, "iq") and _attr_matches(el, frm, to, type) and (id is None or el.get("id") == id)


def from_room(el: ET.Element, room: str) -> bool:
    """Sent by the room itself or by one of its occupants (room@host or room@host/nick)."""
    return bare(el.get("from")) == room


def muc_user_x(el: ET.Element) -> ET.Element | None:
    return el.find(q(NS_MUC_USER, "x"))


def status_codes(el: ET.Element) -> set[int]:
    """The muc#user <status code=…/> values of a stanza, as ints."""
    x = muc_user_x(el)
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(q(NS_MUC_USER, "status")) if s.get("code", "").isdigit()}


def muc_items(el: ET.Element) -> list[ET.Element]:
    x = muc_user_x(el)
    return [] if x is None else x.findall(q(NS_MUC_USER, "item"))


def muc_item(el: ET.Element) -> ET.Element | None:
    items = muc_items(el)
    return items[0] if items else None


def is_self_presence(el: ET.Element, room: str | None = None) -> bool:
    """XEP-0045 self-presence: presence carrying status 110."""
    return is_presence(el) and 110 in status_codes(el) and (room is None or from_room(el, room))


def is_subject(el: ET.Element, room: str | None = None) -> bool:
    """XEP-0045 subject message: groupchat with <subject/> and no <body/>."""
    return (
        is_message(el, type="groupchat")
        and el.find(q(NS_CLIENT, "subject")) is not None
        and el.find(q(NS_CLIENT, "body")) is None
        and (room is None or from_room(el, room))
    )


def is_groupchat(el: ET.Element, room: str | None = None, body: str | None = None) -> bool:
    """Groupchat message with a body (optionally a given body)."""
    if not is_message(el, type="groupchat") or (room is not None and not from_room(el, room)):
        return False
    b = el.find(q(NS_CLIENT, "body"))
    return b is not None and (body is None or b.text == body)


def body(el: ET.Element) -> str | None:
    b = el.find(q(NS_CLIENT, "body"))
    return None if b is None else (b.text or "")


def subject_text(el: ET.Element) -> str | None:
    s = el.find(q(NS_CLIENT, "subject"))
    return None if s is None else (s.text or "")


def delay(el: ET.Element) -> ET.Element | None:
    """The XEP-0203 <delay/> child, if any (history and subject carry one)."""
    return el.find(q(NS_DELAY, "delay"))


def error_condition(el: ET.Element) -> str | None:
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None
    for child in err:
        if namespace(child) == NS_STANZAS and local_name(child) != "text":
            return local_name(child)
    return None


def to_xml(el: ET.Element, parent_ns: str = NS_CLIENT) -> str:
    """Readable serialisation for assertion messages: default-namespace
    declarations only where the namespace changes (ElementTree's own output
    uses ns0: prefixes everywhere)."""
    ns, name = namespace(el), local_name(el)
    attrs = "".join(
        f" {'xml:' + k.split('}')[1] if k.startswith('{http://www.w3.org/XML/1998/namespace}') else k}={quoteattr(v)}"
        for k, v in el.attrib.items()
    )
    if ns != parent_ns:
        attrs = f" xmlns={quoteattr(ns)}" + attrs
    inner = escape(el.text or "") + "".join(to_xml(c, ns) + escape(c.tail or "") for c in el)
    return f"<{name}{attrs}>{inner}</{name}>" if inner else f"<{name}{attrs}/>"


def summarize(els: Iterable[ET.Element]) -> str:
    return "\n".join(to_xml(e) for e in els) or "(nothing)"


# ---------------------------------------------------------------------- stanza builders


def muc_join(
    room_nick: str,
    *,
    password: str | None = None,
    history: dict[str, int | str] | None = None,
    show: str | None = None,
    status: str | None = None,
    id: str | None = None,
) -> str:
    """XEP-0045 §7.2 join presence to room@host/nick, with <x xmlns=muc/>.

    ``history`` gives <history/> attributes, e.g. {"maxstanzas": 0}."""
    x = f"<x xmlns='{NS_MUC}'>"
    if history is not None:
        x += "<history " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in history.items()) + "/>"
    if password is not None:
        x += f"<password>{escape(password)}</password>"
    x += "</x>"
    extra = ""
    if show:
        extra += f"<show>{escape(show)}</show>"
    if status:
        extra += f"<status>{escape(status)}</status>"
    id_attr = f" id={quoteattr(id)}" if id else ""
    return f"<presence to={quoteattr(room_nick)}{id_attr}>{x}{extra}</presence>"


def muc_leave(room_nick: str, status: str | None = None) -> str:
    st = f"<status>{escape(status)}</status>" if status else ""
    return f"<presence to={quoteattr(room_nick)} type='unavailable'>{st}</presence>"


def groupchat(room: str, text: str, id: str | None = None) -> str:
    id = id or new_id("gc")
    return f"<message to={quoteattr(room)} type='groupchat' id={quoteattr(id)}><body>{escape(text)}</body></message>"


def subject_change(room: str, text: str, id: str | None = None) -> str:
    id = id or new_id("subj")
    return f"<message to={quoteattr(room)} type='groupchat' id={quoteattr(id)}><subject>{escape(text)}</subject></message>"


def room_config(room: str, fields: dict[str, str | bool], id: str | None = None) -> str:
    """muc#owner config submit (XEP-0045 §10.2), e.g. {'muc#roomconfig_whois': 'anyone'}."""
    id = id or new_id("cfg")
    parts = [
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
    ]
    for var, value in fields.items():
        if isinstance(value, bool):
            value = "1" if value else "0"
        parts.append(f"<field var={quoteattr(var)}><value>{escape(value)}</value></field>")
    return (
        f"<iq type='set' to={quoteattr(room)} id={quoteattr(id)}>"
        f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='{NS_DATA}' type='submit'>{''.join(parts)}</x></query></iq>"
    )


# ---------------------------------------------------------------------- XEP-0045 join sequences


class JoinSequence:
    """What a joining session received from the room, split per XEP-0045 §7.2:
    other occupants' presences, then the self-presence (110), then history,
    then the subject. :func:`parse_join_sequence` checks that order."""

    def __init__(self, raw, occupants, self_presence, history, subject):
        self.raw: list[ET.Element] = raw
        self.occupants: list[ET.Element] = occupants
        self.self_presence: ET.Element = self_presence
        self.history: list[ET.Element] = history
        self.subject: ET.Element = subject

    def occupant_nicks(self) -> list[str]:
        return [e.get("from", "").split("/", 1)[-1] for e in self.occupants]

    def __repr__(self) -> str:
        return f"<JoinSequence\n{summarize(self.raw)}\n>"


def parse_join_sequence(seq: list[ET.Element], room: str, nick: str) -> JoinSequence:
    """Split and validate a join sequence; AssertionError with the whole
    sequence when the order is not others → self(110) → history → subject."""
    dump = summarize(seq)
    assert seq, "empty join sequence"
    presences = [i for i, e in enumerate(seq) if is_presence(e)]
    selfs = [i for i in presences if 110 in status_codes(seq[i])]
    assert len(selfs) == 1, f"expected exactly one self-presence (110), got {len(selfs)}:\n{dump}"
    si = selfs[0]
    me = seq[si]
    assert me.get("from") == f"{room}/{nick}", f"self-presence from {me.get('from')!r}, expected {room}/{nick}:\n{dump}"
    assert presences[-1] == si, f"self-presence (110) is not the last presence:\n{dump}"
    assert is_subject(seq[-1], room), f"join sequence does not end with the subject:\n{dump}"
    subjects = [i for i, e in enumerate(seq) if is_subject(e, room)]
    assert subjects == [len(seq) - 1], f"more than one subject or subject before the end:\n{dump}"
    history = seq[si + 1 : -1]
    for h in history:
        assert is_groupchat(h, room) and delay(h) is not None, f"unexpected stanza between self-presence and subject: {to_xml(h)}\n{dump}"
    occupants = seq[:si]
    for o in occupants:
        assert is_presence(o) and from_room(o, room), f"non-presence before self-presence: {to_xml(o)}\n{dump}"
    return JoinSequence(seq, occupants, me, history, seq[-1])


# ---------------------------------------------------------------------- the client


class Client:
    """One XMPP c2s session over plain TCP.

    ``Client(port, "alice@a.localhost", "pw", resource="phone")`` connects,
    authenticates (SASL PLAIN), binds ``resource``, optionally enables stream
    management and sends initial presence, then returns. A background thread
    reads and parses everything the server sends.

    ``resume=old_client`` resumes a hibernating XEP-0198 session of
    ``old_client`` instead of binding a new resource.
    """

    def __init__(
        self,
        port: int,
        jid: str,
        password: str,
        resource: str = "test",
        *,
        host: str = "127.0.0.1",
        initial_presence: bool = True,
        session: bool = False,
        sm: bool = False,
        sm_resume: bool = True,
        resume: "Client | None" = None,
        answer_pings: bool = False,
        timeout: float = 10,
    ):
        self.port = port
        self.account = jid
        self.username, self.domain = jid.split("@", 1)
        self.password = password
        self.resource = resource
        self.full_jid: str | None = None
        self.answer_pings = answer_pings
        self.timeout = timeout

        self.received: list[ET.Element] = []
        self._pending: list[ET.Element] = []
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self.closed = False
        self.close_reason: str | None = None
        self.stream_attrs: dict[str, str] = {}
        self.sent_log: list[str] = []

        # XEP-0198 state
        self.sm_enabled = False
        self.sm_id: str | None = None
        self.sm_log: list[ET.Element] = []
        self.inbound_h = 0  # stanzas received since <enabled/>
        self.outbound_count = 0  # stanzas sent since <enable/>
        self._unacked_out: list[str] = []  # (count - acked) stanzas we may resend
        self._acked_out = 0
        self.sm_resumed = False

        self._parser: ET.XMLPullParser | None = None
        self._depth = 0
        self._root: ET.Element | None = None
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self._reset_parser()
        self._reader = threading.Thread(target=self._read_loop, name=f"xmpp-{jid}/{resource}", daemon=True)
        self._reader.start()

        try:
            self._open_stream()
            self._authenticate()
            if resume is not None:
                self._resume(resume)
            else:
                self._bind(session)
                if sm:
                    self.enable_sm(resume=sm_resume)
                if initial_presence:
                    self.send("<presence/>")
        except BaseException:
            self.kill()  # don't leak a socket and reader thread on failed set-up
            raise

    def __repr__(self) -> str:
        return f"<Client {self.full_jid or self.account}>"

    # ------------------------------------------------------------------ wire

    def _reset_parser(self) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root = None

    def _read_loop(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self._mark_closed("connection closed by server")
                    return
                self._feed(data)
        except OSError as e:
            self._mark_closed(f"socket error: {e}")
        except Exception as e:  # parse errors etc.: surface them to waiters
            self._mark_closed(f"reader crashed: {e!r}")

    def _feed(self, data: bytes) -> None:
        self._parser.feed(data)
        for event, el in self._parser.read_events():
            if event == "start":
                self._depth += 1
                if self._depth == 1:
                    self._root = el
                    self.stream_attrs = dict(el.attrib)
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._mark_closed("server closed the stream")
                elif self._depth == 1:
                    # Free memory: top-level elements need not stay in the tree.
                    if self._root is not None:
                        self._root.remove(el)
                    restart = self._dispatch(el)
                    if restart:
                        # After SASL success the server's next bytes start a new
                        # stream; it sends nothing until we restart ours.
                        self._reset_parser()
                        return

    def _dispatch(self, el: ET.Element) -> bool:
        """Handle one top-level element; return True if the parser must be reset."""
        ns = namespace(el)
        name = local_name(el)
        if ns == NS_SM and name in ("r", "a"):
            if name == "r" and self.sm_enabled:
                self._raw_send(f"<a xmlns='{NS_SM}' h='{self.inbound_h}'/>")
            elif name == "a":
                self._handle_ack(int(el.get("h", "0")))
            with self._cond:
                self.sm_log.append(el)
                self._cond.notify_all()
            return False
        if ns == NS_SM and name == "enabled":
            self.sm_enabled = True
            self.sm_id = el.get("id")
            self.inbound_h = 0
        elif ns == NS_SM and name == "resumed":
            # Set here, not in _resume(): the server resends unacked stanzas
            # right behind <resumed/> and they must be counted.
            self.sm_enabled = True
        if is_stanza(el) and self.sm_enabled:
            self.inbound_h = (self.inbound_h + 1) % 2**32
        if self.answer_pings and is_iq(el, type="get") and el.find(q(NS_PING, "ping")) is not None:
            reply = f"<iq type='result' id={quoteattr(el.get('id', ''))}"
            if el.get("from"):
                reply += f" to={quoteattr(el.get('from'))}"
            self.send(reply + "/>")
        with self._cond:
            self.received.append(el)
            self._pending.append(el)
            self._cond.notify_all()
        return ns == NS_SASL and name == "success"

    def _mark_closed(self, reason: str) -> None:
        with self._cond:
            if not self.closed:
                self.closed = True
                self.close_reason = reason
            self._cond.notify_all()

    def _raw_send(self, data: str) -> None:
        with self._send_lock:
            self.sock.sendall(data.encode("utf-8"))

    def send(self, xml: str) -> None:
        """Send raw XML. Top-level stanzas are counted for XEP-0198."""
        if self.closed:
            raise StreamClosed(f"{self!r}: cannot send, stream closed ({self.close_reason})")
        self.sent_log.append(xml)
        if self.sm_enabled and _looks_like_stanza(xml):
            with self._send_lock:
                self.outbound_count += 1
                self._unacked_out.append(xml)
        self._raw_send(xml)

    # ------------------------------------------------------------------ receiving

    def expect(self, pred: Predicate, timeout: float = 5, what: str | None = None) -> ET.Element:
        """Wait for the next pending element matching ``pred`` and consume it.

        Non-matching elements stay pending for later calls. Raises
        AssertionError (with everything still pending) on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, el in enumerate(self._pending):
                    if pred(el):
                        del self._pending[i]
                        return el
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    state = f"stream closed: {self.close_reason}" if self.closed else f"after {timeout}s"
                    raise AssertionError(
                        f"{self!r}: no stanza matching {what or getattr(pred, '__name__', pred)} ({state}).\n"
                        f"Pending:\n{summarize(self._pending)}"
                    )
                self._cond.wait(remaining)

    def expect_stanza(self, pred: Predicate | None = None, timeout: float = 5, what: str | None = None) -> ET.Element:
        """Like :meth:`expect` but only considers message/presence/iq stanzas."""
        return self.expect(lambda e: is_stanza(e) and (pred is None or pred(e)), timeout, what)

    def collect(self, quiet: float = 0.5, timeout: float = 10, pred: Predicate | None = None) -> list[ET.Element]:
        """Wait until nothing new arrived for ``quiet`` seconds (at most
        ``timeout``), then consume and return the pending elements (those
        matching ``pred`` if given; the others stay pending)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            last_len = len(self.received)
            quiet_until = time.monotonic() + quiet
            while True:
                now = time.monotonic()
                if now >= quiet_until or now >= deadline or self.closed:
                    break
                self._cond.wait(min(quiet_until, deadline) - now)
                if len(self.received) != last_len:
                    last_len = len(self.received)
                    quiet_until = time.monotonic() + quiet
            return self._take(pred)

    def drain(self, pred: Predicate | None = None) -> list[ET.Element]:
        """Consume and return what is pending right now, without waiting."""
        with self._cond:
            return self._take(pred)

    def _take(self, pred: Predicate | None) -> list[ET.Element]:
        taken = [e for e in self._pending if pred is None or pred(e)]
        self._pending = [e for e in self._pending if not (pred is None or pred(e))]
        return taken

    def pending(self) -> list[ET.Element]:
        with self._cond:
            return list(self._pending)

    def iq(self, xml_payload: str, to: str | None = None, type: str = "get", timeout: float = 5) -> ET.Element:
        """Send an iq and wait for its result/error (matched by id)."""
        id = new_id("iq")
        to_attr = f" to={quoteattr(to)}" if to else ""
        self.send(f"<iq type='{type}' id='{id}'{to_attr}>{xml_payload}</iq>")
        return self.expect(lambda e: is_iq(e, id=id) and e.get("type") in ("result", "error"), timeout, f"iq reply {id}")

    def join_room(self, room: str, nick: str, timeout: float = 5, **join_kw) -> list[ET.Element]:
        """Send a MUC join and return, in order, every stanza from the room up
        to and including the subject (the end of a XEP-0045 join) or an error
        presence. Stanzas from elsewhere stay pending."""
        self.send(muc_join(f"{room}/{nick}", **join_kw))
        seq: list[ET.Element] = []
        while True:
            el = self.expect(lambda e: is_stanza(e) and from_room(e, room), timeout, f"join sequence of {room} (so far: {len(seq)})")
            seq.append(el)
            if is_subject(el, room) or is_presence(el, type="error"):
                return seq

    def join(self, room: str, nick: str, timeout: float = 5, **join_kw) -> JoinSequence:
        """:meth:`join_room` plus :func:`parse_join_sequence`."""
        return parse_join_sequence(self.join_room(room, nick, timeout, **join_kw), room, nick)

    # ------------------------------------------------------------------ negotiation

    def _open_stream(self) -> None:
        self._raw_send(
            f"<?xml version='1.0'?><stream:stream to={quoteattr(self.domain)} version='1.0' "
            f"xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>"
        )

    def _features(self) -> ET.Element:
        return self.expect(lambda e: e.tag == q(NS_STREAM, "features"), self.timeout, "stream features")

    def _authenticate(self) -> None:
        feats = self._features()
        mechs = [m.text for m in feats.iter(q(NS_SASL, "mechanism"))]
        if "PLAIN" not in mechs:
            raise XmppError(f"PLAIN not offered: {mechs}")
        token = base64.b64encode(f"\0{self.username}\0{self.password}".encode()).decode()
        self._raw_send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        res = self.expect(lambda e: namespace(e) == NS_SASL and local_name(e) in ("success", "failure"), self.timeout, "SASL result")
        if local_name(res) != "success":
            raise XmppError(f"SASL failed for {self.account}: {to_xml(res)}")
        self._open_stream()
        self.post_auth_features = self._features()

    def _bind(self, session: bool) -> None:
        id = new_id("bind")
        self._raw_send(
            f"<iq type='set' id='{id}'><bind xmlns='{NS_BIND}'><resource>{escape(self.resource)}</resource></bind></iq>"
        )
        res = self.expect(lambda e: is_iq(e, id=id), self.timeout, "bind result")
        jid_el = res.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}")
        if res.get("type") != "result" or jid_el is None:
            raise XmppError(f"bind failed: {to_xml(res)}")
        self.full_jid = jid_el.text
        sess = self.post_auth_features.find(q(NS_SESSION, "session"))
        mandatory = sess is not None and sess.find(q(NS_SESSION, "optional")) is None
        if session or mandatory:
            sid = new_id("sess")
            self._raw_send(f"<iq type='set' id='{sid}'><session xmlns='{NS_SESSION}'/></iq>")
            self.expect(lambda e: is_iq(e, id=sid, type="result"), self.timeout, "session result")

    def enable_sm(self, resume: bool = True) -> ET.Element:
        """XEP-0198 <enable/>; from now on inbound stanzas are counted and <r/> answered."""
        if self.post_auth_features.find(q(NS_SM, "sm")) is None:
            raise XmppError("server does not offer urn:xmpp:sm:3")
        with self._send_lock:
            self.outbound_count = 0
            self._acked_out = 0
            self._unacked_out = []
        self._raw_send(f"<enable xmlns='{NS_SM}'" + (" resume='true'" if resume else "") + "/>")
        res = self.expect(lambda e: namespace(e) == NS_SM and local_name(e) in ("enabled", "failed"), self.timeout, "sm enabled")
        if local_name(res) != "enabled":
            raise XmppError(f"SM enable failed: {to_xml(res)}")
        return res

    def request_ack(self) -> None:
        """Send <r/>; the server's <a h/> updates the unacked queue."""
        self._raw_send(f"<r xmlns='{NS_SM}'/>")

    def sync_acks(self, timeout: float = 5) -> int:
        """Send <r/> and wait for the server's next <a h/>; return that h."""
        with self._cond:
            seen = len(self.sm_log)
        self.request_ack()
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self.closed or any(local_name(e) == "a" for e in self.sm_log[seen:]), timeout
            )
            if not ok or self.closed:
                raise AssertionError(f"{self!r}: no <a/> from server ({self.close_reason or 'timeout'})")
            return int([e for e in self.sm_log[seen:] if local_name(e) == "a"][-1].get("h"))

    def send_ack(self) -> None:
        """Send an unsolicited <a h/> for everything received so far."""
        self._raw_send(f"<a xmlns='{NS_SM}' h='{self.inbound_h}'/>")

    def _handle_ack(self, h: int) -> None:
        with self._send_lock:
            newly = (h - self._acked_out) % 2**32
            if newly > len(self._unacked_out):
                raise XmppError(f"server acked {newly} stanzas but only {len(self._unacked_out)} are unacked")
            del self._unacked_out[:newly]
            self._acked_out = h

    def _resume(self, old: "Client") -> None:
        """XEP-0198 §5: resume ``old``'s session on this connection."""
        if not old.sm_id:
            raise XmppError("old client has no resumable SM session")
        self.full_jid = old.full_jid
        self.resource = old.resource
        self.inbound_h = old.inbound_h
        self._raw_send(f"<resume xmlns='{NS_SM}' previd={quoteattr(old.sm_id)} h='{old.inbound_h}'/>")
        res = self.expect(lambda e: namespace(e) == NS_SM and local_name(e) in ("resumed", "failed"), self.timeout, "sm resumed")
        if local_name(res) != "resumed":
            raise XmppError(f"resume failed: {to_xml(res)}")
        with old._send_lock:
            acked = int(res.get("h", "0"))
            newly = (acked - old._acked_out) % 2**32
            unacked = old._unacked_out[newly:]
        with self._send_lock:
            self.sm_id = old.sm_id
            self._acked_out = acked
            self.outbound_count = acked
            self._unacked_out = []
        self.sm_resumed = True
        for xml in unacked:  # XEP-0198 §5: resend what the server did not get
            self.send(xml)

    # ------------------------------------------------------------------ teardown

    def close(self, timeout: float = 2) -> None:
        """Clean close: </stream:stream>, wait briefly for the server's, then drop TCP."""
        if not self.closed:
            try:
                if self.sm_enabled:
                    # Ack everything first, as polite clients do, so the server
                    # has nothing to bounce when it destroys the session.
                    self.send_ack()
                self._raw_send("</stream:stream>")
            except OSError:
                pass
            with self._cond:
                self._cond.wait_for(lambda: self.closed, timeout)
        self._shutdown_socket()

    def kill(self) -> None:
        """Drop the TCP connection without closing the stream (a lost
        connection; with SM resumption the server hibernates the session)."""
        self._shutdown_socket()
        self._mark_closed("killed by test")

    def _shutdown_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(2)


def _looks_like_stanza(xml: str) -> bool:
    s = xml.lstrip()
    return any(s.startswith("<" + n) and s[len(n) + 1 : len(n) + 2] in (" ", ">", "/") for n in STANZA_NAMES)

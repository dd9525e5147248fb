#!/usr/bin/env python3
"""Opt-in soak for mod_minimix against a real Prosody (loopback only, bounded in time).

    MINIMIX_MODULE_DIR=$PWD/build/plugins python3 tests/soak/soak.py --seconds 60

Many accounts x sessions x rooms at once: plain observers and joined sessions send
numbered groupchat while "churner" sessions join, leave, change presence, disconnect
(clean close or dropped TCP) and reconnect. Three faults happen mid-traffic:

* W1 "churn":        churn only;
* W2 "hibernation":  the stream-management sessions lose their TCP connection (the
                     server hibernates them), traffic goes on, then they resume;
* W3 "crash":        kill -9 of Prosody in the middle of traffic, restart;
* W4 "after-crash":  everybody reconnects and rejoins; churn and traffic go on.

After W1, W2 and W4 (churn paused, traffic stopped, everything settled), and right
after the restart (no client connected yet), the module's state is checked against what
the clients believe (see README.md, "State checks"). Delivery is measured for the
sessions that stayed joined the whole window (see README.md, "Delivery figures").

Exit status: 0 when every state check passed, no measured session lost, duplicated or
reordered anything, nothing leaked across rooms and the log has no Lua error; 1 otherwise.
``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from prosody_server import MUC_HOST, ProsodyServer, lua_str  # noqa: E402
from xmpp_client import (  # noqa: E402
    Client,
    StreamClosed,
    XmppError,
    delay,
    from_room,
    is_message,
    is_presence,
    is_stanza,
    muc_join,
    muc_leave,
    room_config,
    status_codes,
)

PASSWORD = "pw"
BODY_RE = re.compile(r"^(?P<origin>[\w.]+)#(?P<seq>\d+)$")
ROOM_LINE_RE = re.compile(
    r"^(?P<room>\S+) as (?P<nick>.+?): (?P<state>\w+), sessions: (?P<sessions>.*), occupants: \d+, history: \d+$"
)
CRASH_MARGIN = 1.0  # s: messages accepted this close to the kill are "in flight", not expected


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------- clients


class SoakClient(Client):
    """A Client that timestamps every numbered groupchat it receives (kept out of the
    pending list, so waits on other stanzas stay cheap)."""

    def __init__(self, *args, label: str, **kw):
        self.label = label
        #: (monotonic time, room, origin, seq, delayed)
        self.timeline: list[tuple[float, str, str, int, bool]] = []
        self.joined: set[str] = set()
        super().__init__(*args, **kw)

    def _dispatch(self, el):
        t = time.monotonic()
        restart = super()._dispatch(el)
        if is_message(el, type="groupchat"):
            b = el.find("{jabber:client}body")
            m = BODY_RE.match(b.text or "") if b is not None else None
            if m:
                room = el.get("from", "").split("/", 1)[0]
                # History carries the room's <delay from='room'/>; a stanza that waited in a
                # hibernated session's queue gets the server's (mod_smacks) on resumption.
                d = delay(el)
                history = d is not None and d.get("from", "").split("/", 1)[0] == room
                self.timeline.append((t, room, m["origin"], int(m["seq"]), history))
                with self._cond:
                    if self._pending and self._pending[-1] is el:
                        self._pending.pop()
        return restart

    def join_and_wait(self, room: str, nick: str, timeout: float = 10) -> str | None:
        """Join with no history; None on success, else the error condition."""
        self.send(muc_join(f"{room}/{nick}", history={"maxstanzas": 0}))
        while True:
            el = self.expect(lambda e: is_stanza(e) and from_room(e, room) and (
                is_presence(e, type="error") or (is_presence(e) and 110 in status_codes(e)) or
                (is_message(e, type="groupchat") and e.find("{jabber:client}subject") is not None)), timeout, f"join {room}")
            if is_presence(el, type="error"):
                err = el.find("{jabber:client}error")
                return next((c.tag.split("}")[-1] for c in err), "error") if err is not None else "error"
            if is_message(el):
                self.joined.add(room)
                return None

    def leave_and_wait(self, room: str, nick: str, timeout: float = 10) -> None:
        self.send(muc_leave(f"{room}/{nick}"))
        self.expect(lambda e: is_presence(e, type="unavailable") and from_room(e, room) and 110 in status_codes(e), timeout, f"leave {room}")
        self.joined.discard(room)

    def alive(self) -> bool:
        return not self.closed


# ---------------------------------------------------------------------- the cast


@dataclass
class Account:
    user: str
    host: str
    rooms: list[str]  # the stable sessions' rooms
    stable: bool  # has a plain stable session
    sm: bool  # has a stream-management stable session
    churners: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    away: set[str] = field(default_factory=set)  # rooms the account is in with no session
    live: dict[str, SoakClient] = field(default_factory=dict)  # label -> connected client
    inflight: set[str] = field(default_factory=set)  # rooms with a join/leave on its way
    #: rooms whose state an interrupted action left unknown to the clients (a join that
    #: timed out, say); tolerated by the checks until a session of the account joins them
    unsure: set[str] = field(default_factory=set)
    epoch: int = 0  # bumped by the crash: sessions of an older epoch died with the server

    @property
    def jid(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def nick(self) -> str:
        return self.user

    def believed_rooms(self) -> dict[str, set[str]]:
        """room -> full JIDs of the live sessions that believe they are joined."""
        out: dict[str, set[str]] = {}
        for c in self.live.values():
            if c.alive():
                for r in c.joined:
                    out.setdefault(r, set()).add(c.full_jid)
        return out

    def session_gone(self, c: SoakClient) -> None:
        """Bookkeeping when one of the account's sessions disconnects without leaving."""
        with self.lock:
            if getattr(c, "epoch", self.epoch) != self.epoch:
                return  # died with the server: the restart re-reads the module's state
            if self.live.get(c.label) is c:
                del self.live[c.label]
            still = self.believed_rooms()
            for r in c.joined:
                if r not in still:
                    self.away.add(r)


@dataclass
class Send:
    origin: str
    seq: int
    room: str
    t_send: float
    t_acc: float | None = None  # when the sender saw the room's reflection


@dataclass
class Window:
    name: str
    start: float
    end: float = 0.0  # traffic stops
    cut: float = 0.0  # messages accepted after this are not expected (crash margin)
    collect_end: float = 0.0  # receipts counted up to here


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.rooms = [f"soak-{i}@{MUC_HOST}" for i in range(args.rooms)]
        self.accounts: list[Account] = []
        hosts = ["a.localhost", "b.localhost"]
        for i in range(args.accounts):
            host = hosts[i % 2]
            churn_only = i >= args.accounts - max(1, args.accounts // 4)
            self.accounts.append(
                Account(
                    user=f"u{i}",
                    host=host,
                    rooms=[self.rooms[i % args.rooms], self.rooms[(i + 1) % args.rooms]],
                    stable=not churn_only,
                    sm=not churn_only and i % 2 == 0,
                    churners=2 if churn_only else 1,
                )
            )
        self.speakers = [f"s{i}" for i in range(args.speakers)]
        self.srv: ProsodyServer | None = None
        self.sends: dict[tuple[str, str, int], Send] = {}  # (room, origin, seq)
        self.sends_lock = threading.Lock()
        self.seq: dict[str, int] = {}
        self.traffic_on = threading.Event()
        self.churn_on = threading.Event()
        self.server_up = threading.Event()
        self.stop = threading.Event()
        self.measured: dict[str, list[SoakClient]] = {}  # label -> incarnations
        self.speaker_clients: dict[str, SoakClient] = {}
        self.stable_clients: dict[str, tuple[Account, SoakClient]] = {}
        self.windows: list[Window] = []
        self.checks: list[dict] = []
        self.counters: dict[str, int] = {}
        self.counters_lock = threading.Lock()
        self.hibernating: set[str] = set()
        self.rooms_of_label: dict[str, list[str]] = {}
        self.epoch = 0

    # ------------------------------------------------------------------ helpers

    def count(self, key: str, n: int = 1) -> None:
        with self.counters_lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def client(self, user: str, host: str, resource: str, label: str, **kw) -> SoakClient:
        c = SoakClient(self.srv.c2s_port, f"{user}@{host}", PASSWORD, resource, label=label, **kw)
        c.epoch = self.epoch
        return c

    def next_seq(self, origin: str) -> int:
        with self.sends_lock:
            self.seq[origin] = self.seq.get(origin, 0) + 1
            return self.seq[origin]

    def send_numbered(self, c: SoakClient, origin: str, room: str) -> None:
        seq = self.next_seq(origin)
        text = f"{origin}#{seq}"
        s = Send(origin, seq, room, time.monotonic())
        with self.sends_lock:
            self.sends[(room, origin, seq)] = s
        c.send(f"<message to='{room}' type='groupchat' id='{text}'><body>{text}</body></message>")

    def incarnation(self, label: str, c: SoakClient) -> None:
        self.measured.setdefault(label, []).append(c)

    # ------------------------------------------------------------------ set-up

    def start_server(self) -> None:
        opts = "  minimix_max_joins_per_minute = 100000\n"  # churners join far more than people do
        self.srv = ProsodyServer(
            with_module=True,
            module_dir=self.args.module_dir,
            host_extra={"a.localhost": opts, "b.localhost": opts},
        )
        for a in self.accounts:
            self.srv.register(a.user, a.host, PASSWORD)
        for s in self.speakers:
            self.srv.register(s, "obs.localhost", PASSWORD)
        self.srv.start()
        self.server_up.set()
        log(f"prosody {self.srv.version} on 127.0.0.1:{self.srv.c2s_port}, dir {self.srv.dir}")

    def connect_measured(self, first: bool) -> None:
        """Speakers and stable sessions connect and join their rooms (no history)."""
        for s in self.speakers:
            c = self.client(s, "obs.localhost", "speaker", s)
            for r in self.rooms:
                err = c.join_and_wait(r, s)
                assert err is None, f"{s} could not join {r}: {err}"
                if first and s == self.speakers[0]:
                    c.send(room_config(r, {"muc#roomconfig_persistentroom": True}, id=f"cfg-{r}"))
                    c.expect(lambda e: e.get("id") == f"cfg-{r}", 10, "room config")
            self.speaker_clients[s] = c
            self.incarnation(s, c)
            self.rooms_of_label[s] = list(self.rooms)
        for a in self.accounts:
            for kind in ("stable", "sm"):
                if not getattr(a, kind):
                    continue
                label = f"{a.user}.{kind}"
                c = self.client(a.user, a.host, kind, label, sm=(kind == "sm"))
                for r in a.rooms:
                    err = c.join_and_wait(r, a.nick)
                    assert err is None, f"{label} could not join {r}: {err}"
                with a.lock:
                    a.live[label] = c
                    a.away -= set(a.rooms)
                self.stable_clients[label] = (a, c)
                self.incarnation(label, c)
                self.rooms_of_label[label] = list(a.rooms)

    # ------------------------------------------------------------------ workers

    def speaker_loop(self, name: str) -> None:
        i = 0
        while not self.stop.is_set():
            if not self.traffic_on.wait(0.1):
                continue
            c = self.speaker_clients.get(name)
            if c is None or not c.alive():
                time.sleep(0.05)
                continue
            room = self.rooms[i % len(self.rooms)]
            i += 1
            try:
                self.send_numbered(c, name, room)
            except (StreamClosed, OSError):
                pass
            time.sleep(self.args.interval)

    def stable_sender_loop(self) -> None:
        while not self.stop.is_set():
            if not self.traffic_on.wait(0.1):
                continue
            for label, (a, c) in list(self.stable_clients.items()):
                if label in self.hibernating or not c.alive() or not self.traffic_on.is_set():
                    continue
                try:
                    self.send_numbered(c, label, self.rng.choice(a.rooms))
                except (StreamClosed, OSError):
                    pass
            time.sleep(self.args.session_interval)

    def churn_loop(self, a: Account, k: int) -> None:
        """One churner of ``a``: connects, joins, leaves, changes presence, disconnects
        (clean close or dropped TCP) and reconnects, at random, while churn is on."""
        rng = random.Random(f"{self.args.seed}-{a.user}-{k}")
        label = f"{a.user}.churn{k}"
        incarnation = 0
        c: SoakClient | None = None
        while not self.stop.is_set():
            if not self.churn_on.wait(0.1) or not self.server_up.is_set():
                continue
            room = None
            try:
                if c is None or not c.alive():
                    if c is not None:
                        a.session_gone(c)
                    incarnation += 1
                    c = self.client(a.user, a.host, f"churn{k}-{incarnation}", label, timeout=5)
                    with a.lock:
                        a.live[label] = c
                    self.count("churn.connect")
                    continue
                action = rng.choices(["join", "leave", "presence", "close", "kill"], [4, 3, 1, 0.6, 0.6])[0]
                if action == "join":
                    free = [r for r in self.rooms if r not in c.joined]
                    if free:
                        room = rng.choice(free)
                        with a.lock:
                            a.inflight.add(room)
                        err = c.join_and_wait(room, a.nick, timeout=5)
                        with a.lock:
                            a.inflight.discard(room)
                            if err is None:
                                a.away.discard(room)
                                a.unsure.discard(room)
                        self.count("churn.join" if err is None else f"churn.join-error.{err}")
                elif action == "leave" and c.joined:
                    room = rng.choice(sorted(c.joined))
                    with a.lock:
                        a.inflight.add(room)
                    c.leave_and_wait(room, a.nick, timeout=5)
                    with a.lock:
                        a.inflight.discard(room)
                    self.count("churn.leave")
                elif action == "presence" and c.joined:
                    target = rng.choice(sorted(c.joined))
                    show = rng.choice(["away", "dnd", "chat", "xa"])
                    c.send(f"<presence to='{target}/{a.nick}'><show>{show}</show></presence>")
                    self.count("churn.presence")
                elif action in ("close", "kill"):
                    if action == "close":
                        c.close(timeout=1)
                    else:
                        c.kill()  # TCP dropped, no stream management: the session ends
                    a.session_gone(c)
                    c = None
                    self.count(f"churn.{action}")
                if c is not None:
                    c.drain()
            except (AssertionError, StreamClosed, XmppError, OSError) as e:
                # A dead server (the crash) or an answer that did not come in time: the
                # state of that room is unknown to this client; start over.
                self.count("churn.interrupted")
                if c is not None:
                    with a.lock:
                        if room is not None and getattr(c, "epoch", -1) == a.epoch:
                            a.inflight.discard(room)
                            a.unsure.add(room)
                    try:
                        c.kill()
                    except Exception:
                        pass
                    a.session_gone(c)
                    c = None
                if self.args.verbose and self.server_up.is_set():
                    log(f"churner {label}: {str(e).splitlines()[0]}")
            time.sleep(rng.uniform(0.15, 0.5))
        if c is not None:
            try:
                c.close(timeout=1)
            except Exception:
                pass

    # ------------------------------------------------------------------ phases

    def window(self, name: str, seconds: float, during=None) -> Window:
        w = Window(name, time.monotonic())
        self.windows.append(w)
        log(f"window {name}: {seconds:.1f}s of traffic and churn")
        self.churn_on.set()
        self.traffic_on.set()
        deadline = w.start + seconds
        if during:
            during(w, deadline)
        while time.monotonic() < deadline:
            self.drain_measured()
            time.sleep(0.2)
        return w

    def drain_measured(self) -> None:
        for incs in self.measured.values():
            incs[-1].drain()

    def quiesce(self, w: Window) -> None:
        """Stop traffic and churn, wait until nothing is on its way."""
        self.traffic_on.clear()
        w.end = w.cut = time.monotonic()
        self.churn_on.clear()
        time.sleep(1.0)  # churners finish the action they are in
        last = -1
        while True:
            n = sum(len(c.received) for incs in self.measured.values() for c in incs)
            if n == last:
                break
            last = n
            time.sleep(0.7)
        w.collect_end = time.monotonic()
        self.drain_measured()

    def hibernate_and_resume(self, w: Window, deadline: float) -> None:
        span = deadline - w.start
        time.sleep(span * 0.2)
        sm = {label: ac for label, ac in self.stable_clients.items() if label.endswith(".sm")}
        for label, (a, c) in sm.items():
            self.hibernating.add(label)
            c.kill()  # TCP gone, no </stream>: the server hibernates the session
        log(f"hibernating {len(sm)} stream-management sessions mid-traffic")
        time.sleep(span * 0.2)
        # While hibernating they are still joined: the module must not have dropped them.
        self.state_check("during hibernation", partial=True)
        time.sleep(max(0.0, span * 0.6 - (time.monotonic() - w.start)))
        for label, (a, old) in sm.items():
            new = self.client(a.user, a.host, "sm", label, resume=old)
            new.joined = set(old.joined)
            with a.lock:
                a.live[label] = new
            self.stable_clients[label] = (a, new)
            self.incarnation(label, new)
            self.hibernating.discard(label)
        log(f"resumed {len(sm)} sessions")

    def crash(self, w: Window) -> dict:
        """kill -9 mid-traffic; returns each account's expected and uncertain rooms."""
        expected, uncertain = {}, {}
        for a in self.accounts:
            with a.lock:
                expected[a.jid] = set(a.believed_rooms()) | set(a.away)
                uncertain[a.jid] = set(a.inflight) | set(a.unsure)
        self.server_up.clear()
        self.epoch += 1
        for a in self.accounts:
            with a.lock:
                a.epoch = self.epoch
        w.end = time.monotonic()
        w.cut = w.end - CRASH_MARGIN
        w.collect_end = w.end
        log("kill -9 prosody mid-traffic")
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait(10)
        self.srv._forget()
        self.traffic_on.clear()
        self.churn_on.clear()
        return {"expected": expected, "uncertain": uncertain}

    def restart_after_crash(self, before: dict) -> None:
        time.sleep(0.5)
        for incs in self.measured.values():
            incs[-1].kill()
        t0 = time.monotonic()
        self.srv.start()
        log(f"restarted in {time.monotonic() - t0:.1f}s")
        # Restored from the store, the account rejoins each room with no client online.
        deadline = time.monotonic() + 20
        while True:
            views = {a.jid: self.module_view(a) for a in self.accounts}
            settled = all(r["state"] == "joined" for v in views.values() for r in v.values())
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        problems = []
        for a in self.accounts:
            got = set(views[a.jid])
            exp, unc = before["expected"][a.jid], before["uncertain"][a.jid]
            if not (exp - unc <= got <= exp | unc):
                problems.append(f"{a.jid}: module has {sorted(got)}, expected {sorted(exp)} (uncertain {sorted(unc)})")
            for room, r in views[a.jid].items():
                if r["state"] != "joined":
                    problems.append(f"{a.jid}: {room} is {r['state']} 20s after the restart")
                if r["sessions"]:
                    problems.append(f"{a.jid}: {room} lists sessions {r['sessions']} with no client connected")
                occ = self.srv.occupant_real_jids(room, r["nick"])
                if occ != [a.jid]:
                    problems.append(f"{room}/{r['nick']}: the room has {occ}, expected [{a.jid}]")
            with a.lock:
                a.away = set(got)
                a.live.clear()
                a.inflight.clear()
                a.unsure.clear()
        problems += self.room_occupant_problems()
        compared = {"rooms": sum(len(v) for v in views.values()), "sessions": 0,
                    "away_rooms": sum(len(v) for v in views.values())}
        self.record_check("after restart (no client connected)", problems, compared)
        self.server_up.set()

    # ------------------------------------------------------------------ state checks

    def module_view(self, a: Account) -> dict[str, dict]:
        out = {}
        for line in self.srv.shell(f"minimix:rooms({a.jid!r})").splitlines():
            m = ROOM_LINE_RE.match(line.strip())
            if m:
                sessions = set() if m["sessions"] == "none" else set(m["sessions"].split())
                out[m["room"]] = {"nick": m["nick"], "state": m["state"], "sessions": sessions}
        return out

    def room_occupant_problems(self) -> list[str]:
        """No room has a session's full JID of a module host as (part of) an occupant."""
        problems = []
        for room in self.rooms:
            code = (
                "(function() local muc = prosody.hosts[%s].modules.muc; local room = muc.get_room_from_jid(%s);"
                " if not room then return '' end; local t = {};"
                " for _, occ in room:each_occupant() do for jid in occ:each_session() do t[#t+1] = jid end end;"
                " return table.concat(t, ' ') end)()"
            ) % (lua_str(MUC_HOST), lua_str(room))
            for jid in self.srv.lua(code).split():
                host = jid.split("@", 1)[-1].split("/", 1)[0]
                if host in ("a.localhost", "b.localhost") and "/" in jid:
                    problems.append(f"{room}: a session's full JID {jid} is an occupant")
        return problems

    def state_check(self, name: str, partial: bool = False) -> None:
        """Module state vs client beliefs. ``partial``: only that every live measured session
        (hibernating ones included) is listed in each of its rooms."""
        problems = []
        compared = {"rooms": 0, "sessions": 0, "away_rooms": 0}
        for a in self.accounts:
            view = self.module_view(a)
            compared["rooms"] += len(view)
            compared["sessions"] += sum(len(r["sessions"]) for r in view.values())
            compared["away_rooms"] += sum(1 for r in view.values() if not r["sessions"])
            with a.lock:
                believed = a.believed_rooms()
                away = set(a.away)
                inflight = set(a.inflight) | set(a.unsure)
            if partial:
                for label, (acct, c) in self.stable_clients.items():
                    if acct is not a:
                        continue
                    for r in c.joined:
                        if c.full_jid not in view.get(r, {}).get("sessions", set()):
                            problems.append(f"{label} ({c.full_jid}) is not listed in {r}: {view.get(r)}")
                continue
            expected_rooms = set(believed) | away
            got_rooms = set(view)
            if (got_rooms ^ expected_rooms) - inflight:
                problems.append(
                    f"{a.jid}: module rooms {sorted(got_rooms)} != clients' {sorted(set(believed))} + away {sorted(away)}"
                )
            for room in got_rooms & expected_rooms - inflight:
                r = view[room]
                if r["state"] != "joined":
                    problems.append(f"{a.jid}: {room} is {r['state']}")
                if r["sessions"] != believed.get(room, set()):
                    problems.append(f"{a.jid}: {room} sessions {sorted(r['sessions'])} != clients' {sorted(believed.get(room, set()))}")
                occ = self.srv.occupant_real_jids(room, r["nick"])
                if occ != [a.jid]:
                    problems.append(f"{room}/{r['nick']}: the room has {occ}, expected [{a.jid}]")
        problems += self.room_occupant_problems()
        self.record_check(name, problems, compared)

    def record_check(self, name: str, problems: list[str], compared: dict | None = None) -> None:
        self.checks.append({"check": name, "ok": not problems, "problems": problems, "compared": compared})
        log(f"state check '{name}': {'OK' if not problems else 'FAILED'} (module state compared: {compared})")
        for p in problems:
            log(f"  - {p}")

    # ------------------------------------------------------------------ figures

    def accept_times(self) -> None:
        """t_acc of each send: when its sender saw the room's reflection."""
        index = {}
        for label, incs in self.measured.items():
            for c in incs:
                for t, room, origin, seq, delayed in c.timeline:
                    if origin == label and not delayed:
                        index.setdefault((room, origin, seq), t)
        for key, s in self.sends.items():
            s.t_acc = index.get(key)

    def receiver_figures(self, w: Window, label: str) -> dict:
        """Delivery figures of one measured receiver (all its incarnations) in window ``w``."""
        rooms = set(self.rooms_of_label[label])
        mine = [(k, s) for k, s in self.sends.items() if s.room in rooms and s.origin != label and s.t_acc is not None]
        expected = {k for k, s in mine if w.start <= s.t_acc <= w.cut}
        in_margin = {k for k, s in mine if w.cut < s.t_acc <= w.end}
        seen: dict[tuple, int] = {}
        leaked = history = ooo = 0
        latencies = []
        last: dict[tuple[str, str], int] = {}
        for c in self.measured[label]:
            for t, room, origin, seq, is_history in c.timeline:
                if not (w.start <= t <= w.collect_end) or origin == label:
                    continue
                if is_history:
                    history += 1
                    continue
                if room not in rooms:
                    leaked += 1
                    continue
                key = (room, origin, seq)
                seen[key] = seen.get(key, 0) + 1
                if seen[key] > 1:
                    continue
                if seq < last.get((room, origin), 0):
                    ooo += 1
                last[(room, origin)] = max(seq, last.get((room, origin), 0))
                if key in expected:
                    latencies.append(t - self.sends[key].t_send)
        return {
            "receivers": 1,
            "expected": len(expected),
            "delivered": len(expected & set(seen)),
            "lost": len(expected - set(seen)),
            "duplicated": sum(n - 1 for n in seen.values()),
            "out_of_order": ooo,
            "leaked_from_other_rooms": leaked,
            "history_copies": history,
            "in_flight_at_crash": len(in_margin),
            "in_flight_at_crash_delivered": len(in_margin & set(seen)),
            "_lat": latencies,
            "_lost": [f"{label}: {'/'.join(map(str, k))}" for k in sorted(expected - set(seen))[:5]],
        }

    def figures(self) -> dict:
        self.accept_times()
        out = {}
        for w in self.windows:
            groups: dict[str, dict] = {"module sessions": {}, "  of which hibernated (sm)": {}, "plain observers (control)": {}}
            for label in self.measured:
                if label in self.speakers:
                    names = ["plain observers (control)"]
                elif label.endswith(".sm"):
                    names = ["module sessions", "  of which hibernated (sm)"]
                else:
                    names = ["module sessions"]
                f = self.receiver_figures(w, label)
                for name in names:
                    g = groups[name]
                    for k, v in f.items():
                        g[k] = g.get(k, 0 if isinstance(v, int) else []) + v
            for g in groups.values():
                lat = sorted(g.pop("_lat", []))
                g["lost_examples"] = g.pop("_lost", [])[:5]
                g["latency_ms_p50"] = round(1000 * statistics.median(lat), 1) if lat else None
                g["latency_ms_p99"] = round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else None
            sent = [s for s in self.sends.values() if w.start <= s.t_send <= w.end]
            out[w.name] = {
                "seconds": round(w.end - w.start, 1),
                "sent": len(sent),
                "accepted": sum(1 for s in sent if s.t_acc is not None),
                **groups,
            }
        return out

    # ------------------------------------------------------------------ run

    def run(self) -> int:
        t_begin = time.monotonic()
        S = self.args.seconds
        self.start_server()
        threads = []
        try:
            self.connect_measured(first=True)
            log(f"{len(self.accounts)} accounts, {sum(a.churners for a in self.accounts)} churners, "
                f"{len(self.stable_clients)} stable sessions, {len(self.speakers)} observers, {len(self.rooms)} rooms")
            for s in self.speakers:
                threads.append(threading.Thread(target=self.speaker_loop, args=(s,), daemon=True))
            threads.append(threading.Thread(target=self.stable_sender_loop, daemon=True))
            for a in self.accounts:
                for k in range(a.churners):
                    threads.append(threading.Thread(target=self.churn_loop, args=(a, k), daemon=True))
            for t in threads:
                t.start()

            w1 = self.window("W1-churn", 0.3 * S)
            self.quiesce(w1)
            self.state_check("after churn")

            w2 = self.window("W2-hibernation", 0.3 * S, during=self.hibernate_and_resume)
            self.quiesce(w2)
            self.state_check("after hibernation and resumption")

            w3 = self.window("W3-crash", 0.2 * S)
            before = self.crash(w3)
            self.restart_after_crash(before)
            # Everybody reconnects and rejoins; measurement starts once they all have.
            self.speaker_clients.clear()
            self.stable_clients.clear()
            rejoin = Window("rejoin-after-crash", time.monotonic())
            self.connect_measured(first=False)
            # Nothing is expected while they rejoin (no traffic): this only counts what a
            # rejoining session gets that it did not ask for (it asks for no history).
            rejoin.end = rejoin.collect_end = time.monotonic()
            rejoin.cut = rejoin.start - 1
            self.windows.append(rejoin)
            w4 = self.window("W4-after-crash", 0.2 * S)
            self.quiesce(w4)
            self.state_check("after the crash, reconnect and more churn")
        finally:
            self.stop.set()
            for t in threads:
                t.join(3)
        alive = self.srv.is_running
        figures = self.figures()
        errors = self.srv.log_errors()
        for incs in self.measured.values():
            try:
                incs[-1].close(timeout=1)
            except Exception:
                pass
        self.srv.stop()
        if not self.args.keep:
            self.srv.cleanup()
        result = {
            "seconds_requested": S,
            "wall_seconds": round(time.monotonic() - t_begin, 1),
            "prosody": self.srv.version,
            "cast": {
                "accounts": len(self.accounts),
                "stable_sessions": len({l for l in self.measured if l not in self.speakers}),
                "churners": sum(a.churners for a in self.accounts),
                "observers": len(self.speakers),
                "rooms": len(self.rooms),
            },
            "windows": figures,
            "state_checks": self.checks,
            "churn": dict(sorted(self.counters.items())),
            "server_alive_at_end": alive,
            "log_errors": errors[:20],
        }
        self.report(result)
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(result, indent=2))
        ok = alive and not errors and all(c["ok"] for c in self.checks)
        for w in figures.values():
            m = w["module sessions"]
            ok = ok and m["lost"] == m["duplicated"] == m["out_of_order"] == m["leaked_from_other_rooms"] == 0
        log("RESULT: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1

    def report(self, r: dict) -> None:
        print()
        print(f"soak: {r['wall_seconds']}s wall ({r['seconds_requested']}s of traffic), Prosody {r['prosody']}, cast {r['cast']}")
        cols = ["receivers", "expected", "delivered", "lost", "duplicated", "out_of_order",
                "leaked_from_other_rooms", "history_copies", "in_flight_at_crash", "in_flight_at_crash_delivered",
                "latency_ms_p50", "latency_ms_p99"]
        print("| window | group | sent | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 3) + "|")
        groups = ("module sessions", "  of which hibernated (sm)", "plain observers (control)")
        for name, w in r["windows"].items():
            for group in groups:
                g = w[group]
                if not g.get("receivers"):
                    continue
                print(f"| {name} | {group.strip()} | {w['sent']} | " + " | ".join(str(g.get(c)) for c in cols) + " |")
        for name, w in r["windows"].items():
            for group in groups:
                if w[group].get("lost_examples"):
                    print(f"lost in {name} ({group}): {w[group]['lost_examples']}")
        for c in r["state_checks"]:
            print(f"state check {c['check']!r}: {'OK' if c['ok'] else 'FAILED'} (compared: {c['compared']})")
            for p in c["problems"]:
                print(f"    {p}")
        print(f"churn actions: {r['churn']}")
        print(f"server alive at end: {r['server_alive_at_end']}; log errors: {len(r['log_errors'])}")
        for e in r["log_errors"]:
            print(f"    {e}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60, help="seconds of traffic, split over the four windows (default 60)")
    p.add_argument("--module-dir", default=os.environ.get("MINIMIX_MODULE_DIR"), help="dir with mod_minimix/ (default $MINIMIX_MODULE_DIR)")
    p.add_argument("--accounts", type=int, default=8, help="accounts on the module hosts (default 8)")
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--speakers", type=int, default=3, help="plain observers that talk in every room (default 3)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between an observer's messages (default 0.1)")
    p.add_argument("--session-interval", type=float, default=1.0, help="seconds between each stable session's messages")
    p.add_argument("--seed", default="minimix-soak")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the server's temp dir (config, log)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if not args.module_dir:
        p.error("set MINIMIX_MODULE_DIR or --module-dir to the dir containing mod_minimix/mod_minimix.lua")
    if not 10 <= args.seconds <= 3600:
        p.error("--seconds must be between 10 and 3600")
    return Soak(args).run()


if __name__ == "__main__":
    sys.exit(main())

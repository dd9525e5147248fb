#!/usr/bin/env python3
"""End-to-end benchmark of mod_minimix against a real Prosody (issue 7).

Two Prosody servers run side by side, built by the integration rig's config generator
(``tests/integration/prosody_server.py``, imported) with file logging at ``warn`` so that
logging does not dominate the CPU figures:

* ``module``: ``mod_minimix`` loaded on ``a.localhost`` (accounts join rooms, sessions attach);
* ``plain``: the same configuration without the module (every session joins by itself).

The same population connects to each (one asyncio process, raw c2s: plain TCP, SASL PLAIN,
bind): U accounts ``u<i>@a.localhost`` with S+1 sessions each (S join the room, one is kept
for the late-attach probe) and K plain occupants ``k<i>@obs.localhost``. Each round uses a
fresh room on ``muc.localhost`` per server and runs, with the server order alternating
between rounds:

1. ``join``: the K plain occupants and the first session of each account join;
2. ``attach``: sessions 2..S of each account join (module: attach from the module's cache;
   plain: Prosody's own multi-session join);
3. ``messages``: M groupchat messages in bursts of B (each burst from one sender, rotating
   over account sessions and plain occupants; the next burst once every recipient has the
   previous one), measured in blocks of ``--block`` messages that alternate between the two
   servers, so that both modes see the same background load. Every joined session and plain
   occupant counts exactly what it receives: expected / received / lost / duplicated / out
   of order;
4. ``memory``: Prosody's RSS, its Lua heap after a full collection (admin shell), glibc's
   malloc in use (``bench/mallinfo.c`` loaded into Prosody; ``native`` = malloc - Lua heap,
   i.e. C code and the module's Rust core) and, with the module, its ``stats()``;
5. ``late``: L accounts attach one more session each, one join at a time, into the full room
   with history, in groups alternating between the servers;
6. ``leave``: everyone leaves; the room goes away.

Prosody CPU is utime+stime of the Prosody process from ``/proc/<pid>/stat`` (10 ms ticks),
read around each phase/block. The client is pinned to one CPU and both servers to the other
(``--no-pin`` to disable). The summary quotes, per mode, the median over rounds with
min..max; module/plain ratios are taken per round (paired) and summarised the same way.

Usage::

    make install DESTDIR= MODULE_DIR=$PWD/build/bench-plugins
    python3 bench/e2e.py --module-dir build/bench-plugins --sizes small,medium --rounds 3

Diagnostics: ``--event-times`` times every Prosody host event (inclusive CPU per event name)
in the message and late phases; ``--perf`` records ``perf`` profiles (DWARF call graphs) of
the last round's message and late phases into ``OUT_DIR/perf-*.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from prosody_server import MUC_HOST, ProsodyServer, lua_str  # noqa: E402

ACCOUNT_HOST = "a.localhost"
OBSERVER_HOST = "obs.localhost"
PASSWORD = "pw"

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"

T_MESSAGE = f"{{{NS_CLIENT}}}message"
T_PRESENCE = f"{{{NS_CLIENT}}}presence"
T_IQ = f"{{{NS_CLIENT}}}iq"
T_BODY = f"{{{NS_CLIENT}}}body"
T_SUBJECT = f"{{{NS_CLIENT}}}subject"
T_FEATURES = f"{{{NS_STREAM}}}features"
T_SASL_SUCCESS = f"{{{NS_SASL}}}success"
T_SASL_FAILURE = f"{{{NS_SASL}}}failure"
T_MUC_X = f"{{{NS_MUC_USER}}}x"
T_MUC_STATUS = f"{{{NS_MUC_USER}}}status"

SIZES = {
    # name: (accounts U, sessions S, plain occupants K, messages M, late-attach probes L)
    "tiny": (5, 2, 2, 20, 3),
    "small": (20, 3, 4, 100, 10),
    "medium": (100, 3, 10, 200, 20),
}

FILLER = "The quick brown fox jumps over the lazy dog, a chat line of about sixty characters."


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------------------- the client


class Conn(asyncio.Protocol):
    """One raw c2s connection: plain TCP, SASL PLAIN, bind, no TLS. Every top-level element
    goes first to a matching waiter (``wait``), otherwise to ``bench.on_stanza``."""

    def __init__(self, bench: "Bench", user: str, domain: str, resource: str, nick: str):
        self.bench = bench
        self.user, self.domain, self.resource, self.nick = user, domain, resource, nick
        self.account = f"{user}@{domain}"
        self.server = None  # the Server this connection belongs to
        self.full_jid: str | None = None
        self.transport: asyncio.Transport | None = None
        self.waiters: list[tuple] = []
        self.closed = False
        self.parser: ET.XMLPullParser | None = None
        self.depth = 0
        self.root = None
        self.reset_parser()
        # per-round counters (see Bench.reset_counts)
        self.seen: dict[int, int] = {}
        self.max_seq = -1
        self.ooo = 0
        self.received = 0
        self.presences = 0
        self.other = 0

    # -- wire
    def reset_parser(self) -> None:
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        for _, fut in self.waiters:
            if not fut.done():
                fut.set_exception(BenchError(f"{self.account}/{self.resource}: connection lost"))
        self.waiters.clear()

    def send(self, data: str) -> None:
        self.transport.write(data.encode())

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        parser.feed(data)
        for ev, el in parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.root.remove(el)
                    if self.dispatch(el):
                        # SASL success: the server's next bytes begin a new stream.
                        self.reset_parser()
                        return
                elif self.depth == 0:
                    self.closed = True

    def dispatch(self, el) -> bool:
        waiters = self.waiters
        if waiters:
            for i, (pred, fut) in enumerate(waiters):
                if fut.done():  # timed out
                    continue
                if pred(el):
                    del waiters[i]
                    fut.set_result(el)
                    return el.tag == T_SASL_SUCCESS
            if any(fut.done() for _, fut in waiters):
                self.waiters = [w for w in waiters if not w[1].done()]
        self.bench.on_stanza(self, el)
        return False

    def wait(self, pred, timeout: float = 20) -> "asyncio.Future":
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((pred, fut))
        return asyncio.wait_for(fut, timeout)

    # -- negotiation
    def open_stream(self) -> None:
        self.send(
            f"<?xml version='1.0'?><stream:stream to={quoteattr(self.domain)} version='1.0' "
            f"xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>"
        )

    async def login(self, initial_presence: bool = True) -> None:
        features = self.wait(lambda e: e.tag == T_FEATURES)
        self.open_stream()
        await features
        token = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
        result = self.wait(lambda e: e.tag in (T_SASL_SUCCESS, T_SASL_FAILURE))
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        res = await result
        if res.tag != T_SASL_SUCCESS:
            raise BenchError(f"SASL failed for {self.account}")
        features = self.wait(lambda e: e.tag == T_FEATURES)
        self.open_stream()
        feats = await features
        bind_id = f"bind-{self.resource}"
        bound = self.wait(lambda e: e.tag == T_IQ and e.get("id") == bind_id)
        self.send(
            f"<iq type='set' id='{bind_id}'><bind xmlns='{NS_BIND}'><resource>{escape(self.resource)}"
            "</resource></bind></iq>"
        )
        res = await bound
        jid_el = res.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
        if res.get("type") != "result" or jid_el is None:
            raise BenchError(f"bind failed for {self.account}")
        self.full_jid = jid_el.text
        sess = feats.find(f"{{{NS_SESSION}}}session")
        if sess is not None and sess.find(f"{{{NS_SESSION}}}optional") is None:
            done = self.wait(lambda e: e.tag == T_IQ and e.get("id") == "sess")
            self.send(f"<iq type='set' id='sess'><session xmlns='{NS_SESSION}'/></iq>")
            await done
        if initial_presence:
            self.send("<presence/>")


def is_subject_from(room: str):
    def pred(e) -> bool:
        if e.tag == T_MESSAGE:
            return (
                e.get("type") == "groupchat"
                and e.get("from") == room
                and e.find(T_SUBJECT) is not None
                and e.find(T_BODY) is None
            )
        # A refused join ends the join sequence too.
        return e.tag == T_PRESENCE and e.get("type") == "error" and (e.get("from") or "").startswith(room)
    return pred


def is_self_unavailable(room_nick: str):
    def pred(e) -> bool:
        return e.tag == T_PRESENCE and e.get("type") in ("unavailable", "error") and e.get("from") == room_nick
    return pred


def status_codes(e) -> set[str]:
    x = e.find(T_MUC_X)
    return set() if x is None else {s.get("code") for s in x.findall(T_MUC_STATUS)}


# ------------------------------------------------------------------------------- measurements


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# ------------------------------------------------------------------------------- servers


@dataclass
class Server:
    mode: str  # "module" | "plain"
    srv: ProsodyServer
    mallinfo_so: str | None
    conns: list[list[Conn]] = field(default_factory=list)  # conns[account][session]
    observers: list[Conn] = field(default_factory=list)
    # the current round's message counting (see Bench.on_stanza)
    round_tag: str = "\0"
    delivered: int = 0
    target: int = 0
    event: asyncio.Event | None = None

    @property
    def pid(self) -> int:
        return self.srv.proc.pid

    def shell_lua(self, code: str) -> str:
        out = self.srv.shell(">" + code)
        return out[len("Result: "):] if out.startswith("Result: ") else out

    def memory(self) -> dict:
        """RSS, Lua heap after a full collection, malloc in use; module stats."""
        lua = "collectgarbage('collect'); collectgarbage('collect'); "
        if self.mallinfo_so:
            lua += (
                f"local f = package.loadlib({lua_str(self.mallinfo_so)}, 'luaopen_benchmallinfo'); "
                "local m = f and f() or nil; local inuse = m and m() or -1; "
            )
        else:
            lua += "local inuse = -1; "
        lua += "return ('%d %d'):format(math.floor(collectgarbage('count') * 1024), inuse)"
        out = self.shell_lua(lua)
        try:
            lua_bytes, malloc_bytes = (int(x) for x in out.split()[:2])
        except ValueError:
            raise BenchError(f"unexpected shell output: {out!r}")
        mem = {
            "rss_kib": rss_kib(self.pid),
            "lua_heap_kib": lua_bytes / 1024,
            "malloc_kib": malloc_bytes / 1024 if malloc_bytes >= 0 else None,
            "native_kib": (malloc_bytes - lua_bytes) / 1024 if malloc_bytes >= 0 else None,
        }
        if self.mode == "module":
            stats = self.shell_lua(
                "(function() local s = prosody.hosts['a.localhost'].modules.minimix.stats(); "
                "local t = {}; for k, v in pairs(s) do t[#t+1] = k .. '=' .. tostring(v) end; "
                "table.sort(t); return table.concat(t, ' ') end)()"
            )
            mem["module_stats"] = dict(kv.split("=", 1) for kv in stats.split() if "=" in kv)
        return mem


class BenchProsody(ProsodyServer):
    """The rig's server with file logging at ``warn``: at ``debug`` (the rig's choice, for
    test failure reports) logging would cost more CPU than the stanzas themselves."""

    def render_config(self) -> str:
        cfg = super().render_config()
        quiet = cfg.replace('levels = { min = "debug" }', 'levels = { min = "warn" }')
        if quiet == cfg and 'min = "debug"' in cfg:
            raise BenchError("cannot lower the rig's log level: prosody_server.py changed its log section")
        return quiet


EVENT_TIMER_LUA = """(function()
  if rawget(_G, 'bench_event_times') then return 'already' end
  local clock = os.clock;
  local times = {};
  rawset(_G, 'bench_event_times', times); -- Prosody forbids plain global assignment
  for _, host in ipairs({ 'a.localhost', 'obs.localhost', 'muc.localhost' }) do
    local h = prosody.hosts[host];
    h.events.add_wrapper(false, function (handlers, event_name, event_data)
      local t0 = clock();
      local r = handlers(event_name, event_data);
      local key = host .. ' ' .. event_name;
      local e = times[key];
      if not e then e = { 0, 0 }; times[key] = e; end
      e[1] = e[1] + (clock() - t0); e[2] = e[2] + 1;
      return r;
    end);
  end
  return 'ok' end)()"""

EVENT_TIMES_READ_LUA = """(function()
  local t, times = {}, rawget(_G, 'bench_event_times') or {};
  for k, e in pairs(times) do t[#t+1] = ('%s=%.6f:%d'):format((k:gsub(' ', '|')), e[1], e[2]); end
  for k in pairs(times) do times[k] = nil end
  return table.concat(t, ' ') end)()"""


def read_event_times(server: "Server") -> dict:
    """Inclusive CPU per host event since the last read (nested events are counted in their
    parents too), e.g. ``{'a.localhost message/bare': {'cpu_s': 1.2, 'count': 20000}}``."""
    out = server.shell_lua(EVENT_TIMES_READ_LUA)
    times = {}
    for item in out.split():
        try:
            key, val = item.rsplit("=", 1)
            cpu, count = val.split(":")
        except ValueError:
            continue
        times[key.replace("|", " ")] = {"cpu_s": float(cpu), "count": int(count)}
    return times


def start_server(mode: str, module_dir: str | None, workroot: Path, users: int, observers: int,
                 mallinfo_so: str | None, event_times: bool = False) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix=f"minimix-bench-{mode}-", dir=workroot))
    srv = BenchProsody(
        with_module=(mode == "module"),
        module_dir=module_dir if mode == "module" else None,
        workdir=str(workdir),
    )
    srv.start()
    try:
        return _prepare_server(Server(mode, srv, mallinfo_so), users, observers, event_times)
    except BaseException:
        srv.cleanup()  # never leave a server behind
        raise


def _prepare_server(server: Server, users: int, observers: int, event_times: bool) -> Server:
    srv, mode = server.srv, server.mode
    if mode == "module":
        loaded = server.shell_lua(
            "require'core.modulemanager'.is_loaded('a.localhost', 'minimix') and 'yes' or 'no'"
        )
        if loaded != "yes":
            raise BenchError(f"mod_minimix is not loaded on a.localhost:\n{srv.log_tail(30)}")
    # Accounts in one shell call (prosodyctl register per account would take minutes).
    server.shell_lua(
        "(function() local um = require'core.usermanager'; "
        f"for i = 1, {users} do assert(um.create_user('u' .. i, {lua_str(PASSWORD)}, {lua_str(ACCOUNT_HOST)})) end; "
        f"for i = 1, {observers} do assert(um.create_user('k' .. i, {lua_str(PASSWORD)}, {lua_str(OBSERVER_HOST)})) end; "
        "return 'ok' end)()"
    )
    if event_times:
        server.shell_lua(EVENT_TIMER_LUA)
    return server


# ------------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.stanzas = 0  # every stanza that reached on_stanza (quiet detection)
        self.sample: dict[str, str] = {}
        self.leave_timeouts = 0
        self.mallinfo_so: str | None = None

    # -- counting
    def on_stanza(self, conn: Conn, el) -> None:
        self.stanzas += 1
        tag = el.tag
        if tag == T_MESSAGE:
            b = el.find(T_BODY)
            if b is not None and el.get("type") == "groupchat":
                server = conn.server
                text = b.text or ""
                if text.startswith(server.round_tag):
                    try:
                        seq = int(text.split(" ", 2)[1])
                    except (IndexError, ValueError):
                        conn.other += 1
                        return
                    n = conn.seen.get(seq, 0)
                    conn.seen[seq] = n + 1
                    if n == 0:
                        conn.received += 1
                        server.delivered += 1
                        if seq < conn.max_seq:
                            conn.ooo += 1
                        else:
                            conn.max_seq = seq
                        if server.delivered >= server.target and server.event is not None:
                            server.event.set()
                        if server.mode not in self.sample:
                            self.sample[server.mode] = ET.tostring(el, encoding="unicode")
                    return
        elif tag == T_PRESENCE:
            conn.presences += 1
            return
        conn.other += 1

    @staticmethod
    def reset_counts(conns) -> None:
        for c in conns:
            c.seen = {}
            c.max_seq = -1
            c.ooo = 0
            c.received = 0
            c.presences = 0
            c.other = 0

    async def quiet(self, period: float = 0.3, timeout: float = 30) -> None:
        """Wait until no stanza arrived for ``period`` seconds."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            if self.stanzas == last:
                return
            last = self.stanzas
            await asyncio.sleep(period)

    # -- connections
    async def connect_all(self, server: Server, users: int, sessions: int, observers: int) -> None:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(self.args.connect_concurrency)

        async def one(user, domain, resource, nick):
            async with sem:
                conn = Conn(self, user, domain, resource, nick)
                conn.server = server
                await loop.create_connection(lambda: conn, "127.0.0.1", server.srv.c2s_port)
                await conn.login()
                return conn

        flat = [one(f"u{i}", ACCOUNT_HOST, f"s{s}", f"u{i}") for i in range(1, users + 1) for s in range(1, sessions + 2)]
        obs = [one(f"k{i}", OBSERVER_HOST, "k", f"k{i}") for i in range(1, observers + 1)]
        results = await asyncio.gather(*flat, *obs)
        n = sessions + 1
        server.conns = [list(results[i * n:(i + 1) * n]) for i in range(users)]
        server.observers = list(results[len(flat):])

    async def close_all(self, server: Server) -> None:
        for c in [c for per in server.conns for c in per] + server.observers:
            if c.transport and not c.closed:
                try:
                    c.send("</stream:stream>")
                    c.transport.close()
                except Exception:
                    pass

    # -- room operations
    async def join(self, conn: Conn, room: str) -> float:
        t0 = time.perf_counter()
        done = conn.wait(is_subject_from(room), self.args.timeout)
        conn.send(
            f"<presence to={quoteattr(room + '/' + conn.nick)}><x xmlns='{NS_MUC}'/>"
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/bench'"
            " ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>"
        )
        el = await done
        if el.tag == T_PRESENCE:
            raise BenchError(f"{conn.full_jid} could not join {room}: {ET.tostring(el, encoding='unicode')}")
        return time.perf_counter() - t0

    async def leave(self, conn: Conn, room: str) -> None:
        done = conn.wait(is_self_unavailable(f"{room}/{conn.nick}"), self.args.timeout)
        conn.send(f"<presence to={quoteattr(room + '/' + conn.nick)} type='unavailable'/>")
        try:
            await done
        except asyncio.TimeoutError:
            self.leave_timeouts += 1

    async def in_waves(self, coros, width: int):
        sem = asyncio.Semaphore(width)

        async def run(c):
            async with sem:
                return await c

        return await asyncio.gather(*(run(c) for c in coros))

    # -- phases of one server
    def joined(self, server: Server) -> list[Conn]:
        S = self.size_params[1]
        return [c for per in server.conns for c in per[:S]] + server.observers

    async def phase_join(self, server: Server, room: str) -> dict:
        """The plain occupants and the first session of each account join (the first creates)."""
        everyone = self.joined(server)
        self.reset_counts(everyone)
        pid = server.pid
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        first = server.observers[0] if server.observers else server.conns[0][0]
        await self.join(first, room)
        rest = [c for c in server.observers if c is not first] + [per[0] for per in server.conns if per[0] is not first]
        await self.in_waves([self.join(c, room) for c in rest], self.args.join_concurrency)
        await self.quiet()
        cpu1 = cpu_seconds(pid)
        n = 1 + len(rest)
        return {
            "joins": n,
            "cpu_s": cpu1 - cpu0,
            "cpu_per_join_ms": (cpu1 - cpu0) / n * 1e3,
            "wall_s": time.perf_counter() - t0,
            "presences_delivered": sum(c.presences for c in everyone),
        }

    async def phase_attach(self, server: Server, room: str) -> dict:
        """Sessions 2..S of every account join (module: attach from the cache)."""
        S = self.size_params[1]
        everyone = self.joined(server)
        self.reset_counts(everyone)
        attach = [c for per in server.conns for c in per[1:S]]
        pid = server.pid
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        await self.in_waves([self.join(c, room) for c in attach], self.args.join_concurrency)
        await self.quiet()
        cpu1 = cpu_seconds(pid)
        return {
            "joins": len(attach),
            "cpu_s": cpu1 - cpu0,
            "cpu_per_join_ms": (cpu1 - cpu0) / len(attach) * 1e3 if attach else None,
            "wall_s": time.perf_counter() - t0,
            "presences_delivered": sum(c.presences for c in everyone),
        }

    async def message_block(self, server: Server, room: str, first_seq: int, count: int, state: dict) -> None:
        """Sends messages first_seq.. in bursts and waits for each burst to reach everyone."""
        B = self.args.burst
        recipients = state["recipients"]
        seq = first_seq
        while seq < first_seq + count:
            n = min(B, first_seq + count - seq)
            senders = state["senders"]
            sender = senders[state["bursts"] % len(senders)]
            state["bursts"] += 1
            server.target = (seq + n) * len(recipients)
            server.event.clear()
            tb = time.perf_counter()
            sender.send("".join(
                f"<message to={quoteattr(room)} type='groupchat' id='m{seq + j}'>"
                f"<body>{server.round_tag} {seq + j} {FILLER}</body></message>"
                for j in range(n)
            ))
            seq += n
            if server.delivered < server.target:
                try:
                    await asyncio.wait_for(server.event.wait(), self.args.burst_timeout)
                except asyncio.TimeoutError:
                    state["timeouts"] += 1
            state["latency"].append(time.perf_counter() - tb)
            if self.args.pace > 0:
                await asyncio.sleep(self.args.pace)

    # -- one paired round: both servers, phases alternating, messages interleaved by blocks
    async def paired_round(self, servers: dict[str, Server], size: str, rnd: int, perf: bool) -> list[dict]:
        U, S, K, M, L = self.size_params
        order = ["module", "plain"] if rnd % 2 == 0 else ["plain", "module"]
        res = {m: {"mode": m, "round": rnd} for m in servers}
        rooms = {}
        for m in order:
            rooms[m] = f"{size}-r{rnd}-{m}@{MUC_HOST}"
            res[m]["room"] = rooms[m]
            servers[m].round_tag = f"{size}/{rnd}/{m}"

        # 1-2. joins and attaches, one server after the other
        for m in order:
            res[m]["join"] = await self.phase_join(servers[m], rooms[m])
        for m in order:
            res[m]["attach"] = await self.phase_attach(servers[m], rooms[m])

        # 3. messages: blocks of --block messages, alternating servers block by block so that
        #    both modes see the same machine (other load comes and goes).
        state = {}
        for m in order:
            srv = servers[m]
            recipients = self.joined(srv)
            self.reset_counts(recipients)
            senders = []
            for i in range(max(len(srv.conns), len(srv.observers))):
                if i < len(srv.conns):
                    senders.append(srv.conns[i][0])
                if i < len(srv.observers):
                    senders.append(srv.observers[i])
            srv.delivered = 0
            srv.event = asyncio.Event()
            state[m] = {"recipients": recipients, "senders": senders, "bursts": 0, "timeouts": 0,
                        "latency": [], "cpu": 0.0, "wall": 0.0, "seq": 0, "event_times": {}}
            if self.args.event_times:
                read_event_times(srv)  # reset
        perf_procs = {m: self.start_perf(servers[m], size, "messages") for m in order} if perf else {}
        block = self.args.block
        i = 0
        while any(state[m]["seq"] < M for m in order):
            for m in (order if i % 2 == 0 else order[::-1]):
                st = state[m]
                n = min(block, M - st["seq"])
                if n <= 0:
                    continue
                srv = servers[m]
                cpu0, t0 = cpu_seconds(srv.pid), time.perf_counter()
                await self.message_block(srv, rooms[m], st["seq"], n, st)
                await asyncio.sleep(self.args.settle)
                st["cpu"] += cpu_seconds(srv.pid) - cpu0
                st["wall"] += time.perf_counter() - t0
                st["seq"] += n
            i += 1
        await self.quiet()
        for m in order:
            self.stop_perf(perf_procs.get(m))
        for m in order:
            st = state[m]
            recipients = st["recipients"]
            expected = M * len(recipients)
            received = sum(c.received for c in recipients)
            res[m]["messages"] = {
                "messages": M,
                "recipients": len(recipients),
                "expected": expected,
                "received": received,
                "lost": expected - received,
                "duplicated": sum(n - 1 for c in recipients for n in c.seen.values() if n > 1),
                "out_of_order": sum(c.ooo for c in recipients),
                "other_stanzas": sum(c.other + c.presences for c in recipients),
                "burst_timeouts": st["timeouts"],
                "cpu_s": st["cpu"],
                "cpu_per_delivery_us": st["cpu"] / received * 1e6 if received else None,
                "wall_s": st["wall"],
                "burst_latency_ms_median": statistics.median(st["latency"]) * 1e3,
                "burst_latency_ms_max": max(st["latency"]) * 1e3,
            }
            if self.args.event_times:
                times = read_event_times(servers[m])
                res[m]["messages"]["event_times"] = times
                print(f"    {m}: inclusive CPU per host event in the message phase (of {st['cpu']:.2f}s):", flush=True)
                for k, v in sorted(times.items(), key=lambda kv: -kv[1]["cpu_s"])[:10]:
                    print(f"      {k:40} {v['cpu_s']:7.3f}s {v['count']:7d}× {v['cpu_s'] / v['count'] * 1e6:8.1f} µs",
                          flush=True)

        # 4. memory, with everyone in the room and the history full.
        for m in order:
            res[m]["memory"] = servers[m].memory()

        # 5. late attach of one more session per account (L accounts), in groups alternating
        #    between the servers; one join at a time.
        everyone = {m: self.joined(servers[m]) for m in order}
        for m in order:
            self.reset_counts(everyone[m])
        probes = {m: [per[S] for per in servers[m].conns[:L]] for m in order}
        for m in order:
            self.reset_counts(probes[m])
            if self.args.event_times:
                read_event_times(servers[m])  # reset
        late = {m: {"cpu": 0.0, "lat": [], "got": []} for m in order}
        perf_procs = {m: self.start_perf(servers[m], size, "late") for m in order} if perf else {}
        group = max(1, self.args.late_group)
        for g, start in enumerate(range(0, L, group)):
            for m in (order if g % 2 == 0 else order[::-1]):
                pid = servers[m].pid
                cpu0 = cpu_seconds(pid)
                for c in probes[m][start:start + group]:
                    late[m]["lat"].append(await self.join(c, rooms[m]))
                    # what this session got during its own join (+1: the subject, taken by the waiter)
                    late[m]["got"].append(c.presences + c.other + c.received + 1)
                await asyncio.sleep(self.args.settle)
                late[m]["cpu"] += cpu_seconds(pid) - cpu0
        for m in order:
            self.stop_perf(perf_procs.get(m))
        await self.quiet(0.2)
        for m in order:
            ps = probes[m]
            res[m]["late"] = {
                "joins": len(ps),
                "cpu_s": late[m]["cpu"],
                "cpu_per_join_ms": late[m]["cpu"] / len(ps) * 1e3 if ps else None,
                "latency_ms_median": statistics.median(late[m]["lat"]) * 1e3 if ps else None,
                "stanzas_to_joiner": statistics.median(late[m]["got"]) if ps else None,
                "presences_to_others": sum(c.presences for c in everyone[m]),
            }
            if self.args.event_times:
                times = read_event_times(servers[m])
                res[m]["late"]["event_times"] = times
                print(f"    {m}: inclusive CPU per host event in the late attaches (of {late[m]['cpu']:.2f}s):", flush=True)
                for k, v in sorted(times.items(), key=lambda kv: -kv[1]["cpu_s"])[:8]:
                    print(f"      {k:40} {v['cpu_s']:7.3f}s {v['count']:7d}× {v['cpu_s'] / v['count'] * 1e6:8.1f} µs",
                          flush=True)

        # 6. everyone leaves; the rooms go away.
        for m in order:
            srv = servers[m]
            self.leave_timeouts = 0
            cpu0, t0 = cpu_seconds(srv.pid), time.perf_counter()
            await self.in_waves([self.leave(c, rooms[m]) for c in everyone[m] + probes[m]], self.args.join_concurrency)
            await self.quiet()
            res[m]["leave"] = {"cpu_s": cpu_seconds(srv.pid) - cpu0, "wall_s": time.perf_counter() - t0,
                               "timeouts": self.leave_timeouts}
            res[m]["rss_after_kib"] = rss_kib(srv.pid)
        return [res[m] for m in order]

    # -- perf
    def start_perf(self, server: Server, size: str, phase: str):
        if not shutil.which("perf"):
            return None
        out = Path(self.args.out_dir) / f"perf-{size}-{server.mode}-{phase}.data"
        proc = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf,16384",
             "-p", str(server.pid), "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)  # let perf attach
        proc.bench_out = out  # type: ignore[attr-defined]
        return proc

    def stop_perf(self, proc) -> None:
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        out: Path = proc.bench_out  # type: ignore[attr-defined]
        txt = out.with_suffix(".txt")
        with open(txt, "w") as f:
            for children, sort, limit in (("--no-children", "dso", "0.5"), ("--no-children", "dso,sym", "0.7"),
                                          ("--children", "dso,sym", "1.5")):
                # --children: time in a function and everything it called (DWARF unwinding
                # through minimix.so's debug info), e.g. the whole crossing into the native core.
                f.write(f"=== perf report {children} --sort {sort} ===\n")
                f.flush()
                subprocess.run(
                    ["perf", "report", "-i", str(out), children, "--sort", sort, "--stdio", "-g", "none",
                     "--percent-limit", limit],
                    stdout=f, stderr=subprocess.DEVNULL,
                )
        print(f"    perf profile: {txt}", flush=True)

    # -- one size
    async def run_size(self, size: str) -> dict:
        U, S, K, M, L = SIZES[size]
        a = self.args
        if a.accounts:
            U = a.accounts
        if a.messages:
            M = a.messages
        if a.late:
            L = a.late
        L = min(L, U)
        self.size_params = (U, S, K, M, L)
        print(f"== {size}: {U} accounts × {S} sessions + {K} plain occupants, {M} messages "
              f"(bursts of {a.burst}, blocks of {a.block}), {L} late attaches, {a.rounds} rounds", flush=True)
        workroot = Path(a.out_dir)
        servers: dict[str, Server] = {}
        try:
            for mode in ("module", "plain"):
                t0 = time.perf_counter()
                servers[mode] = start_server(mode, a.module_dir, workroot, U, K, self.mallinfo_so, a.event_times)
                if self.pin:
                    os.sched_setaffinity(servers[mode].pid, {self.pin[1]})
                await self.connect_all(servers[mode], U, S, K)
                print(f"  {mode}: pid {servers[mode].pid}, {U * (S + 1) + K} connections in "
                      f"{time.perf_counter() - t0:.1f}s", flush=True)
            base = {m: servers[m].memory() for m in servers}
            rounds = []
            for r in range(a.warmup + a.rounds):
                perf = a.perf and r == a.warmup + a.rounds - 1
                for res in await self.paired_round(servers, size, r, perf):
                    res["warmup"] = r < a.warmup
                    rounds.append(res)
                    self.print_round(res)
            for m, s in servers.items():
                errors = s.srv.log_errors()
                if errors:
                    print(f"  {m}: {len(errors)} error lines in the Prosody log, e.g. {errors[0]}", flush=True)
            return {
                "size": size, "accounts": U, "sessions": S, "observers": K, "messages": M,
                "late_attaches": L, "burst": a.burst, "block": a.block, "pace_s": a.pace, "rounds": rounds,
                "idle_memory": base, "sample": dict(self.sample),
                "log_errors": {m: s.srv.log_errors()[:5] for m, s in servers.items()},
            }
        finally:
            for s in servers.values():
                await self.close_all(s)
            await asyncio.sleep(0.2)
            for s in servers.values():
                if a.keep:
                    s.srv.stop()
                    print(f"  kept {s.srv.dir}")
                else:
                    s.srv.cleanup()

    @staticmethod
    def print_round(r: dict) -> None:
        m = r["messages"]
        w = " (warm-up)" if r.get("warmup") else ""
        print(
            f"  r{r['round']} {r['mode']:6}{w}: msg {m['cpu_per_delivery_us']:.1f} µs/delivery "
            f"({m['received']}/{m['expected']}, lost {m['lost']}, dup {m['duplicated']}, ooo {m['out_of_order']}, "
            f"{m['wall_s']:.2f}s) | join {r['join']['cpu_per_join_ms']:.2f} ms | attach "
            f"{(r['attach']['cpu_per_join_ms'] or 0):.2f} ms | late {(r['late']['cpu_per_join_ms'] or 0):.2f} ms | "
            f"rss {r['memory']['rss_kib'] / 1024:.1f} MiB, lua {r['memory']['lua_heap_kib'] / 1024:.1f} MiB",
            flush=True,
        )


# ------------------------------------------------------------------------------- summary


METRICS = [
    # (key, label, getter)
    ("cpu_per_delivery_us", "CPU per delivered groupchat (µs)", lambda r: r["messages"]["cpu_per_delivery_us"]),
    ("msg_wall_s", "message phase wall time (s)", lambda r: r["messages"]["wall_s"]),
    ("burst_latency_ms", "burst latency, median (ms)", lambda r: r["messages"]["burst_latency_ms_median"]),
    ("join_cpu_ms", "CPU per first join (ms)", lambda r: r["join"]["cpu_per_join_ms"]),
    ("attach_cpu_ms", "CPU per session 2..S join (ms)", lambda r: r["attach"]["cpu_per_join_ms"]),
    ("late_cpu_ms", "CPU per late attach into full room (ms)", lambda r: r["late"]["cpu_per_join_ms"]),
    ("late_latency_ms", "late attach latency, median (ms)", lambda r: r["late"]["latency_ms_median"]),
    ("rss_mib", "Prosody RSS (MiB)", lambda r: r["memory"]["rss_kib"] / 1024),
    ("lua_heap_mib", "Lua heap after full GC (MiB)", lambda r: r["memory"]["lua_heap_kib"] / 1024),
    ("native_mib", "malloc in use outside the Lua heap (MiB)",
     lambda r: None if r["memory"]["native_kib"] is None else r["memory"]["native_kib"] / 1024),
]


def summarize(result: dict) -> dict:
    rounds = [r for r in result["rounds"] if not r.get("warmup")]
    by_mode = {m: [r for r in rounds if r["mode"] == m] for m in ("module", "plain")}
    summary = {}
    for key, label, get in METRICS:
        mod = [get(r) for r in by_mode["module"]]
        pla = [get(r) for r in by_mode["plain"]]
        ratios = [a / b for a, b in zip(mod, pla) if a is not None and b]
        summary[key] = {"label": label, "module": spread(mod), "plain": spread(pla), "ratio": spread(ratios)}
    # Late attach (module) against a plain session joining the same full room, and against the
    # plain first join (the cheapest plain join: into a room that is still filling).
    tot = {m: {k: sum(r["messages"][k] for r in by_mode[m]) for k in ("expected", "received", "lost", "duplicated", "out_of_order")}
           for m in by_mode}
    summary["deliveries"] = tot
    summary["attach_presences"] = {m: spread([r["attach"]["presences_delivered"] for r in by_mode[m]]) for m in by_mode}
    summary["late_presences_to_others"] = {m: spread([r["late"]["presences_to_others"] for r in by_mode[m]]) for m in by_mode}
    summary["module_stats"] = by_mode["module"][-1]["memory"].get("module_stats") if by_mode["module"] else None
    return summary


def fmt(s, digits=2):
    if not s:
        return "—"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}..{s['max']:.{digits}f})"


def print_summary(result: dict, summary: dict) -> None:
    print(f"\n== {result['size']} summary: {result['accounts']}×{result['sessions']} + {result['observers']}, "
          f"{result['messages']} messages; median (min..max) over {len(result['rounds']) // 2} rounds")
    print(f"  {'metric':44} {'module':>24} {'plain':>24} {'module/plain':>22}")
    for key, label, _ in METRICS:
        s = summary[key]
        print(f"  {label:44} {fmt(s['module']):>24} {fmt(s['plain']):>24} {fmt(s['ratio']):>22}")
    for m, t in summary["deliveries"].items():
        print(f"  deliveries {m:6}: expected {t['expected']}, received {t['received']}, lost {t['lost']}, "
              f"duplicated {t['duplicated']}, out of order {t['out_of_order']}")
    print(f"  presences delivered while sessions 2..S joined: module {fmt(summary['attach_presences']['module'], 0)}, "
          f"plain {fmt(summary['attach_presences']['plain'], 0)}")
    if summary.get("module_stats"):
        print(f"  module stats at the memory snapshot: {summary['module_stats']}")


# ------------------------------------------------------------------------------- main


def build_mallinfo(out_dir: Path) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("no C compiler: malloc statistics disabled", flush=True)
        return None
    so = out_dir / "mallinfo.so"
    res = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(so), str(REPO / "bench" / "mallinfo.c")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        print(f"mallinfo helper did not build: {res.stderr.strip()}", flush=True)
        return None
    return str(so)


async def main_async(args) -> list[dict]:
    bench = Bench(args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bench.mallinfo_so = build_mallinfo(out_dir)
    cpus = sorted(os.sched_getaffinity(0))
    bench.pin = None
    if not args.no_pin and len(cpus) >= 2:
        # The client on one CPU, the server being measured on another (one at a time is busy).
        bench.pin = (cpus[0], cpus[1])
        os.sched_setaffinity(0, {cpus[0]})
    results = []
    for size in args.sizes.split(","):
        res = await bench.run_size(size)
        res["summary"] = summarize(res)
        print_summary(res, res["summary"])
        results.append(res)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--module-dir", default=os.environ.get("MINIMIX_MODULE_DIR", str(REPO / "build" / "bench-plugins")),
                   help="directory containing mod_minimix/mod_minimix.lua (make install MODULE_DIR=...)")
    p.add_argument("--sizes", default="small,medium", help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per mode (alternating)")
    p.add_argument("--warmup", type=int, default=0, help="unreported rounds first")
    p.add_argument("--accounts", type=int, default=0, help="override U")
    p.add_argument("--messages", type=int, default=0, help="override M")
    p.add_argument("--late", type=int, default=0, help="override L (late attaches per round)")
    p.add_argument("--burst", type=int, default=10, help="messages per burst")
    p.add_argument("--block", type=int, default=20,
                   help="messages per measured block; blocks alternate between the servers")
    p.add_argument("--late-group", type=int, default=5, help="late attaches per measured group (alternating)")
    p.add_argument("--settle", type=float, default=0.02, help="pause before reading CPU after a block (s)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the client to CPU 0 and Prosody to CPU 1")
    p.add_argument("--pace", type=float, default=0.02, help="pause between bursts (s)")
    p.add_argument("--burst-timeout", type=float, default=15)
    p.add_argument("--timeout", type=float, default=30, help="join/leave timeout (s)")
    p.add_argument("--join-concurrency", type=int, default=8)
    p.add_argument("--connect-concurrency", type=int, default=32)
    p.add_argument("--event-times", action="store_true",
                   help="diagnostic: time every host event in Prosody (inclusive CPU per event name, message phase)")
    p.add_argument("--perf", action="store_true", help="perf-record the last round's message and late phases")
    p.add_argument("--out-dir", default=str(REPO / "build" / "bench"))
    p.add_argument("--json", default=None, help="write all figures here (default OUT_DIR/e2e.json)")
    p.add_argument("--keep", action="store_true", help="keep the servers' temp dirs")
    args = p.parse_args()
    for s in args.sizes.split(","):
        if s not in SIZES:
            p.error(f"unknown size {s}")
    if not Path(args.module_dir, "mod_minimix", "mod_minimix.lua").is_file():
        p.error(f"{args.module_dir} has no mod_minimix/mod_minimix.lua; run make install MODULE_DIR=...")
    # Prosody resolves a relative config path against /etc/prosody: make everything absolute.
    args.out_dir = os.path.abspath(args.out_dir)
    args.module_dir = os.path.abspath(args.module_dir)
    t0 = time.perf_counter()
    results = asyncio.run(main_async(args))
    out = Path(args.json or Path(args.out_dir) / "e2e.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "duration_s": time.perf_counter() - t0,
        "cpus": os.cpu_count(),
        "module_dir": args.module_dir,
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    print(f"\nwrote {out} ({meta['duration_s']:.0f}s)")


if __name__ == "__main__":
    main()

"""A throwaway, real Prosody server for integration tests.

Each :class:`ProsodyServer` lives in its own temporary directory (config, data,
log, admin socket) and listens for c2s on a free loopback port only. Nothing
is shared with a system Prosody: no TLS, no HTTP, and no s2s unless asked
(``s2s=True``: a free loopback s2s port, dialback without TLS, peers reached
through :meth:`ProsodyServer.route_s2s`; see ``s2s_pair.py``).

Hosts:

* ``a.localhost`` and ``b.localhost`` load ``mod_minimix`` (when
  ``with_module=True``): these are the hosts under test.
* ``obs.localhost`` never loads it: its users are plain XEP-0045 observers.
* ``muc.localhost`` is a ``muc`` component with room locking off, so the
  first joiner's room is usable at once.

``virtual_hosts``, ``hosts_with_module`` and ``muc_host`` replace these (the
remote server of ``s2s_pair.py`` has ``remote.localhost`` and
``rooms.remote.localhost`` instead).

Environment:

* ``MINIMIX_MODULE_DIR``: directory containing ``mod_minimix/mod_minimix.lua``
  (put into ``plugin_paths``). Required only with ``with_module=True``.
* ``PROSODY`` / ``PROSODYCTL``: binaries (default ``prosody`` / ``prosodyctl``).
  Prosody 0.12 (Debian bookworm) and 13 (bookworm-backports, unpacked by
  ``tests/prosody13.sh``) are both supported; :func:`prosody_version` tells
  which one ``PROSODYCTL`` is, and the running server must agree.

Where 13 differs from 0.12 (notes §10-§11), per item:

* ``run_as_root``: 0.12's mod_posix and 13's startup both refuse root without
  it; prosodyctl too. Set on both.
* mod_posix: autoloaded by 0.12 only (pidfile, foreground by default); 13 does
  pidfile and run_as_root in startup and is foreground unless ``-D``. The rig
  never lists ``posix``; ``-F`` is accepted by both; ``pidfile`` works on both.
* File log format and level column, ``prosodyctl shell`` output (``Result: x``,
  ``OK: n``, exit status = number of errors), SIGTERM shutdown: the same.
* Lua module names: 13 is ``prosody.core.*``/``prosody.util.*`` (the old names
  still resolve); :meth:`ProsodyServer.lua_module` picks the native one.
* MUC: 13 adds ``restrict_pm`` (``muc_room_default_allow_pm``); the rig pins it
  to ``visitor`` (anyone may PM, plain XEP-0045 and 0.12 behaviour). 13's
  ``restrict_room_creation`` is an enum; ``false`` means the same on both.
  13 also loads room vCards (``muc_vcard``): a room with an avatar would send
  a vcard-temp:x:update presence from the bare room JID on join; rooms in these
  tests have none, and that default is left as 13 ships it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

VIRTUAL_HOSTS_WITH_MODULE = ("a.localhost", "b.localhost")
OBSERVER_HOST = "obs.localhost"
MUC_HOST = "muc.localhost"
ALL_VIRTUAL_HOSTS = VIRTUAL_HOSTS_WITH_MODULE + (OBSERVER_HOST,)

BASE_MODULES = ("roster", "saslauth", "disco", "ping", "carbons", "smacks", "pep", "admin_shell")
# Autoloaded modules we do not want: s2s would open ports; offline would store
# PMs for absent users instead of bouncing them, hiding module bugs.
DEFAULT_DISABLED = ("s2s", "s2s_auth_certs", "offline")

# File log lines look like "Nov 22 03:57:00 source        level\tmessage" (0.12 and 13 alike).
_LOG_LEVEL_RE = re.compile(r"\s(debug|info|warn|error)\t")
# Logged at error level on every start without certificates; not our problem.
_HARMLESS_ERRORS = ("Error indexing certificate directory",)

_VERSION_RE = re.compile(r"^Prosody (\S+)", re.M)
#: prosodyctl path -> version string, e.g. "0.12.3" or "13.0.1".
_VERSIONS: dict[str, str] = {}


def lua_str(value: str) -> str:
    """Quote a Python string as a Lua string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_list(values) -> str:
    return "{ " + ", ".join(lua_str(v) for v in values) + " }"


def free_port() -> int:
    """Ask the kernel for a free loopback TCP port (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProsodyError(RuntimeError):
    pass


def version_tuple(version: str) -> tuple[int, ...]:
    """``"13.0.1"`` -> ``(13, 0, 1)``; ``"0.12.3"`` -> ``(0, 12, 3)`` (stops at the first non-number)."""
    parts = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def prosody_version(prosodyctl: str | None = None) -> str:
    """The version of ``prosodyctl`` (default ``$PROSODYCTL`` or ``prosodyctl``), e.g.
    ``"13.0.1"``, from ``prosodyctl about`` on a throwaway config (13 refuses to run
    without one). Cached per binary."""
    prosodyctl = prosodyctl or os.environ.get("PROSODYCTL", "prosodyctl")
    key = shutil.which(prosodyctl) or prosodyctl
    if key in _VERSIONS:
        return _VERSIONS[key]
    with tempfile.TemporaryDirectory(prefix="minimix-version-") as tmp:
        cfg = Path(tmp, "probe.cfg.lua")
        cfg.write_text(
            "run_as_root = true\n"
            f"data_path = {lua_str(tmp)}\ncertificates = {lua_str(tmp)}\n"
            'log = { { levels = { min = "error" }, to = "console" } }\n'
        )
        try:
            res = subprocess.run([prosodyctl, "--config", str(cfg), "about"], capture_output=True, text=True, timeout=30)
        except OSError as e:
            raise ProsodyError(f"cannot run {prosodyctl!r}: {e}") from e
    m = _VERSION_RE.search(res.stdout)
    if res.returncode != 0 or not m:
        raise ProsodyError(f"{prosodyctl} about did not tell its version ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    _VERSIONS[key] = m.group(1)
    return m.group(1)


class ProsodyServer:
    """One Prosody process plus its temp dir.

    Usage::

        srv = ProsodyServer(with_module=False)
        srv.register("carol", "obs.localhost", "pw")
        srv.start()
        ...           # connect clients to srv.c2s_port
        srv.stop()    # or srv.cleanup() to also remove the temp dir

    ``global_extra`` / ``host_extra[host]`` / ``muc_extra`` are raw Lua
    snippets appended to the global section / a VirtualHost / the MUC
    component, so tests can set ``minimix_*`` options.
    """

    #: Servers currently running; the pytest hook prints their log tails on failure.
    running: list["ProsodyServer"] = []

    def __init__(
        self,
        *,
        with_module: bool = True,
        module_dir: str | None = None,
        mam: bool = False,
        metrics: bool = False,
        bookmarks: bool = False,
        global_extra: str = "",
        host_extra: dict[str, str] | None = None,
        muc_extra: str = "",
        disabled_modules=DEFAULT_DISABLED,
        workdir: str | None = None,
        prosody: str | None = None,
        prosodyctl: str | None = None,
        virtual_hosts=ALL_VIRTUAL_HOSTS,
        hosts_with_module=VIRTUAL_HOSTS_WITH_MODULE,
        muc_host: str = MUC_HOST,
        s2s: bool = False,
    ):
        self.with_module = with_module
        #: The VirtualHosts, those of them that load the module, and the MUC component.
        self.virtual_hosts = tuple(virtual_hosts)
        self.hosts_with_module = tuple(h for h in hosts_with_module if h in self.virtual_hosts)
        self.muc_host = muc_host
        self.module_dir = module_dir or os.environ.get("MINIMIX_MODULE_DIR")
        if with_module:
            if not self.module_dir:
                raise ProsodyError(
                    "MINIMIX_MODULE_DIR is not set: point it at the directory that "
                    "contains mod_minimix/mod_minimix.lua (e.g. the build output)."
                )
            self.module_dir = os.path.abspath(self.module_dir)
            lua = Path(self.module_dir, "mod_minimix", "mod_minimix.lua")
            if not lua.is_file():
                raise ProsodyError(f"MINIMIX_MODULE_DIR={self.module_dir} has no {lua.relative_to(self.module_dir)}")
        self.mam = mam
        #: Statistics every second and mod_http_openmetrics on ``http_port`` (loopback).
        self.metrics = metrics
        self.http_port = free_port() if metrics else None
        self.bookmarks = bookmarks
        self.global_extra = global_extra
        self.host_extra = dict(host_extra or {})
        self.muc_extra = muc_extra
        self.disabled_modules = tuple(disabled_modules)
        self.prosody = prosody or os.environ.get("PROSODY", "prosody")
        self.prosodyctl = prosodyctl or os.environ.get("PROSODYCTL", "prosodyctl")
        #: e.g. "0.12.3" or "13.0.1"; ``version_info`` is (0, 12, 3) / (13, 0, 1).
        self.version = prosody_version(self.prosodyctl)
        self.version_info = version_tuple(self.version)

        self.dir = Path(workdir or tempfile.mkdtemp(prefix="minimix-it-"))
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)
        self.config_path = self.dir / "prosody.cfg.lua"
        self.log_path = self.dir / "prosody.log"
        self.console_path = self.dir / "console.log"
        self.socket_path = self.data_dir / "prosody.sock"
        self.c2s_port = free_port()
        #: s2s: a listening port of its own, dialback, no TLS; peers are reached via
        #: :meth:`route_s2s` (no DNS outside this machine is ever asked).
        self.s2s = s2s
        self.s2s_port = free_port() if s2s else None
        self.s2s_routes: dict[str, int] = {}
        if s2s:
            self.disabled_modules = tuple(m for m in self.disabled_modules if m != "s2s")
        self.proc: subprocess.Popen | None = None
        self.write_config()

    @property
    def is_13(self) -> bool:
        """Prosody 13 or later (module names ``prosody.*``, startup-handled root checks, restrict_pm...)."""
        return self.version_info >= (13,)

    def lua_module(self, name: str) -> str:
        """The native ``require`` name of a Prosody module: ``core.modulemanager`` on 0.12,
        ``prosody.core.modulemanager`` on 13 (where the short name is only an alias)."""
        return f"prosody.{name}" if self.is_13 else name

    # ------------------------------------------------------------------ config

    def route_s2s(self, zone: str, port: int) -> None:
        """Reach every domain under ``zone`` (the zone itself included) over s2s at
        127.0.0.1:``port``, e.g. ``route_s2s("remote.localhost", other.s2s_port)``.

        No DNS server is involved: Prosody's resolver (libunbound, via lua-unbound) is
        given a local zone that answers every ``_xmpp-server._tcp.<name>`` SRV query under
        ``zone`` with ``port`` on target ``localhost.``, which libunbound's built-in
        ``localhost.`` zone resolves to 127.0.0.1. lua-unbound passes one value per
        option name, hence one zone per server (enough for a pair of servers). Takes
        effect at the next :meth:`start`."""
        if not self.s2s:
            raise ProsodyError("route_s2s needs a server created with s2s=True")
        if self.s2s_routes and zone not in self.s2s_routes:
            raise ProsodyError(f"only one s2s zone per server (have {sorted(self.s2s_routes)})")
        self.s2s_routes[zone] = port

    def _s2s_config(self) -> list[str]:
        if not self.s2s:
            return ["s2s_ports = {}"]
        lines = [
            f"s2s_ports = {{ {self.s2s_port} }}",
            "s2s_direct_tls_ports = {}",
            # Plain dialback between the two loopback servers: no certificates here.
            "s2s_secure_auth = false",
            "use_ipv6 = false",
        ]
        for zone, port in self.s2s_routes.items():
            zone = zone.rstrip(".") + "."
            lines += [
                "unbound = { options = {",
                f"  [\"local-zone\"] = {lua_str(zone + ' redirect')};",
                f"  [\"local-data\"] = {lua_str(f'{zone} 60 IN SRV 0 0 {port} localhost.')};",
                "} }",
            ]
        return lines

    def modules_enabled(self) -> list[str]:
        mods = list(BASE_MODULES)
        if self.mam:
            mods.append("mam")
        if self.bookmarks:
            mods.append("bookmarks")
        if self.metrics:
            mods.append("http_openmetrics")
        if self.s2s:
            mods.append("dialback")
        return mods

    def render_config(self) -> str:
        d = self.dir
        lines = [
            "-- Generated by tests/integration/prosody_server.py; loopback only, insecure on purpose.",
            f"-- For Prosody {self.version} ({self.prosody}).",
            # 0.12: checked by mod_posix (autoloaded); 13: by startup. Both exit as root without it.
            "run_as_root = true",
            f"data_path = {lua_str(str(self.data_dir))}",
            f"pidfile = {lua_str(str(self.data_dir / 'prosody.pid'))}",
            f"admin_socket = {lua_str(str(self.socket_path))}",
            f"certificates = {lua_str(str(d / 'certs'))}",
        ]
        if self.with_module:
            lines.append(f"plugin_paths = {lua_list([self.module_dir])}")
        lines += [
            'interfaces = { "127.0.0.1" }',
            'local_interfaces = { "127.0.0.1" }',
            f"c2s_ports = {{ {self.c2s_port} }}",
            "c2s_direct_tls_ports = {}",
            *self._s2s_config(),
            f"http_ports = {{ {self.http_port} }}" if self.http_port else "http_ports = {}",
            "https_ports = {}",
            "component_ports = {}",
            "c2s_require_encryption = false",
            "s2s_require_encryption = false",
            *(['statistics = "internal"', "statistics_interval = 1"] if self.metrics else []),
            "allow_unencrypted_plain_auth = true",
            'authentication = "internal_plain"',
            # internal (files) so that prosodyctl register and restart() keep accounts.
            'storage = "internal"',
            "log = {",
            f'  {{ levels = {{ min = "debug" }}, to = "file", filename = {lua_str(str(self.log_path))} }};',
            '  { levels = { min = "error" }, to = "console" };',
            "}",
            f"modules_enabled = {lua_list(self.modules_enabled())}",
            f"modules_disabled = {lua_list(self.disabled_modules)}",
        ]
        if self.with_module:
            # The suite's shared server sees the same accounts join far more than 60 rooms a
            # minute (faster still on 13); lift the production limit. Set before the extras,
            # so a test of the limit overrides it in global_extra or host_extra.
            lines.append("minimix_max_joins_per_minute = 1000000")
        lines += [
            self.global_extra,
            "",
        ]
        for host in self.virtual_hosts:
            lines.append(f"VirtualHost {lua_str(host)}")
            if self.with_module and host in self.hosts_with_module:
                lines.append('  modules_enabled = { "minimix" }')
            if host in self.host_extra:
                lines.append(self.host_extra[host])
            lines.append("")
        lines += [
            f"Component {lua_str(self.muc_host)} \"muc\"",
            "  muc_room_locking = false",
            "  restrict_room_creation = false",
        ]
        if self.is_13:
            # 13's restrict_pm: anyone may send PMs, as in XEP-0045 and in 0.12 (13's own
            # default too, pinned so that the tests do not depend on it).
            lines.append('  muc_room_default_allow_pm = "visitor"')
        if self.mam:
            lines.append('  modules_enabled = { "muc_mam" }')
        if self.muc_extra:
            lines.append(self.muc_extra)
        lines.append("")
        return "\n".join(lines)

    def write_config(self) -> None:
        self.config_path.write_text(self.render_config())

    # ------------------------------------------------------------------ users

    def prosodyctl_run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``prosodyctl --config CFG ARGS...`` and return the completed process."""
        cmd = [self.prosodyctl, "--config", str(self.config_path), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise ProsodyError(f"{cmd!r} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def register(self, user: str, host: str, password: str) -> None:
        """Create an account. Works whether or not the server is running
        (internal storage is plain files and is read on demand)."""
        self.prosodyctl_run("register", user, host, password)

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20) -> None:
        """Start ``prosody -F`` and wait until it really serves XMPP on c2s.

        ``-F`` (foreground) matters on 0.12 only; 13 stays in the foreground unless ``-D``."""
        if self.is_running:
            raise ProsodyError("already running")
        self.write_config()
        self._console = open(self.console_path, "ab")
        self.proc = subprocess.Popen(
            [self.prosody, "--config", str(self.config_path), "-F"],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            cwd=str(self.dir),
            start_new_session=True,  # our own process group; signals stay ours
        )
        ProsodyServer.running.append(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._forget()
                raise ProsodyError(
                    f"prosody exited with {self.proc.returncode} during start-up\n"
                    f"--- console ---\n{self.console_path.read_text(errors='replace')}\n"
                    f"--- log tail ---\n{self.log_tail(40)}"
                )
            if self._serves_xmpp():
                self._check_version()
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ProsodyError(f"prosody did not serve c2s within {timeout}s\n{self.log_tail(40)}")
            time.sleep(0.05)

    def _check_version(self) -> None:
        """The running server must be the version prosodyctl reported (PROSODY and
        PROSODYCTL from different installations would test the wrong thing)."""
        try:
            running = self.lua("prosody.version")
        except ProsodyError:
            self.stop()
            raise
        if running != self.version:
            self.stop()
            raise ProsodyError(
                f"{self.prosody} runs Prosody {running!r} but {self.prosodyctl} is {self.version!r}: "
                "set PROSODY and PROSODYCTL to the same installation"
            )

    def _serves_xmpp(self) -> bool:
        """True once the event loop answers a stream header with features.

        A mere TCP accept is not enough: the listening socket exists before
        all hosts are loaded and the loop runs."""
        try:
            with socket.create_connection(("127.0.0.1", self.c2s_port), timeout=1) as s:
                s.sendall(
                    f"<?xml version='1.0'?><stream:stream to='{self.virtual_hosts[0]}' version='1.0' "
                    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
                )
                buf = b""
                s.settimeout(1)
                while b"features" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    buf += chunk
                s.sendall(b"</stream:stream>")
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM (graceful: rooms get saved, sessions unbind), then SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)  # a paused server could not act on it
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self._forget()
        return rc

    def begin_stop(self, timeout: float = 5) -> None:
        """SIGTERM, returning once the server has begun its graceful shutdown (it logged the
        signal: the "server-stopping" handlers, which save state and close every s2s and c2s
        stream, run right after it, in the same turn). :meth:`stop` waits for the exit."""
        if not self.is_running:
            raise ProsodyError("not running")
        mark = self.log_mark()
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while "Received SIGTERM" not in self.log_since(mark):
            if time.monotonic() > deadline:
                raise ProsodyError(f"no shutdown after SIGTERM:\n{self.log_tail(20, mark)}")
            time.sleep(0.01)

    def pause(self) -> None:
        """SIGSTOP: the server stops answering (a stalled or very slow peer) while its
        sockets stay open; :meth:`resume` lets it carry on where it was."""
        if not self.is_running:
            raise ProsodyError("not running")
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def crash(self) -> int | None:
        """SIGKILL, as a crash or power loss: nothing is saved, peers see the TCP
        connections drop. :meth:`start` brings it back with whatever was on disk."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        rc = self.proc.returncode
        self._forget()
        return rc

    def _forget(self) -> None:
        if self in ProsodyServer.running:
            ProsodyServer.running.remove(self)
        if getattr(self, "_console", None):
            self._console.close()
            self._console = None

    def restart(self) -> None:
        """Stop and start again with the same config and data dir (same port)."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp dir (kept if ``MINIMIX_KEEP_TMP`` is set)."""
        self.stop()
        if not os.environ.get("MINIMIX_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------------ admin shell

    def shell(self, *args: str, timeout: float = 20, check: bool = True) -> str:
        """Run ``prosodyctl shell ARGS`` against this server; return stdout.

        ``shell(">return 1+1")`` runs raw Lua in the server; ``shell("module",
        "reload", "minimix", "a.localhost")`` becomes
        ``module:reload("minimix", "a.localhost")``. The exit status is the
        number of errors, so ``check`` raises on any."""
        res = self.prosodyctl_run("shell", *args, timeout=timeout, check=check)
        return res.stdout.strip()

    def lua(self, expr: str) -> str:
        """Evaluate a Lua expression inside the server; return it as printed
        by the shell (``tostring``), without the ``Result: `` prefix."""
        out = self.shell(">return " + expr)
        return out[len("Result: "):] if out.startswith("Result: ") else out

    def module_loaded(self, host: str, name: str = "minimix") -> bool:
        mm = lua_str(self.lua_module("core.modulemanager"))
        return self.lua(f'require({mm}).is_loaded({lua_str(host)}, {lua_str(name)}) and "yes" or "no"') == "yes"

    def occupant_real_jids(self, room_jid: str, nick: str) -> list[str] | None:
        """The real JIDs (MUC "sessions") behind ``room_jid/nick``, straight
        from mod_muc's state; None if there is no such room or occupant.

        This is how tests see what the *room* thinks joined: with mod_minimix
        it must be the account's bare JID only, never a session's full JID."""
        code = (
            "(function() local muc = prosody.hosts[%s].modules.muc;"
            " local room = muc and muc.get_room_from_jid(%s); if not room then return '<none>' end;"
            " local occ = room:get_occupant_by_nick(%s); if not occ then return '<none>' end;"
            " local t = {}; for jid in occ:each_session() do t[#t+1] = jid end; table.sort(t);"
            " return table.concat(t, ' ') end)()"
        ) % (lua_str(self.muc_host), lua_str(room_jid), lua_str(f"{room_jid}/{nick}"))
        out = self.lua(code)
        return None if out == "<none>" else out.split()

    # ------------------------------------------------------------------ log

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current size of the log, to read only what happens afterwards."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 80, since: int = 0) -> str:
        """Last ``n`` log lines written after ``since``."""
        return "\n".join(self.log_since(since).splitlines()[-n:])

    def log_errors(self, since: int = 0) -> list[str]:
        """Log lines that show a Lua error: tracebacks and error-level lines
        (minus known-harmless start-up noise). Tests assert this is empty."""
        found = []
        for line in self.log_since(since).splitlines():
            # The level column, not the message: debug lines often say "error".
            m = _LOG_LEVEL_RE.search(line)
            is_error = m is not None and m.group(1) == "error"
            if "Traceback" in line or (is_error and not any(h in line for h in _HARMLESS_ERRORS)):
                found.append(line)
        return found

    def count_log_errors(self, since: int = 0) -> int:
        return len(self.log_errors(since))

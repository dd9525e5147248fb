"""Two real Prosody servers joined by real s2s on loopback, for remote rooms.

* ``local``: the usual rig server WITH mod_minimix (alice and bob on
  ``a.localhost``), plus s2s, and ``plain.a.localhost`` WITHOUT the module (paul:
  a plain XEP-0045 client on the same server, reaching remote rooms over the same
  s2s link; what he sees is what a directly joined client would).
* ``remote``: the same Prosody binary WITHOUT the module, in its own temp dir
  with its own c2s and s2s ports, hosting ``remote.localhost`` (frank and grace,
  plain XEP-0045 clients that see exactly what the room does) and the MUC
  ``rooms.remote.localhost``.

Each server finds the other without any DNS server: ``route_s2s`` gives its
resolver (libunbound) a local zone whose SRV records point at the peer's s2s
port on 127.0.0.1. Streams are authenticated with dialback, unencrypted (no
certificates here; ``s2s_secure_auth = false``). So everything between the
account and the room crosses a real s2s connection: the room's answers arrive
asynchronously, in a later turn of the local server's event loop.
"""

from __future__ import annotations

from prosody_server import ALL_VIRTUAL_HOSTS, ProsodyError, ProsodyServer
from xmpp_client import Client

PASSWORD = "pw"
LOCAL_HOST = "a.localhost"
# Under a.localhost, so the remote server's one s2s route (the a.localhost zone) reaches it.
PLAIN_HOST = "plain.a.localhost"
REMOTE_HOST = "remote.localhost"
REMOTE_MUC = "rooms.remote.localhost"
LOCAL_USERS = {"alice": LOCAL_HOST, "bob": LOCAL_HOST, "paul": PLAIN_HOST}
REMOTE_USERS = {"frank": REMOTE_HOST, "grace": REMOTE_HOST}


class S2SPair:
    """``local`` (module) and ``remote`` (the room's server), linked by s2s.

    ``local_extra`` goes into the local server's global section (``minimix_*``
    options); ``remote_muc_extra`` into the remote MUC component. ``local_mam`` gives the
    accounts their own archives (mod_mam); ``remote_mam`` gives the remote rooms theirs
    (muc_mam: history kept on disk, and the room's XEP-0359 ``<stanza-id/>`` on messages)."""

    def __init__(
        self,
        module_dir: str,
        *,
        local_extra: str = "",
        remote_muc_extra: str = "",
        local_mam: bool = False,
        remote_mam: bool = False,
    ):
        self.local = ProsodyServer(
            with_module=True,
            module_dir=module_dir,
            mam=local_mam,
            s2s=True,
            global_extra=local_extra,
            virtual_hosts=ALL_VIRTUAL_HOSTS + (PLAIN_HOST,),
        )
        self.remote = ProsodyServer(
            with_module=False,
            mam=remote_mam,
            s2s=True,
            virtual_hosts=(REMOTE_HOST,),
            hosts_with_module=(),
            muc_host=REMOTE_MUC,
            muc_extra=remote_muc_extra,
        )
        # Everything under remote.localhost (the MUC included) is the remote server;
        # only a.localhost's accounts ever talk to it.
        self.local.route_s2s(REMOTE_HOST, self.remote.s2s_port)
        self.remote.route_s2s(LOCAL_HOST, self.local.s2s_port)
        self.clients: list[Client] = []

    def start(self) -> None:
        for user, host in LOCAL_USERS.items():
            self.local.register(user, host, PASSWORD)
        for user, host in REMOTE_USERS.items():
            self.remote.register(user, host, PASSWORD)
        self.remote.start()
        self.local.start()
        if not self.local.module_loaded(LOCAL_HOST):
            errors = "\n".join(self.local.log_errors()) or "(no error lines)"
            raise ProsodyError(f"mod_minimix is not loaded on {LOCAL_HOST}:\n{errors}")

    def client(self, user: str, resource: str = "test", **kw) -> Client:
        """A session of ``user`` on whichever server hosts it; closed by :meth:`close_clients`."""
        if user in LOCAL_USERS:
            srv, jid = self.local, f"{user}@{LOCAL_USERS[user]}"
        elif user in REMOTE_USERS:
            srv, jid = self.remote, f"{user}@{REMOTE_USERS[user]}"
        else:
            raise KeyError(f"no account {user!r} in the s2s pair")
        c = Client(srv.c2s_port, jid, PASSWORD, resource, **kw)
        self.clients.append(c)
        return c

    def close_clients(self) -> None:
        for c in self.clients:
            try:
                c.close(timeout=1)
            except Exception:
                pass
        self.clients = []

    def log_errors(self, marks: dict[str, int] | None = None) -> list[str]:
        """Error lines in both logs (since ``marks`` from :meth:`log_marks`)."""
        marks = marks or {}
        return [f"[{name}] {line}" for name, srv in self.servers().items() for line in srv.log_errors(marks.get(name, 0))]

    def log_marks(self) -> dict[str, int]:
        return {name: srv.log_mark() for name, srv in self.servers().items()}

    def servers(self) -> dict[str, ProsodyServer]:
        return {"local": self.local, "remote": self.remote}

    def cleanup(self) -> None:
        self.close_clients()
        self.local.cleanup()
        self.remote.cleanup()

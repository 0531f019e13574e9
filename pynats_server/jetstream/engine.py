"""JetStream on one server: enabling it, its accounts (jsaccount.JsAccount), the API's entry point.

How requests reach us is nats-server's design, so that clients and mixed clusters see the
same subjects: the system account exports `$JS.API.>` and subscribes to it; every account
with JetStream imports it (sharing the requester's identity in `Nats-Request-Info`); an
account without JetStream imports `$JS.API.INFO` only, which answers "not enabled". The
handlers (api.py and the modules it dispatches to) find the requesting account from that
header, and answer to the request's reply subject, which the import maps back.

Streams store under `<store_dir>/jetstream/<account>/streams/<stream>/`, as nats-server
lays its store out; a restart loads what is there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any

from .. import const
from ..options import JetStreamLimits, JetStreamOptions
from . import handlers  # noqa: F401  - registers the API's endpoints (api.endpoint)
from .api import Api
from .jsaccount import JsAccount
from .recovery import load_account
from .versioning import API_LEVEL

if TYPE_CHECKING:
    from ..accounts import Account
    from ..core import ServerCore

JS_ALL_API = "$JS.API.>"
JS_API_INFO = "$JS.API.INFO"


def friendly_bytes(n: int) -> str:
    """Go's friendlyBytes (nats-server's log lines): `%.2f` of a 1024-based unit."""
    units = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
    if n < 1024:
        return f"{n} B"
    v = float(n)
    i = 0
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return f"{v:.2f} {units[i]}"


def _machine_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _free_space(path: str) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


class JetStream:
    """The server's JetStream: configuration, accounts, API counters, lifecycle."""

    def __init__(self, server: ServerCore, opts: JetStreamOptions) -> None:
        self.server = server
        self.opts = opts
        base = opts.store_dir or os.path.join(tempfile.gettempdir(), "nats")
        self.store_dir = os.path.join(base, "jetstream")
        self.max_memory = opts.max_memory if opts.max_memory >= 0 else _machine_memory() // 4 * 3
        self.max_storage = opts.max_storage
        self.accounts: dict[str, JsAccount] = {}
        self.api_total = 0
        self.api_errors = 0
        self.started = 0.0
        self.api: Api | None = None  # made at start
        self.mem_used = 0
        self.store_used = 0
        self._rerr_last = 0.0
        self.atomic_inflight = 0  # atomic batches being staged, all streams (batch.py's limit)
        self._sync_timer: Any = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Log as nats-server does, make the store directory, serve the API, load streams."""
        t0 = time.perf_counter()
        srv = self.server
        log = srv.log
        os.makedirs(self.store_dir, exist_ok=True)
        if self.max_storage < 0:
            self.max_storage = _free_space(self.store_dir) // 4 * 3
        log.notice("Starting JetStream")
        for line in _BANNER:
            log.notice(line)
        log.notice("---------------- JETSTREAM ----------------")
        log.notice(f"  Strict:          {str(self.opts.strict).lower()}")
        log.notice(f"  Max Memory:      {friendly_bytes(self.max_memory)}")
        log.notice(f"  Max Storage:     {friendly_bytes(self.max_storage)}")
        log.notice(f'  Store Directory: "{self.store_dir}"')
        if self.opts.domain:
            log.notice(f"  Domain:          {self.opts.domain}")
        log.notice(f"  API Level:       {API_LEVEL}")
        log.notice("-------------------------------------------")
        self.api = Api(self)
        sysacc = srv.system_account
        assert sysacc is not None, "JetStream needs the system account"
        if JS_ALL_API not in sysacc.service_exports:
            sysacc.add_service_export(JS_ALL_API)
        self.api.start(sysacc)
        self._enable_accounts()
        self._schedule_sync()
        self.started = time.time()
        took = time.perf_counter() - t0
        from ..gotime import go_duration

        log.notice(f"Took {go_duration(took)} to start JetStream")

    def _enable_accounts(self) -> None:
        srv = self.server
        configured = {a.name: a.jetstream for a in srv.opts.accounts}
        for acc in list(srv.accounts.values()):
            if acc.is_system:
                continue
            if not configured:
                limits: JetStreamLimits | None = JetStreamLimits() if acc.name == const.GLOBAL_ACCOUNT else None
            else:
                limits = configured.get(acc.name)
            self.enable_account(acc, limits)

    def enable_account(self, acc: Account, limits: JetStreamLimits | None) -> None:
        """Give `acc` JetStream (with `limits`), or only the INFO import that says it has none."""
        sysacc = self.server.system_account
        assert sysacc is not None
        if limits is None:
            if JS_API_INFO not in acc.service_imports and JS_ALL_API not in acc.service_imports:
                acc.add_service_import(sysacc, JS_API_INFO, JS_API_INFO, share=True)
            return
        if JS_ALL_API not in acc.service_imports:
            acc.add_service_import(sysacc, JS_ALL_API, JS_ALL_API, share=True)
        if self.opts.domain:
            self._domain_mappings(acc)
        jsa = JsAccount(self, acc, limits)
        self.accounts[acc.name] = jsa
        acc.jetstream = jsa
        load_account(jsa)

    def _domain_mappings(self, acc: Account) -> None:
        """With a domain, `$JS.<domain>.API.<...>` reaches the API too (nats-server adds these
        subject mappings to every JetStream account: generateJSMappingTable). A mapping is a
        rewrite of the subject on publish; here an internal subscription in the account
        publishes the message again on the mapped subject, from the same client."""
        from ..delivery import deliver_msg

        prefix = f"$JS.{self.opts.domain}.API."
        table = {"INFO": "$JS.API.INFO", "STREAM.>": "$JS.API.STREAM.>", "CONSUMER.>": "$JS.API.CONSUMER.>",
                 "DIRECT.>": "$JS.API.DIRECT.>", "META.>": "$JS.API.META.>", "SERVER.>": "$JS.API.SERVER.>",
                 "ACCOUNT.>": "$JS.API.ACCOUNT.>", "$KV.>": "$KV.>", "$OBJ.>": "$OBJ.>"}  # fmt: skip
        client = acc.internal_client()
        for suffix, dest in table.items():
            src = (prefix + suffix).encode()
            keep = len(src) - 1  # the mapped subject keeps what the source's '>' matched
            dst = dest.encode()

            def remap(sub: Any, origin: Any, a: Any, subject: bytes, reply: bytes | None, hdr: int, msg: Any,
                      dst: bytes = dst, keep: int = keep, wild: bool = suffix.endswith(">")) -> bool:
                new = dst[:-1] + subject[keep:] if wild else dst
                return deliver_msg(origin, a, new, reply, hdr, msg)

            client.subscribe(src, remap, forward=False)

    def shutdown(self) -> None:
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        for jsa in list(self.accounts.values()):
            jsa.stop()
        if self.api is not None:
            self.api.stop()

    # -- limits and durability ----------------------------------------------------------

    def limits_exceeded(self, memory: bool) -> bool:
        """The server's own limit (max_memory / max_storage) is used up."""
        if memory:
            return self.mem_used > self.max_memory
        return self.store_used > self.max_storage

    def resources_exceeded_error(self, memory: bool) -> None:
        """Logged at most every 10 s, as nats-server."""
        now = time.monotonic()
        if now - self._rerr_last > 10:
            self._rerr_last = now
            kind = "memory" if memory else "file"
            self.server.log.error(f"JetStream {kind} resource limits exceeded for server")

    def _schedule_sync(self) -> None:
        loop = self.server.loop
        if loop is None or self.opts.sync_always or self.opts.sync_interval <= 0:
            return
        self._sync_timer = loop.call_later(self.opts.sync_interval, self._sync)

    def _sync(self) -> None:
        """Every sync_interval, file stores are synced to disk (nats-server's syncBlocks)."""
        self._sync_timer = None
        for jsa in self.accounts.values():
            for s in list(jsa.streams.values()):
                if not s.is_memory and not s.closed:
                    try:
                        s.store.sync()
                    except Exception as e:  # a write error: the stream logs it on its next write
                        self.server.log.error(f"JetStream sync of stream '{jsa.account.name} > {s.name}' failed: {e}")
        self._schedule_sync()

    def remove_store(self) -> None:
        """Delete the whole store (embedded servers that made a temporary one)."""
        shutil.rmtree(self.store_dir, ignore_errors=True)

    # -- monitoring ---------------------------------------------------------------------

    def usage(self) -> tuple[int, int]:
        mem = sto = 0
        for jsa in self.accounts.values():
            m, s = jsa.usage()
            mem += m
            sto += s
        return mem, sto

    def config_json(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "max_memory": self.max_memory,
            "max_storage": self.max_storage,
            "store_dir": self.store_dir,
            "sync_interval": int(self.opts.sync_interval * 1e9),
        }
        if self.opts.sync_always:
            cfg["sync_always"] = True
        if self.opts.domain:
            cfg["domain"] = self.opts.domain
        if self.opts.strict:
            cfg["strict"] = True
        return cfg

    def reserved(self) -> tuple[int, int]:
        mem = sto = 0
        for jsa in self.accounts.values():
            m, s = jsa.reserved()
            mem += m
            sto += s
        return mem, sto

    def stats_json(self) -> dict[str, Any]:
        mem, sto = self.usage()
        rmem, rsto = self.reserved()
        return {
            "memory": mem,
            "storage": sto,
            "reserved_memory": rmem,
            "reserved_storage": rsto,
            "accounts": len(self.accounts),
            "ha_assets": 0,
            "api": {"level": API_LEVEL, "total": self.api_total, "errors": self.api_errors},
        }

    def varz(self) -> dict[str, Any]:
        return {"config": self.config_json(), "stats": self.stats_json(), "limits": {}}


_BANNER = (
    "    _ ___ _____ ___ _____ ___ ___   _   __  __",
    " _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
    "| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
    " \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|",
    "",
    "         https://docs.nats.io/jetstream",
    "",
)

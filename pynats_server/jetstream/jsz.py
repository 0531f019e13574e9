"""/jsz and the JSZ system requests: nats-server's JSInfo and AccountDetail (monitor.go Jsz)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..gotime import go_time

if TYPE_CHECKING:
    from .engine import JetStream
    from .jsaccount import JsAccount

_U64_MAX = (1 << 64) - 1


def _u64(v: int) -> int:
    """A Go int64 shown as uint64 (-1 becomes 18446744073709551615)."""
    return v & _U64_MAX


def account_detail(js: JetStream, jsa: JsAccount, *, streams: bool, consumers: bool, config: bool) -> dict[str, Any]:
    mem, sto = jsa.usage()
    lim = jsa.limits
    out: dict[str, Any] = {
        "name": jsa.account.name,
        "id": jsa.account.name,
        "memory": mem,
        "storage": sto,
        "reserved_memory": _u64(lim.max_memory),
        "reserved_storage": _u64(lim.max_storage),
        "accounts": 0,
        "ha_assets": 0,
        "api": {"level": 0, "total": jsa.api_total, "errors": jsa.api_errors},
    }
    if streams:
        details = []
        for s in list(jsa.streams.values()):
            d: dict[str, Any] = {
                "name": s.name,
                "created": s.created_json(),
                "cluster": {"leader": js.server.name},
            }
            if config:
                d["config"] = s.config_json(dynamic=False)
            d["state"] = s.state_json()
            if consumers:
                infos = []
                for c in list(s.consumers.values()):
                    fn = getattr(c, "info_json", None)
                    if fn is None:
                        continue
                    info = fn()
                    if not config:
                        info.pop("config", None)
                    infos.append(info)
                if infos:
                    d["consumer_detail"] = infos
            if s.sources is not None:
                d.update(s.sources.info_json())
            details.append(d)
        if details:
            out["stream_detail"] = details
    return out


def jsz(js: JetStream | None, server_id: str, opts: dict[str, Any]) -> dict[str, Any]:
    """JSInfo for JSzOptions `opts` (account, accounts, streams, consumer, config, offset, limit)."""
    offset = max(int(opts.get("offset") or 0), 0)
    limit = int(opts.get("limit") or 0) or 1024
    consumer = bool(opts.get("consumer"))
    streams = bool(opts.get("streams")) or consumer
    account = opts.get("account") or ""
    accounts_opt = bool(opts.get("accounts")) or (streams and not account)
    now = go_time(time.time())
    if js is None:
        return {
            "memory": 0, "storage": 0, "reserved_memory": 0, "reserved_storage": 0, "accounts": 0,
            "ha_assets": 0, "api": {"level": 0, "total": 0, "errors": 0}, "server_id": server_id,
            "now": now, "disabled": True, "config": {"max_memory": 0, "max_storage": 0},
            "streams": 0, "consumers": 0, "messages": 0, "bytes": 0, "total": 0,
        }  # fmt: skip
    out: dict[str, Any] = dict(js.stats_json())
    out["server_id"] = server_id
    out["now"] = now
    out["config"] = js.config_json()
    out["limits"] = {}
    jsas = list(js.accounts.values())
    n_streams = n_consumers = msgs = nbytes = 0
    for jsa in jsas:
        for s in list(jsa.streams.values()):
            n_streams += 1
            st = s.store.fast_state()
            msgs += st.msgs
            nbytes += st.bytes
            n_consumers += len(s.consumers)
    out.update({"streams": n_streams, "consumers": n_consumers, "messages": msgs, "bytes": nbytes})
    chosen = [j for j in jsas if j.account.name == account]
    if not chosen:
        if accounts_opt:
            chosen = sorted(jsas, key=lambda j: j.account.name)[offset:offset + limit]
        else:
            chosen = []
    if chosen:
        out["account_details"] = [
            account_detail(js, j, streams=streams, consumers=consumer, config=bool(opts.get("config")))
            for j in chosen
        ]
    out["total"] = len(jsas)
    return out


"""`/clusterz`: what the live cluster page (web/) shows: every server of the cluster, the
routes between them, their clients, message counters and lame duck state.

The servers are asked through the system account, as `nats server list` asks them:
`$SYS.REQ.SERVER.PING.VARZ` and `...PING.ROUTEZ` reach every server over the routes and
each one answers, nats-server nodes included, so a mixed cluster shows whole. Without a
system account the page shows this server and its direct peers (from our own /routez).

Servers that stop answering stay on the page as `down` for FORGET_AFTER seconds, so a
rolling upgrade can be watched: a node goes down, comes back under a new id with the same
name, and the old entry fades out. Rates are the browser's work (counters between polls).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .gotime import go_time
from .monitor import RoutezOptions

if TYPE_CHECKING:
    from .core import ServerCore

# How long to wait for the servers' answers (each request; most come in milliseconds).
GATHER_TIMEOUT = 0.5
# How long a server that no longer answers is kept on the page (as down).
FORGET_AFTER = 120.0

_VARZ_KEYS = ("connections", "total_connections", "routes", "subscriptions", "slow_consumers", "in_msgs",
              "out_msgs", "in_bytes", "out_bytes", "mem", "cpu", "uptime", "start", "version")  # fmt: skip


class ClusterView:
    def __init__(self, server: ServerCore) -> None:
        self.server = server
        # Every server seen: id -> its last entry (with "last_seen", a monotonic time).
        self.known: dict[str, dict[str, Any]] = {}

    async def snapshot(self) -> dict[str, Any]:
        srv = self.server
        peers = {r.remote_id for r in srv.cluster.routes.values()} if srv.cluster is not None else set()
        expect = len(peers) + 1
        sysacc = srv.sysacc
        if sysacc is not None and sysacc.running:
            source = "system account"
            varz = await sysacc.gather("$SYS.REQ.SERVER.PING.VARZ", timeout=GATHER_TIMEOUT, expect=expect)
            routez = await sysacc.gather("$SYS.REQ.SERVER.PING.ROUTEZ", timeout=GATHER_TIMEOUT, expect=expect)
        else:
            source = "this server"
            mine = {"server": {"id": srv.id, "name": srv.name}}
            varz = [{**mine, "data": srv.monitoring.varz()}]
            routez = [{**mine, "data": srv.monitoring.routez(RoutezOptions())}]
        now = time.monotonic()
        lame = set(sysacc.lame_duck_servers) if sysacc is not None else set()
        if srv.lame_duck:
            lame.add(srv.id)
        if srv.cluster is not None:
            lame.update(r.remote_id for r in srv.cluster.routes.values() if r.lame_duck)
        answered: set[str] = set()
        for m in varz:
            si, v = m.get("server") or {}, m.get("data")
            if not isinstance(v, dict) or not si.get("id"):
                continue
            sid = str(si["id"])
            answered.add(sid)
            e = {"id": sid, "name": v.get("server_name") or si.get("name", sid), "state": "up",
                 "cluster": (v.get("cluster") or {}).get("name", ""), "host": v.get("host", ""),
                 "port": v.get("port", 0), "http_port": v.get("http_port", 0),
                 "implementation": "pynats-server" if str(v.get("go", "")).startswith("pynats-server")
                 else "nats-server", "self": sid == srv.id}  # fmt: skip
            e.update({k: v.get(k) for k in _VARZ_KEYS})
            e["last_seen"] = now
            self.known[sid] = e
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        for m in routez:
            si, z = m.get("server") or {}, m.get("data")
            if not isinstance(z, dict) or not si.get("id"):
                continue
            a = str(si["id"])
            for r in z.get("routes") or []:
                b = str(r.get("remote_id", ""))
                if not b:
                    continue
                key = (min(a, b), max(a, b))
                e = edges.setdefault(key, {"a": key[0], "b": key[1], "rtt": r.get("rtt", ""), "msgs": 0, "bytes": 0})
                e["msgs"] += int(r.get("out_msgs", 0))
                e["bytes"] += int(r.get("out_bytes", 0))
                if b not in self.known and b not in answered:
                    # A peer we know only from a route (no system account answer yet).
                    self.known[b] = {"id": b, "name": r.get("remote_name") or b, "state": "up", "self": False,
                                     "last_seen": now, "implementation": "", "cluster": ""}  # fmt: skip
                    answered.add(b)
        servers = []
        for sid, e in list(self.known.items()):
            if sid not in answered:
                if now - e["last_seen"] > FORGET_AFTER:
                    del self.known[sid]
                    continue
                e["state"] = "down"
            elif sid in lame:
                e["state"] = "lame duck"
            else:
                e["state"] = "up"
            servers.append({k: v for k, v in e.items() if k != "last_seen"})
        servers.sort(key=lambda e: (str(e.get("name")), e["state"] == "down", e["id"]))
        return {
            "server_id": srv.id,
            "server_name": srv.name,
            "cluster": srv.cluster_name(),
            "now": go_time(time.time()),
            "source": source,
            "servers": servers,
            "routes": [e for e in edges.values() if e["a"] in answered and e["b"] in answered],
        }

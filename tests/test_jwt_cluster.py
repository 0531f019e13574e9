"""Operator mode in clusters: pynats-server with nats-server 2.14 (and pynats alone), the
same operator and accounts on every node. Accounts travel on routes under their public
keys: messages reach the subscribers of the same account on any node, never another
account's. Full resolvers: a claims update sent to one node is stored by every node (each
has the request subscription), and a node that missed it catches up by comparing stores."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import Server
from pynats_server.options import ClusterOptions, ResolverOptions, RouteURL
from pynats_server.testing import OperatorSetup

pytestmark = pytest.mark.timeout(90)


def _py_node(op: OperatorSetup, name: str, port: int, routes: list[int], resolver: str = "MEMORY",
             directory: str = "", interval: float = 0.0) -> Server:
    opts = op.options(resolver, directory, server_name=name)
    opts.cluster = ClusterOptions(host="127.0.0.1", port=port, name="JWT",
                                  routes=[RouteURL("127.0.0.1", p) for p in routes])
    if opts.resolver is not None and interval:
        opts.resolver.interval = interval
    return Server(opts)


def _go_conf(op: OperatorSetup, tmp_path: Path, name: str, port: int, routes: list[int], resolver: str = "MEMORY",
             directory: str = "", interval: str = "") -> Path:
    conf = op.config(resolver, directory)
    if interval:
        conf = conf.replace(f'dir: "{directory}" }}', f'dir: "{directory}", interval: "{interval}" }}')
    route_list = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
    conf += f"server_name: {name}\ncluster {{ name: JWT, listen: \"127.0.0.1:{port}\", routes: [{route_list}] }}\n"
    path = tmp_path / f"{name}.conf"
    path.write_text(conf)
    return path


async def _deliver(pub_url: str, sub_url: str, creds_pub: str, creds_sub: str, other_creds: str,
                   subject: str) -> None:
    """A message published on one node reaches a subscriber of the same account on the other
    node, and not a subscriber of another account on the publisher's node."""
    sub = await nats.connect(sub_url, user_credentials=creds_sub)
    other = await nats.connect(pub_url, user_credentials=other_creds)
    pub = await nats.connect(pub_url, user_credentials=creds_pub)
    try:
        s = await sub.subscribe(subject)
        o = await other.subscribe(subject)
        await sub.flush()
        await other.flush()

        async def arrived() -> bool:
            await pub.publish(subject, b"probe")
            await pub.flush()
            try:
                await s.next_msg(0.2)
                return True
            except nats.errors.TimeoutError:
                return False

        await wait_for(arrived, 10, f"interest for {subject} across the route")
        await pub.publish(subject, b"payload")
        await pub.flush()
        while (await s.next_msg(2)).data != b"payload":
            pass
        with pytest.raises(nats.errors.TimeoutError):
            await o.next_msg(0.3)  # another account never sees it
    finally:
        for nc in (sub, other, pub):
            await nc.close()


async def test_mixed_cluster_memory_resolver(tmp_path: Path) -> None:
    binary = go_binary("go214")
    op = OperatorSetup()
    op.account("A")
    op.account("B")
    ca = str(op.creds_file("A", tmp_path / "a.creds"))
    ca2 = str(op.creds_file("A", tmp_path / "a2.creds"))
    cb = str(op.creds_file("B", tmp_path / "b.creds"))
    go_port, py_port = free_port(), free_port()
    g = GoServer(binary, "-c", str(_go_conf(op, tmp_path, "go", go_port, [])))
    await g.start()
    py = _py_node(op, "py", py_port, [go_port])
    await py.start()
    try:
        await wait_for(lambda: py.cluster is not None and len(py.cluster.routes) == 1, 10, "route")
        await _deliver(g.client_url, py.client_url, ca, ca2, cb, "a.to.py")
        await _deliver(py.client_url, g.client_url, ca, ca2, cb, "a.to.go")
        # Account B's interest exists on both sides too, apart from A's.
        await _deliver(g.client_url, py.client_url, cb, cb, ca, "b.to.py")
        # The account names on the wire are the public keys.
        assert op.pub("A") in py.accounts and op.pub("B") in py.accounts
    finally:
        await py.shutdown()
        await g.stop()


async def test_pynats_cluster_full_resolver_update_reaches_every_node(tmp_path: Path) -> None:
    op = OperatorSetup()
    op.account("A")
    d1, d2 = str(tmp_path / "d1"), str(tmp_path / "d2")
    p1, p2 = free_port(), free_port()
    s1 = _py_node(op, "n1", p1, [], "full", d1)
    await s1.start()
    s2 = _py_node(op, "n2", p2, [p1], "full", d2)
    await s2.start()
    try:
        await wait_for(lambda: len(s1.cluster.routes) == 1 and len(s2.cluster.routes) == 1, 10, "route")
        await _check_update_everywhere(op, s1.client_url, [d1, d2], tmp_path)
    finally:
        await s2.shutdown()
        await s1.shutdown()


async def test_mixed_cluster_full_resolver_update_reaches_every_node(tmp_path: Path) -> None:
    binary = go_binary("go214")
    op = OperatorSetup()
    op.account("A")
    dgo, dpy = str(tmp_path / "dgo"), str(tmp_path / "dpy")
    go_port, py_port = free_port(), free_port()
    g = GoServer(binary, "-c", str(_go_conf(op, tmp_path, "go", go_port, [], "full", dgo)))
    await g.start()
    py = _py_node(op, "py", py_port, [go_port], "full", dpy)
    await py.start()
    try:
        await wait_for(lambda: len(py.cluster.routes) == 1, 10, "route")
        # Sent on the Go node, then on the pynats node: both stores take each.
        await _check_update_everywhere(op, g.client_url, [dgo, dpy], tmp_path, expect_answers=2)
        await _check_update_everywhere(op, py.client_url, [dgo, dpy], tmp_path, expect_answers=2)
        # A user of an account only the stores know (no client used it yet) connects on
        # either node, and its messages cross the route.
        op.account("C")
        sysc = await nats.connect(g.client_url, user_credentials=str(op.creds_file(op.system, tmp_path / "s.creds")))
        await sysc.request("$SYS.REQ.CLAIMS.UPDATE", op.accounts["C"]["jwt"].encode(), timeout=2)
        await sysc.close()
        await wait_for(lambda: all(os.path.exists(os.path.join(d, op.pub("C") + ".jwt")) for d in (dgo, dpy)), 5)
        cc = str(op.creds_file("C", tmp_path / "c.creds"))
        ca = str(op.creds_file("A", tmp_path / "a.creds"))
        await _deliver(g.client_url, py.client_url, cc, cc, ca, "c.subject")
        await _deliver(py.client_url, g.client_url, cc, cc, ca, "c.back")
    finally:
        await py.shutdown()
        await g.stop()


async def _check_update_everywhere(op: OperatorSetup, url: str, dirs: list[str], tmp_path: Path,
                                   expect_answers: int = 2) -> None:
    creds = str(op.creds_file(op.system, tmp_path / "sys.creds"))
    nc = await nats.connect(url, user_credentials=creds)
    try:
        new = op.account("A", limits={"conn": 7, "subs": -1, "payload": -1, "data": -1, "imports": -1,
                                      "exports": -1, "wildcards": True, "leaf": -1})
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$SYS.REQ.CLAIMS.UPDATE", new.encode(), reply=inbox)
        answers: list[Any] = []
        for _ in range(expect_answers):
            m = await sub.next_msg(3)
            import json

            answers.append(json.loads(m.data))
        assert all(a["data"]["message"] == "jwt updated" for a in answers), answers
        assert len({a["server"]["name"] for a in answers}) == expect_answers

        def stored() -> bool:
            for d in dirs:
                p = os.path.join(d, op.pub("A") + ".jwt")
                if not os.path.exists(p) or open(p).read() != new:
                    return False
            return True

        await wait_for(stored, 5, "every store to hold the new JWT")
    finally:
        await nc.close()


async def test_full_resolvers_catch_up_by_pack(tmp_path: Path) -> None:
    """A node that was down when an update went out gets it from the others: full
    resolvers compare the hash of their stores every `interval` and merge what differs."""
    binary = go_binary("go214")
    op = OperatorSetup()
    op.account("A")
    dgo, dpy = str(tmp_path / "dgo"), str(tmp_path / "dpy")
    go_port, py_port = free_port(), free_port()
    # The Go node alone gets an update of A and a new account B.
    g = GoServer(binary, "-c", str(_go_conf(op, tmp_path, "go", go_port, [], "full", dgo, interval="1s")))
    await g.start()
    try:
        nc = await nats.connect(g.client_url, user_credentials=str(op.creds_file(op.system, tmp_path / "s.creds")))
        newer = op.account("A", limits={"conn": 3, "subs": -1, "payload": -1, "data": -1, "imports": -1,
                                        "exports": -1, "wildcards": True, "leaf": -1}, iat=None)
        op.account("B")
        for token in (newer, op.accounts["B"]["jwt"]):
            await nc.request("$SYS.REQ.CLAIMS.UPDATE", token.encode(), timeout=2)
        await nc.close()
        # The pynats node starts with a store holding only the system account, and joins.
        os.makedirs(dpy)
        with open(os.path.join(dpy, op.pub(op.system) + ".jwt"), "w") as f:
            f.write(op.accounts[op.system]["jwt"])
        py = _py_node(op, "py", py_port, [go_port])
        py.opts.resolver = ResolverOptions("FULL", dir=dpy, interval=1.0)
        py.opts.resolver_preload = {}
        py = Server(py.opts)
        await py.start()
        try:

            def caught_up() -> bool:
                for acc in ("A", "B"):
                    p = os.path.join(dpy, op.pub(acc) + ".jwt")
                    if not os.path.exists(p) or open(p).read() != op.accounts[acc]["jwt"]:
                        return False
                return True

            await wait_for(caught_up, 10, "the pynats store to catch up")
        finally:
            await py.shutdown()
    finally:
        await g.stop()
    await asyncio.sleep(0)


@pytest.mark.parametrize("layout", ["go-full+py-cache", "py-full+go-cache", "py-full+py-cache"])
async def test_cache_resolver_fetches_from_the_cluster(tmp_path: Path, layout: str) -> None:
    """A cache resolver that lacks an account asks the cluster ($SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP):
    the full resolver answers, the JWT is stored, and the user connects."""
    op = OperatorSetup()
    op.account("A")
    dfull, dcache = str(tmp_path / "full"), str(tmp_path / "cache")
    full_port, cache_port = free_port(), free_port()
    full_kind, cache_kind = (k.split("-")[0] for k in layout.split("+"))
    nodes: list[Any] = []
    try:
        for kind, port, routes, rtype, d in ((full_kind, full_port, [], "full", dfull),
                                             (cache_kind, cache_port, [full_port], "cache", dcache)):
            if kind == "go":
                if rtype == "cache":
                    os.makedirs(d)
                    with open(os.path.join(d, op.pub(op.system) + ".jwt"), "w") as f:
                        f.write(op.accounts[op.system]["jwt"])
                    conf = op.config("MEMORY").split("resolver: MEMORY")[0]
                    conf += f'resolver {{ type: cache, dir: "{d}" }}\n'
                    conf += f"server_name: c\ncluster {{ name: JWT, listen: \"127.0.0.1:{port}\", routes: [\"nats-route://127.0.0.1:{full_port}\"] }}\n"
                    path = tmp_path / "c.conf"
                    path.write_text(conf)
                else:
                    path = _go_conf(op, tmp_path, "f", port, routes, "full", d)
                g = GoServer(go_binary("go214"), "-c", str(path))
                await g.start()
                nodes.append(g)
            else:
                if rtype == "cache":
                    os.makedirs(d)
                    with open(os.path.join(d, op.pub(op.system) + ".jwt"), "w") as f:
                        f.write(op.accounts[op.system]["jwt"])
                    s = _py_node(op, "c", port, routes)
                    s.opts.resolver = ResolverOptions("CACHE", dir=d)
                    s.opts.resolver_preload = {}
                    s = Server(s.opts)
                else:
                    s = _py_node(op, "f", port, routes, "full", d)
                await s.start()
                nodes.append(s)
        cache_url = nodes[1].client_url
        full_url = nodes[0].client_url

        async def routed() -> bool:
            n = nodes[1]
            if isinstance(n, Server):
                return n.cluster is not None and len(n.cluster.routes) == 1
            return len(n.varz("routez")["routes"]) == 1

        await wait_for(routed, 10, "route")
        # Statsz heartbeats tell the cache how many servers to wait for; the fetch answers
        # come from the full resolver (and, when it has none, its own empty answer).
        ca = str(op.creds_file("A", tmp_path / "a.creds"))

        async def connected() -> bool:
            try:
                nc = await nats.connect(cache_url, user_credentials=ca, allow_reconnect=False,
                                        max_reconnect_attempts=0, connect_timeout=3)
            except Exception:
                return False
            await nc.close()
            return True

        await wait_for(connected, 15, "a user of an account the cache had to fetch")
        assert os.path.exists(os.path.join(dcache, op.pub("A") + ".jwt"))
        await _deliver(full_url, cache_url, ca, ca, str(op.creds_file(op.system, tmp_path / "s.creds")), "via.cache")
    finally:
        for n in reversed(nodes):
            if isinstance(n, Server):
                await n.shutdown()
            else:
                await n.stop()

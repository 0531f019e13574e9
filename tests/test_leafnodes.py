"""Leaf nodes with the real servers: pynats-server as a leaf of nats-server 2.14 and of
itself, nats-server 2.14 and 2.9 as leafs of pynats-server, a hub cluster of one pynats and
one nats-server node that a leaf fails over between, account-bound leafs, loop detection.
nats-py clients on both sides check messages, headers, requests and queue groups both ways.
"""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.log import Logger
from pynats_server.options import (
    AccountConfig,
    LeafNodeOptions,
    LeafUser,
    RemoteLeaf,
    User,
    parse_leaf_url,
)

GO_KINDS = ["go214", "go29"]


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _stop_all() -> Any:
    """Every server a test starts is stopped at its end, also when it fails half-way
    (a nats-server left running would keep the test process from exiting)."""
    yield
    for stop in reversed(_RUNNING):
        try:
            await stop()
        except Exception:  # noqa: S110 - best effort at teardown
            pass
    _RUNNING.clear()


_RUNNING: list[Any] = []


def py_server(name: str, *, leaf_port: int = 0, remotes: list[RemoteLeaf] | None = None,
              log: io.StringIO | None = None, **kw: Any) -> Server:
    ln = LeafNodeOptions(host="127.0.0.1" if leaf_port else "", port=leaf_port, remotes=remotes or [],
                         reconnect=0.2)
    for k in ("users", "user", "password", "account"):
        if "leaf_" + k in kw:
            setattr(ln, k, kw.pop("leaf_" + k))
    opts = Options(host="127.0.0.1", port=-1, server_name=name, leafnode=ln, **kw)
    srv = Server(opts, logger=Logger(stream=log or io.StringIO(), debug=True))
    _RUNNING.append(srv.shutdown)
    return srv


def remote(*ports: int, user: str = "", password: str = "", account: str = "") -> RemoteLeaf:
    auth = f"{user}:{password}@" if user else ""
    return RemoteLeaf(urls=[parse_leaf_url(f"nats-leaf://{auth}127.0.0.1:{p}") for p in ports],
                      account=account, no_randomize=True)


async def go_server(kind: str, tmp_path: Path, name: str, conf: str, *args: str) -> GoServer:
    path = tmp_path / f"{name}.conf"
    path.write_text(conf)
    g = GoServer(go_binary(kind), "-c", str(path), *args, name=name)
    _RUNNING.append(g.stop)
    return await g.start()


def go_remote_conf(*ports: int, extra: str = "") -> str:
    urls = ", ".join(f'"nats-leaf://127.0.0.1:{p}"' for p in ports)
    return f"leafnodes {{ reconnect: 1\n remotes [ {{ urls: [{urls}]\n {extra} }} ] }}\n"


def go_json(g: GoServer, endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{g.http_port}/{endpoint}", timeout=5) as r:
        return json.load(r)


async def go_leafs(g: GoServer) -> int:
    loop = asyncio.get_running_loop()
    return int((await loop.run_in_executor(None, go_json, g, "leafz"))["leafnodes"])


# -- traffic checks -----------------------------------------------------------------------


async def first_delivery(pub: nats.NATS, sub: Any, subject: str) -> None:
    """Publish until the subscriber (across the leaf connection) sees one: interest travels."""
    for _ in range(100):
        await pub.publish(subject, b"probe")
        await pub.flush()
        try:
            await sub.next_msg(timeout=0.1)
            break
        except nats.errors.TimeoutError:
            continue
    else:
        raise AssertionError(f"no message on {subject}")
    # Drain probes still on the way.
    while True:
        try:
            await sub.next_msg(timeout=0.2)
        except nats.errors.TimeoutError:
            return


async def check_flow(a: nats.NATS, b: nats.NATS, tag: str) -> None:
    """Messages (with and without headers), a request and a queue group, from a's server
    to b's server."""
    subject = f"flow.{tag}"
    sub = await b.subscribe(subject)
    await b.flush()
    await first_delivery(a, sub, subject)
    for i in range(5):
        await a.publish(subject, f"m{i}".encode(), headers={"X-Seq": str(i)})
        await a.publish(subject, f"p{i}".encode())
    await a.flush()
    got = [await sub.next_msg(timeout=2) for _ in range(10)]
    assert [m.data for m in got] == [x for i in range(5) for x in (f"m{i}".encode(), f"p{i}".encode())]
    assert [m.headers for m in got[::2]] == [{"X-Seq": str(i)} for i in range(5)]
    assert all(not m.headers for m in got[1::2])
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.2)
    await sub.unsubscribe()

    async def answer(m: Any) -> None:
        await m.respond(b"re:" + m.data, ) if not m.headers else await b.publish(m.reply, b"re:" + m.data, headers=m.headers)

    svc = await b.subscribe(f"svc.{tag}", cb=answer)
    await b.flush()
    for _ in range(100):
        try:
            r = await a.request(f"svc.{tag}", b"q", timeout=0.2)
            break
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("no reply across the leaf connection")
    assert r.data == b"re:q"
    r = await a.request(f"svc.{tag}", b"h", timeout=2, headers={"K": "v"})
    assert r.data == b"re:h" and r.headers == {"K": "v"}
    await svc.unsubscribe()

    # A queue group with a member on each side: each message to exactly one member.
    qsubject = f"work.{tag}"
    counts = {"a": 0, "b": 0}

    def counter(side: str) -> Any:
        async def cb(m: Any) -> None:
            counts[side] += 1
        return cb

    qa = await a.subscribe(qsubject, queue="workers", cb=counter("a"))
    qb = await b.subscribe(qsubject, queue="workers", cb=counter("b"))
    await a.flush()
    await b.flush()
    probe = await b.subscribe(qsubject)
    await b.flush()
    await first_delivery(a, probe, qsubject)
    await probe.unsubscribe()
    await b.flush()
    await asyncio.sleep(0)  # let the unsubscribe travel with the flush below
    base = dict(counts)
    for i in range(40):
        await a.publish(qsubject, str(i).encode())
    await a.flush()
    await wait_for(lambda: counts["a"] + counts["b"] - base["a"] - base["b"] >= 40, what="queue deliveries")
    await asyncio.sleep(0.3)
    assert counts["a"] + counts["b"] - base["a"] - base["b"] == 40
    await qa.unsubscribe()
    await qb.unsubscribe()


async def both_ways(hub_url: str, leaf_url: str) -> None:
    hub = await nats.connect(hub_url)
    leaf = await nats.connect(leaf_url)
    try:
        await check_flow(hub, leaf, "h2l")
        await check_flow(leaf, hub, "l2h")
    finally:
        await hub.close()
        await leaf.close()


# -- the directions -----------------------------------------------------------------------


async def test_pynats_leaf_to_go214_hub(tmp_path: Path) -> None:
    lp = free_port()
    hub = await go_server("go214", tmp_path, "GOHUB", f'leafnodes {{ listen: "127.0.0.1:{lp}" }}\n')
    log = io.StringIO()
    leaf = py_server("PYLEAF", remotes=[remote(lp)], log=log)
    await leaf.start()
    try:
        await wait_for(lambda: leaf.leafnodes.leafs, what="leaf connection")
        await both_ways(hub.client_url, leaf.client_url)
        assert await go_leafs(hub) == 1
        text = log.getvalue()
        assert "Leafnode connection created for account: $G " in text
        assert f'Trying to connect as leafnode to remote server on "127.0.0.1:{lp}"' in text
        lz = leaf.monitoring.leafz()
        assert lz["leafnodes"] == 1 and lz["leafs"][0]["is_spoke"] is True
        assert lz["leafs"][0]["name"] == "GOHUB" and lz["leafs"][0]["account"] == "$G"
    finally:
        await leaf.shutdown()
        await hub.stop()


async def test_pynats_leaf_to_pynats_hub() -> None:
    lp = free_port()
    hlog = io.StringIO()
    hub = py_server("PYHUB", leaf_port=lp, log=hlog)
    await hub.start()
    leaf = py_server("PYLEAF", remotes=[remote(lp)])
    await leaf.start()
    try:
        await wait_for(lambda: hub.leafnodes.leafs and leaf.leafnodes.leafs, what="leaf connection")
        await both_ways(hub.client_url, leaf.client_url)
        text = hlog.getvalue()
        assert f"Listening for leafnode connections on 127.0.0.1:{lp}" in text
        assert "- lid:" in text and "Leafnode connection created \n" in text
        lz = hub.monitoring.leafz(subs=True)
        (entry,) = lz["leafs"]
        assert entry["name"] == "PYLEAF" and entry["is_spoke"] is False
        assert any(s.startswith("$LDS.") for s in entry["subscriptions_list"])
        v = hub.monitoring.varz()
        assert v["leafnodes"] == 1 and v["leaf"]["port"] == lp and v["leaf"]["host"] == "127.0.0.1"
    finally:
        await leaf.shutdown()
        await hub.shutdown()
    assert "Leafnode connection closed: " in hlog.getvalue()


@pytest.mark.parametrize("kind", GO_KINDS)
async def test_go_leaf_to_pynats_hub(kind: str, tmp_path: Path) -> None:
    lp = free_port()
    hub = py_server("PYHUB", leaf_port=lp)
    await hub.start()
    leaf = await go_server(kind, tmp_path, "GOLEAF", go_remote_conf(lp))
    try:
        await wait_for(lambda: hub.leafnodes.leafs, what="leaf connection")
        await both_ways(hub.client_url, leaf.client_url)
        assert await go_leafs(leaf) == 1
        (entry,) = hub.monitoring.leafz()["leafs"]
        assert entry["name"] == "GOLEAF" and entry["account"] == "$G"
    finally:
        await leaf.stop()
        await hub.shutdown()


@pytest.mark.parametrize("configured", ["both-urls", "one-url"])
async def test_leaf_fails_over_between_hub_cluster_nodes(configured: str, tmp_path: Path) -> None:
    """Hub: a pynats node and a nats-server 2.14 node, routed. The pynats leaf is on the
    pynats node first; when that node stops it reconnects to the Go node, and traffic
    between the leaf and the Go node's clients flows either way, before and after. With
    one URL configured, the Go node's comes from the hub's leafnode_urls (which the pynats
    node learned from the Go node's route INFO)."""
    lp_py, lp_go, cp_go = free_port(), free_port(), free_port()
    py_hub = py_server("HUB-PY", leaf_port=lp_py,
                       cluster=ClusterOptions(host="127.0.0.1", port=-1, name="HUB",
                                              routes=[RouteURL("127.0.0.1", cp_go)]))
    await py_hub.start()
    go_hub = await go_server(
        "go214", tmp_path, "HUB-GO",
        f'cluster {{ name: HUB, listen: "127.0.0.1:{cp_go}" }}\nleafnodes {{ listen: "127.0.0.1:{lp_go}" }}\n')
    leaf = py_server("LEAF", remotes=[remote(lp_py, lp_go) if configured == "both-urls" else remote(lp_py)])
    await leaf.start()
    try:
        await wait_for(lambda: py_hub.cluster.routes, what="hub route")
        if configured == "one-url":
            await wait_for(lambda: f"127.0.0.1:{lp_go}" in py_hub.leafnodes.leafnode_urls(), what="Go node's leaf URL")
            await wait_for(lambda: any(u.port == lp_go for u in leaf.leafnodes.remotes[0].urls), what="URL learned")
        await wait_for(lambda: py_hub.leafnodes.leafs, what="leaf on the pynats hub node")
        await both_ways(go_hub.client_url, leaf.client_url)
        await py_hub.shutdown()
        await wait_for(lambda: leaf.leafnodes.leafs and next(iter(leaf.leafnodes.leafs.values())).remote_server == "HUB-GO",
                       timeout=15, what="leaf on the Go hub node")
        assert await go_leafs(go_hub) == 1
        await both_ways(go_hub.client_url, leaf.client_url)
    finally:
        await leaf.shutdown()
        await py_hub.shutdown()
        await go_hub.stop()


@pytest.mark.parametrize("configured", ["both-urls", "one-url"])
async def test_go_leaf_fails_over_from_pynats_hub_node(configured: str, tmp_path: Path) -> None:
    """The same with a nats-server 2.14 leaf: the pynats hub node routes its messages to
    the Go hub node's clients, then the leaf moves to the Go node."""
    lp_py, lp_go, cp_go = free_port(), free_port(), free_port()
    py_hub = py_server("HUB-PY", leaf_port=lp_py,
                       cluster=ClusterOptions(host="127.0.0.1", port=-1, name="HUB",
                                              routes=[RouteURL("127.0.0.1", cp_go)]))
    await py_hub.start()
    go_hub = await go_server(
        "go214", tmp_path, "HUB-GO",
        f'cluster {{ name: HUB, listen: "127.0.0.1:{cp_go}" }}\nleafnodes {{ listen: "127.0.0.1:{lp_go}" }}\n')
    ports = (lp_py, lp_go) if configured == "both-urls" else (lp_py,)
    leaf = await go_server("go214", tmp_path, "GOLEAF", go_remote_conf(*ports, extra="no_randomize: true"))
    try:
        await wait_for(lambda: py_hub.cluster.routes and py_hub.leafnodes.leafs, what="route and leaf")
        await both_ways(go_hub.client_url, leaf.client_url)
        await py_hub.shutdown()

        async def on_go_hub() -> bool:
            return await go_leafs(go_hub) == 1

        await wait_for(on_go_hub, timeout=15, what="leaf on the Go hub node")
        await both_ways(go_hub.client_url, leaf.client_url)
    finally:
        await leaf.stop()
        await py_hub.shutdown()
        await go_hub.stop()


# -- accounts -----------------------------------------------------------------------------


def accounts_opts() -> dict[str, Any]:
    return {
        "accounts": [AccountConfig("A"), AccountConfig("B")],
        "users": [User(user="a", password="a", account="A"), User(user="b", password="b", account="B")],
    }


async def isolation_checks(hub: Server, leaf_url: str) -> None:
    """The leaf is bound to account A of the hub: it sees A's traffic, never B's."""
    ca = await nats.connect(hub.client_url, user="a", password="a")
    cb = await nats.connect(hub.client_url, user="b", password="b")
    cl = await nats.connect(leaf_url)
    try:
        sub = await cl.subscribe("acct.>")
        await cl.flush()
        await wait_for(lambda: hub.accounts["A"].sublist.match(b"acct.x"), what="leaf interest in account A")
        assert not hub.accounts["B"].sublist.match(b"acct.x")
        assert not hub.global_account.sublist.match(b"acct.x")
        await cb.publish("acct.b", b"from B")
        await cb.flush()
        await ca.publish("acct.a", b"from A")
        await ca.flush()
        m = await sub.next_msg(timeout=2)
        assert (m.subject, m.data) == ("acct.a", b"from A")
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.3)
        # The leaf's publications land in A only.
        sa = await ca.subscribe("up")
        sb = await cb.subscribe("up")
        await ca.flush()
        await cb.flush()
        await first_delivery(cl, sa, "up")
        with pytest.raises(nats.errors.TimeoutError):
            await sb.next_msg(timeout=0.3)
    finally:
        for nc in (ca, cb, cl):
            await nc.close()


@pytest.mark.parametrize("leaf_kind", ["py", "go214"])
async def test_leaf_bound_to_hub_account_by_its_user(leaf_kind: str, tmp_path: Path) -> None:
    lp = free_port()
    hub = py_server("HUB", leaf_port=lp, leaf_users=[LeafUser("leafa", "pa", "A"), LeafUser("leafb", "pb", "B")],
                    **accounts_opts())
    await hub.start()
    leaf_py: Server | None = None
    leaf_go: GoServer | None = None
    try:
        if leaf_kind == "py":
            leaf_py = py_server("LEAF", remotes=[remote(lp, user="leafa", password="pa")])
            await leaf_py.start()
            leaf_url = leaf_py.client_url
        else:
            conf = f'leafnodes {{ remotes [ {{ url: "nats-leaf://leafa:pa@127.0.0.1:{lp}" }} ] }}\n'
            leaf_go = await go_server(leaf_kind, tmp_path, "GOLEAF", conf)
            leaf_url = leaf_go.client_url
        await wait_for(lambda: hub.leafnodes.leafs, what="leaf connection")
        (entry,) = hub.monitoring.leafz()["leafs"]
        assert entry["account"] == "A"
        assert hub.monitoring.leafz(account="B")["leafs"] == []
        assert hub.monitoring.account_info("A")["leafnode_connections"] == 1
        assert hub.monitoring.account_stat(hub.accounts["A"])["leafnodes"] == 1
        assert hub.monitoring.account_stat(hub.accounts["B"])["leafnodes"] == 0
        await isolation_checks(hub, leaf_url)
    finally:
        if leaf_py is not None:
            await leaf_py.shutdown()
        if leaf_go is not None:
            await leaf_go.stop()
        await hub.shutdown()


async def test_leaf_with_wrong_password_is_refused() -> None:
    lp = free_port()
    hlog = io.StringIO()
    hub = py_server("HUB", leaf_port=lp, leaf_user="leaf", leaf_password="secret", log=hlog)
    await hub.start()
    leaf = py_server("LEAF", remotes=[remote(lp, user="leaf", password="wrong")])
    await leaf.start()
    try:
        await wait_for(lambda: 'authentication error - User "leaf"' in hlog.getvalue(), what="refusal")
        assert not hub.leafnodes.leafs
    finally:
        await leaf.shutdown()
        await hub.shutdown()


async def test_remote_account_on_the_leaf_side(tmp_path: Path) -> None:
    """A remote with `account: L1` binds the leaf side: clients of L2 on the leaf do not
    see the hub's traffic, L1's do."""
    lp = free_port()
    hub = await go_server("go214", tmp_path, "GOHUB", f'leafnodes {{ listen: "127.0.0.1:{lp}" }}\n')
    leaf = py_server(
        "LEAF", remotes=[remote(lp, account="L1")],
        accounts=[AccountConfig("L1"), AccountConfig("L2")],
        users=[User(user="l1", password="x", account="L1"), User(user="l2", password="x", account="L2")])
    await leaf.start()
    h = await nats.connect(hub.client_url)
    c1 = await nats.connect(leaf.client_url, user="l1", password="x")
    c2 = await nats.connect(leaf.client_url, user="l2", password="x")
    try:
        await wait_for(lambda: leaf.leafnodes.leafs, what="leaf connection")
        s2 = await c2.subscribe("news")
        s1 = await c1.subscribe("news")
        await c1.flush()
        await c2.flush()
        await first_delivery(h, s1, "news")
        with pytest.raises(nats.errors.TimeoutError):
            await s2.next_msg(timeout=0.3)
        assert leaf.monitoring.leafz()["leafs"][0]["account"] == "L1"
    finally:
        for nc in (h, c1, c2):
            await nc.close()
        await leaf.shutdown()
        await hub.stop()


# -- loops, reconnects --------------------------------------------------------------------


async def test_loop_is_detected() -> None:
    """Two servers that are each other's leaf: the $LDS subject comes back, and the
    server that sees its own says so, as nats-server does, and waits before dialling."""
    pa, pb = free_port(), free_port()
    la, lb = io.StringIO(), io.StringIO()
    a = py_server("A", leaf_port=pa, remotes=[remote(pb)], log=la)
    b = py_server("B", leaf_port=pb, remotes=[remote(pa)], log=lb)
    await a.start()
    await b.start()
    try:
        text = 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s'
        await wait_for(lambda: text in la.getvalue() + lb.getvalue(), what="loop detection")
    finally:
        await a.shutdown()
        await b.shutdown()


async def test_loop_is_detected_by_nats_server(tmp_path: Path) -> None:
    """A pynats server that is both a leaf and the hub of a nats-server 2.14, which is in
    turn its leaf's hub: nats-server sees its own $LDS subject come back."""
    pa, pg = free_port(), free_port()
    a = py_server("A", leaf_port=pa, remotes=[remote(pg)])
    await a.start()
    g = await go_server("go214", tmp_path, "G", f'leafnodes {{ listen: "127.0.0.1:{pg}"\n reconnect: "200ms"\n'
                        f' remotes [ {{ url: "nats-leaf://127.0.0.1:{pa}" }} ] }}\n')
    try:
        await wait_for(lambda: any("Loop detected" in line for line in g.log), what="loop detected by nats-server")
    finally:
        await g.stop()
        await a.shutdown()


async def test_leaf_reconnects_when_hub_restarts() -> None:
    lp = free_port()
    hub = py_server("HUB", leaf_port=lp)
    await hub.start()
    llog = io.StringIO()
    leaf = py_server("LEAF", remotes=[remote(lp)], log=llog)
    await leaf.start()
    try:
        await wait_for(lambda: hub.leafnodes.leafs, what="leaf")
        await hub.shutdown()
        await wait_for(lambda: not leaf.leafnodes.leafs, what="leaf gone")
        await wait_for(lambda: "Error trying to connect as leafnode to remote server" in llog.getvalue(),
                       what="the dial error")
        hub = py_server("HUB", leaf_port=lp)
        await hub.start()
        await wait_for(lambda: hub.leafnodes.leafs, timeout=15, what="leaf back")
        await both_ways(hub.client_url, leaf.client_url)
    finally:
        await leaf.shutdown()
        await hub.shutdown()


async def test_client_on_leaf_port_is_told() -> None:
    lp = free_port()
    hub = py_server("HUB", leaf_port=lp)
    await hub.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", lp)
        info = await asyncio.wait_for(r.readline(), 2)
        assert info.startswith(b"INFO ")
        fields = json.loads(info[5:])
        assert fields["auth_required"] is True and fields["nonce"] and fields["client_id"]
        assert fields["leafnode_urls"] == [f"127.0.0.1:{lp}"] and fields["info_on_connect"] is True
        w.write(b'CONNECT {"lang":"python","verbose":false}\r\n')
        await w.drain()
        line = await asyncio.wait_for(r.readline(), 2)
        assert line == b"-ERR 'attempted to connect to leaf node port'\r\n"
        w.close()
    finally:
        await hub.shutdown()


def test_config_file_leafnodes(tmp_path: Path) -> None:
    from pynats_server.config import apply_config_file

    conf = tmp_path / "leaf.conf"
    conf.write_text("""
leafnodes {
  listen: "127.0.0.1:7422"
  advertise: "example.com:7422"
  no_advertise: true
  reconnect: "2s"
  authorization { user: leaf, password: pw, account: A, timeout: 3 }
  remotes [
    { url: "nats-leaf://u:p@hub1:7422", account: A, hub: false }
    { urls: ["nats://hub2", "tls://hub3:7000"], credentials: "/x/y.creds", deny_imports: ["a.>"] }
  ]
}
accounts { A {} }
""")
    opts = Options()
    apply_config_file(opts, str(conf))
    ln = opts.leafnode
    assert (ln.host, ln.port, ln.advertise, ln.no_advertise, ln.reconnect) == ("127.0.0.1", 7422, "example.com:7422", True, 2.0)
    assert (ln.user, ln.password, ln.account, ln.auth_timeout) == ("leaf", "pw", "A", 3.0)
    r1, r2 = ln.remotes
    assert (r1.urls[0].host, r1.urls[0].port, r1.urls[0].user, r1.urls[0].password, r1.account) == ("hub1", 7422, "u", "p", "A")
    assert [(u.host, u.port) for u in r2.urls] == [("hub2", 7422), ("hub3", 7000)]
    assert r2.credentials == "/x/y.creds" and r2.deny_imports == ["a.>"] and r2.tls_required


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["py-py", "go-leaf", "go-hub"])
async def test_leaf_over_tls(pair: str, tmp_path: Path) -> None:
    """`leafnodes { tls {} }` on the hub, a remote with `tls { ca_file }`: INFO in plaintext,
    then the handshake, then CONNECT over TLS (nats-server's order), with either side Go."""
    from tls_util import make_certs

    certs = make_certs(tmp_path)
    cert, key = certs.pair("server")
    lp = free_port()
    hub_url = leaf_url = ""
    if pair == "go-hub":
        g = await go_server("go214", tmp_path, "GOHUB", f'leafnodes {{ listen: "127.0.0.1:{lp}"\n'
                            f' tls {{ cert_file: "{cert}", key_file: "{key}" }} }}\n')
        hub_url = g.client_url
    else:
        hub = py_server("PYHUB", leaf_port=lp)
        hub.opts.leafnode.tls = certs.server_tls()
        await hub.start()
        hub_url = hub.client_url
    if pair == "go-leaf":
        gl = await go_server("go214", tmp_path, "GOLEAF",
                             f'leafnodes {{ remotes [ {{ url: "tls://127.0.0.1:{lp}"\n'
                             f' tls {{ ca_file: "{certs.ca_file}" }} }} ] }}\n')
        leaf_url = gl.client_url
    else:
        r = remote(lp)
        from pynats_server.options import TLSOptions

        r.tls = TLSOptions(ca_file=certs.ca_file)
        leaf = py_server("PYLEAF", remotes=[r])
        await leaf.start()
        await wait_for(lambda: leaf.leafnodes.leafs, what="TLS leaf connection")
        leaf_url = leaf.client_url
    if pair != "go-hub":
        await wait_for(lambda: hub.leafnodes.leafs, what="TLS leaf connection at the hub")
        (c,) = hub.leafnodes.leafs.values()
        assert c.tls_state() is not None
    await both_ways(hub_url, leaf_url)


# -- the system account across a leaf connection ----------------------------------------------


@pytest.mark.parametrize("pair", ["py-leaf-go-hub", "go-leaf-py-hub", "py-leaf-py-hub"])
async def test_shared_system_account(pair: str, tmp_path: Path) -> None:
    """A remote bound to the system account on both sides (nats-server's shared system
    account): `$SYS.REQ.SERVER.PING` from the hub is answered by both servers, and both log
    "System account connected from ...". A second remote of the same leaf binds $G."""
    lp = free_port()
    hub_conf = f"""
accounts {{ SYS: {{ users: [ {{user: sys, password: sys}} ] }}, A: {{ users: [ {{user: a, password: a}} ] }} }}
system_account: SYS
leafnodes {{ listen: "127.0.0.1:{lp}"
  authorization {{ users [ {{ user: lsys, password: x, account: SYS }}, {{ user: la, password: x, account: A }} ] }} }}
"""
    leaf_conf = f"""
accounts {{ LSYS: {{ users: [ {{user: ls, password: ls}} ] }} }}
system_account: LSYS
leafnodes {{ remotes [ {{ url: "nats-leaf://lsys:x@127.0.0.1:{lp}", account: LSYS }},
                      {{ url: "nats-leaf://la:x@127.0.0.1:{lp}" }} ] }}
"""
    logs: dict[str, io.StringIO] = {}

    async def start(kind: str, name: str, conf: str) -> str:
        if kind == "go":
            g = await go_server("go214", tmp_path, name, conf)
            logs[name] = g  # type: ignore[assignment]
            return g.client_url
        path = tmp_path / f"{name}.conf"
        path.write_text(conf)
        logs[name] = io.StringIO()
        srv = Server.from_config(str(path), logger=Logger(stream=logs[name]), host="127.0.0.1", port=-1,
                                 server_name=name)
        _RUNNING.append(srv.shutdown)
        await srv.start()
        return srv.client_url

    hub_kind, leaf_kind = ("go", "py") if pair == "py-leaf-go-hub" else ("py", "go") if pair == "go-leaf-py-hub" else ("py", "py")
    hub_url = await start(hub_kind, "HUB", hub_conf)
    await start(leaf_kind, "LEAF", leaf_conf)

    def text(name: str) -> str:
        v: Any = logs[name]
        return v.getvalue() if isinstance(v, io.StringIO) else "".join(v.log)

    await wait_for(lambda: "System account connected from LEAF" in text("HUB"), what="hub log line")
    await wait_for(lambda: "System account connected from HUB" in text("LEAF"), what="leaf log line")
    nc = await nats.connect(hub_url, user="sys", password="sys")
    try:
        async def answers() -> set[str]:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.publish("$SYS.REQ.SERVER.PING", b"", reply=inbox)
            names = set()
            try:
                while True:
                    m = await sub.next_msg(timeout=0.5)
                    names.add(json.loads(m.data)["server"]["name"])
            except nats.errors.TimeoutError:
                pass
            await sub.unsubscribe()
            return names

        async def both() -> bool:
            return await answers() == {"HUB", "LEAF"}

        await wait_for(both, what="answers from both servers")
    finally:
        await nc.close()


@pytest.mark.parametrize("hub_kind", ["go214", "py"])
async def test_remote_deny_imports_and_exports(hub_kind: str, tmp_path: Path) -> None:
    """A pynats leaf with deny_imports and deny_exports: the hub's `secret.*` never reaches
    its clients, its clients' `private.*` never reaches the hub; the rest flows."""
    lp = free_port()
    if hub_kind == "py":
        hub = py_server("HUB", leaf_port=lp)
        await hub.start()
        hub_url = hub.client_url
    else:
        g = await go_server(hub_kind, tmp_path, "HUB", f'leafnodes {{ listen: "127.0.0.1:{lp}" }}\n')
        hub_url = g.client_url
    r = remote(lp)
    r.deny_imports = ["secret.>"]
    r.deny_exports = ["private.>"]
    leaf = py_server("LEAF", remotes=[r])
    await leaf.start()
    await wait_for(lambda: leaf.leafnodes.leafs, what="leaf")
    h = await nats.connect(hub_url)
    lc = await nats.connect(leaf.client_url)
    try:
        s_leaf = await lc.subscribe(">")
        s_hub = await h.subscribe(">")
        await lc.flush()
        await h.flush()
        await first_delivery(h, s_leaf, "open.down")
        await first_delivery(lc, s_hub, "open.up")
        await h.publish("secret.x", b"no")
        await lc.publish("private.x", b"no")
        await h.publish("open.down", b"yes")
        await lc.publish("open.up", b"yes")
        await h.flush()
        await lc.flush()

        async def subjects(sub: Any) -> list[str]:
            out = []
            try:
                while True:
                    out.append((await sub.next_msg(timeout=0.3)).subject)
            except nats.errors.TimeoutError:
                return out

        at_leaf = await subjects(s_leaf)
        at_hub = await subjects(s_hub)
        assert "secret.x" not in at_leaf and "open.down" in at_leaf
        assert "private.x" not in at_hub and "open.up" in at_hub
    finally:
        await h.close()
        await lc.close()


async def test_reload_refuses_leafnode_changes(tmp_path: Path) -> None:
    from pynats_server.reload import ReloadError

    lp = free_port()
    path = tmp_path / "hub.conf"
    path.write_text(f'leafnodes {{ listen: "127.0.0.1:{lp}" }}\n')
    srv = Server.from_config(str(path), logger=Logger(stream=io.StringIO()), host="127.0.0.1", port=-1)
    _RUNNING.append(srv.shutdown)
    await srv.start()
    await srv.reload()  # unchanged: fine
    path.write_text(f'leafnodes {{ listen: "127.0.0.1:{lp}", no_advertise: true }}\n')
    with pytest.raises(ReloadError, match="LeafNode"):
        await srv.reload()


async def test_monitoring_shapes_match_nats_server(tmp_path: Path) -> None:
    """/leafz entries and the /varz `leaf` block have nats-server 2.14's keys, on both
    sides of a connection (a Go hub with a pynats leaf next to a pynats hub with a Go leaf)."""
    lp1, lp2 = free_port(), free_port()
    go_hub = await go_server("go214", tmp_path, "GOHUB", f'leafnodes {{ listen: "127.0.0.1:{lp1}" }}\n')
    py_leaf = py_server("PYLEAF", remotes=[remote(lp1)])
    await py_leaf.start()
    py_hub = py_server("PYHUB", leaf_port=lp2)
    await py_hub.start()
    go_leaf = await go_server("go214", tmp_path, "GOLEAF", go_remote_conf(lp2))
    await wait_for(lambda: py_hub.leafnodes.leafs and py_leaf.leafnodes.leafs, what="both connections")

    async def go_view(g: GoServer) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, go_json, g, "leafz?subs=1")

    gz = await wait_for(lambda: _with_leaf(go_view(go_hub)), what="Go hub /leafz")
    glz = await wait_for(lambda: _with_leaf(go_view(go_leaf)), what="Go leaf /leafz")
    pz = py_hub.monitoring.leafz(subs=True)
    plz = py_leaf.monitoring.leafz(subs=True)
    assert set(pz) == set(gz)
    assert set(pz["leafs"][0]) == set(gz["leafs"][0])  # hub side, with subscriptions_list
    assert set(plz["leafs"][0]) | {"subscriptions_list"} == set(glz["leafs"][0]) | {"subscriptions_list"}
    assert (pz["leafs"][0]["is_spoke"], plz["leafs"][0]["is_spoke"]) == (False, True)
    assert (gz["leafs"][0]["is_spoke"], glz["leafs"][0]["is_spoke"]) == (False, True)
    loop = asyncio.get_running_loop()
    gv = await loop.run_in_executor(None, go_json, go_hub, "varz")
    glv = await loop.run_in_executor(None, go_json, go_leaf, "varz")
    pv, plv = py_hub.monitoring.varz(), py_leaf.monitoring.varz()
    assert set(pv["leaf"]) == set(gv["leaf"]) and pv["leaf"]["auth_timeout"] == gv["leaf"]["auth_timeout"]
    assert set(plv["leaf"]) == set(glv["leaf"])
    assert set(plv["leaf"]["remotes"][0]) == set(glv["leaf"]["remotes"][0])
    assert (pv["leafnodes"], plv["leafnodes"], gv["leafnodes"], glv["leafnodes"]) == (1, 1, 1, 1)


async def _with_leaf(view: Any) -> Any:
    v = await view
    return v if v["leafs"] else None


# -- what a leaf may do: its user's permissions, nkeys, connection types, JWTs ------------------


class Node:
    """A server of any kind started from config text, with its client URL and log."""

    def __init__(self, url: str, log: Any, srv: Server | None = None) -> None:
        self.url = url
        self._log = log
        self.srv = srv

    def text(self) -> str:
        return self._log.getvalue() if isinstance(self._log, io.StringIO) else "".join(self._log.log)


async def node(kind: str, tmp_path: Path, name: str, conf: str) -> Node:
    if kind != "py":
        g = await go_server(kind, tmp_path, name, conf, "-D")
        return Node(g.client_url, g)
    path = tmp_path / f"{name}.conf"
    path.write_text(conf)
    buf = io.StringIO()
    srv = Server.from_config(str(path), logger=Logger(stream=buf, debug=True), host="127.0.0.1", port=-1,
                             server_name=name)
    _RUNNING.append(srv.shutdown)
    await srv.start()
    return Node(srv.client_url, buf, srv)


async def received(sub: Any, quiet: float = 0.3) -> list[str]:
    out = []
    try:
        while True:
            out.append((await sub.next_msg(timeout=quiet)).subject)
    except nats.errors.TimeoutError:
        return out


async def permitted_flow(hub: nats.NATS, leaf: nats.NATS) -> None:
    """A leaf whose user may publish (into the hub) `up.>` but not `up.secret`, and
    subscribe to (receive from the hub) `down.>` but not `down.secret`: only that flows."""
    at_leaf = await leaf.subscribe(">")
    at_hub = await hub.subscribe(">")
    await leaf.flush()
    await hub.flush()
    await first_delivery(hub, at_leaf, "down.probe")
    await first_delivery(leaf, at_hub, "up.probe")
    await received(at_hub)  # the probes each side saw of its own
    await received(at_leaf)
    for s in ("down.secret", "up.fromhub", "other.fromhub", "down.ok"):
        await hub.publish(s, b"h")
    for s in ("up.secret", "down.fromleaf", "other.fromleaf", "up.ok"):
        await leaf.publish(s, b"l")
    await hub.flush()
    await leaf.flush()
    got_leaf = [s for s in await received(at_leaf) if not s.endswith("fromleaf") and s not in ("up.secret", "up.ok")]
    got_hub = [s for s in await received(at_hub) if not s.endswith("fromhub") and s not in ("down.secret", "down.ok")]
    assert got_leaf == ["down.ok"], got_leaf
    assert got_hub == ["up.ok"], got_hub
    await at_leaf.unsubscribe()
    await at_hub.unsubscribe()


PERMS_HUB = """
authorization {{ users [
  {{ user: leaf, password: pw, permissions: {{
      publish: {{ allow: ["up.>"], deny: ["up.secret"] }}, subscribe: {{ allow: ["down.>"], deny: ["down.secret"] }} }} }},
  {{ user: c, password: c }} ] }}
leafnodes {{ listen: "127.0.0.1:{lp}" }}
"""


@pytest.mark.parametrize("pair", ["go214-leaf-py-hub", "go29-leaf-py-hub", "py-leaf-py-hub", "py-leaf-go214-hub"])
async def test_leaf_user_permissions(pair: str, tmp_path: Path) -> None:
    """A leaf that authenticates as a client user with permissions: the hub applies them
    as nats-server does (what the leaf may send in, what it is sent), tells the leaf (INFO
    import/export), and the leaf keeps to them, so the connection stays up."""
    leaf_kind, hub_kind = pair.split("-leaf-")[0], pair.split("-leaf-")[1].removesuffix("-hub")
    lp = free_port()
    hub = await node(hub_kind, tmp_path, "HUB", PERMS_HUB.format(lp=lp))
    leaf = await node(leaf_kind, tmp_path, "LEAF",
                      f'leafnodes {{ remotes [ {{ url: "nats-leaf://leaf:pw@127.0.0.1:{lp}" }} ] }}\n')
    await wait_for(lambda: "Leafnode connection created" in hub.text() and "JetStream" in hub.text(), what="leaf")
    h = await nats.connect(hub.url, user="c", password="c")
    lc = await nats.connect(leaf.url)
    try:
        await permitted_flow(h, lc)
    finally:
        await h.close()
        await lc.close()
    text = hub.text()
    assert "Violation" not in text and text.count("Leafnode connection created") == 1, text[-3000:]
    if hub.srv is not None:
        (c,) = hub.srv.leafnodes.leafs.values()
        assert c.perms is not None and c.user_perms is not None


def _nkey_hub(mode: str, lp: int, pub: str) -> str:
    if mode == "leafnodes":
        return (f"accounts {{ A {{ users: [ {{ user: a, password: a }} ] }} }}\n"
                f'leafnodes {{ listen: "127.0.0.1:{lp}", authorization {{ nkey: {pub}, account: A }} }}\n')
    return (f"accounts {{ A {{ users: [ {{ user: a, password: a }}, {{ nkey: {pub}, permissions: {{\n"
            f'  publish: {{ allow: ["up.>"], deny: ["up.secret"] }}, subscribe: {{ allow: ["down.>"], deny: ["down.secret"] }} }} }} ] }} }}\n'
            f'leafnodes {{ listen: "127.0.0.1:{lp}" }}\n')


@pytest.mark.parametrize("mode", ["leafnodes", "users"])
@pytest.mark.parametrize("leaf_kind", ["go214", "py"])
async def test_leaf_nkey(mode: str, leaf_kind: str, tmp_path: Path) -> None:
    """A leaf that signs the hub's nonce with its nkey seed: `leafnodes { authorization
    { nkey } }` (binds to its account), or an nkey user of an account (whose permissions
    apply). A leaf with another seed is refused."""
    from pynats_server import nkeys_util as nk

    seed, pub = nk.create_user()
    lp = free_port()
    hub = await node("py", tmp_path, "HUB", _nkey_hub(mode, lp, pub))
    assert hub.srv is not None
    leaf = await node(leaf_kind, tmp_path, "LEAF",
                      f'leafnodes {{ remotes [ {{ url: "nats-leaf://127.0.0.1:{lp}", nkey: "{seed}" }} ] }}\n')
    await wait_for(lambda: hub.srv.leafnodes.leafs, what="leaf")  # type: ignore[union-attr]
    (c,) = hub.srv.leafnodes.leafs.values()
    assert c.account.name == "A"
    h = await nats.connect(hub.url, user="a", password="a")
    lc = await nats.connect(leaf.url)
    try:
        if mode == "users":
            await permitted_flow(h, lc)
        else:
            await check_flow(h, lc, "nk")
    finally:
        await h.close()
        await lc.close()
    other_seed, _ = nk.create_user()
    await node(leaf_kind, tmp_path, "BAD",
               f'leafnodes {{ remotes [ {{ url: "nats-leaf://127.0.0.1:{lp}", nkey: "{other_seed}" }} ] }}\n')
    await wait_for(lambda: "authentication error - Nkey" in hub.text(), what="refusal")
    assert len(hub.srv.leafnodes.leafs) == 1


@pytest.mark.parametrize("leaf_kind", ["go214", "py"])
async def test_leaf_connection_types(leaf_kind: str, tmp_path: Path) -> None:
    """A user whose allowed_connection_types leave out LEAFNODE cannot connect a leaf; a
    LEAFNODE user can (and no client can log in as it)."""
    lp = free_port()
    hub = await node("py", tmp_path, "HUB", f"""
authorization {{ users [
  {{ user: std, password: x, allowed_connection_types: ["STANDARD"] }},
  {{ user: lf, password: x, allowed_connection_types: ["LEAFNODE"] }} ] }}
leafnodes {{ listen: "127.0.0.1:{lp}" }}
""")
    assert hub.srv is not None
    await node(leaf_kind, tmp_path, "STD", f'leafnodes {{ remotes [ {{ url: "nats-leaf://std:x@127.0.0.1:{lp}" }} ] }}\n')
    await wait_for(lambda: 'authentication error - User "std"' in hub.text(), what="refusal")
    leaf = await node(leaf_kind, tmp_path, "LF", f'leafnodes {{ remotes [ {{ url: "nats-leaf://lf:x@127.0.0.1:{lp}" }} ] }}\n')
    await wait_for(lambda: hub.srv.leafnodes.leafs, what="leaf")  # type: ignore[union-attr]
    assert all(c.remote_server == "LF" for c in hub.srv.leafnodes.leafs.values())
    with pytest.raises(nats.errors.Error):
        await nats.connect(hub.url, user="lf", password="x", allow_reconnect=False, max_reconnect_attempts=0)
    h = await nats.connect(hub.url, user="std", password="x")
    lc = await nats.connect(leaf.url)
    try:
        await check_flow(h, lc, "ct")
    finally:
        await h.close()
        await lc.close()


def _operator_hub(lp: int) -> Any:
    from pynats_server.testing import OperatorSetup

    op = OperatorSetup()
    op.account("A")
    op.account("B")
    return op, op.config(extra=f'leafnodes {{ listen: "127.0.0.1:{lp}" }}')


def _creds_remote(lp: int, creds: Path) -> str:
    return f'leafnodes {{ reconnect: 1, remotes [ {{ url: "nats-leaf://127.0.0.1:{lp}", credentials: "{creds}" }} ] }}\n'


LEAF_JWT_PERMS = {"pub_allow": ["up.>"], "pub_deny": ["up.secret"], "sub_allow": ["down.>"], "sub_deny": ["down.secret"]}


@pytest.mark.parametrize("pair", ["go214-leaf-py-hub", "py-leaf-py-hub", "py-leaf-go214-hub"])
async def test_jwt_leaf(pair: str, tmp_path: Path) -> None:
    """Operator mode on the hub: a leaf with `credentials` (a user JWT and its seed) signs
    the nonce, binds to the JWT's account, and gets the JWT's permissions; another
    account's clients see none of its traffic."""
    leaf_kind, hub_kind = pair.split("-leaf-")[0], pair.split("-leaf-")[1].removesuffix("-hub")
    lp = free_port()
    op, conf = _operator_hub(lp)
    hub = await node(hub_kind, tmp_path, "HUB", conf)
    creds = op.creds_file("A", tmp_path / "leaf.creds", **LEAF_JWT_PERMS)
    leaf = await node(leaf_kind, tmp_path, "LEAF", _creds_remote(lp, creds))
    await wait_for(lambda: "Authenticated JWT: Leafnode" in hub.text() and "JetStream" in hub.text(), what="leaf")
    if hub.srv is not None:
        (c,) = hub.srv.leafnodes.leafs.values()
        assert c.account.name == op.pub("A")
    h = await nats.connect(hub.url, user_credentials=str(op.creds_file("A", tmp_path / "a.creds")))
    hb = await nats.connect(hub.url, user_credentials=str(op.creds_file("B", tmp_path / "b.creds")))
    lc = await nats.connect(leaf.url)
    try:
        at_b = await hb.subscribe(">")
        await hb.flush()
        await permitted_flow(h, lc)
        await lc.publish("up.tob", b"x")
        await lc.flush()
        assert [s for s in await received(at_b) if not s.startswith("$SYS.")] == []
    finally:
        await h.close()
        await hb.close()
        await lc.close()
    text = hub.text()
    assert "Violation" not in text and text.count("Leafnode connection created") == 1, text[-3000:]


@pytest.mark.parametrize("leaf_kind", ["go214", "py"])
async def test_jwt_leaf_revoked_expired_and_refused(leaf_kind: str, tmp_path: Path) -> None:
    """A JWT leaf goes as a client would: when its account revokes it (a claims update)
    and when its JWT expires; a JWT allowed STANDARD connections only never connects."""
    import time

    from pynats_server import jwt
    from pynats_server import nkeys_util as nk

    lp = free_port()
    op, conf = _operator_hub(lp)
    hub = await node("py", tmp_path, "HUB", conf)
    assert hub.srv is not None
    aseed = op.accounts["A"]["seed"]
    useed, upub = nk.create_user()
    victim = tmp_path / "victim.creds"
    victim.write_text(jwt.format_user_creds(jwt.new_user(aseed, upub, iat=int(time.time()) - 60), useed))
    await node(leaf_kind, tmp_path, "VICTIM", _creds_remote(lp, victim))
    eseed, epub = nk.create_user()
    expiring = tmp_path / "expiring.creds"
    expiring.write_text(jwt.format_user_creds(jwt.new_user(aseed, epub, exp=int(time.time()) + 3), eseed))
    await node(leaf_kind, tmp_path, "EXPIRING", _creds_remote(lp, expiring))
    await wait_for(lambda: len(hub.srv.leafnodes.leafs) == 2, what="two leafs")  # type: ignore[union-attr]
    std = op.creds_file("A", tmp_path / "std.creds", allowed_connection_types=["STANDARD"])
    await node(leaf_kind, tmp_path, "STD", _creds_remote(lp, std))
    await wait_for(lambda: "Connection type not allowed" in hub.text(), what="STANDARD-only JWT refused")

    sysc = await nats.connect(hub.url, user_credentials=str(op.creds_file(op.system, tmp_path / "sys.creds")))
    try:
        new = op.account("A", revocations={upub: int(time.time()) - 5})
        r = await sysc.request(f"$SYS.REQ.ACCOUNT.{op.pub('A')}.CLAIMS.UPDATE", new.encode(), timeout=5)
        assert json.loads(r.data)["data"]["code"] == 200
    finally:
        await sysc.close()
    await wait_for(lambda: "Leafnode connection closed: Credentials Revoked - Remote: VICTIM" in hub.text(),
                   what="the revoked leaf closed")
    await wait_for(lambda: "Leafnode connection closed: Authentication Expired - Remote: EXPIRING" in hub.text(),
                   timeout=10, what="the expired leaf closed")
    # Both come back, and are refused.
    await wait_for(lambda: "User authentication revoked" in hub.text(), what="the revoked leaf refused")
    await wait_for(lambda: "User JWT no longer valid" in hub.text(), what="the expired leaf refused")
    assert not hub.srv.leafnodes.leafs


@pytest.mark.parametrize("pair", ["py-leaf-py-hub", "py-leaf-go214-hub", "go214-leaf-py-hub"])
async def test_jetstream_stays_on_its_side(pair: str, tmp_path: Path) -> None:
    """Hub and leaf both run JetStream (no domains): each side's JetStream API answers
    only its own clients, as nats-server denies `$JS.API.>` on leaf connections it does
    not extend JetStream over; plain messages still flow."""
    leaf_kind, hub_kind = pair.split("-leaf-")[0], pair.split("-leaf-")[1].removesuffix("-hub")
    lp = free_port()
    hub = await node(hub_kind, tmp_path, "HUB",
                     f'jetstream {{ store_dir: "{tmp_path / "hubjs"}" }}\nleafnodes {{ listen: "127.0.0.1:{lp}" }}\n')
    leaf = await node(leaf_kind, tmp_path, "LEAF", f'jetstream {{ store_dir: "{tmp_path / "leafjs"}" }}\n'
                      f'leafnodes {{ remotes [ {{ url: "nats-leaf://127.0.0.1:{lp}" }} ] }}\n')
    await wait_for(lambda: "Leafnode connection created" in hub.text() and "JetStream" in hub.text(), what="leaf")
    h = await nats.connect(hub.url)
    lc = await nats.connect(leaf.url)
    try:
        await h.jetstream().add_stream(name="HS", subjects=["hs.>"])
        await lc.jetstream().add_stream(name="LS", subjects=["ls.>"])
        for _ in range(10):  # the answers race: a leaked request would show within a few
            assert [s.config.name for s in await h.jetstream().streams_info()] == ["HS"]
            assert [s.config.name for s in await lc.jetstream().streams_info()] == ["LS"]
        with pytest.raises(nats.js.errors.NotFoundError):
            await h.jetstream().stream_info("LS")
        await check_flow(h, lc, "js")
    finally:
        await h.close()
        await lc.close()
    assert "Violation" not in hub.text()


async def test_leaf_bcrypt_password_checked_off_the_loop() -> None:
    """A bcrypt password in `leafnodes { authorization { users } }`: checked in a thread
    (the hub keeps serving meanwhile), right and wrong passwords decided as nats-server."""
    import bcrypt

    lp = free_port()
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()
    hlog = io.StringIO()
    hub = py_server("HUB", leaf_port=lp, leaf_users=[LeafUser("leaf", hashed)], log=hlog)
    await hub.start()
    good = py_server("GOOD", remotes=[remote(lp, user="leaf", password="s3cret")])
    bad = py_server("BAD", remotes=[remote(lp, user="leaf", password="wrong")])
    await good.start()
    await bad.start()
    await wait_for(lambda: 'authentication error - User "leaf"' in hlog.getvalue(), what="refusal")
    await wait_for(lambda: [c.remote_server for c in hub.leafnodes.leafs.values()] == ["GOOD"], what="GOOD")
    h = await nats.connect(hub.client_url)
    lc = await nats.connect(good.client_url)
    try:
        await check_flow(h, lc, "bc")
    finally:
        await h.close()
        await lc.close()


@pytest.mark.parametrize("block", [
    'authorization { nkey: UBAD }',
    'authorization { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, users [ {user: a, password: b} ] }',
    'authorization { users [ {user: a, password: b}, {user: a, password: c} ] }',
    'authorization { users [ {user: a, password: b, permissions: { publish: "x" } } ] }',
])
def test_leaf_authorization_config_errors_match_nats_server(block: str, tmp_path: Path) -> None:
    """The leafnodes authorization block's nkey and users are checked as nats-server checks
    them (a leafnodes user takes no permissions: the server's users do)."""
    import subprocess
    import sys

    path = tmp_path / "t.conf"
    path.write_text(f'leafnodes {{ listen: "127.0.0.1:-1", {block} }}\n')
    go = subprocess.run([go_binary("go214"), "-c", str(path), "-t"], capture_output=True, text=True, timeout=30)
    py = subprocess.run([sys.executable, "-m", "pynats_server", "-c", str(path), "-t"], capture_output=True,
                        text=True, timeout=60)
    assert go.returncode != 0 and py.returncode != 0
    assert py.stderr.strip().removeprefix("pynats-server: ") == go.stderr.strip().removeprefix("nats-server: ")

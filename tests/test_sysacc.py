"""The system account's services and events (pynats_server/sysacc.py), with nats-py clients:
one server, a 3-node pynats cluster, and clusters mixing pynats-server with nats-server 2.14
and 2.9; answers compared key by key with what nats-server 2.14 gives in the same run."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.config import apply_config_file

CONF = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  A: {
    users: [
      {user: a, password: a}
      {user: limited, password: limited, permissions: {publish: {allow: ["foo.>", "$SYS.REQ.USER.INFO"]}, subscribe: {deny: ["secret"]}}}
    ]
  }
}
system_account: SYS
"""
KINDS = ["VARZ", "CONNZ", "SUBSZ", "ROUTEZ", "HEALTHZ", "STATSZ", "IDZ", "ACCOUNTZ", "JSZ", "LEAFZ", "GATEWAYZ"]


def options(tmp_path: Path, text: str = CONF, **kw: Any) -> Options:
    path = tmp_path / "sys.conf"
    path.write_text(text)
    opts = Options(host="127.0.0.1", port=-1, no_log=True)
    apply_config_file(opts, str(path))
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


async def connect(url: str, user: str, **kw: Any) -> nats.NATS:
    return await nats.connect(f"nats://{user}:{user}@{url.removeprefix('nats://')}", **kw)


async def collect(nc: nats.NATS, subject: str, body: bytes = b"", *, want: int = 1, quiet: float = 0.3,
                  timeout: float = 3.0, headers: dict[str, str] | None = None) -> list[Any]:
    """Publish a request and gather the answers: until `want` came and `quiet` passed with no more."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, body, reply=inbox, headers=headers)
    out: list[Any] = []
    end = time.monotonic() + timeout
    try:
        while True:
            left = end - time.monotonic() if len(out) < want else quiet
            if left <= 0:
                break
            try:
                m = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            if m.headers and m.headers.get("Status") == "503":
                out.append("no responders")
            elif m.headers and m.headers.get("Content-Encoding") == "gzip":
                out.append(json.loads(gzip.decompress(m.data)))
            else:
                out.append(json.loads(m.data))
    finally:
        await sub.unsubscribe()
    return out


async def one(nc: nats.NATS, subject: str, body: bytes = b"") -> Any:
    got = await collect(nc, subject, body, quiet=0.05)
    assert len(got) == 1, (subject, got)
    return got[0]


@pytest.fixture
async def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with Server(options(tmp_path, http_port=-1)) as srv:
        yield srv


# -- one server -------------------------------------------------------------------------------


async def test_internal_subscriptions(server: Server) -> None:
    sys_subjects = {s.subject.decode() for s in server.accounts["SYS"].sublist.all()}
    for kind in KINDS:
        assert f"$SYS.REQ.SERVER.PING.{kind}" in sys_subjects
        assert f"$SYS.REQ.SERVER.{server.id}.{kind}" in sys_subjects
    for kind in ("CONNZ", "SUBSZ", "INFO", "STATZ", "JSZ", "LEAFZ", "CONNS"):
        assert f"$SYS.REQ.ACCOUNT.*.{kind}" in sys_subjects
    assert {"$SYS.REQ.SERVER.PING", "$SYS.REQ.USER.*.INFO", "$SYS.REQ.ACCOUNT.PING.STATZ"} <= sys_subjects
    # Every other account imports the four services nats-server gives it.
    imported = {s.subject.decode() for s in server.accounts["A"].sublist.all()}
    assert imported == {"$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ",
                        "$SYS.REQ.ACCOUNT.PING.STATZ", "$SYS.REQ.USER.INFO"}
    varz = server.monitoring.varz()
    assert varz["subscriptions"] == sum(a.sublist.count for a in server.accounts.values()) > 40


async def test_ping_and_every_kind(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    try:
        (statsz,) = await collect(nc, "$SYS.REQ.SERVER.PING")
        assert list(statsz) == ["server", "statsz"]
        si = statsz["server"]
        assert si["id"] == server.id and si["name"] == server.name and si["ver"] == "2.14.0"
        assert si["host"] == "127.0.0.1" and si["jetstream"] is False and si["flags"] == 0
        assert statsz["statsz"]["connections"] == 1 and statsz["statsz"]["active_servers"] == 1
        for kind in KINDS:
            for subject in (f"$SYS.REQ.SERVER.PING.{kind}", f"$SYS.REQ.SERVER.{server.id}.{kind}"):
                r = await one(nc, subject)
                if kind == "IDZ":
                    assert r == {"name": server.name, "host": "127.0.0.1", "id": server.id}
                elif kind == "STATSZ":
                    assert r["server"]["id"] == server.id and "statsz" in r
                else:
                    assert list(r) == ["server", "data"], (kind, r)
                    assert r["server"]["seq"] > si["seq"]
        data = (await one(nc, "$SYS.REQ.SERVER.PING.VARZ"))["data"]
        # The same implementation as /varz: the same keys, in the same order.
        assert list(data) == list(server.monitoring.varz())
        assert data["server_id"] == server.id and data["system_account"] == "SYS"
        assert (await one(nc, "$SYS.REQ.SERVER.PING.HEALTHZ"))["data"] == {"status": "ok", "status_code": 200}
        assert (await one(nc, "$SYS.REQ.SERVER.PING.JSZ"))["data"]["disabled"] is True
    finally:
        await nc.close()


async def test_request_options_and_errors(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    a = await connect(server.client_url, "a", name="alpha")
    try:
        await a.subscribe("foo.bar")
        await a.flush()
        r = await one(nc, "$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":true,"auth":true}')
        conns = {c["name"] if "name" in c else "sys": c for c in r["data"]["connections"]}
        assert conns["alpha"]["subscriptions_list"] == ["foo.bar"]
        assert conns["alpha"]["authorized_user"] == "a" and conns["alpha"]["account"] == "A"
        r = await one(nc, "$SYS.REQ.SERVER.PING.CONNZ", b'{"acc":"A"}')
        assert [c["name"] for c in r["data"]["connections"]] == ["alpha"]
        # Go's json errors, word for word.
        r = await one(nc, "$SYS.REQ.SERVER.PING.CONNZ", b"{bad")
        assert list(r) == ["server", "error"]
        assert r["error"] == {"code": 400, "description": "invalid character 'b' looking for beginning of object key string"}
        r = await one(nc, "$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":"yes"}')
        assert r["error"]["description"] == (
            "json: cannot unmarshal string into Go struct field ConnzEventOptions.ConnzOptions.subscriptions of type bool")
        r = await one(nc, "$SYS.REQ.SERVER.PING.CONNZ", b'{"sort":"bogus"}')
        assert r["data"] is None and r["error"] == {"code": 500, "description": "invalid sorting option: bogus"}
        r = await one(nc, "$SYS.REQ.SERVER.PING", b"[1]")
        assert r["error"]["description"] == "json: cannot unmarshal array into Go value of type server.StatszEventOptions"
        # Filters pick servers: one that does not match gets no answer.
        assert await collect(nc, "$SYS.REQ.SERVER.PING.VARZ", b'{"cluster":"nope"}', quiet=0.2, timeout=0.5) == []
        assert await collect(nc, "$SYS.REQ.SERVER.PING", b'{"server_name":"zzz"}', quiet=0.2, timeout=0.5) == []
        assert await collect(nc, "$SYS.REQ.SERVER.PING.IDZ", b'{"host":"127.0","exact_match":true}',
                             quiet=0.2, timeout=0.5) != []  # IDZ reads no options at all
        name = server.name[3:9].encode()
        assert len(await collect(nc, "$SYS.REQ.SERVER.PING.VARZ", b'{"server_name":"' + name + b'"}')) == 1
        # Compression when asked.
        (z,) = await collect(nc, "$SYS.REQ.SERVER.PING.VARZ", headers={"Accept-Encoding": "gzip"})
        assert z["data"]["server_id"] == server.id
    finally:
        await a.close()
        await nc.close()


async def test_account_requests(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    a = await connect(server.client_url, "a")
    try:
        info = (await one(nc, "$SYS.REQ.ACCOUNT.A.INFO"))["data"]
        assert info["account_name"] == "A" and info["client_connections"] == 1
        assert [i["local_subject"] for i in info["imports"]] == [
            "$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.ACCOUNT.PING.STATZ",
            "$SYS.REQ.USER.INFO"]
        r = await one(nc, "$SYS.REQ.ACCOUNT.NOPE.INFO")
        assert r["data"] is None and r["error"] == {"code": 500, "description": "Account NOPE does not exist"}
        r = await one(nc, "$SYS.REQ.ACCOUNT.A.JSZ")
        assert r["error"] == {"code": 500, "description": "jetstream not enabled"}
        subsz = (await one(nc, "$SYS.REQ.ACCOUNT.A.SUBSZ"))["data"]
        assert {s["account"] for s in subsz["subscriptions_list"]} == {"A"}
        statz = (await one(nc, "$SYS.REQ.ACCOUNT.PING.STATZ"))["data"]["account_statz"]
        assert {s["acc"] for s in statz} == {"A", "SYS"}
        # An account without connections answers nothing unless asked to include it.
        assert await collect(nc, "$SYS.REQ.ACCOUNT.$G.STATZ", quiet=0.1, timeout=0.5) == []
        r = await one(nc, "$SYS.REQ.ACCOUNT.$G.STATZ", b'{"include_unused":true}')
        assert r["data"]["account_statz"][0]["conns"] == 0
        # The sys user's PING.CONNZ goes to the `*.CONNZ` handler for an account named PING.
        r = await one(nc, "$SYS.REQ.ACCOUNT.PING.CONNZ")
        assert r["data"]["server_id"] == "" and r["data"]["connections"] is None
    finally:
        await a.close()
        await nc.close()


async def test_user_info(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    a = await connect(server.client_url, "a")
    lim = await connect(server.client_url, "limited")
    try:
        assert (await one(nc, "$SYS.REQ.USER.INFO"))["data"] == {"user": "sys", "account": "SYS", "account_name": "SYS"}
        assert (await one(a, "$SYS.REQ.USER.INFO"))["data"] == {"user": "a", "account": "A", "account_name": "A"}
        data = (await one(lim, "$SYS.REQ.USER.INFO"))["data"]
        assert data["permissions"] == {"publish": {"allow": ["foo.>", "$SYS.REQ.USER.INFO"]},
                                       "subscribe": {"deny": ["secret"]}}
    finally:
        for c in (a, lim, nc):
            await c.close()


async def test_non_system_users_get_only_their_imports(server: Server) -> None:
    """An account's user reaches the four imported services, scoped to its own account, and
    nothing else of the system account: other requests have no responders."""
    sysc = await connect(server.client_url, "sys")
    a = await connect(server.client_url, "a", name="alpha")
    try:
        for subject in ("$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.VARZ", f"$SYS.REQ.SERVER.{server.id}.CONNZ",
                        "$SYS.REQ.ACCOUNT.A.CONNZ", "$SYS.REQ.ACCOUNT.SYS.INFO"):
            assert await collect(a, subject) == ["no responders"], subject
        for subject in ("$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.ACCOUNT.PING.CONNZ"):
            r = await one(a, subject)
            assert [c.get("name") for c in r["data"]["connections"]] == ["alpha"], subject
        statz = (await one(a, "$SYS.REQ.ACCOUNT.PING.STATZ"))["data"]["account_statz"]
        assert [s["acc"] for s in statz] == ["A"]
    finally:
        await a.close()
        await sysc.close()


async def test_connect_disconnect_and_conns_events(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    try:
        events = await nc.subscribe("$SYS.ACCOUNT.A.>")
        await nc.flush()
        a = await connect(server.client_url, "a", name="brief")
        await a.close()
        got: dict[str, list[dict[str, Any]]] = {}
        while len(got.get("$SYS.ACCOUNT.A.DISCONNECT", [])) < 1:
            m = await events.next_msg(timeout=3)
            got.setdefault(m.subject, []).append(json.loads(m.data))
        (conn,) = got["$SYS.ACCOUNT.A.CONNECT"]
        assert conn["type"] == "io.nats.server.advisory.v1.client_connect"
        assert list(conn) == ["type", "id", "timestamp", "server", "client"]
        c = conn["client"]
        assert (c["acc"], c["user"], c["name"], c["kind"], c["client_type"]) == ("A", "a", "brief", "Client", "nats")
        (disc,) = got["$SYS.ACCOUNT.A.DISCONNECT"]
        assert list(disc) == ["type", "id", "timestamp", "server", "client", "sent", "received", "reason"]
        assert disc["reason"] == "Client Closed" and "stop" in disc["client"] and disc["client"]["id"] == c["id"]
        conns = got["$SYS.ACCOUNT.A.SERVER.CONNS"]
        assert [x["conns"] for x in conns] == [1, 0]
        assert conns[0]["type"] == "io.nats.server.advisory.v1.account_connections"
    finally:
        await nc.close()


async def test_statsz_broadcast_and_kick(server: Server) -> None:
    nc = await connect(server.client_url, "sys")
    victim = await connect(server.client_url, "a", allow_reconnect=False)
    try:
        sub = await nc.subscribe(f"$SYS.SERVER.{server.id}.STATSZ")
        await nc.flush()
        m = await sub.next_msg(timeout=STATSZ_WAIT)
        assert list(json.loads(m.data)) == ["server", "statsz"]
        cid = victim._client_id
        r = await one(nc, f"$SYS.REQ.SERVER.{server.id}.KICK", json.dumps({"cid": cid}).encode())
        assert list(r) == ["server"]
        await wait_for(lambda: victim.is_closed, what="kicked client closed")
        assert all(c["cid"] != cid for c in server.monitoring.connz()["connections"])
        r = await one(nc, f"$SYS.REQ.SERVER.{server.id}.KICK", b'{"cid":99999}')
        assert r["error"] == {"code": 500, "description": "no such client or leafnode id"}
    finally:
        await nc.close()


STATSZ_WAIT = 5.0


async def test_shutdown_event_reaches_a_listener(tmp_path: Path) -> None:
    srv = Server(options(tmp_path))
    await srv.start()
    nc = await connect(srv.client_url, "sys", allow_reconnect=False)
    sub = await nc.subscribe("$SYS.SERVER.*.SHUTDOWN")
    await nc.flush()
    await srv.shutdown()
    m = await sub.next_msg(timeout=3)
    assert m.subject == f"$SYS.SERVER.{srv.id}.SHUTDOWN"
    assert json.loads(m.data)["id"] == srv.id
    await nc.close()


async def test_lame_duck_event(tmp_path: Path) -> None:
    srv = Server(options(tmp_path, lame_duck_grace_period=0.5, lame_duck_duration=1.0))
    await srv.start()
    nc = await connect(srv.client_url, "sys", allow_reconnect=False)
    try:
        sub = await nc.subscribe("$SYS.SERVER.*.LAMEDUCK")
        await nc.flush()
        ldm = asyncio.create_task(srv.lame_duck_mode())
        m = await sub.next_msg(timeout=3)
        assert m.subject == f"$SYS.SERVER.{srv.id}.LAMEDUCK"
        assert json.loads(m.data)["id"] == srv.id
        await asyncio.wait_for(ldm, 10)
    finally:
        await nc.close()
        await srv.shutdown()


async def test_system_traffic_never_reaches_global_clients() -> None:
    """A server without accounts: `$G` clients subscribed to everything see none of the
    system account's requests, answers or events."""
    async with Server() as srv:
        g = await nats.connect(srv.client_url)
        seen: list[str] = []

        async def record(m: nats.aio.msg.Msg) -> None:
            seen.append(m.subject)

        await g.subscribe(">", cb=record)
        await g.flush()
        other = await nats.connect(srv.client_url)
        await other.close()
        # What $G may use: the imported services, answered to the requester's inbox.
        req = await nats.connect(srv.client_url)
        r = await collect(req, "$SYS.REQ.USER.INFO")
        assert r[0]["data"]["account"] == "$G"
        assert await collect(req, "$SYS.REQ.SERVER.PING", quiet=0.1, timeout=0.3) == []  # only g hears it
        await req.close()
        await g.flush()
        await asyncio.sleep(0.3)  # statsz ticks at 0.25 s, 0.5 s ... after start
        assert all(s in ("$SYS.REQ.USER.INFO", "$SYS.REQ.SERVER.PING") or s.startswith("_INBOX.")
                   for s in seen), seen
        assert "$SYS.REQ.USER.INFO" in seen  # the $G publish itself is seen, as any other
        await g.close()


async def test_without_system_account() -> None:
    async with Server(no_system_account=True) as srv:
        assert srv.sysacc is None and srv.system_account is None
        assert srv.sublist.count == 0
        nc = await nats.connect(srv.client_url)
        assert await collect(nc, "$SYS.REQ.USER.INFO") == ["no responders"]
        await nc.close()


# -- shapes compared with nats-server 2.14 ------------------------------------------------------

# Where pynats-server differs on purpose: nats-server's JetStream feature flags (pynats has
# none), Go's internal queues (IPQUEUESZ) and the HTTP request counts seen so far.
KNOWN = ("server.feature_flags", "data.feature_flags.", "data.http_req_stats.", "data.System recvQ")


def shape(x: Any, pre: str = "") -> set[str]:
    """Key paths with JSON types: {"data.connections[].cid:int", ...}."""
    out: set[str] = set()
    if isinstance(x, dict):
        for k, v in x.items():
            out |= shape(v, f"{pre}{k}.")
            out.add(f"{pre}{k}:{type(v).__name__ if not isinstance(v, (int, float)) or isinstance(v, bool) else 'num'}")
    elif isinstance(x, list):
        for v in x[:1]:
            out |= shape(v, pre.rstrip(".") + "[].")
    return {p for p in out if not p.startswith(KNOWN)}


REQUESTS: list[tuple[str, str, bytes]] = [
    ("sys", "$SYS.REQ.SERVER.PING", b""),
    *[("sys", f"$SYS.REQ.SERVER.PING.{k}", b"") for k in KINDS + ["RAFTZ"]],
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":true,"auth":true}'),
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions_detail":true}'),
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b"{bad"),
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b'{"limit":"2"}'),
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b'{"state":1}'),
    ("sys", "$SYS.REQ.SERVER.PING.SUBSZ", b'{"subscriptions":true,"account":"A"}'),
    ("sys", "$SYS.REQ.SERVER.PING.SUBSZ", b'{"test":"foo.*"}'),
    ("sys", "$SYS.REQ.SERVER.PING.ACCOUNTZ", b'{"account":"A"}'),
    ("sys", "$SYS.REQ.SERVER.PING.HEALTHZ", b'{"stream":"x"}'),
    ("sys", "$SYS.REQ.USER.INFO", b""),
    ("a", "$SYS.REQ.USER.INFO", b""),
    ("limited", "$SYS.REQ.USER.INFO", b""),
    ("a", "$SYS.REQ.SERVER.PING.CONNZ", b""),
    ("a", "$SYS.REQ.ACCOUNT.PING.STATZ", b""),
    ("a", "$SYS.REQ.SERVER.PING", b""),
    ("sys", "$SYS.REQ.ACCOUNT.PING.CONNZ", b""),
    ("sys", "$SYS.REQ.ACCOUNT.PING.STATZ", b'{"include_unused":true}'),
    *[("sys", f"$SYS.REQ.ACCOUNT.{acc}.{k}", b"") for acc in ("A", "SYS", "NOPE")
      for k in ("CONNZ", "SUBSZ", "INFO", "STATZ", "JSZ", "LEAFZ", "CONNS")],
]


async def answers(url: str) -> list[list[Any]]:
    clients = {u: await connect(url, u, name=f"c-{u}") for u in ("sys", "a", "limited")}
    try:
        await clients["a"].subscribe("foo.bar")
        await clients["a"].flush()
        return [await collect(clients[u], subj, body, quiet=0.15, timeout=0.7) for u, subj, body in REQUESTS]
    finally:
        for c in clients.values():
            await c.close()


async def test_answers_have_nats_server_shapes(tmp_path: Path) -> None:
    binary = go_binary("go214")
    conf = tmp_path / "go.conf"
    conf.write_text(CONF)
    async with GoServer(binary, "-c", str(conf)) as g:
        theirs = await answers(g.client_url)
    async with Server(options(tmp_path, http_port=-1)) as srv:
        ours = await answers(srv.client_url)
    for (user, subject, body), want, got in zip(REQUESTS, theirs, ours, strict=True):
        what = f"{user} {subject} {body!r}"
        assert len(got) == len(want), (what, want, got)
        for w, o in zip(want, got, strict=True):
            if isinstance(w, str) or isinstance(o, str):
                assert w == o, what
                continue
            assert shape(o) == shape(w), (what, sorted(shape(w) - shape(o)), sorted(shape(o) - shape(w)))
            if "error" in w:
                assert o["error"] == w["error"], what


# -- clusters -------------------------------------------------------------------------------------


def cluster_options(tmp_path: Path, name: str, routes: list[int], port: int = -1, **kw: Any) -> Options:
    return options(tmp_path, server_name=name,
                   cluster=ClusterOptions(host="127.0.0.1", port=port, name="SYSC",
                                          routes=[RouteURL("127.0.0.1", p) for p in routes]), **kw)


async def answered_by(nc: nats.NATS, subject: str, n: int, body: bytes = b"") -> list[Any]:
    """Ask until `n` servers answer (interest crosses the routes shortly after they form)."""
    got: list[Any] = []
    for _ in range(50):
        got = await collect(nc, subject, body, want=n, quiet=0.3, timeout=1.0)
        if len(got) >= n:
            return got
    raise AssertionError(f"{subject}: {len(got)} answers, wanted {n}")


async def test_ping_answered_by_every_node_of_a_pynats_cluster(tmp_path: Path) -> None:
    s0 = Server(cluster_options(tmp_path, "n0", []))
    await s0.start()
    assert s0.cluster is not None
    servers = [s0]
    try:
        for i in (1, 2):
            s = Server(cluster_options(tmp_path, f"n{i}", [s0.cluster.port]))
            await s.start()
            servers.append(s)
        await wait_for(lambda: all(len(s.cluster.routes) == 2 for s in servers), what="full mesh")  # type: ignore[union-attr]
        ids = {s.id for s in servers}
        for s in servers:
            nc = await connect(s.client_url, "sys")
            got = await answered_by(nc, "$SYS.REQ.SERVER.PING", 3)
            assert {r["server"]["id"] for r in got} == ids
            assert {r["server"]["cluster"] for r in got} == {"SYSC"}
            got = await answered_by(nc, "$SYS.REQ.SERVER.PING.ROUTEZ", 3)
            assert all(r["data"]["num_routes"] == 2 for r in got)
            await nc.close()
        # An account's user: CONNZ from every node, each scoped to the account.
        a = await connect(servers[1].client_url, "a", name="alpha")
        got = await answered_by(a, "$SYS.REQ.SERVER.PING.CONNZ", 3)
        assert sorted(len(r["data"]["connections"]) for r in got) == [0, 0, 1]
        await a.close()
        # STATSZ goes around: every node counts the others.
        nc = await connect(servers[0].client_url, "sys")

        async def all_active() -> bool:
            got = await collect(nc, "$SYS.REQ.SERVER.PING", want=3, quiet=0.2)
            return len(got) == 3 and all(r["statsz"]["active_servers"] == 3 for r in got)

        await wait_for(all_active, timeout=10, what="active_servers 3 on every node")
        # A node going away says so; the others forget it.
        await servers[2].shutdown()
        await wait_for(lambda: servers[2].id not in servers[0].sysacc.servers, what="shutdown seen")  # type: ignore[union-attr]
        await nc.close()
    finally:
        for s in reversed(servers):
            await s.shutdown()


@pytest.mark.parametrize("kind", ["go214", "go29"])
async def test_ping_answered_in_a_mixed_cluster(tmp_path: Path, kind: str) -> None:
    """A pynats-server node and a nats-server node: a PING from either side is answered by
    both, and an account user's CONNZ comes from both, through the imported service."""
    binary = go_binary(kind)
    conf = tmp_path / "go.conf"
    conf.write_text(CONF)
    go_port = free_port()
    g = GoServer(binary, "-c", str(conf), name="go", cluster_port=go_port, cluster_name="SYSC")
    await g.start()
    py = Server(cluster_options(tmp_path, "py", [go_port]))
    await py.start()
    try:
        assert py.cluster is not None
        await wait_for(lambda: len(py.cluster.routes) == 1, what="route to nats-server")
        go_id = next(iter(py.cluster.routes))
        for url in (py.client_url, g.client_url):
            nc = await connect(url, "sys", allow_reconnect=False)
            got = await answered_by(nc, "$SYS.REQ.SERVER.PING", 2)
            assert {r["server"]["id"] for r in got} == {py.id, go_id}
            got = await answered_by(nc, "$SYS.REQ.SERVER.PING.VARZ", 2)
            assert {r["data"]["server_name"] for r in got} == {"py", "go"}
            await nc.close()
            a = await connect(url, "a", name="alpha", allow_reconnect=False)
            got = await answered_by(a, "$SYS.REQ.SERVER.PING.CONNZ", 2)
            assert sorted(len(r["data"]["connections"]) for r in got) == [0, 1]
            ui = await one(a, "$SYS.REQ.USER.INFO")
            if url == py.client_url or kind == "go214":  # 2.9 has no user info service
                assert isinstance(ui, dict) and ui["data"]["account"] == "A", (url, ui)
            await a.close()
    finally:
        await py.shutdown()
        await g.stop()

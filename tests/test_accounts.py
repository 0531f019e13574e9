"""Accounts: isolation, stream and service exports/imports, on one server and across routes,
also in clusters mixing pynats-server with the real nats-server 2.14.0 and 2.9.10."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for
from conftest import RawClient
from tls_util import make_certs

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.config import apply_config_file

ACCOUNTS = """
accounts {
  A: {
    users: [{user: a, password: a}]
    exports: [
      {stream: "public.>"}
      {stream: "private.>", accounts: [B]}
      {service: "svc.>"}
      {service: "multi", response_type: stream}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {stream: {account: A, subject: "public.>"}, prefix: "from_a"}
      {stream: {account: A, subject: "private.>"}}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
      {service: {account: A, subject: "multi"}}
    ]
  }
  C: {
    users: [{user: c, password: c}]
  }
}
"""


def options(tmp_path: Path, text: str = ACCOUNTS, **kw: object) -> Options:
    path = tmp_path / "accounts.conf"
    path.write_text(text)
    opts = Options(host="127.0.0.1", port=-1, no_log=True)
    apply_config_file(opts, str(path))
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


async def next_or_none(sub: nats.aio.subscription.Subscription, timeout: float = 0.2) -> bytes | None:
    try:
        return (await sub.next_msg(timeout=timeout)).data
    except nats.errors.TimeoutError:
        return None


@pytest.fixture
async def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with Server(options(tmp_path)) as srv:
        yield srv


async def connect(srv: Server | str, user: str) -> nats.NATS:
    url = srv if isinstance(srv, str) else f"127.0.0.1:{srv.port}"
    return await nats.connect(f"nats://{user}:{user}@{url.removeprefix('nats://')}")


async def test_accounts_are_isolated(server: Server) -> None:
    a, b, c = [await connect(server, u) for u in "abc"]
    sb = await b.subscribe("same")
    sc = await c.subscribe("same")
    await b.flush()
    await c.flush()
    await a.publish("same", b"from a")
    await c.publish("same", b"from c")
    await a.flush()
    await c.flush()
    assert await next_or_none(sc) == b"from c"
    assert await next_or_none(sc) is None
    assert await next_or_none(sb) is None
    for nc in (a, b, c):
        await nc.close()


async def test_stream_import_with_prefix_and_without(server: Server) -> None:
    a, b = await connect(server, "a"), await connect(server, "b")
    prefixed = await b.subscribe("from_a.public.>")
    own = await b.subscribe("public.>")  # B's own subject space: A's messages do not land here
    private = await b.subscribe("private.x")
    everything = await b.subscribe(">")
    await b.flush()
    await a.publish("public.news", b"p")
    await a.publish("private.x", b"q")
    await a.flush()
    assert (await prefixed.next_msg(timeout=2)).subject == "from_a.public.news"
    assert await next_or_none(own) is None
    assert (await private.next_msg(timeout=2)).subject == "private.x"
    got = {(await everything.next_msg(timeout=2)).subject for _ in range(2)}
    assert got == {"from_a.public.news", "private.x"}
    for nc in (a, b):
        await nc.close()


async def test_import_subscription_goes_with_unsubscribe(server: Server) -> None:
    a, b = await connect(server, "a"), await connect(server, "b")
    sub = await b.subscribe("from_a.public.x")
    await b.flush()
    exporter = server.lookup_account("A")
    assert exporter is not None
    assert exporter.sublist.match(b"public.x").psubs
    await sub.unsubscribe()
    await b.flush()
    await wait_for(lambda: not exporter.sublist.match(b"public.x").psubs, what="shadow removed")
    for nc in (a, b):
        await nc.close()


async def test_service_import_request_reply(server: Server) -> None:
    a, b = await connect(server, "a"), await connect(server, "b")
    seen: list[nats.aio.msg.Msg] = []

    async def echo(m: nats.aio.msg.Msg) -> None:
        seen.append(m)
        await m.respond(b"echo:" + m.data)

    await a.subscribe("svc.echo", cb=echo)
    await a.flush()
    reply = await b.request("echo", b"ping", timeout=2)
    assert reply.data == b"echo:ping"
    m = seen[0]
    assert m.subject == "svc.echo"
    assert m.reply.startswith("_R_.")
    assert len(m.reply.split(".")) == 3
    info = json.loads(m.headers["Nats-Request-Info"])  # type: ignore[index]
    assert info["acc"] == "B" and isinstance(info["rtt"], int)
    for nc in (a, b):
        await nc.close()


@pytest.mark.parametrize("subject,count", [("echo", 1), ("multi", 3)])
async def test_service_response_types(server: Server, subject: str, count: int) -> None:
    """A singleton service delivers one response per request; a stream service all of them."""
    a, b = await connect(server, "a"), await connect(server, "b")

    async def three(m: nats.aio.msg.Msg) -> None:
        for i in range(3):
            await m.respond(str(i).encode())

    await a.subscribe("svc.echo", cb=three)
    await a.subscribe("multi", cb=three)
    await a.flush()
    inbox = b.new_inbox()
    replies = await b.subscribe(inbox)
    await b.publish(subject, b"x", reply=inbox)
    await b.flush()
    got = [(await replies.next_msg(timeout=2)).data for _ in range(count)]
    assert got == [str(i).encode() for i in range(count)]
    assert await next_or_none(replies) is None
    for nc in (a, b):
        await nc.close()


async def test_no_responders_through_a_service_import(server: Server) -> None:
    b = await connect(server, "b")
    with pytest.raises(nats.errors.NoRespondersError):
        await b.request("echo", b"ping", timeout=2)
    await b.close()


async def test_info_after_ping_names_the_account(server: Server) -> None:
    c = await RawClient.open("127.0.0.1", server.port)
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"user":"b","pass":"b"}\r\nPING\r\n')
    await c.expect(b"PONG\r\n")
    info = await c.read_info()
    assert info["remote_account"] == "B" and info["connect_info"] is True
    assert "acc_is_sys" not in info
    await c.close()


async def test_system_account_user_is_told_so(tmp_path: Path) -> None:
    text = "accounts { SYS: { users: [{user: s, password: s}] } }\nsystem_account: SYS\n"
    async with Server(options(tmp_path, text)) as srv:
        c = await RawClient.open("127.0.0.1", srv.port)
        await c.read_info()
        await c.send(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"user":"s","pass":"s"}\r\nPING\r\n')
        await c.expect(b"PONG\r\n")
        info = await c.read_info()
        assert info["remote_account"] == "SYS" and info["acc_is_sys"] is True
        await c.close()


async def test_routes_carry_account_names(tmp_path: Path) -> None:
    """A raw route peer sees RS+ with each account's name, and its RMSG for account A
    reaches only A's subscribers."""
    opts = options(tmp_path, cluster=ClusterOptions(host="127.0.0.1", port=-1, name="ACC"))
    async with Server(opts) as srv:
        a, c = await connect(srv, "a"), await connect(srv, "c")
        sa = await a.subscribe("foo")
        sc = await c.subscribe("foo")
        await a.flush()
        await c.flush()
        assert srv.cluster is not None
        peer = await RawClient.open("127.0.0.1", srv.cluster.port)
        await peer.read_info()
        pid = "NPEERAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        await peer.send(
            f'CONNECT {{"verbose":false,"pedantic":false,"headers":true,"name":"{pid}","cluster":"ACC"}}\r\n'
            f'INFO {{"server_id":"{pid}","server_name":"peer","version":"2.9.10","proto":2,'
            f'"host":"127.0.0.1","port":1,"headers":true,"max_payload":1048576,"cluster":"ACC"}}\r\n'.encode()
        )
        lines: set[bytes] = set()
        await peer.send(b"PING\r\n")
        while True:
            line = await peer.read_line()
            if line == b"PONG":
                break
            lines.add(line)
        assert {b"RS+ A foo", b"RS+ C foo"} <= lines
        await peer.send(b"RMSG A foo 2\r\nhi\r\nPING\r\n")
        assert (await sa.next_msg(timeout=2)).data == b"hi"
        assert await next_or_none(sc) is None
        await peer.close()
        for nc in (a, c):
            await nc.close()


def cluster_options(tmp_path: Path, name: str, routes: list[int], port: int = -1) -> Options:
    return options(
        tmp_path, server_name=name,
        cluster=ClusterOptions(host="127.0.0.1", port=port, name="ACC",
                               routes=[RouteURL("127.0.0.1", p) for p in routes]),
    )  # fmt: skip


async def check_accounts_across(server_urls: list[str]) -> None:
    """Clients of A and B on different nodes: the stream import and the service import work
    across routes, and the accounts stay apart."""
    first, last = server_urls[0], server_urls[-1]
    a_pub, b_sub = await connect(first, "a"), await connect(last, "b")
    a_resp, b_req = await connect(last, "a"), await connect(first, "b")
    c_sub = await connect(last, "c")
    try:
        imported = await b_sub.subscribe("from_a.public.>")
        own = await b_sub.subscribe("public.>")
        cs = await c_sub.subscribe(">")
        await b_sub.flush()

        async def echo(m: nats.aio.msg.Msg) -> None:
            await m.respond(b"echo:" + m.data)

        await a_resp.subscribe("svc.echo", cb=echo)
        await a_resp.flush()
        # Interest crosses the route shortly after the SUB: publish until it arrives.
        for _ in range(100):
            await a_pub.publish("public.news", b"n")
            await a_pub.flush()
            m = await next_or_none(imported, 0.1)
            if m is not None:
                break
        else:
            raise AssertionError("the stream import did not cross the route")
        for _ in range(100):
            try:
                reply = await b_req.request("echo", b"ping", timeout=0.2)
                break
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                continue
        else:
            raise AssertionError("the service import did not cross the route")
        assert reply.data == b"echo:ping"
        assert await next_or_none(own) is None
        assert await next_or_none(cs) is None
    finally:
        for nc in (a_pub, b_sub, a_resp, b_req, c_sub):
            await nc.close()


async def test_accounts_across_a_pynats_cluster(tmp_path: Path) -> None:
    s1 = Server(cluster_options(tmp_path, "n1", []))
    await s1.start()
    assert s1.cluster is not None
    s2 = Server(cluster_options(tmp_path, "n2", [s1.cluster.port]))
    await s2.start()
    try:
        await wait_for(lambda: len(s1.cluster.routes) == 1 and len(s2.cluster.routes) == 1, what="route")
        await check_accounts_across([f"127.0.0.1:{s1.port}", f"127.0.0.1:{s2.port}"])
    finally:
        await s2.shutdown()
        await s1.shutdown()


@pytest.mark.parametrize("kind", ["go214", "go29"])
async def test_accounts_across_a_mixed_cluster(tmp_path: Path, kind: str) -> None:
    """The same accounts on a pynats-server node and a nats-server node: clients on either
    side see exactly what an all-Go cluster gives them."""
    binary = go_binary(kind)
    if binary is None:
        pytest.skip(f"{kind} is not installed")
    conf = tmp_path / "go.conf"
    conf.write_text(ACCOUNTS)
    go_port = free_port()
    g = GoServer(binary, "-c", str(conf), name="go", cluster_port=go_port, cluster_name="ACC")
    await g.start()
    py = Server(cluster_options(tmp_path, "py", [go_port]))
    await py.start()
    try:
        assert py.cluster is not None
        await wait_for(lambda: len(py.cluster.routes) == 1, what="route to nats-server")
        await check_accounts_across([f"127.0.0.1:{py.port}", g.client_url])
        await check_accounts_across([g.client_url, f"127.0.0.1:{py.port}"])
    finally:
        await py.shutdown()
        await g.stop()


async def test_account_errors_at_startup(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="stream import not authorized"):
        options(tmp_path, """
accounts {
  A: { exports: [ {stream: "private.>", accounts: [B]} ] }
  B: { }
  C: { imports: [ {stream: {account: A, subject: "private.>"}} ] }
}""")  # fmt: skip
    await asyncio.sleep(0)


def node_config(name: str, port: int, routes: list[int], tls: str = "") -> str:
    """Accounts and an authorized cluster block (TLS when `tls` is given), as one config file
    for either server."""
    route_list = ", ".join(f'"nats-route://ruser:rpass@127.0.0.1:{p}"' for p in routes)
    return ACCOUNTS + f"""
server_name: {name}
cluster {{
  name: ACC
  listen: "127.0.0.1:{port}"
  authorization {{ user: ruser, password: rpass, timeout: 2 }}
  routes: [{route_list}]
  {tls}
}}
"""


@pytest.mark.parametrize("with_tls", [False, True], ids=["plain", "tls"])
async def test_accounts_across_pynats_and_both_nats_server_builds(tmp_path: Path, with_tls: bool) -> None:
    """pynats-server, nats-server 2.14 and 2.9 in one authorized mesh (TLS routes too) with
    two accounts, a stream import and a service import; clients on every node, every direction."""
    tls = ""
    if with_tls:
        certs = make_certs(tmp_path)
        cert, key = certs.pair("node")
        tls = f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{certs.ca_file}" }}'
    b14, b29 = go_binary("go214"), go_binary("go29")
    p_py, p14, p29 = free_port(), free_port(), free_port()
    gos = []
    for name, binary, port, routes in (("g14", b14, p14, []), ("g29", b29, p29, [p14])):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(node_config(name, port, routes, tls))
        gos.append(await GoServer(binary, "-c", str(conf)).start())
    opts = options(tmp_path, node_config("py", p_py, [p14], tls))
    py = Server(opts)
    await py.start()
    try:
        assert py.cluster is not None
        await wait_for(lambda: len(py.cluster.routes) == 2, timeout=15, what="a full mesh")
        if with_tls:
            assert all(r.tls_state() is not None for r in py.cluster.routes.values())
        urls = [f"127.0.0.1:{py.port}", gos[0].client_url, gos[1].client_url]
        for i, first in enumerate(urls):
            for last in urls[i + 1:] + urls[:i]:
                await check_accounts_across([first, last])
    finally:
        await py.shutdown()
        for g in gos:
            await g.stop()

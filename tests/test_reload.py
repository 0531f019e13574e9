"""Configuration reload (SIGHUP, `--signal reload`, `Server.reload()`), with real servers and
nats-py clients. The process tests run against pynats-server and nats-server 2.14.0 alike:
the same files, the same signals, the same expectations (the -ERR bytes, who stays
connected, the "Reloaded: ..." lines)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import bcrypt
import nats
import pytest
from conftest import RawClient, http_get, wait_for
from reload_util import LOG_PREFIX, ConfServer, Watched, cannot_connect, notices, watched
from tls_util import LogCapture, make_certs

from pynats_server import Server, nkeys_util
from pynats_server.options import (
    AccountConfig,
    ClusterOptions,
    ExportConfig,
    ImportConfig,
    Options,
    TLSOptions,
    User,
)
from pynats_server.reload import ReloadError

TARGETS = ["pynats", "go214"]
L = "listen: 127.0.0.1:-1\n"


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Callable[..., ConfServer]]:
    made: list[ConfServer] = []

    def make(target: str, conf: str, *args: str, name: str = "s") -> ConfServer:
        s = ConfServer(target, tmp_path, conf, *args, name=name)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


async def raw(port: int, **connect: object) -> RawClient:
    c = await RawClient.open("127.0.0.1", port)
    await c.connect(**connect)
    return c


@pytest.mark.parametrize("target", TARGETS)
async def test_users_removed_changed_and_permissions(servers, target: str) -> None:
    users = ("{user: a, password: a}, {user: b, password: b}, {user: d, password: d}, "
             "{user: c, password: c, permissions: {subscribe: [foo, bar]}}")
    srv = await servers(target, L + f"authorization {{ users: [{users}] }}\n").start()
    a = await watched(srv.url, user="a", password="a")
    b = await watched(srv.url, user="b", password="b")
    d = await watched(srv.url, user="d", password="d")
    c = await raw(srv.port, user="c", **{"pass": "c"})
    await c.send("SUB foo 1\r\nSUB bar 2\r\nSUB foo q 3\r\nPING\r\n")
    await c.expect("PONG\r\n")

    users = ("{user: b, password: x}, {user: d, password: d}, {user: e, password: e}, "
             "{user: c, password: c, permissions: {subscribe: [bar]}}")
    lines = await srv.reload(L + f"authorization {{ users: [{users}] }}\n")
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded server configuration",
    ]
    # a: its user is gone: closed without a word.
    await a.wait_closed()
    assert not any(isinstance(e, nats.errors.AuthorizationError) for e in a.all_errors())
    # b: its password changed: Authorization Violation, closed.
    await b.wait_closed()
    assert any(isinstance(e, nats.errors.AuthorizationError) for e in b.all_errors()), b.errors
    assert any(ln.startswith("[ERR] ") and ln.endswith('"$G/user:b" - authentication error - User "b"')
               for ln in lines), lines
    # c: what its new permissions no longer allow is removed, in nats-server's words.
    await c.send("PING\r\n")
    got = {await c.read_line(), await c.read_line()}
    assert got == {
        b"-ERR 'Permissions Violation for Subscription to \"foo\" (sid \"1\")'",
        b"-ERR 'Permissions Violation for Subscription to \"foo\" (sid \"3\")'",
    }
    await c.expect("PONG\r\n")
    assert {ln for ln in lines if "Removed sub" in ln} == {
        '[INF] Removed sub "foo" (sid "1") for User "c" - not authorized',
        '[INF] Removed sub "foo" (sid "3") for User "c" - not authorized',
    }
    # ... and the rest of its subscriptions work as before.
    await d.nc.publish("foo", b"gone")
    await d.nc.publish("bar", b"kept")
    await d.nc.flush()
    assert await c.read_msg() == (b"MSG bar 2 4", b"kept")
    # d: untouched.
    assert await d.works() and d.disconnects == 0
    # The new user can connect; the old password no longer works.
    e = await watched(srv.url, user="e", password="e")
    assert await e.works()
    assert "authorization violation" in await cannot_connect(srv.url, user="b", password="b")
    for w in (a, b, d, e):
        await w.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_token_change(servers, target: str) -> None:
    srv = await servers(target, L + "authorization { token: old }\n").start()
    t = await watched(srv.url, token="old")
    lines = await srv.reload(L + "authorization { token: new }\n")
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: authorization token",
        "[INF] Reloaded server configuration",
    ]
    await t.wait_closed()
    assert any(isinstance(e, nats.errors.AuthorizationError) for e in t.all_errors())
    assert any(ln.endswith('"$G/token" - authentication error - Token "[REDACTED]"') for ln in lines), lines
    n = await watched(srv.url, token="new")
    assert await n.works()
    assert await cannot_connect(srv.url, token="old") == "authorization violation"
    await n.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_single_user_kept_by_an_unrelated_reload(servers, target: str) -> None:
    """nats-server closes every client of a single user/password on every reload (it looks
    the user up in a users list that a single user does not have); pynats-server keeps those
    whose credentials still hold (conformance/deviations.toml)."""
    conf = L + "authorization { user: u, password: p }\n"
    srv = await servers(target, conf).start()
    c = await raw(srv.port, user="u", **{"pass": "p"})
    lines = await srv.reload(conf + "debug: false\n")
    assert notices(lines)[-1] == "[INF] Reloaded server configuration"
    if target == "pynats":
        await c.ping()
    else:
        await c.expect_closed()
    await srv.reload(L + "authorization { user: u, password: changed }\n")
    if target == "pynats":
        await c.expect_err_close("Authorization Violation")


@pytest.mark.parametrize("target", TARGETS)
async def test_nkey_users_added_and_removed(servers, target: str) -> None:
    seed1, pub1 = nkeys_util.create_user()
    seed2, pub2 = nkeys_util.create_user()
    srv = await servers(target, L + f"authorization {{ users: [{{nkey: {pub1}}}] }}\n").start()
    n1 = await watched(srv.url, nkeys_seed_str=seed1)
    assert await cannot_connect(srv.url, nkeys_seed_str=seed2) == "authorization violation"
    lines = await srv.reload(L + f"authorization {{ users: [{{nkey: {pub1}}}, {{nkey: {pub2}}}] }}\n")
    assert notices(lines) == [
        "[INF] Reloaded: authorization nkey users",
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded server configuration",
    ]
    # n1 is checked again against the nonce its INFO had, and stays.
    n2 = await watched(srv.url, nkeys_seed_str=seed2)
    assert await n1.works() and n1.disconnects == 0
    await srv.reload(L + f"authorization {{ users: [{{nkey: {pub2}}}] }}\n")
    await n1.wait_closed()
    assert not any(isinstance(e, nats.errors.AuthorizationError) for e in n1.all_errors())
    assert await n2.works() and n2.disconnects == 0
    await n2.close()


ACCOUNTS = """accounts {
  A { users: [{user: a, password: a}, {user: m, password: m}], exports: [{stream: feed.>}] }
  B { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: feed.>}}] }
}
"""


@pytest.mark.parametrize("target", TARGETS)
async def test_accounts_export_removed_user_moved_account_added(servers, target: str) -> None:
    srv = await servers(target, L + ACCOUNTS).start()
    a = await watched(srv.url, user="a", password="a")
    b = await watched(srv.url, user="b", password="b")
    b2 = await watched(srv.url, user="b", password="b")
    feed = await b.nc.subscribe("feed.>")
    ctl = await b.nc.subscribe("ctl")
    await b.nc.flush()
    await a.nc.publish("feed.x", b"1")
    assert (await feed.next_msg(timeout=5)).data == b"1"
    m = await watched(srv.url, user="m", password="m", allow_reconnect=True, reconnect_time_wait=0.05,
                      max_reconnect_attempts=100)
    # The export and import go, user m moves to B, account C arrives.
    conf = """accounts {
  A { users: [{user: a, password: a}] }
  B { users: [{user: b, password: b}, {user: m, password: m}] }
  C { users: [{user: c, password: c}] }
}
"""
    lines = await srv.reload(L + conf)
    assert notices(lines)[-1] == "[INF] Reloaded server configuration", lines
    # No more messages from A's feed; b itself stays, subscriptions and all.
    await a.nc.publish("feed.x", b"2")
    await a.nc.flush()
    await b2.nc.publish("ctl", b"sentinel")
    assert (await ctl.next_msg(timeout=5)).data == b"sentinel"
    with pytest.raises(nats.errors.TimeoutError):
        await feed.next_msg(timeout=0.05)
    assert b.disconnects == 0 and a.disconnects == 0
    # m was closed (no error) and came back in its new account.
    await wait_for(lambda: m.reconnects >= 1, what="m to reconnect")
    sub = await b2.nc.subscribe("in.b")
    await b2.nc.flush()
    # Publish until it arrives: under load m's first publish can go out on the connection the
    # reload is closing (seen against nats-server 2.14), before m's client notices.
    async def m_reaches_b() -> bool:
        await m.nc.publish("in.b", b"from m")
        try:
            return (await sub.next_msg(timeout=0.5)).data == b"from m"
        except nats.errors.TimeoutError:
            return False

    await wait_for(m_reaches_b, what="m's message in account B")
    c = await watched(srv.url, user="c", password="c")
    assert await c.works()
    for w in (a, b, b2, m, c):
        await w.close()


def _tls_ctx(cafile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def _served_cert(port: int, cafile: str, *, info: bool = True) -> bytes:
    """The certificate a new TLS client is shown (INFO in plaintext, then the handshake;
    `info=False`: HTTPS, the handshake at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        while info and b"\r\n" not in buf:
            buf += s.recv(4096)
        with _tls_ctx(cafile).wrap_socket(s, server_hostname="127.0.0.1") as t:
            der = t.getpeercert(binary_form=True)
            assert der is not None
            return der


@pytest.mark.parametrize("target", TARGETS)
async def test_tls_certificate_swapped(servers, target: str, tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    cert1, key1 = certs.pair("server")
    cert2, key2 = certs.pair("othernode")  # another CA
    other_ca = str(tmp_path / "other-ca.pem")
    https = 'https: "127.0.0.1:-1"\n'
    srv = await servers(target, L + https + f'tls {{ cert_file: "{cert1}", key_file: "{key1}" }}\n').start()
    old = await watched(f"tls://127.0.0.1:{srv.port}", tls=_tls_ctx(certs.ca_file))
    first = await asyncio.to_thread(_served_cert, srv.port, certs.ca_file)
    assert await asyncio.to_thread(_served_cert, srv.http_port, certs.ca_file, info=False) == first
    lines = await srv.reload(L + https + f'tls {{ cert_file: "{cert2}", key_file: "{key2}" }}\n')
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: tls = enabled",
        "[INF] Reloaded server configuration",
    ]
    # New clients get the new certificate: the old CA no longer verifies it, the new one does.
    second = await asyncio.to_thread(_served_cert, srv.port, other_ca)
    assert second != first and second == ssl.PEM_cert_to_DER_cert(Path(cert2).read_text())
    assert await asyncio.to_thread(_served_cert, srv.http_port, other_ca, info=False) == second  # HTTPS monitoring too
    assert "certificate verify failed" in await cannot_connect(
        f"tls://127.0.0.1:{srv.port}", tls=_tls_ctx(certs.ca_file)
    )
    new = await watched(f"tls://127.0.0.1:{srv.port}", tls=_tls_ctx(other_ca))
    # The client from before keeps its session.
    assert await old.works() and old.disconnects == 0
    assert await new.works()
    for w in (old, new):
        await w.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_bad_config_leaves_everything_running(servers, target: str) -> None:
    conf = L + "authorization { users: [{user: a, password: a}] }\n"
    srv = await servers(target, conf, "-m", "-1").start()
    a = await watched(srv.url, user="a", password="a")
    before = await _varz(srv)
    for bad, error in [
        ("max_payload: 2000\ngarbage {\n", "Parse error on line 5: 'Unexpected EOF processing map.'"),
        ("max_payload: 2000\nfoo: 1\n", f'{srv.conf_path}:4:1: unknown field "foo"'),
        ("max_payload: 2000\nmax_pending: 1000\n", "max_payload (2000) cannot be higher than max_pending (1000)"),
        ("max_payload: 2000\nserver_name: other\n", "config reload not supported for ServerName: old=, new=other"),
        ("max_payload: 2000\nlisten: 127.0.0.1:1\n", f"config reload not supported for Port: old={srv.port}, new=1"),
        ("max_payload: 2000\nmax_subscriptions: 5\n", "config reload not supported for MaxSubs: old=0, new=5"),
        ("max_payload: 2000\nlame_duck_duration: \"40s\"\n",
         "config reload not supported for LameDuckDuration: old=2m0s, new=40s"),
    ]:
        lines = await srv.reload(conf + bad)
        assert lines == [f"[ERR] Failed to reload server configuration: {error}"]
    # Nothing was applied: the old limits, the old users, the old load time.
    c = await RawClient.open("127.0.0.1", srv.port)
    assert (await c.read_info())["max_payload"] == 1048576
    await c.close()
    assert await a.works() and a.disconnects == 0
    after = await _varz(srv)
    assert after["config_load_time"] == before["config_load_time"]
    assert after["max_payload"] == 1048576
    await a.close()


async def _varz(srv: ConfServer) -> dict:
    status, body = await http_get("127.0.0.1", srv.http_port, "/varz")
    assert status == 200
    return json.loads(body)


@pytest.mark.parametrize("target", TARGETS)
async def test_signal_command_with_pid_file_and_varz(servers, target: str) -> None:
    srv = await servers(target, L, "-m", "-1").start()
    before = await _varz(srv)
    lines = await srv.reload(L + "max_payload: 2000\nping_interval: \"1m\"\nwrite_deadline: \"3s\"\n",
                             how="signal")
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: ping_interval = 1m0s",
        "[INF] Reloaded: max_payload = 2000",
        "[INF] Reloaded: write_deadline = 3s",
        "[INF] Reloaded server configuration",
    ]
    digest = re.search(r"\((sha256:[0-9a-f]{64})\)$", lines[-1]).group(1)
    after = await _varz(srv)
    assert after["config_load_time"] > before["config_load_time"]
    assert after["config_digest"] == digest != before["config_digest"]
    assert before["config_digest"] in srv.log_text()  # "Using configuration file: ... (sha256:...)"
    assert after["max_payload"] == 2000 and after["ping_interval"] == 60_000_000_000
    c = await RawClient.open("127.0.0.1", srv.port)
    assert (await c.read_info())["max_payload"] == 2000
    await c.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_limits_apply_to_connected_clients(servers, target: str) -> None:
    srv = await servers(target, L).start()
    clients = [await raw(srv.port) for _ in range(3)]
    lines = await srv.reload(L + "max_connections: 1\nmax_payload: 100\n")
    assert notices(lines) == [
        "[INF] Reloaded: max_connections = 1",
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: max_payload = 100",
        "[INF] Reloaded server configuration",
    ]
    assert "[INF] Closed 2 connections to fall within max_connections" in lines
    survivors = []
    for c in clients:
        try:
            await c.expect_err_close("maximum connections exceeded", timeout=0.5)
        except AssertionError:
            survivors.append(c)
    assert len(survivors) == 1
    # The survivor's payload limit is the new one.
    await survivors[0].send("PUB foo 200\r\n" + "x" * 200 + "\r\n")
    await survivors[0].expect_err_close("Maximum Payload Violation")


async def _flows(pub: Watched, subject: str, sub: Any) -> None:
    """Publish on `subject` until `sub` gets it (a route may still be forming), then drop
    the extra copies."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        await pub.nc.publish(subject, b"probe")
        await pub.nc.flush()
        try:
            await sub.next_msg(timeout=0.1)
            break
        except nats.errors.TimeoutError:
            assert asyncio.get_running_loop().time() < deadline, f"nothing on {subject}"
    await pub.nc.flush()
    while True:
        try:
            await sub.next_msg(timeout=0.05)
        except nats.errors.TimeoutError:
            return


@pytest.mark.parametrize("target", TARGETS)
async def test_routes_added_removed_and_route_permissions(servers, target: str) -> None:
    def conf(extra: str = "") -> str:
        return L + f"cluster {{ listen: 127.0.0.1:-1, name: C{extra} }}\n"

    s2 = await servers(target, conf(), name="s2").start()
    s1 = await servers(target, conf(), name="s1").start()
    c1 = await watched(s1.url)
    c2 = await watched(s2.url)
    route = f', routes: ["{s2.route_url}"]'
    lines = await s1.reload(conf(route))
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: cluster routes",
        "[INF] Reloaded server configuration",
    ]
    foo = await c1.nc.subscribe("foo")
    bar = await c1.nc.subscribe("bar")
    back = await c2.nc.subscribe("back")
    await c1.nc.flush()
    await _flows(c2, "bar", bar)
    await _flows(c2, "foo", foo)
    await _flows(c1, "back", back)

    # s1 now takes only foo from its peers: it withdraws its interest in bar.
    lines = await s1.reload(conf(route + ', permissions: { import: "foo" }'))
    assert notices(lines) == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: cluster",
        "[INF] Reloaded server configuration",
    ]
    await _flows(c1, "back", back)  # s2 has read what s1 sent before this (RS- bar)
    await c2.nc.publish("bar", b"filtered")
    await _flows(c2, "foo", foo)
    with pytest.raises(nats.errors.TimeoutError):
        await bar.next_msg(timeout=0.05)

    # The route goes from the configuration: its connection is closed, as nats-server says.
    lines = await s1.reload(conf())
    assert f"[INF] Removed route {s2.route_url}" in lines
    assert notices(lines)[-2:] == ["[INF] Reloaded: cluster routes", "[INF] Reloaded server configuration"]
    assert any("Router connection closed: Route Removed" in ln for ln in s1.log_lines())
    for w in (c1, c2):
        await w.close()


# -- the embedding API ------------------------------------------------------------------------


async def test_embedded_reload_with_options() -> None:
    log = LogCapture()
    async with Server(users=[User("a", "a"), User("b", "b")], logger=log) as srv:
        a = await raw(srv.port, user="a", **{"pass": "a"})
        b = await raw(srv.port, user="b", **{"pass": "b"})
        await srv.reload(replace(srv.opts, users=[User("a", "a"), User("b", "new")], max_payload=512))
        await b.expect_err_close("Authorization Violation")
        await a.ping()
        assert srv.opts.max_payload == 512 and srv.opts.host == "127.0.0.1"
        await log.wait("Reloaded server configuration ")  # no file, no digest
        # A refused change: the error says why, and nothing else of it is applied.
        with pytest.raises(ReloadError, match="^config reload not supported for ServerName: old=, new=x$"):
            await srv.reload(replace(srv.opts, server_name="x", max_payload=100))
        assert srv.opts.max_payload == 512
        with pytest.raises(ReloadError, match="^max_payload .* cannot be higher than max_pending"):
            await srv.reload(replace(srv.opts, max_payload=2000, max_pending=1000))
        with pytest.raises(ReloadError, match="^can only reload config when a file is provided using -c or --config$"):
            await srv.reload()
        assert not await srv.reload_logged()
        assert log.has("[ERR] Failed to reload server configuration: can only reload config when a file")
        await a.ping()


async def test_embedded_reload_reads_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "nats.conf"
    path.write_text("authorization { users: [{user: a, password: a}] }\naccounts { X {} }\n")
    srv = Server.from_config(str(path), host="127.0.0.1", port=-1, no_log=True)
    async with srv:
        assert srv.config_digest.startswith("sha256:")
        x = srv.accounts["X"]
        a = await raw(srv.port, user="a", **{"pass": "a"})
        # The file's own settings change; the keyword options still override it.
        path.write_text("listen: 127.0.0.1:4999\nauthorization { users: [{user: a, password: b}] }\n"
                        "accounts { X {}, Y {} }\n")
        await srv.reload()
        await a.expect_err_close("Authorization Violation")
        assert srv.accounts["X"] is x and "Y" in srv.accounts and srv.opts.port == -1
        path.write_text("garbage {\n")
        with pytest.raises(ReloadError, match="Unexpected EOF"):
            await srv.reload()


async def test_accounts_change_in_place() -> None:
    """Accounts that stay keep their objects (clients and routes hold them): their exports
    and imports change in place; clients of an account that goes are closed."""
    acc = [AccountConfig("A", exports=[ExportConfig("feed.>")]),
           AccountConfig("B", imports=[ImportConfig("A", "feed.>")]), AccountConfig("Gone")]
    users = [User("a", "a", account="A"), User("b", "b", account="B"), User("g", "g", account="Gone")]
    def clients_subs(a: Any) -> int:  # the system services' imports are internal subscriptions
        return sum(1 for s in a.sublist.all() if not s.client.internal)

    async with Server(accounts=acc, users=users) as srv:
        a_obj, b_obj = srv.accounts["A"], srv.accounts["B"]
        b = await raw(srv.port, user="b", **{"pass": "b"})
        g = await raw(srv.port, user="g", **{"pass": "g"})
        await b.send("SUB feed.x 1\r\nPING\r\n")
        await b.expect("PONG\r\n")
        assert clients_subs(a_obj) == 1  # b's subscription listens in A
        await srv.reload(replace(srv.opts, accounts=[AccountConfig("A"), AccountConfig("B"), AccountConfig("New")],
                                 users=users[:2] + [User("n", "n", account="New")]))
        assert srv.accounts["A"] is a_obj and srv.accounts["B"] is b_obj
        assert "Gone" not in srv.accounts and "New" in srv.accounts
        assert clients_subs(a_obj) == 0 and clients_subs(b_obj) == 1
        # Every account still has the system services' imports, the new one too.
        for name in ("A", "B", "New"):
            assert "$SYS.REQ.USER.INFO" in srv.accounts[name].service_imports
        assert not b_obj.stream_imports and not a_obj.stream_exports
        await g.expect_closed()
        await b.ping()
        n = await raw(srv.port, user="n", **{"pass": "n"})
        await n.ping()


async def test_bcrypt_rechecks_keep_the_loop_responsive() -> None:
    """Every reload checks every client again; bcrypt checks run in threads, one per
    distinct (hash, password), while the event loop keeps serving (checked by counting the
    turns a ticker task gets during the reload: an inline check would leave it none)."""
    n_users, per_user = 12, 2
    hashes = {f"u{i}": bcrypt.hashpw(f"p{i}".encode(), bcrypt.gensalt(8)).decode() for i in range(n_users)}
    users = [User(name, h) for name, h in hashes.items()]
    async with Server(users=users) as srv:
        clients = []
        for i in range(n_users):
            for _ in range(per_user):
                clients.append(await raw(srv.port, user=f"u{i}", **{"pass": f"p{i}"}))
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.001)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        before = ticks
        await srv.reload(replace(srv.opts, users=users[1:]))  # u0 goes; 11 checks of ~20 ms
        during = ticks - before
        stop.set()
        await t
        for c in clients[:per_user]:
            await c.expect_closed()
        for c in clients[per_user:]:
            await c.ping()
        assert during >= 5, during


@pytest.mark.parametrize("target", TARGETS)
async def test_tls_turned_on_then_off(servers, target: str, tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    cert, key = certs.pair("server")
    srv = await servers(target, L).start()
    plain = await watched(srv.url)
    lines = await srv.reload(L + f'tls {{ cert_file: "{cert}", key_file: "{key}" }}\n')
    assert "[INF] Reloaded: tls = enabled" in lines
    c = await RawClient.open("127.0.0.1", srv.port)
    assert (await c.read_info())["tls_required"] is True
    await c.close()
    secure = await watched(f"tls://127.0.0.1:{srv.port}", tls=_tls_ctx(certs.ca_file))
    lines = await srv.reload(L)
    assert "[INF] Reloaded: tls = disabled" in lines
    c = await RawClient.open("127.0.0.1", srv.port)
    assert "tls_required" not in await c.read_info()
    await c.close()
    # Both kinds of connection from before carry on.
    assert await plain.works() and await secure.works()
    assert plain.disconnects == secure.disconnects == 0
    for w in (plain, secure):
        await w.close()


@pytest.mark.parametrize("target", TARGETS)
async def test_logging_options(servers, target: str, tmp_path: Path) -> None:
    srv = await servers(target, L).start()
    log_file = tmp_path / "moved.log"
    first_log = srv.log_path
    lines = await srv.reload(L + f'debug: true\ntrace: true\nlogtime: false\nlog_file: "{log_file}"\n',
                             moves_to=log_file)
    assert notices(lines) == ["[INF] Reloaded server configuration"]
    assert notices([LOG_PREFIX.sub(r"\1 ", ln) for ln in first_log.read_text().splitlines()])[-6:] == [
        "[INF] Reloaded: trace = true",
        "[INF] Reloaded: debug = true",
        "[INF] Reloaded: logtime = false",
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: log_file = " + str(log_file),
    ]
    # The last line went to the new file, without a time stamp; so does what follows.
    c = await raw(srv.port)
    await c.send("SUB x 1\r\nPING\r\n")
    await c.expect("PONG\r\n")
    await wait_for(lambda: "<<- [SUB x 1]" in log_file.read_text(), what="a trace line")
    assert re.match(r"^\[\d+\] \[INF\] Reloaded server configuration", log_file.read_text())


@pytest.mark.parametrize("target", TARGETS)
async def test_route_authorization_changed(servers, target: str) -> None:
    def conf(auth: str, routes: str = "") -> str:
        return L + f"cluster {{ listen: 127.0.0.1:-1, name: C, authorization {{ {auth} }}{routes} }}\n"

    s1 = await servers(target, conf("user: r, password: r"), name="s1").start()
    await servers(target, conf("user: r, password: r", f', routes: ["nats://r:r@127.0.0.1:{s1.cluster_port}"]'),
                       name="s2").start()
    await s1.wait_log("Route connection created")
    lines = await s1.reload(conf("user: r, password: changed"))
    assert notices(lines)[-2:] == ["[INF] Reloaded: cluster", "[INF] Reloaded server configuration"]
    # The route s2 dialled with the old credentials no longer passes.
    assert any(ln.startswith("[ERR]") and ln.endswith('authentication error - User "r"') for ln in lines), lines
    await s1.wait_log("Router connection closed: Authentication Failure")


@pytest.mark.parametrize("target", TARGETS)
async def test_command_line_flags_still_override_the_file(servers, target: str) -> None:
    """A reload reads the file again and applies the command-line flags over it. nats-server
    forgets some flags there (-n, -ms, --cluster_name, the --tls flags), so that every reload
    of a server started with them is refused; pynats-server applies them all
    (conformance/deviations.toml)."""
    srv = await servers(target, L + "debug: false\n", "-D", "-n", "named").start()
    lines = await srv.reload(L + "debug: false\nmax_payload: 2000\n")
    if target == "pynats":
        # -D still wins over the file's debug: false, so debug does not change.
        assert notices(lines) == [
            "[INF] Reloaded: authorization users",
            "[INF] Reloaded: accounts",
            "[INF] Reloaded: max_payload = 2000",
            "[INF] Reloaded server configuration",
        ]
    else:
        assert lines == ["[ERR] Failed to reload server configuration: config reload not supported for "
                         "ServerName: old=named, new="]


@pytest.mark.parametrize("target", TARGETS)
async def test_ports_file_moves(servers, target: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    srv = await servers(target, L + f'ports_file_dir: "{one}"\n').start()
    await wait_for(lambda: list(one.glob("*.ports")), what="the ports file")
    lines = await srv.reload(L + f'ports_file_dir: "{two}"\n')
    assert f"[INF] Reloaded: ports_file_dir = {two}" in lines
    (moved,) = list(two.glob("*.ports"))
    assert json.loads(moved.read_text())["nats"] == [f"nats://127.0.0.1:{srv.port}"]
    assert not list(one.glob("*.ports"))


@pytest.mark.parametrize("target", TARGETS)
async def test_client_advertise(servers, target: str) -> None:
    srv = await servers(target, L).start()
    lines = await srv.reload(L + 'client_advertise: "nats.example.com:4333"\n')
    assert "[INF] Reload: client_advertise = nats.example.com:4333" in lines
    c = await RawClient.open("127.0.0.1", srv.port)
    info = await c.read_info()
    assert (info["host"], info["port"]) == ("nats.example.com", 4333)
    await c.close()
    lines = await srv.reload(L + 'client_advertise: "a:b:c"\n')
    assert lines == ["[ERR] Failed to reload server configuration: invalid ClientAdvertise value of a:b:c, "
                     "err=address a:b:c: too many colons in address"]


async def test_embedded_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "new.pid"
    log = LogCapture()
    async with Server(logger=log) as srv:
        await srv.reload(replace(srv.opts, pid_file=str(pid_file)))
        assert pid_file.read_text() == str(os.getpid())
        assert log.has(f"[INF] Reloaded: pid_file = {pid_file}")


async def test_embedded_reload_with_only_a_config_file(tmp_path: Path) -> None:
    """No reload_source: the file alone over nats-server's defaults (as nats-server's Reload
    of an embedded server), so the file must say where the server listens."""
    path = tmp_path / "nats.conf"
    path.write_text("listen: 127.0.0.1:-1\n")
    async with Server(Options(host="127.0.0.1", port=-1, no_log=True, config_file=str(path))) as srv:
        path.write_text("listen: 127.0.0.1:-1\nmax_payload: 512\n")
        await srv.reload()
        assert srv.opts.max_payload == 512 and srv.config_digest.startswith("sha256:")
        path.write_text("max_payload: 512\n")
        with pytest.raises(ReloadError, match="^config reload not supported for Host: old=127.0.0.1, new=0.0.0.0$"):
            await srv.reload()


async def test_cluster_tls_contexts_rebuilt(tmp_path: Path) -> None:
    """New route handshakes (both directions) use contexts built from the new cluster tls {}."""
    certs = make_certs(tmp_path)
    node, node_key = certs.pair("node")
    other, other_key = certs.pair("othernode")
    tls = TLSOptions(cert_file=node, key_file=node_key, ca_file=certs.ca_file)
    cluster = ClusterOptions(host="127.0.0.1", port=-1, name="C", tls=tls)
    async with Server(cluster=cluster) as srv:
        before = (srv.cluster.tls_server_context, srv.cluster.tls_client_context)
        new_tls = replace(tls, cert_file=other, key_file=other_key, ca_file=str(tmp_path / "other-ca.pem"))
        await srv.reload(replace(srv.opts, cluster=replace(srv.opts.cluster, tls=new_tls)))
        after = (srv.cluster.tls_server_context, srv.cluster.tls_client_context)
        assert all(a is not b for a, b in zip(before, after, strict=True))
        assert srv.cluster.opts.tls is not None and srv.cluster.opts.tls.cert_file == other
        # A file that does not load refuses the reload; nothing changes.
        with pytest.raises(ReloadError, match="no such file or directory"):
            await srv.reload(replace(srv.opts, cluster=replace(srv.opts.cluster, tls=replace(new_tls, cert_file="/nope"))))
        assert srv.cluster.tls_server_context is after[0]

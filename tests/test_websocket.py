"""WebSocket clients (`websocket {}`): nats-py's WebSocket transport against the server, a
raw WebSocket client for frames and for bad input (compared with the real nats-server 2.14
where it matters: the same test runs against both), TLS, compression, auth, a cluster,
and nats.ws under node."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import nats
import pytest
from conftest import RawClient, http_get, wait_for
from tls_util import make_certs
from ws_util import WSRaw, frame, upgrade_request, ws_server  # noqa: F401  (fixture)

from pynats_server import Server
from pynats_server.options import ClusterOptions, Options, WebsocketOptions

NO_TLS = "websocket { port: -1, no_tls: true }\n"
BOTH = ["pynats", "go214"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- configuration and start-up ------------------------------------------------------------


def _run_cli(exe: list[str], conf: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.conf")
        Path(path).write_text(conf)
        p = subprocess.run([*exe, "-c", path], capture_output=True, text=True, timeout=20)
        return p.returncode, (p.stderr + p.stdout).strip()


@pytest.mark.parametrize("conf, error", [
    ("websocket { port: 8080 }", "websocket requires TLS configuration"),
    ('websocket { port: 8080, no_tls: true, allowed_origins: ["ftp://x.com"] }',
     'unable to parse allowed origin "ftp://x.com": allowed origins must be absolute URLs with http or https scheme'),
    ('websocket { port: 8080, no_tls: true, allowed_origins: ["http://"] }',
     'unable to parse allowed origin "http://": host is required'),
    ('websocket { port: 8080, no_tls: true, headers: { Upgrade: "x" } }',
     'websocket: invalid header "Upgrade" not allowed'),
    ('websocket { port: 8080, no_tls: true, jwt_cookie: "jwt" }',
     'trusted operators or trusted keys configuration is required for JWT authentication via cookie "jwt"'),
    ('websocket { port: 8080, no_tls: true, no_auth_user: "bob" }',
     'no_auth_user: "bob" present, but users/nkeys are not defined'),
])  # fmt: skip
def test_refused_configurations(conf: str, error: str) -> None:
    """nats-server refuses these and says why; so does pynats-server, in the same words."""
    rc, out = _run_cli([sys.executable, "-m", "pynats_server"], conf)
    assert rc != 0 and error in out, out
    from conftest import go_binary

    exe = go_binary("go214")
    if exe is not None:
        rc, out = _run_cli([exe], conf)
        assert rc != 0 and error in out, out


def test_config_block_read(tmp_path: Path) -> None:
    from pynats_server.config import apply_config_file

    conf = tmp_path / "s.conf"
    conf.write_text('ws { listen: "127.0.0.1:9999", no_tls: true, compression: true, same_origin: true,\n'
                    '  allowed_origins: "https://example.com", handshake_timeout: "2s",\n'
                    '  authorization { user: u, password: p, timeout: 3 }, user_cookie: uc, ping_interval: "1m" }\n')  # fmt: skip
    opts = Options()
    apply_config_file(opts, str(conf))
    wo = opts.websocket
    assert (wo.host, wo.port, wo.no_tls, wo.compression, wo.same_origin) == ("127.0.0.1", 9999, True, True, True)
    assert wo.allowed_origins == ["https://example.com"] and wo.handshake_timeout == 2.0
    assert (wo.username, wo.password, wo.auth_timeout, wo.user_cookie) == ("u", "p", 3.0, "uc")
    assert wo.ping_interval == 60.0
    conf.write_text("websocket { port: 1, no_tls: true, bogus: 1 }\n")
    from pynats_server.cli import UsageError

    with pytest.raises(UsageError, match='unknown field "bogus"'):
        apply_config_file(Options(), str(conf))


@pytest.mark.parametrize("target", BOTH)
async def test_startup_log_varz_connz(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server("http: -1\nwebsocket { host: 127.0.0.1, port: -1, no_tls: true, compression: true,\n"
                        '  handshake_timeout: "2s", same_origin: true, allowed_origins: ["http://a.b"] }\n',
                        target=target)  # fmt: skip
    log = s.log()
    assert f"[INF] Listening for websocket clients on ws://127.0.0.1:{s.ws_port}" in log
    assert "[WRN] Websocket not configured with TLS. DO NOT USE IN PRODUCTION!" in log
    assert log.index("Listening for websocket clients") < log.index("Listening for client connections")
    _, body = await http_get("127.0.0.1", s.http_port, "/varz")
    assert json.loads(body)["websocket"] == {
        "host": "127.0.0.1", "port": s.ws_port, "handshake_timeout": 2_000_000_000, "no_tls": True,
        "same_origin": True, "allowed_origins": ["http://a.b"], "compression": True,
    }  # fmt: skip
    nc = await nats.connect(s.ws_url(), name="wsclient")
    tcp = await nats.connect(s.url, name="tcpclient")
    try:
        _, body = await http_get("127.0.0.1", s.http_port, "/connz")
        types = {c["name"]: c["type"] for c in json.loads(body)["connections"]}
        assert types == {"wsclient": "websocket", "tcpclient": "nats"}
    finally:
        await nc.close()
        await tcp.close()
    await s.wait_log(" - wid:")


async def test_info_is_the_websocket_ports(ws_server) -> None:  # noqa: F811
    s = await ws_server("websocket { host: 127.0.0.1, port: -1, no_tls: true, authorization { token: t } }\n")
    c, _ = await WSRaw.upgraded(s.ws_port)
    info = json.loads((await c.read_nats())[5:])
    assert (info["host"], info["port"], info["auth_required"]) == ("127.0.0.1", s.ws_port, True)
    assert "tls_required" not in info
    tcp = await RawClient.open("127.0.0.1", s.port)
    assert "auth_required" not in await tcp.read_info()  # the block's authorization is its own
    await tcp.close()
    await c.close()


# -- nats-py over WebSocket --------------------------------------------------------------------


async def test_natspy_pub_sub_request_with_tcp(ws_server) -> None:  # noqa: F811
    s = await ws_server(NO_TLS)
    ws = await nats.connect(s.ws_url())
    tcp = await nats.connect(s.url)
    try:
        got_ws: list[bytes] = []
        got_tcp: list[bytes] = []

        async def cb_ws(m: nats.aio.msg.Msg) -> None:
            got_ws.append(m.data)

        async def cb_tcp(m: nats.aio.msg.Msg) -> None:
            got_tcp.append(m.data)

        sub_ws = await ws.subscribe("greet.*", cb=cb_ws)
        sub_tcp = await tcp.subscribe("greet.*", cb=cb_tcp)

        async def echo(m: nats.aio.msg.Msg) -> None:
            await m.respond(b"re:" + m.data)

        await tcp.subscribe("svc", cb=echo)
        await ws.subscribe("wsvc", cb=echo)
        await ws.flush()
        await tcp.flush()
        big = os.urandom(300_000)
        await ws.publish("greet.a", b"from ws")
        await tcp.publish("greet.b", b"from tcp")
        await tcp.publish("greet.c", big)
        await ws.publish("greet.d", big)
        want = [b"from ws", b"from tcp", big, big]
        await wait_for(lambda: got_ws == want and got_tcp == want, what="both subscribers")
        assert (await ws.request("svc", b"x", timeout=2)).data == b"re:x"
        assert (await tcp.request("wsvc", b"y", timeout=2)).data == b"re:y"
        await sub_ws.unsubscribe()
        await sub_tcp.unsubscribe()
    finally:
        await ws.close()
        await tcp.close()


async def test_natspy_reconnects() -> None:
    """The server goes away and comes back on the same ports: the WebSocket client reconnects
    and its subscription works again."""
    port, ws_port = _free_port(), _free_port()

    def opts() -> Options:
        return Options(host="127.0.0.1", port=port, no_log=True,
                       websocket=WebsocketOptions(host="127.0.0.1", port=ws_port, no_tls=True))  # fmt: skip

    srv = Server(opts())
    await srv.start()
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(f"ws://127.0.0.1:{ws_port}", reconnected_cb=on_reconnect,
                            reconnect_time_wait=0.1, max_reconnect_attempts=100)  # fmt: skip
    got: list[bytes] = []

    async def cb(m: nats.aio.msg.Msg) -> None:
        got.append(m.data)

    try:
        await nc.subscribe("after", cb=cb)
        await nc.flush()
        await srv.shutdown()
        srv = Server(opts())
        await srv.start()
        await asyncio.wait_for(reconnected.wait(), 10)
        tcp = await nats.connect(f"nats://127.0.0.1:{port}")
        await wait_for(lambda: srv.sublist.count >= 1, what="the subscription replayed")
        await tcp.publish("after", b"back")
        await tcp.flush()
        await wait_for(lambda: got == [b"back"], what="the message after the reconnect")
        await tcp.close()
    finally:
        await nc.close()
        await srv.shutdown()


async def test_cluster_ws_and_tcp_across_a_route() -> None:
    """A WebSocket client on one node and a TCP client on the other see each other's messages."""
    a = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="A",
                       cluster=ClusterOptions(name="c", host="127.0.0.1", port=-1),
                       websocket=WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True)))  # fmt: skip
    await a.start()
    from pynats_server.options import RouteURL

    b = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="B",
                       cluster=ClusterOptions(name="c", host="127.0.0.1", port=-1,
                                              routes=[RouteURL("127.0.0.1", a.cluster.port)]),
                       websocket=WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True)))  # fmt: skip
    await b.start()
    try:
        await wait_for(lambda: a.cluster.routes and b.cluster.routes, what="the route")
        # WebSocket clients learn the cluster's websocket URLs (ws_connect_urls on routes),
        # TCP clients the client ports, each in its own INFO connect_urls.
        raw, _ = await WSRaw.upgraded(a.websocket.port)
        info = json.loads((await raw.read_nats())[5:])
        assert info["connect_urls"] == [f"127.0.0.1:{a.websocket.port}", f"127.0.0.1:{b.websocket.port}"]
        await raw.close()
        tcp_raw = await RawClient.open("127.0.0.1", a.port)
        assert (await tcp_raw.read_info())["connect_urls"] == [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        await tcp_raw.close()
        ws = await nats.connect(f"ws://127.0.0.1:{a.websocket.port}")
        tcp = await nats.connect(b.client_url)
        got_ws: list[bytes] = []
        got_tcp: list[bytes] = []

        async def cb_ws(m: nats.aio.msg.Msg) -> None:
            got_ws.append(m.data)

        async def cb_tcp(m: nats.aio.msg.Msg) -> None:
            got_tcp.append(m.data)

        await ws.subscribe("x", cb=cb_ws)
        await tcp.subscribe("x", cb=cb_tcp)
        await ws.flush()
        await tcp.flush()
        await wait_for(lambda: a.sublist.count >= 2 and b.sublist.count >= 2, what="interest both ways")
        await ws.publish("x", b"from ws on A")
        await tcp.publish("x", b"from tcp on B")
        want = [b"from ws on A", b"from tcp on B"]
        await wait_for(lambda: sorted(got_ws) == sorted(want) and sorted(got_tcp) == sorted(want),
                       what="messages across the route")  # fmt: skip
        await ws.close()
        await tcp.close()
    finally:
        await b.shutdown()
        await a.shutdown()


@pytest.mark.parametrize("target", BOTH)
async def test_wss_with_test_certificates(tmp_path: Path, ws_server, target: str) -> None:  # noqa: F811
    certs = make_certs(tmp_path)
    cert, key = tmp_path / "server-cert.pem", tmp_path / "server-key.pem"
    s = await ws_server(f"websocket {{ port: -1, tls {{ cert_file: '{cert}', key_file: '{key}' }} }}\nhttp: -1\n",
                        target=target)  # fmt: skip
    assert f"Listening for websocket clients on wss://127.0.0.1:{s.ws_port}" in s.log()
    assert "websocket: TLS handshake error" not in s.log()
    assert "DO NOT USE IN PRODUCTION" not in s.log()
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    nc = await nats.connect(f"wss://127.0.0.1:{s.ws_port}", tls=ctx, name="secure")
    try:
        assert nc._server_info["tls_required"] is True
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def cb(m: nats.aio.msg.Msg) -> None:
            fut.set_result(m.data)

        await nc.subscribe("s", cb=cb)
        await nc.publish("s", b"encrypted")
        assert await asyncio.wait_for(fut, 5) == b"encrypted"
        _, body = await http_get("127.0.0.1", s.http_port, "/connz")
        conn = json.loads(body)["connections"][0]
        assert conn["type"] == "websocket" and conn["tls_version"].startswith("1.")
        # Plaintext on the TLS port: an HTTP request gets Go's HTTPS server's answer, other
        # bytes nothing; both are logged as TLS handshake errors, and the port goes on.
        raw = await WSRaw.open(s.ws_port)
        await raw.send(upgrade_request())
        head, body = await raw.read_http()
        assert (head, body) == ("HTTP/1.0 400 Bad Request\r\n\r\n", b"Client sent an HTTP request to an HTTPS server.\n")
        await raw.close()
        await s.wait_log(": client sent an HTTP request to an HTTPS server")
        raw = await WSRaw.open(s.ws_port)
        await raw.send(b"CONNECT {}\r\n")
        await raw.expect_eof()
        await raw.close()
        await s.wait_log(": tls: first record does not look like a TLS handshake")
        fut2: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def cb2(m: nats.aio.msg.Msg) -> None:
            fut2.set_result(m.data)

        await nc.subscribe("s2", cb=cb2)
        await nc.publish("s2", b"still")
        assert await asyncio.wait_for(fut2, 5) == b"still"
    finally:
        await nc.close()


async def test_compression(ws_server) -> None:  # noqa: F811
    s = await ws_server("websocket { port: -1, no_tls: true, compression: true }\n")
    c, head = await WSRaw.upgraded(s.ws_port, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
    assert ("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            "client_no_context_takeover\r\n") in head  # fmt: skip
    op, info, b0 = await c.read_frame()
    assert b0 == 0xC2 and info.startswith(b"INFO ")  # binary, final, compressed (RSV1)
    await c.send_nats(b"CONNECT {\"verbose\":false}\r\nSUB z 1\r\n", compress=True)
    await c.send_nats(b"PING\r\n", compress=True)
    op, data, b0 = await c.read_frame()
    assert (b0, data) == (0x82, b"PONG\r\n")  # 64 bytes or less: not compressed
    payload = b"compress me " * 100
    await c.send_nats(b"PUB z %d\r\n%s\r\n" % (len(payload), payload), compress=True)
    op, data, b0 = await c.read_frame()
    assert b0 == 0xC2 and data == b"MSG z 1 %d\r\n%s\r\n" % (len(payload), payload)
    await c.close()
    # Without the client asking, nothing is compressed.
    c, head = await WSRaw.upgraded(s.ws_port)
    assert "permessage-deflate" not in head
    assert (await c.read_frame())[2] == 0x82
    await c.close()
    # A compressed frame when none was agreed: the connection ends (as nats-server ends it).
    c, _ = await WSRaw.upgraded(s.ws_port)
    await c.read_nats()
    await c.send(frame(2, b"PING\r\n", rsv1=True))
    await c.expect_eof()


async def test_natspy_with_compression_and_browser_frames(ws_server) -> None:  # noqa: F811
    """The websockets client (which asks for permessage-deflate) and a "browser" (whose
    frames nats-server cuts to 4 KiB) both get whole NATS messages."""
    from websockets.asyncio.client import connect

    s = await ws_server("websocket { port: -1, no_tls: true, compression: true }\n")
    async with connect(s.ws_url(), user_agent_header="Mozilla/5.0 (X11) Firefox/130.0") as w:
        info = await w.recv()
        assert info.startswith(b"INFO ")
        await w.send(b'CONNECT {"verbose":false}\r\nSUB big 1\r\nPING\r\n')
        assert await w.recv() == b"PONG\r\n"
        body = os.urandom(20000)
        await w.send(b"PUB big %d\r\n%s\r\n" % (len(body), body))
        got = b""
        while not got.endswith(body + b"\r\n"):
            got += await asyncio.wait_for(w.recv(), 5)
        assert got == b"MSG big 1 %d\r\n%s\r\n" % (len(body), body)


@pytest.mark.parametrize("target", BOTH)
async def test_browser_frames(ws_server, target: str) -> None:  # noqa: F811
    """To a browser nats-server writes frames of at most 4 KiB: uncompressed data as whole
    messages, compressed data as the fragments of one message."""
    import zlib

    s = await ws_server("websocket { port: -1, no_tls: true, compression: true }\n", target=target)
    body = os.urandom(10000)  # does not compress: more than 4 KiB either way
    msg = b"MSG b 1 %d\r\n%s\r\n" % (len(body), body)
    for extra, compressed in (("", False), ("Sec-WebSocket-Extensions: permessage-deflate\r\n", True)):
        c, _ = await WSRaw.upgraded(s.ws_port, "User-Agent: Mozilla/5.0 (X11; Linux) Firefox/130.0\r\n" + extra)
        await c.read_frame(raw=True)  # INFO
        await c.send_nats(b'CONNECT {"verbose":false}\r\nSUB b 1\r\nPING\r\n')
        assert await c.read_nats() == b"PONG\r\n"
        await c.send_nats(b"PUB b %d\r\n%s\r\n" % (len(body), body))
        frames = []
        while sum(len(f[1]) for f in frames) < (len(msg) if not compressed else 1) or not frames[-1][2] & 0x80:
            op, data, b0 = await c.read_frame(raw=True)
            assert len(data) <= 4096
            frames.append((op, data, b0))
        if compressed:
            assert [f[2] for f in frames] == [0x42] + [0x00] * (len(frames) - 2) + [0x80]
            inflated = zlib.decompressobj(wbits=-15).decompress(b"".join(f[1] for f in frames) + b"\x00\x00\xff\xff")
            assert inflated == msg
        else:
            assert {f[2] for f in frames} == {0x82} and b"".join(f[1] for f in frames) == msg
        await c.close()


@pytest.mark.parametrize("target", BOTH)
async def test_no_masking(ws_server, target: str) -> None:  # noqa: F811
    """`Nats-No-Masking: true` (what nats-server's own leafnodes ask for): the answer says so
    and unmasked frames are read, split anywhere."""
    s = await ws_server(NO_TLS, target=target)
    c, head = await WSRaw.upgraded(s.ws_port, "Nats-No-Masking: true\r\n")
    assert "\r\nNats-No-Masking: true\r\n" in head
    await c.read_nats()
    data = frame(2, b'CONNECT {"verbose":false}\r\nSUB n 1\r\n', mask=False) + frame(2, b"PUB n 3\r\nabc\r\nPING\r\n", mask=False)
    for i in range(0, len(data), 7):
        await c.send(data[i : i + 7])
    assert await c.nats_until(b"PONG\r\n") == b"MSG n 1 3\r\nabc\r\nPONG\r\n"
    await c.close()


@pytest.mark.parametrize("target", BOTH)
async def test_wss_verify_and_map(tmp_path: Path, ws_server, target: str) -> None:  # noqa: F811
    """The block's `tls { verify_and_map }`: the client certificate names the user."""
    make_certs(tmp_path)
    d = tmp_path
    s = await ws_server(
        "authorization { users: [ {user: \"alice@example.com\", permissions: {publish: \"ok\"}} ] }\n"
        f"websocket {{ port: -1, tls {{ cert_file: '{d}/server-cert.pem', key_file: '{d}/server-key.pem',\n"
        f"  ca_file: '{d}/ca.pem', verify_and_map: true }} }}\n",
        target=target,
    )

    def ctx(name: str) -> ssl.SSLContext:
        c = ssl.create_default_context(cafile=str(d / "ca.pem"))
        c.load_cert_chain(str(d / f"{name}-cert.pem"), str(d / f"{name}-key.pem"))
        return c

    nc = await nats.connect(f"wss://127.0.0.1:{s.ws_port}", tls=ctx("alice"))
    try:
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        nc._error_cb = on_error
        await nc.publish("ok", b"allowed")
        await nc.publish("not.ok", b"denied")
        await nc.flush()
        await wait_for(lambda: errors, what="the permissions violation for alice")
        assert 'permissions violation for publish to "not.ok"' in str(errors[0])
    finally:
        await nc.close()
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(f"wss://127.0.0.1:{s.ws_port}", tls=ctx("bob"), allow_reconnect=False,
                           max_reconnect_attempts=0)  # fmt: skip


# -- bad input: nats-server's answers, and nothing else disturbed ----------------------------


def _http_view(head: str, body: bytes) -> tuple[str, list[str], bytes]:
    lines = head.split("\r\n")
    return lines[0], sorted(h.split(":")[0] for h in lines[1:] if h), body


KEYLINE = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
BAD_REQUESTS = {
    "plain GET": ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request", b"Bad Request\n"),
    "POST": ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed",
             b"Method Not Allowed\n"),
    "no Upgrade": (f"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n{KEYLINE}Sec-WebSocket-Version: 13\r\n\r\n",
                   "HTTP/1.1 400 Bad Request", b"Bad Request\n"),
    "no key": ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
               "HTTP/1.1 400 Bad Request", b"Bad Request\n"),
    "bad key": ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 400 Bad Request", b"Bad Request\n"),
    "version 12": (f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{KEYLINE}"
                   "Sec-WebSocket-Version: 12\r\n\r\n", "HTTP/1.1 400 Bad Request", b"Bad Request\n"),
    "not HTTP": ("PING\r\n", "HTTP/1.1 400 Bad Request", b"400 Bad Request"),
}  # fmt: skip
LOGGED = {"plain GET": "invalid value for header 'Upgrade'", "POST": "request method must be GET",
          "no Upgrade": "invalid value for header 'Upgrade'", "no key": "key missing",
          "bad key": "invalid websocket key", "version 12": "invalid version"}  # fmt: skip


@pytest.mark.parametrize("target", BOTH)
async def test_bad_upgrades(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server(NO_TLS, target=target)
    for name, (req, status, body) in BAD_REQUESTS.items():
        c = await WSRaw.open(s.ws_port)
        await c.send(req.encode())
        head, got = await c.read_http()
        line, names, got = _http_view(head, got)
        assert (line, got) == (status, body), name
        if name == "not HTTP":
            assert names == ["Connection", "Content-Type"]
            await c.expect_eof()
        else:
            assert names == ["Content-Length", "Content-Type", "Date", "Sec-Websocket-Version",
                             "X-Content-Type-Options"], name  # fmt: skip
            # HTTP/1.1 keep-alive: the same connection can try again, and succeed.
            await c.send(upgrade_request())
            assert (await c.read_head()).startswith("HTTP/1.1 101 ")
            assert (await c.read_nats()).startswith(b"INFO ")
            await s.wait_log(f"websocket handshake error: {LOGGED[name]}")
        await c.close()
    # HTTP/1.0 without a Host header: refused for that, and closed.
    c = await WSRaw.open(s.ws_port)
    await c.send(b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + KEYLINE.encode()
                 + b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    head, got = await c.read_http()
    assert (head.split("\r\n")[0], got) == ("HTTP/1.0 400 Bad Request", b"Bad Request\n")
    await c.expect_eof()
    await s.wait_log("websocket handshake error: 'Host' missing in request")
    # Data sent before the 101 arrived: dropped without an answer.
    c = await WSRaw.open(s.ws_port)
    await c.send(upgrade_request() + frame(2, b"PING\r\n"))
    await c.expect_eof()
    await s.wait_log("websocket handshake error: client sent data before handshake is complete")
    # Nothing else was disturbed: TCP and WebSocket clients still work.
    await _still_serving(s)


@pytest.mark.parametrize("target", BOTH)
async def test_origin_checks(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server('websocket { port: -1, no_tls: true, same_origin: true }\n', target=target)
    c = await WSRaw.open(s.ws_port)
    await c.send(upgrade_request(host=f"127.0.0.1:{s.ws_port}", extra="Origin: http://evil.com\r\n"))
    head, body = await c.read_http()
    assert (head.split("\r\n")[0], body) == ("HTTP/1.1 403 Forbidden", b"Forbidden\n")
    await s.wait_log("websocket handshake error: origin not allowed: not same origin")
    await c.send(upgrade_request(host=f"127.0.0.1:{s.ws_port}", extra=f"Origin: http://127.0.0.1:{s.ws_port}\r\n"))
    assert (await c.read_head()).startswith("HTTP/1.1 101 ")
    await c.close()
    s2 = await ws_server('websocket { port: -1, no_tls: true, allowed_origins: ["https://good.com"] }\n',
                         target=target)  # fmt: skip
    for origin, ok in (("https://good.com", True), ("http://good.com", False), ("https://good.com:444", False),
                       ("https://bad.com", False), ("", True)):  # fmt: skip
        c = await WSRaw.open(s2.ws_port)
        await c.send(upgrade_request(extra=f"Origin: {origin}\r\n" if origin else ""))
        head = await c.read_head()
        assert head.startswith("HTTP/1.1 101 " if ok else "HTTP/1.1 403 Forbidden"), origin
        await c.close()
    await s2.wait_log("websocket handshake error: origin not allowed: not in the allowed list")


# Bad frames after the upgrade: (frames, what comes back before the end, whether it ends).
BAD_FRAMES = {
    "unmasked frame": (frame(2, b"PING\r\n", mask=False), [], True, "mask bit missing"),
    "text frame": (frame(1, b"PING\r\n"), [(0x82, b"PONG\r\n")], False, ""),
    "ping frame": (frame(9, b"hello"), [(0x8A, b"hello")], False, ""),
    "close frame": (frame(8, b"\x03\xe8bye"), [(0x88, b"\x03\xe8bye")], True, ""),
    "close, bad status": (frame(8, b"\x03\xecbye"), [], True, "invalid close status code 1004"),
    "close, not UTF-8": (frame(8, b"\x03\xe8\xff\xfe"), [(0x88, b"\x03\xefinvalid utf8 body in close frame")], True, ""),
    "RSV2 set": (frame(2, b"PING\r\n", rsv2=True), [], True, ""),
    "opcode 3": (frame(3, b"PING\r\n"), [], True, "unknown opcode 3"),
    "long control frame": (frame(9, b"x" * 126), [], True, "control frame length bigger than maximum allowed of 125 bytes"),
    "fragmented control": (frame(9, b"x", fin=False), [], True, "control frame does not have final bit set"),
    "continuation first": (frame(0, b"PING\r\n"), [], True, "invalid continuation frame"),
    "fragments": (frame(2, b"PI", fin=False) + frame(0, b"NG\r\n"), [(0x82, b"PONG\r\n")], False, ""),
    "oversized payload": (frame(2, b"CONNECT {}\r\nPUB foo 2000\r\n" + b"x" * 2000 + b"\r\n"),
                          [(0x82, b"+OK\r\n-ERR 'Maximum Payload Violation'\r\n"),
                           (0x88, b"\x03\xf1Maximum Message Payload Exceeded")], True, "maximum payload exceeded"),
    "oversized frame": (frame(2, b"x" * 9000), [], True, ""),
    "unknown op": (frame(2, b"FOO\r\n"), [], True, "Client parser ERROR"),
}  # fmt: skip


@pytest.mark.parametrize("target", BOTH)
async def test_bad_frames(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server("max_payload: 1000\nwebsocket { port: -1, no_tls: true }\n", target=target)
    for name, (data, want, ends, logged) in BAD_FRAMES.items():
        c, _ = await WSRaw.upgraded(s.ws_port)
        await c.read_nats()
        await c.send(data)
        got = []
        for _ in want:
            _, payload, b0 = await c.read_frame()
            got.append((b0, payload))
        assert got == want, name
        if ends and logged and not want and not logged.startswith("Client parser"):
            # A frame that breaks the rules: close 1002 with nats-server's words. (nats-server
            # then closes without flushing, so whether it sends the frame is a race there.)
            close = (0x88, b"\x03\xea" + logged.encode())
            try:
                _, payload, b0 = await c.read_frame()
                assert (b0, payload) == close, name
            except EOFError:
                assert target != "pynats", name
        if ends:
            await c.expect_eof()
        else:
            await c.send(frame(2, b"PING\r\n"))
            assert await c.read_nats() == b"PONG\r\n", name
        if logged:
            await s.wait_log(f"read error: {logged}")
        await c.close()
    await _still_serving(s)


@pytest.mark.parametrize("target", BOTH)
async def test_handshake_timeout(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server('websocket { port: -1, no_tls: true, handshake_timeout: "300ms" }\n', target=target)
    c = await WSRaw.open(s.ws_port)
    await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    await c.expect_eof(timeout=3)
    assert c.buf == b""  # closed without an answer
    await c.close()
    await _still_serving(s)


async def _still_serving(s) -> None:  # type: ignore[no-untyped-def]
    ws = await nats.connect(s.ws_url())
    tcp = await nats.connect(s.url)
    fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def cb(m: nats.aio.msg.Msg) -> None:
        fut.set_result(m.data)

    await ws.subscribe("alive", cb=cb)
    await ws.flush()
    # Published until it arrives: against nats-server 2.14 the first one now and then does
    # not reach the nats-py WebSocket subscriber (about 1 run in 20 under load; not
    # investigated, not seen against pynats-server).
    deadline = asyncio.get_running_loop().time() + 5
    while not fut.done() and asyncio.get_running_loop().time() < deadline:
        await tcp.publish("alive", b"yes")
        await asyncio.wait([fut], timeout=0.25)
    assert fut.done() and fut.result() == b"yes"
    await ws.close()
    await tcp.close()


# -- auth in the websocket block -----------------------------------------------------------


@pytest.mark.parametrize("target", BOTH)
async def test_websocket_authorization(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server("websocket { port: -1, no_tls: true, authorization { user: wsu, password: wsp } }\n",
                        target=target)  # fmt: skip
    # TCP clients need nothing (the block's authorization is for websocket clients only).
    tcp = await nats.connect(s.url)
    await tcp.close()
    nc = await nats.connect(f"ws://wsu:wsp@127.0.0.1:{s.ws_port}")
    await nc.close()
    c, _ = await WSRaw.upgraded(s.ws_port)
    await c.read_nats()
    await c.send(frame(2, b'CONNECT {"user":"wsu","pass":"wrong","verbose":false}\r\n'))
    assert await c.read_nats() == b"-ERR 'Authorization Violation'\r\n"
    assert await c.read_close() == (1008, "Authentication Failure")
    await c.expect_eof()
    await s.wait_log("read error: authentication error")
    assert "read error: \n" not in s.log()


@pytest.mark.parametrize("target", BOTH)
async def test_websocket_token_no_auth_user_and_cookies(ws_server, target: str) -> None:  # noqa: F811
    s = await ws_server(
        "authorization { users: [ {user: alice, password: a, permissions: {publish: ['a.>']}}, {user: bob, password: b} ] }\n"
        "websocket { port: -1, no_tls: true, no_auth_user: alice, user_cookie: u, pass_cookie: p }\n",
        target=target,
    )
    # No credentials: alice, by the block's no_auth_user (TCP clients must authenticate).
    c, _ = await WSRaw.upgraded(s.ws_port)
    await c.read_nats()
    await c.send(frame(2, b'CONNECT {"verbose":false}\r\nPUB b.x 0\r\n\r\nPING\r\n'))
    out = await c.nats_until(b"PONG\r\n")
    assert out == b"-ERR 'Permissions Violation for Publish to \"b.x\"'\r\nPONG\r\n"
    await c.close()
    # Credentials from the upgrade's cookies: bob.
    c, _ = await WSRaw.upgraded(s.ws_port, "Cookie: u=bob; p=b\r\n")
    await c.read_nats()
    await c.send(frame(2, b'CONNECT {"verbose":false}\r\nPUB b.x 0\r\n\r\nPING\r\n'))
    assert await c.nats_until(b"PONG\r\n") == b"PONG\r\n"
    await c.close()
    tcp = await RawClient.open("127.0.0.1", s.port)
    await tcp.read_info()
    await tcp.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await tcp.expect(b"-ERR 'Authorization Violation'\r\n")
    await tcp.close()


async def test_allowed_connection_types(ws_server) -> None:  # noqa: F811
    s = await ws_server(
        "authorization { users: [ {user: w, password: w, allowed_connection_types: [WEBSOCKET]},"
        " {user: t, password: t, allowed_connection_types: [STANDARD]} ] }\n" + NO_TLS
    )
    nc = await nats.connect(f"ws://w:w@127.0.0.1:{s.ws_port}")
    await nc.close()
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(f"ws://t:t@127.0.0.1:{s.ws_port}", max_reconnect_attempts=0, allow_reconnect=False)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(f"nats://w:w@127.0.0.1:{s.port}", max_reconnect_attempts=0, allow_reconnect=False)


# -- nats.ws under node ----------------------------------------------------------------------

NODE_SCRIPT = r"""
globalThis.WebSocket = require("ws");
const { connect, StringCodec } = require("nats.ws");
(async () => {
  const sc = StringCodec();
  const nc = await connect({ servers: process.argv[2] });
  const sub = nc.subscribe("js.echo");
  (async () => { for await (const m of sub) { m.respond(sc.encode("echo:" + sc.decode(m.data))); } })();
  const got = nc.subscribe("js.in", { max: 1 });
  await nc.flush();
  console.log("READY");
  for await (const m of got) { console.log("GOT " + sc.decode(m.data)); }
  const r = await nc.request("py.svc", sc.encode("hi"), { timeout: 5000 });
  console.log("REPLY " + sc.decode(r.data));
  await nc.drain();
})().catch((e) => { console.log("ERROR " + e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def nats_ws_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the nats.ws test (not installed)")
    d = tmp_path_factory.mktemp("natsws")
    p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "nats.ws@1", "ws@8"], cwd=d,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    if p.returncode != 0:
        pytest.skip(f"npm could not install nats.ws: {p.stderr.strip()[-300:]}")
    (d / "client.js").write_text(NODE_SCRIPT)
    return d


@pytest.mark.timeout(180)
async def test_nats_ws_under_node(nats_ws_dir: Path, ws_server) -> None:  # noqa: F811
    s = await ws_server(NO_TLS)
    tcp = await nats.connect(s.url)

    async def svc(m: nats.aio.msg.Msg) -> None:
        await m.respond(b"py:" + m.data)

    await tcp.subscribe("py.svc", cb=svc)
    await tcp.flush()
    proc = await asyncio.create_subprocess_exec(
        "node", "client.js", s.ws_url(), cwd=nats_ws_dir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"READY", line
        assert (await tcp.request("js.echo", b"ping", timeout=5)).data == b"echo:ping"
        await tcp.publish("js.in", b"hello node")
        assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"GOT hello node"
        assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"REPLY py:hi"
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await tcp.close()


async def test_reload(tmp_path: Path) -> None:
    """A reload that changes users applies to WebSocket clients too; a change to the
    websocket block itself is refused, as nats-server refuses it."""
    from pynats_server.reload import ReloadError

    conf = tmp_path / "s.conf"
    block = "websocket { host: 127.0.0.1, port: -1, no_tls: true }\n"
    conf.write_text("authorization { users: [ {user: a, password: a} ] }\n" + block)
    srv = Server.from_config(str(conf), host="127.0.0.1", port=-1, no_log=True)
    await srv.start()
    try:
        url = srv.websocket_url
        assert url == f"ws://127.0.0.1:{srv.websocket.port}"
        nc = await nats.connect(url.replace("ws://", "ws://a:a@"))
        await nc.close()
        conf.write_text("authorization { users: [ {user: b, password: b} ] }\n" + block)
        await srv.reload()
        nc = await nats.connect(url.replace("ws://", "ws://b:b@"))
        await nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url.replace("ws://", "ws://a:a@"), allow_reconnect=False, max_reconnect_attempts=0)
        conf.write_text("authorization { users: [ {user: b, password: b} ] }\n"
                        "websocket { host: 127.0.0.1, port: -1, no_tls: true, compression: true }\n")  # fmt: skip
        with pytest.raises(ReloadError, match="config reload not supported for Websocket: old="):
            await srv.reload()
    finally:
        await srv.shutdown()

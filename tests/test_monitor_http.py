"""The monitoring port's HTTP (pynats_server/monitor_http.py): JSONP, CORS, http_base_path,
Go's answers to odd paths, keep-alive and pipelining, and clients that are slow, silent,
malformed or oversized: none of them may hold up the message path."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import TIMEOUT, wait_for

from pynats_server import monitor_http


async def raw_http(port: int, request: bytes, *, timeout: float = TIMEOUT) -> bytes:
    """Send `request` as is and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def split(resp: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


async def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    return split(await raw_http(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()))


async def test_json_cors_and_jsonp(start_server) -> None:
    s = await start_server(http_port=-1)
    status, h, body = await get(s.http_port, "/varz")
    assert status == 200 and h["content-type"] == "application/json"
    assert h["access-control-allow-origin"] == "*"
    assert int(h["content-length"]) == len(body)
    status, h, body = await get(s.http_port, "/connz?callback=cb&limit=1")
    assert status == 200 and h["content-type"] == "application/javascript"
    assert "access-control-allow-origin" not in h
    assert body.startswith(b"cb({") and body.endswith(b"})")
    assert json.loads(body[3:-1])["limit"] == 1
    # /healthz is compact JSON, with JSONP too.
    status, h, body = await get(s.http_port, "/healthz?callback=f")
    assert body == b'f({"status":"ok"})'


async def test_go_answers_for_odd_requests(start_server) -> None:
    s = await start_server(http_port=-1)
    status, h, body = await get(s.http_port, "/varz/")
    assert (status, body) == (404, b"404 page not found\n") and h["x-content-type-options"] == "nosniff"
    status, h, body = await get(s.http_port, "//varz?x=1")
    assert status == 307 and h["location"] == "/varz?x=1"
    status, h, body = await get(s.http_port, "/varz", "POST")  # Go's mux takes any method
    assert status == 200
    status, h, body = await get(s.http_port, "/varz", "HEAD")
    assert status == 200 and body == b"" and int(h["content-length"]) > 100
    status, h, body = await get(s.http_port, "/connz?auth=maybe")
    assert status == 400 and h["content-type"] == "text/plain; charset=utf-8"
    assert body == b"Error decoding boolean for 'auth': strconv.ParseBool: parsing \"maybe\": invalid syntax"
    status, _, body = await get(s.http_port, "/connz?limit=x")
    assert body == b"Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"
    status, _, body = await get(s.http_port, "/subsz?subs=detail")
    assert status == 400 and body.startswith(b"Error decoding boolean for 'subs'")
    status, _, body = await get(s.http_port, "/connz?state=half")
    assert (status, body) == (400, b"Error decoding state for half")


async def test_http_base_path(start_server) -> None:
    s = await start_server(http_port=-1, http_base_path="nats/")
    assert s.srv is not None and s.srv.monitor.url.endswith("/nats")
    assert (await get(s.http_port, "/varz"))[0] == 404
    status, _, body = await get(s.http_port, "/nats/varz")
    assert status == 200 and json.loads(body)["http_base_path"] == "nats/"
    status, _, body = await get(s.http_port, "/nats")
    assert status == 200 and b"href=./nats/connz" in body
    assert (await get(s.http_port, "/nats/metrics"))[0] == 200


async def test_keep_alive_and_pipelining(start_server) -> None:
    s = await start_server(http_port=-1)
    reader, writer = await asyncio.open_connection("127.0.0.1", s.http_port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        await writer.drain()
        for _ in range(3):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            _, h, _ = split(head)
            body = await asyncio.wait_for(reader.readexactly(int(h["content-length"])), TIMEOUT)
            assert body == b'{"status":"ok"}'
    finally:
        writer.close()


async def test_malformed_and_oversized_requests(start_server) -> None:
    s = await start_server(http_port=-1)
    resp = await raw_http(s.http_port, b"GARBAGE\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400 Bad Request\r\n") and resp.endswith(b"400 Bad Request")
    resp = await raw_http(s.http_port, b"GET /varz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (monitor_http.MAX_HEAD + 10))
    assert resp.startswith(b"HTTP/1.1 431 ")
    resp = await raw_http(s.http_port, b"POST /varz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
                          + b"x" * (monitor_http.MAX_BODY + 1))
    assert resp.startswith(b"HTTP/1.1 413 ")
    # The port still answers.
    assert (await get(s.http_port, "/healthz"))[0] == 200


async def test_slow_clients_do_not_stall_the_message_path(start_server, monkeypatch) -> None:
    monkeypatch.setattr(monitor_http, "HEADER_TIMEOUT", 0.5)
    s = await start_server(http_port=-1)
    # One client sends half a request head and stops; another sends a byte at a time.
    r1, w1 = await asyncio.open_connection("127.0.0.1", s.http_port)
    w1.write(b"GET /varz HTTP/1.1\r\nHost")
    r2, w2 = await asyncio.open_connection("127.0.0.1", s.http_port)
    # Meanwhile NATS clients are served at once.
    sub = await s.connected()
    pub = await s.connected()
    await sub.send(b"SUB x 1\r\n")
    await sub.ping()
    start = time.monotonic()
    for _ in range(20):
        w2.write(b"G")  # a trickle, never a whole request
        await pub.send(b"PUB x 2\r\nhi\r\n")
        assert (await sub.read_msg())[0] == b"MSG x 1 2"
    assert time.monotonic() - start < 2.0
    # The silent client is cut off after the header timeout.
    assert await asyncio.wait_for(r1.read(), TIMEOUT) == b""
    assert await asyncio.wait_for(r2.read(), TIMEOUT) == b""
    w1.close()
    w2.close()


async def test_a_client_that_does_not_read_is_not_read(start_server) -> None:
    s = await start_server(http_port=-1)
    srv = s.srv
    assert srv is not None
    for _ in range(50):  # a few hundred connections to make /connz large
        await s.connected(name="n" * 200)
    reader, writer = await asyncio.open_connection("127.0.0.1", s.http_port, limit=1024)
    transport = writer.transport
    transport.pause_reading()  # never read the answers
    writer.write(b"GET /connz?subs=1 HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
    # The server pauses this connection once its answers back up: it does not parse the
    # whole pipeline into megabytes of buffered answers.
    conns = srv.monitor.conns

    def backed_up() -> bool:
        return any(c.paused for c in conns)

    await wait_for(backed_up, what="the HTTP connection paused")
    buffered = sum(c.transport.get_write_buffer_size() for c in conns if c.transport is not None)
    assert buffered < 4 * 1024 * 1024
    # Other requests are served meanwhile.
    assert (await get(s.http_port, "/healthz"))[0] == 200
    writer.close()


@pytest.mark.parametrize("path", ["/", "/raftz", "/ipqueuesz", "/gatewayz", "/leafz", "/accountz", "/accstatz"])
async def test_every_endpoint_answers(start_server, path: str) -> None:
    s = await start_server(http_port=-1)
    status, _, _ = await get(s.http_port, path)
    assert status == 200


async def test_metrics_parse_as_prometheus_text_and_follow_traffic(start_server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    s = await start_server(http_port=-1)
    assert s.srv is not None
    sid = s.srv.id

    async def metrics() -> dict[str, float]:
        status, h, body = await get(s.http_port, "/metrics")
        assert status == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
        out = {}
        for fam in text_string_to_metric_families(body.decode()):
            for sample in fam.samples:
                assert sample.labels["server_id"] == sid
                # The parser names counter samples `_total`; the exposition has the family name.
                key = fam.name + ("|" + sample.labels["value"] if "value" in sample.labels else "")
                out[key] = sample.value
        return out

    before = await metrics()
    assert before["gnatsd_varz_connections"] == 0
    assert before["gnatsd_varz_version|2.14.0"] == 1
    assert before["gnatsd_healthz_status"] == 0 and before["gnatsd_healthz_status_value|ok"] == 1
    sub = await s.connected()
    pub = await s.connected()
    await sub.send(b"SUB foo 1\r\nSUB bar 2\r\n")
    await sub.ping()
    for _ in range(3):
        await pub.send(b"PUB foo 5\r\nhello\r\n")
    await pub.ping()
    for _ in range(3):
        await sub.read_msg()
    m = await metrics()
    assert m["gnatsd_varz_connections"] == 2 and m["gnatsd_connz_num_connections"] == 2
    assert m["gnatsd_varz_in_msgs"] - before["gnatsd_varz_in_msgs"] == 3
    assert m["gnatsd_varz_in_bytes"] - before["gnatsd_varz_in_bytes"] == 15
    assert m["gnatsd_varz_out_msgs"] - before["gnatsd_varz_out_msgs"] == 3
    assert m["gnatsd_connz_subscriptions"] == 2 and m["gnatsd_connz_in_msgs"] == 3
    assert m["gnatsd_connz_out_bytes"] == 15
    assert m["gnatsd_varz_subscriptions"] - before["gnatsd_varz_subscriptions"] == 2
    assert m["gnatsd_subsz_num_subscriptions"] == m["gnatsd_varz_subscriptions"]
    assert m["gnatsd_routez_num_routes"] == 0
    assert abs(m["gnatsd_varz_start"] / 1000 - s.srv.start_time) < 1

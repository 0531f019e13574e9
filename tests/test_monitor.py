"""HTTP monitoring (pynats_server/monitor.py): key names, order and JSON types as nats-server
2.14 writes them (captured from the Go binary), and counters that follow the traffic."""

from __future__ import annotations

import json
import re

from conftest import ServerHandle, wait_for

from pynats_server.gotime import go_duration, go_float, go_time, uptime

# /varz keys of nats-server 2.14.0 without cluster, gateway or leafnodes, in its order.
GO_VARZ_KEYS = [
    "server_id", "server_name", "version", "proto", "git_commit", "go", "host", "port",
    "max_connections", "ping_interval", "ping_max", "http_host", "http_port", "http_base_path",
    "https_port", "auth_timeout", "max_control_line", "max_payload", "max_pending", "cluster",
    "gateway", "leaf", "mqtt", "websocket", "jetstream", "tls_timeout", "write_deadline", "start",
    "now", "uptime", "mem", "cores", "gomaxprocs", "cpu", "connections", "total_connections",
    "routes", "remotes", "leafnodes", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
    "slow_consumers", "stale_connections", "stalled_clients", "subscriptions", "http_req_stats",
    "config_load_time", "config_digest", "feature_flags", "system_account", "slow_consumer_stats",
    "stale_connection_stats",
]  # fmt: skip
GO_CONN_KEYS = [
    "cid", "kind", "type", "ip", "port", "start", "last_activity", "rtt", "uptime", "idle",
    "pending_bytes", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions", "name",
    "lang", "version",
]  # fmt: skip
GO_SUBSZ_KEYS = [
    "server_id", "now", "num_subscriptions", "num_cache", "num_inserts", "num_removes",
    "num_matches", "cache_hit_rate", "max_fanout", "avg_fanout", "total", "offset", "limit",
]  # fmt: skip
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


async def get_json(s: ServerHandle, path: str) -> dict:
    status, body = await s.http_get(path)
    assert status == 200, (path, status, body)
    return json.loads(body)


async def test_varz_keys_and_types(start_server) -> None:
    s = await start_server(http_port=-1)
    status, body = await s.http_get("/varz")
    assert status == 200
    varz = json.loads(body)
    assert [k for k in varz if k != "git_commit"] == [k for k in GO_VARZ_KEYS if k != "git_commit"]
    assert varz["port"] == s.port
    # nats-server 2.14 reports the configured -1 here for a random monitoring port; the
    # port actually bound is at least as useful.
    assert varz["http_port"] in (s.http_port, -1)
    assert varz["host"] == "127.0.0.1" and varz["http_host"] == "127.0.0.1"
    assert re.fullmatch(r"N[A-Z2-7]{55}", varz["server_id"])
    assert varz["ping_interval"] == 120_000_000_000 and varz["write_deadline"] == 10_000_000_000
    assert varz["max_payload"] == 1048576 and varz["max_pending"] == 67108864
    assert varz["max_control_line"] == 4096 and varz["max_connections"] == 65536
    assert varz["system_account"] == "$SYS"
    assert RFC3339.fullmatch(varz["start"]) and RFC3339.fullmatch(varz["now"])
    assert re.fullmatch(r"\d+s", varz["uptime"])
    # Go writes float64 2 as `2`.
    assert b'"auth_timeout": 2,' in body and b'"tls_timeout": 2,' in body
    assert varz["slow_consumer_stats"] == {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
    assert varz["http_req_stats"]["/varz"] >= 1


async def test_varz_options(start_server) -> None:
    s = await start_server(http_port=-1, max_payload=2048, max_connections=7, ping_max=5, ping_interval=30.0)
    varz = await get_json(s, "/varz")
    assert varz["max_payload"] == 2048
    assert varz["max_connections"] == 7
    assert varz["ping_max"] == 5
    assert varz["ping_interval"] == 30_000_000_000


async def test_varz_counters(start_server) -> None:
    s = await start_server(http_port=-1)
    before = await get_json(s, "/varz")
    sub = await s.connected()
    pub = await s.connected()
    await sub.send(b"SUB foo 1\r\nSUB foo 2\r\n")
    await sub.ping()
    await pub.send(b"PUB foo 5\r\nhello\r\nPUB bar 3\r\nabc\r\n")
    await pub.ping()
    assert len(await sub.msgs_until_pong()) == 2
    after = await get_json(s, "/varz")
    assert after["connections"] - before["connections"] == 2
    assert after["total_connections"] - before["total_connections"] == 2
    assert after["subscriptions"] - before["subscriptions"] == 2
    assert after["in_msgs"] - before["in_msgs"] == 2
    assert after["in_bytes"] - before["in_bytes"] == 8
    assert after["out_msgs"] - before["out_msgs"] == 2
    assert after["out_bytes"] - before["out_bytes"] == 10
    # Totals do not go backwards when connections close.
    await sub.close()
    await pub.close()
    end = await get_json(s, "/varz")
    assert end["in_msgs"] == after["in_msgs"] and end["out_bytes"] == after["out_bytes"]


async def test_connz(start_server) -> None:
    s = await start_server(http_port=-1)
    c = await s.connected(name="n1", lang="python", version="1.0")
    assert c.info is not None
    cid = c.info["client_id"]
    await c.send(b"SUB foo 1\r\nSUB bar q 2\r\nUNSUB 2 5\r\nPUB foo 2\r\nhi\r\n")
    await c.msgs_until_pong()
    connz = await get_json(s, "/connz")
    assert list(connz) == ["server_id", "now", "num_connections", "total", "offset", "limit", "connections"]
    assert connz["num_connections"] == 1 and connz["total"] == 1
    assert connz["offset"] == 0 and connz["limit"] == 1024
    (conn,) = connz["connections"]
    assert list(conn) == GO_CONN_KEYS
    assert conn["cid"] == cid and conn["kind"] == "Client" and conn["type"] == "nats"
    assert conn["ip"] == "127.0.0.1"
    assert conn["name"] == "n1" and conn["lang"] == "python" and conn["version"] == "1.0"
    assert conn["subscriptions"] == 2
    assert conn["in_msgs"] == 1 and conn["out_msgs"] == 1 and conn["in_bytes"] == 2 and conn["out_bytes"] == 2
    assert RFC3339.fullmatch(conn["start"]) and RFC3339.fullmatch(conn["last_activity"])
    assert re.fullmatch(r"[\d.]+(ns|µs|ms|s)", conn["rtt"]), conn["rtt"]

    subs = (await get_json(s, "/connz?subs=1"))["connections"][0]
    assert sorted(subs["subscriptions_list"]) == ["bar", "foo"]
    detail = (await get_json(s, "/connz?subs=detail"))["connections"][0]["subscriptions_list_detail"]
    detail.sort(key=lambda d: d["sid"])
    assert detail == [
        {"subject": "foo", "sid": "1", "msgs": 1, "cid": cid},
        {"subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "max": 5, "cid": cid},
    ]


async def test_connz_paging_and_cid(start_server) -> None:
    s = await start_server(http_port=-1)
    clients = [await s.connected() for _ in range(3)]
    cids = [c.info["client_id"] for c in clients if c.info]
    page = await get_json(s, "/connz?limit=1&offset=1")
    assert page["total"] == 3 and page["num_connections"] == 1 and page["limit"] == 1 and page["offset"] == 1
    assert page["connections"][0]["cid"] == cids[1]
    one = await get_json(s, f"/connz?cid={cids[2]}")
    assert [c["cid"] for c in one["connections"]] == [cids[2]]


async def test_connz_closed(start_server) -> None:
    s = await start_server(http_port=-1)
    c = await s.connected(name="gone")
    await c.send(b"SUB foo 1\r\nSUB bar 2\r\n")
    await c.ping()
    await c.close()

    async def closed() -> list:
        return (await get_json(s, "/connz?state=closed"))["connections"]

    (conn,) = await wait_for(closed, what="a closed connection in /connz")
    assert conn["reason"] == "Client Closed"
    assert RFC3339.fullmatch(conn["stop"])
    assert conn["name"] == "gone"
    # nats-server keeps the subscription count a connection had when it closed.
    assert conn["subscriptions"] == 2
    assert (await get_json(s, "/connz"))["num_connections"] == 0


async def test_subsz(start_server) -> None:
    s = await start_server(http_port=-1)
    before = await get_json(s, "/subsz")  # the servers' own subscriptions (system account)
    c = await s.connected()
    cid = c.info["client_id"] if c.info else 0
    await c.send(b"SUB foo 1\r\nSUB bar q 2\r\n")
    await c.ping()
    subsz = await get_json(s, "/subsz")
    assert list(subsz) == GO_SUBSZ_KEYS
    assert subsz["num_subscriptions"] == before["num_subscriptions"] + 2
    filtered = await get_json(s, "/subsz?subs=1&test=foo")
    assert filtered["total"] == 1
    assert filtered["subscriptions_list"] == [
        {"account": "$G", "account_tag": "$G", "subject": "foo", "sid": "1", "msgs": 0, "cid": cid}
    ]


async def test_healthz_and_404(start_server) -> None:
    s = await start_server(http_port=-1)
    status, body = await s.http_get("/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _ = await s.http_get("/nope")
    assert status == 404
    status, _ = await s.http_get("/routez")
    assert status == 200


async def test_monitor_off_by_default(srv: ServerHandle) -> None:
    assert srv.http_port == 0
    if srv.srv is not None:
        assert srv.srv.monitor is None and srv.srv.monitor_url is None


# -- formatting helpers ---------------------------------------------------------------------


def test_go_duration() -> None:
    assert go_duration(0) == "0s"
    assert go_duration(1e-7) == "100ns"
    assert go_duration(0.000387) == "387µs"
    assert go_duration(0.0015) == "1.5ms"
    assert go_duration(2.5) == "2.5s"
    assert go_duration(90) == "1m30s"
    assert go_duration(3723) == "1h2m3s"
    assert go_duration(3600) == "1h0m0s"
    assert go_duration(-2) == "-2s"


def test_go_time() -> None:
    assert go_time(0) == "1970-01-01T00:00:00Z"
    assert go_time(1.5) == "1970-01-01T00:00:01.5Z"
    assert go_time(1.000123) == "1970-01-01T00:00:01.000123Z"


def test_uptime() -> None:
    assert uptime(5) == "5s"
    assert uptime(65) == "1m5s"
    assert uptime(3665) == "1h1m5s"
    assert uptime(86400 + 3665) == "1d1h1m5s"
    assert uptime(366 * 86400) == "1y1d0h0m0s"


def test_go_float() -> None:
    assert go_float(2.0) == 2 and isinstance(go_float(2.0), int)
    assert go_float(0.125) == 0.125


# -- counters that follow what happens ------------------------------------------------------


async def test_stale_connections_are_counted(start_server) -> None:
    s = await start_server(http_port=-1, ping_interval=0.2, ping_max=1)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"name":"mute"}\r\nPING\r\n')
    await c.expect(b"PONG\r\n")
    await c.expect(b"PING\r\n-ERR 'Stale Connection'\r\n")
    await c.expect_closed()
    varz = await wait_for(lambda: _when(get_json(s, "/varz"), lambda v: v["stale_connections"] == 1),
                          what="stale_connections 1")
    assert varz["stale_connection_stats"] == {"clients": 1, "routes": 0, "gateways": 0, "leafs": 0}
    (conn,) = (await get_json(s, "/connz?state=closed"))["connections"]
    assert conn["reason"] == "Stale Connection" and conn["name"] == "mute"


async def test_slow_consumers_are_counted_by_kind(start_server) -> None:
    s = await start_server(http_port=-1, max_pending=64 * 1024, max_payload=32 * 1024)
    slow = await s.client(rcvbuf=4096)
    await slow.connect(name="slowpoke")
    await slow.send(b"SUB big 1\r\n")
    await slow.ping()
    pub = await s.connected()
    payload = b"x" * 16 * 1024
    for _ in range(200):  # bounded: at most 3.2 MB
        await pub.send(b"PUB big %d\r\n%s\r\n" % (len(payload), payload))
        v = await get_json(s, "/varz")
        if v["slow_consumers"]:
            break
    assert v["slow_consumers"] == 1
    assert v["slow_consumer_stats"]["clients"] == 1 and v["slow_consumer_stats"]["routes"] == 0
    (conn,) = (await wait_for(lambda: _when(get_json(s, "/connz?state=closed"), lambda z: z["connections"]),
                              what="the closed slow consumer"))["connections"]
    assert conn["reason"] == "Slow Consumer (Pending Bytes)" and conn["name"] == "slowpoke"


async def test_connz_sorts_follow_traffic(start_server) -> None:
    s = await start_server(http_port=-1)
    a = await s.connected(name="a")
    b = await s.connected(name="b")
    c = await s.connected(name="c")
    await a.send(b"SUB x 1\r\nSUB y 2\r\nSUB z 3\r\n")
    await a.ping()
    await b.send(b"PUB nowhere 3\r\nabc\r\n" * 5)
    await b.ping()
    await c.send(b"PUB x 1\r\nq\r\n" * 2)
    await c.ping()
    await a.msgs_until_pong()

    async def order(sort: str) -> list[str]:
        return [x["name"] for x in (await get_json(s, f"/connz?sort={sort}"))["connections"]]

    assert await order("cid") == ["a", "b", "c"] and await order("start") == ["a", "b", "c"]
    assert (await order("subs"))[0] == "a"
    assert (await order("msgs_from"))[:2] == ["b", "c"]
    assert (await order("bytes_from"))[:2] == ["b", "c"]
    assert (await order("msgs_to"))[0] == "a" and (await order("bytes_to"))[0] == "a"
    assert (await order("uptime"))[0] == "c"  # the shortest first, as nats-server
    assert (await order("last"))[0] in ("a", "c")  # the most recent activity first
    for key in ("pending", "idle", "rtt"):
        assert sorted(await order(key)) == ["a", "b", "c"]
    status, body = await s.http_get("/connz?sort=reason")
    assert status == 400 and body == b"sort by reason only valid on closed connections"
    await b.close()
    await c.close()
    z = await wait_for(lambda: _when(get_json(s, "/connz?state=closed&sort=stop"),
                                     lambda z: len(z["connections"]) == 2), what="two closed")
    assert [x["name"] for x in z["connections"]] in (["c", "b"], ["b", "c"])
    everything = await get_json(s, "/connz?state=any&sort=cid")
    assert [x["name"] for x in everything["connections"]] == ["a", "b", "c"]
    assert "stop" not in everything["connections"][0] and "stop" in everything["connections"][1]
    rtt = (await get_json(s, "/connz"))["connections"][0]["rtt"]
    assert go_duration_seconds(rtt) > 0


async def test_closed_ring_keeps_the_newest(start_server) -> None:
    s = await start_server(http_port=-1, max_closed_clients=3)
    for i in range(5):
        c = await s.connected(name=f"c{i}")
        await c.close()
    z = await wait_for(lambda: _when(get_json(s, "/connz?state=closed"), lambda z: z["total"] == 3
                                     and z["connections"][-1]["name"] == "c4"), what="the newest three")
    assert [x["name"] for x in z["connections"]] == ["c2", "c3", "c4"]


async def test_connz_filters(start_server) -> None:
    from pynats_server.options import User

    s = await start_server(http_port=-1, users=[User("alice", "pa"), User("bob", "pb")])
    await s.connected(user="alice", **{"pass": "pa"}, name="A")
    await s.connected(user="bob", **{"pass": "pb"}, name="B")
    z = await get_json(s, "/connz?user=bob&auth=1")
    assert z["total"] == 2 and z["num_connections"] == 1  # nats-server: total before the user filter
    assert [(x["name"], x["authorized_user"]) for x in z["connections"]] == [("B", "bob")]
    assert (await get_json(s, "/connz?acc=$G"))["total"] == 2
    missing = await get_json(s, "/connz?acc=nope")
    assert missing["connections"] is None and missing["total"] == 0
    mqtt = await get_json(s, "/connz?mqtt_client=x")  # accepted; no MQTT clients here
    assert mqtt["total"] == 2 and mqtt["connections"] == []
    assert (await get_json(s, "/connz?limit=1&offset=1"))["connections"][0]["name"] == "B"


async def _when(coro, pred):
    z = await coro
    return z if pred(z) else None


def go_duration_seconds(d: str) -> float:
    m = re.fullmatch(r"([\d.]+)(ns|µs|ms|s)", d)
    assert m, d
    return float(m.group(1)) * {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]

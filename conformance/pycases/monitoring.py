"""HTTP monitoring (-m): key sets and value types of /varz, /connz, /routez, /subsz, /healthz.

Key sets are compared with the reference nats-server 2.14 (started alongside with the same
options and the same client activity); a few values are checked exactly. nats-server 2.9
lacks some 2.10+ keys: those differences are expected for the go29 profile (listed below).
"""

from __future__ import annotations

from typing import Any

from ..context import CaseContext
from ..registry import pycase, with_
from ..runner import REFERENCE
from ..schemas import flatten_signature, json_signature
from ..targets import ServerProcess
from ._util import client, start_cluster, until_pong, wait_full_mesh

# Subtrees whose inner keys depend on features (JetStream, gateways...) or on the requests made.
SKIP = (
    "jetstream",
    "gateway",
    "leaf",
    "mqtt",
    "websocket",
    "feature_flags",
    "http_req_stats",
    "jetstream.config",
    "jetstream.stats",
    "cluster.urls",
)

# Keys present in 2.14 but not in 2.9 (for the go29 profile these are expected differences).
GO29_ONLY_IN_REF: dict[str, set[str]] = {
    "/varz": {
        "cluster.pool_size",
        "config_digest",
        "feature_flags",
        "git_commit",
        "slow_consumer_stats",
        "slow_consumer_stats.clients",
        "slow_consumer_stats.gateways",
        "slow_consumer_stats.leafs",
        "slow_consumer_stats.routes",
        "stale_connection_stats",
        "stale_connection_stats.clients",
        "stale_connection_stats.gateways",
        "stale_connection_stats.leafs",
        "stale_connection_stats.routes",
        "stale_connections",
        "stalled_clients",
    },
    "/routez": {"server_name", "routes[].compression", "routes[].remote_name", "routes[].account"},
    "/subsz": {"limit", "now", "offset", "server_id", "total"},
    "/connz?auth=1": {"connections[].name_tag"},
    "/routez?subs=1": {"server_name"},
    "/accstatz?unused=1": {
        f"account_statz[].{side}{part}"
        for side in ("sent", "received")
        for part in (".gateways", ".gateways.bytes", ".gateways.msgs", ".leafs", ".leafs.bytes", ".leafs.msgs",
                     ".routes", ".routes.bytes", ".routes.msgs")  # fmt: skip
    } | {"account_statz[].name", "account_statz[].num_subscriptions"},
    "/subsz?subs=1": {
        "limit",
        "now",
        "offset",
        "server_id",
        "total",
        "subscriptions_list[].account_tag",
    },
}
GO29_ONLY_IN_TARGET: dict[str, set[str]] = {
    "/connz?subs=detail": {"connections[].subscriptions_list_detail[].qgroup"},
}

# Values 2.9 writes with another JSON type (an empty list as null).
GO29_TYPES = {("/leafz", "leafs")}

# Keys that exist only with 2.10+ route pooling (pinned-account routes): a server that does not
# pool (2.9, pynats-server) has no such routes.
POOLING_ONLY: dict[str, set[str]] = {"/routez": {"routes[].account"}}

SPEC = {"http": True, "cluster": True}


async def _activity(ctx: CaseContext, s: ServerProcess, tag: str) -> None:
    """The same client activity on every server compared: one named client, two subs, a message."""
    c = await client(ctx, s, f"mon-{tag}", {"name": "mon", "lang": "python", "version": "0.1"})
    await c.send(b"SUB foo 1\r\nSUB bar q 2\r\nPUB foo 2\r\nhi\r\n")
    await until_pong(c)


async def _compare(
    ctx: CaseContext, path: str, target_srv: ServerProcess, ref_srv: ServerProcess
) -> None:
    got = flatten_signature(json_signature(await ctx.http_json(target_srv, path)), skip=SKIP)
    if target_srv.target.name == REFERENCE:
        return
    ref = flatten_signature(json_signature(await ctx.http_json(ref_srv, path)), skip=SKIP)
    only_ref = set(ref) - set(got)
    only_got = set(got) - set(ref)
    if ctx.target.profile == "go29":
        only_ref -= GO29_ONLY_IN_REF.get(path, set())
        only_got -= GO29_ONLY_IN_TARGET.get(path, set())
    if ctx.target.profile != REFERENCE:
        only_ref -= POOLING_ONLY.get(path, set())
    types = sorted(
        f"{k}: {got[k]} (2.14: {ref[k]})" for k in set(got) & set(ref) if got[k] != ref[k]
        and not (ctx.target.profile == "go29" and (path, k) in GO29_TYPES)
    )
    problems = []
    if only_ref:
        problems.append(f"missing keys {sorted(only_ref)}")
    if only_got:
        problems.append(f"extra keys {sorted(only_got)}")
    if types:
        problems.append(f"type differences {types}")
    if problems:
        ctx.fail(f"GET {path}: key set differs from {REFERENCE}: " + "; ".join(problems))


async def _pair(ctx: CaseContext) -> tuple[ServerProcess, ServerProcess]:
    s = await ctx.shared_server(**SPEC)
    ref = s if ctx.target.name == REFERENCE else await ctx.shared_server(REFERENCE, **SPEC)
    await _activity(ctx, s, "t")
    if ref is not s:
        await _activity(ctx, ref, "r")
    return s, ref


def _keyset_case(path: str, doc: str) -> None:
    name = "monitoring.keys_" + path.strip("/").replace("?", "_").replace("=", "_").replace(
        "&", "_"
    )

    @pycase(name, doc=doc, kinds=with_(REFERENCE))
    async def case(ctx: CaseContext) -> None:
        s, ref = await _pair(ctx)
        await _compare(ctx, path, s, ref)


_keyset_case("/varz", "/varz key set and value types vs nats-server 2.14")
_keyset_case("/connz", "/connz key set and value types (one named client connected)")
_keyset_case("/connz?subs=1", "/connz?subs=1 adds subscriptions_list")
_keyset_case("/connz?subs=detail", "/connz?subs=detail adds subscriptions_list_detail")
_keyset_case("/subsz", "/subsz key set and value types")
_keyset_case("/subsz?subs=1", "/subsz?subs=1 adds subscriptions_list")
_keyset_case("/healthz", "/healthz key set")


def _check(ctx: CaseContext, obj: dict[str, Any], key: str, want: Any) -> None:
    ctx.check(key in obj, f"missing key {key}", want, sorted(obj))
    ctx.check(obj[key] == want, f"{key} value", want, obj[key])


@pycase("monitoring.varz_values", doc="/varz: ports, limits and defaults")
async def varz_values(ctx: CaseContext) -> None:
    s = await ctx.shared_server(**SPEC)
    v = await ctx.http_json(s, "/varz")
    _check(ctx, v, "port", s.client_port)
    _check(ctx, v, "host", "127.0.0.1")
    # nats-server reports the configured value: -1 when started with -m -1.
    ctx.check(
        v.get("http_port") in (-1, s.http_port),
        "http_port value",
        f"-1 or {s.http_port}",
        v.get("http_port"),
    )
    _check(ctx, v, "max_payload", 1048576)
    _check(ctx, v, "max_control_line", 4096)
    _check(ctx, v, "max_connections", 65536)
    _check(ctx, v, "ping_interval", 120000000000)
    _check(ctx, v, "ping_max", 2)
    _check(ctx, v, "auth_timeout", 2)
    _check(ctx, v, "proto", 1)
    _check(ctx, v, "max_pending", 67108864)
    _check(ctx, v, "write_deadline", 10000000000)
    cl = v.get("cluster") or {}
    _check(ctx, cl, "name", "CONF")
    _check(ctx, cl, "cluster_port", s.cluster_port)
    c = await ctx.http_json(s, "/connz")
    ctx.check(
        v["server_id"] == c["server_id"],
        "server_id is the same on /varz and /connz",
        v["server_id"],
        c["server_id"],
    )


@pycase(
    "monitoring.varz_config_values",
    doc="/varz reflects config: max_payload, max_connections, ping_interval",
)
async def varz_config_values(ctx: CaseContext) -> None:
    s = await ctx.shared_server(
        config='max_payload: 512\nmax_connections: 100\nping_interval: "30s"\nping_max: 3\n',
        http=True,
    )
    v = await ctx.http_json(s, "/varz")
    _check(ctx, v, "max_payload", 512)
    _check(ctx, v, "max_connections", 100)
    _check(ctx, v, "ping_interval", 30000000000)
    _check(ctx, v, "ping_max", 3)


@pycase(
    "monitoring.varz_counts_messages",
    doc="/varz in_msgs/out_msgs/in_bytes/out_bytes grow with traffic",
)
async def varz_counts(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    c = await client(ctx, s)
    await c.send(b"SUB cnt 1\r\n" + b"PUB cnt 5\r\nhello\r\n" * 3)
    await until_pong(c)

    async def probe() -> Any:
        v = await ctx.http_json(s, "/varz")
        ok = (
            v["in_msgs"] == 3
            and v["out_msgs"] == 3
            and v["in_bytes"] == 15
            and v["out_bytes"] == 15
        )
        return (
            True
            if ok
            else {k: v[k] for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes")}.__repr__()
        )

    await ctx.eventually(probe, 3, "in/out msgs 3 and bytes 15 on /varz")


@pycase(
    "monitoring.connz_values",
    doc="/connz: one connection with name, lang, version, subscription list",
)
async def connz_values(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    await _activity(ctx, s, "t")

    async def probe() -> Any:
        z = await ctx.http_json(s, "/connz?subs=1")
        return z if z.get("num_connections") == 1 else f"num_connections={z.get('num_connections')}"

    z = await ctx.eventually(probe, 3, "one connection on /connz")
    conn = z["connections"][0]
    _check(ctx, conn, "name", "mon")
    _check(ctx, conn, "lang", "python")
    _check(ctx, conn, "version", "0.1")
    _check(ctx, conn, "subscriptions", 2)
    _check(ctx, conn, "ip", "127.0.0.1")
    ctx.check(
        sorted(conn.get("subscriptions_list") or []) == ["bar", "foo"],
        "subscriptions_list",
        ["bar", "foo"],
        conn.get("subscriptions_list"),
    )
    ctx.check(isinstance(conn.get("cid"), int), "cid is an integer", "int", conn.get("cid"))
    _check(ctx, z, "total", 1)
    _check(ctx, z, "offset", 0)
    _check(ctx, z, "limit", 1024)


@pycase("monitoring.connz_paging", doc="/connz?limit=1&offset=1 with three clients")
async def connz_paging(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    for i in range(3):
        await client(ctx, s, f"p{i}")
    z = await ctx.http_json(s, "/connz?limit=1&offset=1")
    _check(ctx, z, "num_connections", 1)
    _check(ctx, z, "total", 3)
    _check(ctx, z, "limit", 1)
    _check(ctx, z, "offset", 1)
    ctx.check(len(z["connections"]) == 1, "one connection listed", 1, len(z["connections"]))


@pycase(
    "monitoring.connz_closed", doc="/connz?state=closed lists a closed connection with a reason"
)
async def connz_closed(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    c = await client(ctx, s, "gone", {"name": "gone"})
    await c.close()

    async def probe() -> Any:
        z = await ctx.http_json(s, "/connz?state=closed")
        names = [x.get("name") for x in z.get("connections") or []]
        return z if "gone" in names else f"closed connections: {names}"

    z = await ctx.eventually(probe, 3, "the closed connection on /connz?state=closed")
    conn = next(x for x in z["connections"] if x.get("name") == "gone")
    ctx.check(
        isinstance(conn.get("reason"), str) and conn["reason"],
        "closed connection has a reason",
        "Client Closed",
        conn.get("reason"),
    )
    ctx.check("stop" in conn, "closed connection has a stop time", "stop", sorted(conn))


@pycase(
    "monitoring.subsz_values", doc="/subsz counts and lists subscriptions; ?test= matches a subject"
)
async def subsz_values(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    await _activity(ctx, s, "t")
    z = await ctx.http_json(s, "/subsz?subs=1")
    subjects = sorted(
        x["subject"]
        for x in z.get("subscriptions_list") or []
        if not x["subject"].startswith("$SYS.")
    )
    ctx.check(subjects == ["bar", "foo"], "subscriptions_list subjects", ["bar", "foo"], subjects)
    q = [x for x in z["subscriptions_list"] if x["subject"] == "bar"][0]
    _check(ctx, q, "qgroup", "q") if "qgroup" in q else _check(ctx, q, "queue", "q")
    t = await ctx.http_json(s, "/subsz?subs=1&test=foo")
    matched = sorted(x["subject"] for x in t.get("subscriptions_list") or [])
    ctx.check(matched == ["foo"], "?test=foo lists only the matching sub", ["foo"], matched)


@pycase("monitoring.healthz_ok", doc='/healthz: HTTP 200 and exactly {"status":"ok"}')
async def healthz_ok(ctx: CaseContext) -> None:
    s = await ctx.shared_server(http=True)
    status, headers, body = await ctx.http_get(s, "/healthz")
    ctx.check(status == 200, "HTTP status", 200, status)
    import json

    ctx.check(json.loads(body) == {"status": "ok"}, "body", {"status": "ok"}, body)


@pycase(
    "monitoring.http_headers",
    doc="JSON endpoints send Content-Type application/json; 2.14 adds Access-Control-Allow-Origin: * (2.9 does not)",
)
async def http_headers(ctx: CaseContext) -> None:
    s = await ctx.shared_server(http=True)
    for path in ("/varz", "/connz", "/subsz", "/healthz"):
        status, headers, _ = await ctx.http_get(s, path)
        ctx.check(status == 200, f"GET {path} status", 200, status)
        ctype = headers.get("content-type", "")
        ctx.check(
            ctype.startswith("application/json"),
            f"GET {path} content-type",
            "application/json",
            ctype,
        )
        cors = headers.get("access-control-allow-origin")
        if ctx.target.profile == "go29":
            ctx.check(cors is None, f"GET {path}: 2.9 sends no CORS header", None, cors)
        else:
            ctx.check(cors == "*", f"GET {path} CORS header", "*", cors)


@pycase("monitoring.unknown_path_404", doc="an unknown path is a 404; / is an HTML index")
async def unknown_path(ctx: CaseContext) -> None:
    s = await ctx.shared_server(http=True)
    status, _, _ = await ctx.http_get(s, "/nope")
    ctx.check(status == 404, "GET /nope", 404, status)
    status, headers, body = await ctx.http_get(s, "/")
    ctx.check(status == 200, "GET /", 200, status)
    ctx.check(b"<html" in body.lower(), "GET / is HTML", "<html", body[:60])


@pycase(
    "monitoring.routez_keys",
    doc="/routez with one route: key sets vs 2.14 (X+X cluster vs 2.14+2.14)",
    kinds=with_(REFERENCE),
)
async def routez_keys(ctx: CaseContext) -> None:
    servers = await start_cluster(ctx, [ctx.target.name, ctx.target.name])
    await wait_full_mesh(ctx, servers)
    ref = servers[0]
    if ctx.target.name != REFERENCE:
        refs = await start_cluster(ctx, [REFERENCE, REFERENCE])
        await wait_full_mesh(ctx, refs)
        ref = refs[0]
    await _compare(ctx, "/routez", servers[0], ref)


@pycase(
    "monitoring.routez_values",
    doc="/routez: num_routes, remote_id, did_solicit on both sides of a 2-server cluster",
)
async def routez_values(ctx: CaseContext) -> None:
    a, b = await start_cluster(ctx, [ctx.target.name, ctx.target.name])
    ids = await wait_full_mesh(ctx, [a, b])
    za = await ctx.http_json(a, "/routez")
    zb = await ctx.http_json(b, "/routez")
    ctx.check(za["server_id"] == ids[0], "routez server_id", ids[0], za["server_id"])
    ctx.check(
        za["num_routes"] == len(za["routes"]),
        "num_routes matches the list",
        len(za["routes"]),
        za["num_routes"],
    )
    sol_b = {r["remote_id"]: r["did_solicit"] for r in zb["routes"]}
    ctx.check(any(sol_b.values()), "b (which has --routes) solicited its route to a", True, sol_b)
    conf_b = [r.get("is_configured") for r in zb["routes"] if r["remote_id"] == ids[0]]
    ctx.check(any(conf_b), "b's route to a is configured", True, conf_b)


# -- the endpoints' options, errors and HTTP answers, each compared with 2.14 in the same run --

_keyset_case("/connz?auth=1", "/connz?auth=1 key set (no users: nothing more than /connz)")
_keyset_case("/routez?subs=1", "/routez?subs=1 key set (no routes on the shared server)")
_keyset_case("/accountz", "/accountz key set")
_keyset_case("/accstatz?unused=1", "/accstatz?unused=1 key set")
_keyset_case("/leafz", "/leafz key set")
_keyset_case("/gatewayz", "/gatewayz key set")
_keyset_case("/healthz?js-enabled-only=true", "/healthz?js-enabled-only=true key set")
_keyset_case("/healthz?details=true", "/healthz?details=true key set")


async def _both(ctx: CaseContext, path: str) -> tuple[Any, Any]:
    """(target's answer, reference's answer) to GET path: (status, content type, cors, body)."""
    s, ref = await _pair(ctx)

    async def one(srv: ServerProcess) -> Any:
        status, headers, body = await ctx.http_get(srv, path)
        return status, headers.get("content-type"), headers.get("access-control-allow-origin"), body

    return await one(s), await one(ref)


def _same(ctx: CaseContext, path: str, got: Any, want: Any, *, body: bool = True) -> None:
    ctx.check(got[0] == want[0], f"GET {path}: status", want[0], got[0])
    ctx.check(got[1] == want[1], f"GET {path}: content type", want[1], got[1])
    if ctx.target.profile != "go29":
        ctx.check(got[2] == want[2], f"GET {path}: CORS header", want[2], got[2])
    if body:
        ctx.check(got[3] == want[3], f"GET {path}: body", want[3], got[3])


_ERRORS = [
    "/connz?auth=maybe", "/connz?subs=x", "/connz?limit=x", "/connz?offset=1.5", "/connz?cid=-1",
    "/connz?state=half", "/connz?sort=bogus", "/connz?sort=stop", "/connz?sort=reason",
    "/subsz?subs=detail", "/subsz?test=foo.*", "/routez?subs=maybe", "/accstatz?unused=2",
    "/healthz?js-enabled-only=x", "/varz/", "/nope",
]  # fmt: skip


@pycase(
    "monitoring.option_errors",
    doc="bad query options and unknown paths: the same status, content type and text as 2.14",
    kinds=with_(REFERENCE),
)
async def option_errors(ctx: CaseContext) -> None:
    for path in _ERRORS:
        got, want = await _both(ctx, path)
        if ctx.target.name != REFERENCE:
            _same(ctx, path, got, want)


@pycase(
    "monitoring.jsonp",
    doc="?callback=f answers f(<json>) as application/javascript without the CORS header",
    kinds=with_(REFERENCE),
)
async def jsonp(ctx: CaseContext) -> None:
    for path in ("/varz?callback=f", "/connz?callback=cb&limit=1", "/healthz?callback=h"):
        got, want = await _both(ctx, path)
        if ctx.target.name != REFERENCE:
            _same(ctx, path, got, want, body=False)
        name = path.split("callback=")[1].split("&")[0]
        body = got[3]
        ctx.check(body.startswith(name.encode() + b"(") and body.endswith(b")"), f"GET {path}: JSONP", name + "(...)", body[:40])
    got, want = await _both(ctx, "/healthz?callback=h")
    if ctx.target.name != REFERENCE:
        ctx.check(got[3] == want[3], "GET /healthz?callback=h body", want[3], got[3])


@pycase(
    "monitoring.redirect",
    doc="an unclean path (//varz) is a 307 to the clean one, as Go's ServeMux",
    kinds=with_(REFERENCE),
)
async def redirect(ctx: CaseContext) -> None:
    s = await ctx.shared_server(http=True)
    status, headers, _ = await ctx.http_get(s, "//varz?x=1")
    want = 301 if ctx.target.profile == "go29" else 307  # Go before 1.22's ServeMux: 301
    ctx.check(status == want, "GET //varz status", want, status)
    ctx.check(headers.get("location") == "/varz?x=1", "Location", "/varz?x=1", headers.get("location"))


async def _named_clients(ctx: CaseContext, s: ServerProcess) -> list[Any]:
    """Three clients with traffic that orders them differently by each sort key."""
    a = await client(ctx, s, "a", {"name": "a"})
    b = await client(ctx, s, "b", {"name": "b"})
    c = await client(ctx, s, "c", {"name": "c"})
    await a.send(b"SUB x 1\r\nSUB y 2\r\nSUB z 3\r\n")
    await until_pong(a)
    await b.send(b"PUB nowhere 3\r\nabc\r\n" * 5)
    await until_pong(b)
    await c.send(b"SUB w 1\r\nPUB x 1\r\nq\r\nPUB x 1\r\nq\r\n")
    await until_pong(c)
    # Every sort key tells them apart (Go's sort is not stable: ties could come in any order).
    await a.send(b"PUB w 4\r\nabcd\r\n")
    await until_pong(a)
    return [a, b, c]


_SORTS = ["cid", "start", "subs", "msgs_from", "bytes_from", "msgs_to", "bytes_to", "uptime"]


@pycase(
    "monitoring.connz_sorts",
    doc="/connz?sort=...: the same order as 2.14 for the same three clients and traffic",
    kinds=with_(REFERENCE),
)
async def connz_sorts(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    ref = s if ctx.target.name == REFERENCE else await ctx.start_server(REFERENCE, http=True)
    for srv in {id(s): s, id(ref): ref}.values():
        await _named_clients(ctx, srv)

    async def order(srv: ServerProcess, sort: str) -> list[str]:
        z = await ctx.http_json(srv, f"/connz?sort={sort}")
        return [x.get("name") for x in z["connections"]]

    for sort in _SORTS:
        got, want = await order(s, sort), await order(ref, sort)
        ctx.check(got == want, f"/connz?sort={sort} order", want, got)


@pycase(
    "monitoring.connz_closed_states",
    doc="/connz?state=closed|any with sort=stop|reason, paging and totals as 2.14",
    kinds=with_(REFERENCE),
)
async def connz_closed_states(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    ref = s if ctx.target.name == REFERENCE else await ctx.start_server(REFERENCE, http=True)
    async def closed_total(srv: ServerProcess, n: int) -> None:
        async def probe() -> Any:
            z = await ctx.http_json(srv, "/connz?state=closed")
            return True if z["total"] == n else f"closed total {z['total']}"

        await ctx.eventually(probe, 3, f"{n} closed connection(s)")

    for srv in {id(s): s, id(ref): ref}.values():
        a, b, c = await _named_clients(ctx, srv)
        # One after the other: ties in sort=reason keep the order they closed in.
        await b.close()
        await closed_total(srv, 1)
        await c.close()

    async def closed(srv: ServerProcess, path: str) -> Any:
        await closed_total(srv, 2)
        z = await ctx.http_json(srv, path)
        return z["total"], z["num_connections"], z["offset"], z["limit"], [
            (x.get("name"), x.get("reason"), "stop" in x, x.get("subscriptions")) for x in z["connections"]
        ]

    for path in ("/connz?state=closed", "/connz?state=closed&sort=reason", "/connz?state=any",
                 "/connz?state=all&limit=1&offset=1", "/connz?state=closed&subs=1", "/connz?state=any&cid=1"):  # fmt: skip
        got, want = await closed(s, path), await closed(ref, path)
        ctx.check(got == want, f"GET {path}", want, got)
    got = await ctx.http_json(s, "/connz?state=closed&subs=detail")
    detail = [x.get("subscriptions_list_detail") for x in got["connections"] if x.get("name") == "c"]
    ctx.check(bool(detail and detail[0]), "a closed connection keeps its subscriptions' detail", "[...]", detail)


@pycase(
    "monitoring.connz_filters",
    doc="/connz?user= and ?acc= with two users in an account: totals and lists as 2.14",
    kinds=with_(REFERENCE),
)
async def connz_filters(ctx: CaseContext) -> None:
    conf = ("accounts { A { users = [ {user: alice, password: pa}, {user: bob, password: pb} ] } }\n"
            "no_auth_user: alice\n")  # fmt: skip
    s = await ctx.start_server(http=True, config=conf)
    ref = s if ctx.target.name == REFERENCE else await ctx.start_server(REFERENCE, http=True, config=conf)
    for srv in {id(s): s, id(ref): ref}.values():
        await client(ctx, srv, "a", {"name": "A", "user": "alice", "pass": "pa"})
        await client(ctx, srv, "b", {"name": "B", "user": "bob", "pass": "pb"})

    async def view(srv: ServerProcess, path: str) -> Any:
        z = await ctx.http_json(srv, path)
        conns = z["connections"]
        names = None if conns is None else [(x.get("name"), x.get("authorized_user"), x.get("account")) for x in conns]
        return z["total"], z["num_connections"], names

    for path in ("/connz?user=bob", "/connz?user=bob&auth=1", "/connz?acc=A&auth=true", "/connz?acc=nope",
                 "/connz?mqtt_client=x", "/connz?limit=1&offset=1&auth=1"):  # fmt: skip
        got, want = await view(s, path), await view(ref, path)
        ctx.check(got == want, f"GET {path}", want, got)


@pycase(
    "monitoring.varz_counters_values",
    doc="/varz counters after the same traffic: connections, subscriptions, in/out msgs and bytes as 2.14",
    kinds=with_(REFERENCE),
)
async def varz_counters_values(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True)
    ref = s if ctx.target.name == REFERENCE else await ctx.start_server(REFERENCE, http=True)
    keys = ("connections", "total_connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "slow_consumers",
            "stale_connections", "stalled_clients")  # fmt: skip

    async def counters(srv: ServerProcess) -> Any:
        before = await ctx.http_json(srv, "/varz")
        clients = await _named_clients(ctx, srv)
        await clients[2].close()

        async def probe() -> Any:
            v = await ctx.http_json(srv, "/varz")
            return v if v["connections"] == 2 else "connections still 3"

        v = await ctx.eventually(probe, 3, "a client gone")
        out = {k: v.get(k, 0) - before.get(k, 0) for k in keys}
        out["subscriptions"] = v["subscriptions"] - before["subscriptions"]
        out["slow_consumer_stats"] = v.get("slow_consumer_stats")
        out["stale_connection_stats"] = v.get("stale_connection_stats")
        return out

    got = await counters(s)
    want = got if ref is s else await counters(ref)
    if ctx.target.profile == "go29":
        for k in ("stale_connections", "stalled_clients", "slow_consumer_stats", "stale_connection_stats"):
            got.pop(k, None)
            want.pop(k, None)
    ctx.check(got == want, "/varz counters after the same traffic", want, got)

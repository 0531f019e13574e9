"""Accounts beyond transcripts: configurations nats-server refuses at startup, and the system
account's request subjects ($SYS.REQ.SERVER.PING, $SYS.REQ.SERVER.<id>.VARZ ...).

The answers of the system account are compared by key set (and value types) with nats-server
2.14 started alongside with the same configuration; values that differ per run (ids, times,
counters) are not compared. The control line of a system reply is checked byte for byte: the
server's internal client writes it with two spaces before the size (``MSG inbox 1  596``).
"""

from __future__ import annotations

import json
from typing import Any

from ..conn import Conn
from ..context import CaseContext
from ..registry import pycase
from ..runner import REFERENCE
from ..schemas import flatten_signature, json_signature
from ..targets import ServerProcess
from ._util import client, until_pong
from .cli import run_cmd

SYS_CONF = """accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  A { users = [ {user: a, password: a} ] }
}
system_account: SYS
"""

# Subtrees whose inner keys depend on features or on the server's history.
SKIP = (
    "server.feature_flags",
    "data.jetstream",
    "data.gateway",
    "data.leaf",
    "data.mqtt",
    "data.websocket",
    "data.feature_flags",
    "data.http_req_stats",
    "data.cluster",
)

# Keys 2.14 has and 2.9 lacks, per request (expected differences for the go29 profile).
GO29_MISSING: dict[str, set[str]] = {
    "common": {"server.feature_flags", "server.flags"},
    "PING": {"statsz.gomaxprocs"},
    "VARZ": {
        "data.config_digest",
        "data.feature_flags",
        "data.git_commit",
        "data.slow_consumer_stats",
        "data.slow_consumer_stats.clients",
        "data.slow_consumer_stats.gateways",
        "data.slow_consumer_stats.leafs",
        "data.slow_consumer_stats.routes",
        "data.stale_connection_stats",
        "data.stale_connection_stats.clients",
        "data.stale_connection_stats.gateways",
        "data.stale_connection_stats.leafs",
        "data.stale_connection_stats.routes",
        "data.stale_connections",
        "data.stalled_clients",
    },
    "HEALTHZ": {"data.status_code"},
}
GO29_EXTRA: dict[str, set[str]] = {}


# ---------------------------------------------------------------------------- config errors
def _config_error_case(name: str, conf: str, message: str, doc: str) -> None:
    @pycase(f"accounts.config.{name}", doc=doc)
    async def case(ctx: CaseContext) -> None:
        f = ctx.workdir / f"acc-{name}-{id(ctx)}.conf"
        f.write_text(conf)
        rc, out, err = await run_cmd(ctx, ["-c", str(f), "-a", "127.0.0.1", "-p", "-1"])
        text = (out + err).strip()
        ctx.check(rc == 1, "exit code", 1, rc)
        ctx.check(message in text, "the error message", message, text)

    case.__name__ = f"config_{name}"


_config_error_case(
    "stream_import_not_exported",
    """accounts {
  A { users = [ {user: a, password: a} ], exports = [ {stream: "pub.>"} ] }
  B { users = [ {user: b, password: b} ], imports = [ {stream: {account: A, subject: "other.>"}} ] }
}
""",
    'Error adding stream import "other.>": stream import not authorized',
    "an import of a subject A does not export: the server refuses to start (exit 1)",
)
_config_error_case(
    "stream_import_private_not_allowed",
    """accounts {
  A { users = [ {user: a, password: a} ], exports = [ {stream: "priv.>", accounts: [C]} ] }
  B { users = [ {user: b, password: b} ], imports = [ {stream: {account: A, subject: "priv.>"}} ] }
  C { }
}
""",
    'Error adding stream import "priv.>": stream import not authorized',
    "B imports a private export meant for C only: the server refuses to start",
)
_config_error_case(
    "service_import_not_exported",
    """accounts {
  A { users = [ {user: a, password: a} ], exports = [ {service: "svc"} ] }
  B { users = [ {user: b, password: b} ], imports = [ {service: {account: A, subject: "other"}} ] }
}
""",
    'Error adding service import "other": service import not authorized',
    "a service import of a subject A does not export: the server refuses to start",
)
_config_error_case(
    "import_unknown_account",
    """accounts {
  B { users = [ {user: b, password: b} ], imports = [ {service: {account: Z, subject: "other"}} ] }
}
""",
    '"Z" account not defined for service import',
    "an import from an account that does not exist: the server refuses to start",
)


# ---------------------------------------------------------------------------- system account
async def _request(ctx: CaseContext, c: Conn, subject: str) -> tuple[bytes, Any]:
    """Publish a request with reply ``inbox`` (sid 1 subscribed); return the reply's control line
    and its JSON. The system account answers from its own send loop, after the PONG to a PING
    that follows the request: wait for the frame, then a short quiet period (one reply only)."""
    await c.send(f"PUB {subject} inbox 0\r\n\r\n".encode())
    frame = await c.read_frame(ctx.timeout)
    if not frame.startswith(b"MSG "):
        ctx.fail(f"no reply to {subject}", b"MSG inbox 1 ...", frame)
    head, _, rest = frame.partition(b"\r\n")
    body = rest[:-2]
    await c.expect_nothing(0.1)
    try:
        return head, json.loads(body)
    except ValueError:
        ctx.fail(f"the reply to {subject} is not JSON", None, body[:300])


async def _no_answer(ctx: CaseContext, c: Conn, subject: str) -> None:
    await c.send(f"PUB {subject} inbox 0\r\n\r\n".encode())
    await c.expect_nothing(0.4)


async def _sys_client(ctx: CaseContext, s: ServerProcess, user: str = "sys") -> Conn:
    c = await client(ctx, s, f"{user}-{s.target.name}", {"user": user, "pass": user})
    await c.send(b"SUB inbox 1\r\n")
    await until_pong(c)
    return c


def _compare_keys(ctx: CaseContext, what: str, got: Any, ref: Any, kind: str) -> None:
    g = flatten_signature(json_signature(got), skip=SKIP)
    r = flatten_signature(json_signature(ref), skip=SKIP)
    only_ref, only_got = set(r) - set(g), set(g) - set(r)
    if ctx.target.profile == "go29":
        only_ref -= GO29_MISSING["common"] | GO29_MISSING.get(kind, set())
        only_got -= GO29_EXTRA.get(kind, set())
    types = sorted(f"{k}: {g[k]} (2.14: {r[k]})" for k in set(g) & set(r) if g[k] != r[k])
    problems = []
    if only_ref:
        problems.append(f"missing keys {sorted(only_ref)}")
    if only_got:
        problems.append(f"extra keys {sorted(only_got)}")
    if types:
        problems.append(f"type differences {types}")
    if problems:
        ctx.fail(f"{what}: key set differs from {REFERENCE}: " + "; ".join(problems))


async def _sys_pair(ctx: CaseContext) -> tuple[ServerProcess, ServerProcess]:
    s = await ctx.shared_server(config=SYS_CONF)
    ref = s if ctx.target.name == REFERENCE else await ctx.shared_server(REFERENCE, config=SYS_CONF)
    return s, ref


def _sys_request_case(kind: str, subject: str, doc: str, control: str | None = None) -> None:
    @pycase(f"accounts.system.{kind.lower().replace('.', '_')}", doc=doc, timeout=3)
    async def case(ctx: CaseContext) -> None:
        s, ref = await _sys_pair(ctx)
        answers = []
        for srv in (s, ref) if ref is not s else (s,):
            c = await _sys_client(ctx, srv)
            sid = await _server_id(ctx, c)
            subj = subject.replace("<id>", sid)
            head, obj = await _request(ctx, c, subj)
            want = (control or "MSG inbox 1  {n}").format(n=head.split()[-1].decode())
            ctx.check(head.decode() == want, f"reply control line ({srv.target.name})", want, head)
            ctx.check(
                isinstance(obj, dict) and obj.get("server", {}).get("id") == sid,
                "server.id is the answering server's id",
                sid,
                json.dumps(obj)[:200],
            )
            answers.append(obj)
        if len(answers) == 2:
            _compare_keys(ctx, subject, answers[0], answers[1], kind.split(".")[-1])

    case.__name__ = f"sys_{kind.lower()}"


async def _server_id(ctx: CaseContext, c: Conn) -> str:
    """The server id, from the answer to $SYS.REQ.SERVER.PING."""
    _, obj = await _request(ctx, c, "$SYS.REQ.SERVER.PING")
    return str(obj["server"]["id"])


_sys_request_case(
    "PING",
    "$SYS.REQ.SERVER.PING",
    "a system user's $SYS.REQ.SERVER.PING: one statsz reply {server, statsz}; control line `MSG inbox 1  N` (two spaces)",
)
for _k in ("VARZ", "CONNZ", "SUBSZ", "HEALTHZ"):
    _sys_request_case(
        _k,
        f"$SYS.REQ.SERVER.<id>.{_k}",
        f"$SYS.REQ.SERVER.<id>.{_k} from the system account: {{server, data}} with the /{_k.lower()} keys",
    )
_sys_request_case(
    "PING.CONNZ",
    "$SYS.REQ.SERVER.PING.CONNZ",
    "$SYS.REQ.SERVER.PING.CONNZ from the system account",
)


@pycase(
    "accounts.system.not_for_other_accounts",
    doc="a user of account A gets no answer to $SYS.REQ.SERVER.PING or $SYS.REQ.SERVER.<id>.VARZ",
    timeout=3,
)
async def sys_not_for_others(ctx: CaseContext) -> None:
    s = await ctx.shared_server(config=SYS_CONF)
    sysc = await _sys_client(ctx, s)
    sid = await _server_id(ctx, sysc)
    a = await _sys_client(ctx, s, "a")
    for subj in ("$SYS.REQ.SERVER.PING", f"$SYS.REQ.SERVER.{sid}.VARZ"):
        await _no_answer(ctx, a, subj)


@pycase(
    "accounts.system.account_connz",
    doc="a user of account A may ask $SYS.REQ.SERVER.PING.CONNZ (imported into every account): "
    "the answer lists only A's connections; control line with one space (it comes back through the service import)",
    timeout=3,
)
async def sys_account_connz(ctx: CaseContext) -> None:
    s = await ctx.shared_server(config=SYS_CONF)
    await _sys_client(ctx, s)  # a connection of the system account, which A must not see
    a = await _sys_client(ctx, s, "a")
    head, obj = await _request(ctx, a, "$SYS.REQ.SERVER.PING.CONNZ")
    want = f"MSG inbox 1 {head.split()[-1].decode()}"
    ctx.check(head.decode() == want, "reply control line", want, head)
    conns = obj.get("data", {}).get("connections") or []
    ctx.check(len(conns) == 1, "only A's own connection is listed", 1, json.dumps(conns)[:300])


@pycase(
    "accounts.system.user_info",
    doc="$SYS.REQ.USER.INFO from account A: 2.14 answers {server, data:{user, account, account_name}}; 2.9 does not answer",
    timeout=3,
)
async def sys_user_info(ctx: CaseContext) -> None:
    s = await ctx.shared_server(config=SYS_CONF)
    a = await _sys_client(ctx, s, "a")
    if ctx.target.profile == "go29":
        await _no_answer(ctx, a, "$SYS.REQ.USER.INFO")
        return
    head, obj = await _request(ctx, a, "$SYS.REQ.USER.INFO")
    data = obj.get("data")
    ctx.check(
        data == {"user": "a", "account": "A", "account_name": "A"},
        "data",
        {"user": "a", "account": "A", "account_name": "A"},
        data,
    )

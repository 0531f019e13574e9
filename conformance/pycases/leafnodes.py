"""Leaf node protocol with a fake peer, both ways.

`leafnode.accept.*`: the server listens for leafs (`leafnodes { listen }`), the case is a leaf
connecting to it: INFO, CONNECT, the INFO with `connect_info`, LS+ (with `$LDS.`), interest
updates, LMSG/HMSG both ways with queue groups, loop detection, wrong-port refusals.
`leafnode.solicit.*`: the server has a remote pointing at a listener of the case, which plays
the hub: the server's CONNECT, its LS+, messages both ways.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..conn import Conn, Mismatch
from ..context import HOST, CaseContext
from ..registry import pycase
from ._util import client, flush, until_pong

LEAF_LISTEN = 'leafnodes { listen: "127.0.0.1:-1" }'
LDS_RE = re.compile(rb"LS\+ \$LDS\.[0-9A-Za-z]{22}\r\n")


async def leaf_port(ctx: CaseContext, config: str = LEAF_LISTEN) -> tuple[Any, int]:
    s = await ctx.start_server(config=config)
    m = await s.wait_log(r"Listening for leafnode connections on (\S+):(\d+)", ctx.timeout)
    return s, int(m.group(2))


async def open_leaf(ctx: CaseContext, port: int, name: str = "l") -> tuple[Conn, dict[str, Any]]:
    c = await Conn.open(name, HOST, port, ctx.timeout)
    ctx._extra_conns.append(c)  # closed with the case
    line = await c.read_line()
    if not line.startswith(b"INFO "):
        ctx.fail("the leaf port must start with INFO", "INFO {...}", line)
    return c, json.loads(line[5:])


def leaf_connect(**extra: Any) -> bytes:
    co = {"version": "2.14.0", "server_id": "NFAKELEAF", "name": "FAKELEAF", "headers": True,
          "remote_account": "$G", "protocol": 1}
    co.update(extra)
    return b"CONNECT " + json.dumps(co).encode() + b"\r\n"


async def handshake(ctx: CaseContext, c: Conn) -> tuple[dict[str, Any], list[bytes]]:
    """CONNECT; returns the INFO that follows it and the LS+ lines sent before our PONG."""
    await c.send(leaf_connect())
    line = await c.read_line()
    if not line.startswith(b"INFO "):
        ctx.fail("after CONNECT the hub sends an INFO (connect_info)", "INFO {...}", line)
    info = json.loads(line[5:])
    frames = await until_pong(c)
    lines = [ln + b"\r\n" for ln in frames.split(b"\r\n") if ln]
    return info, lines


@pycase("leafnode.accept.info", doc="the INFO on the leaf port: auth required, a nonce, client_id, leafnode_urls, info_on_connect")
async def accept_info(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx)
    _, info = await open_leaf(ctx, port)
    ctx.check(info.get("auth_required") is True, "auth_required", True, info.get("auth_required"))
    ctx.check(info.get("info_on_connect") is True, "info_on_connect", True, info.get("info_on_connect"))
    ctx.check(bool(info.get("nonce")), "a nonce", "nonce", info)
    ctx.check(isinstance(info.get("client_id"), int) and info["client_id"] > 0, "client_id", ">0", info.get("client_id"))
    ctx.check(info.get("leafnode_urls") == [f"127.0.0.1:{port}"], "leafnode_urls", [f"127.0.0.1:{port}"], info.get("leafnode_urls"))
    ctx.check(info.get("ip") == f"127.0.0.1:{port}", "ip is host:port", f"127.0.0.1:{port}", info.get("ip"))
    ctx.check(info.get("port") == port and info.get("host") == "127.0.0.1", "host/port", port, info)
    for k in ("connect_urls", "connect_info", "remote_account", "client_ip", "tls_available"):
        ctx.check(k not in info, f"{k} is not in the first leaf INFO", None, info)


@pycase("leafnode.accept.connect_info_and_lds", doc="after CONNECT: INFO with connect_info and remote_account, then LS+ including $LDS.<22>")
async def accept_connect_info(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx)
    c, first = await open_leaf(ctx, port)
    info, lines = await handshake(ctx, c)
    ctx.check(info.get("connect_info") is True, "connect_info", True, info)
    ctx.check(info.get("remote_account") == "$G", "remote_account", "$G", info.get("remote_account"))
    ctx.check(info.get("client_id") == first.get("client_id"), "same client_id", first.get("client_id"), info.get("client_id"))
    ctx.check("nonce" not in info, "no nonce in the second INFO", None, info)
    ctx.check(all(ln.startswith(b"LS+ ") for ln in lines), "only LS+ before PONG", "LS+ ...", b"".join(lines))
    lds = [ln for ln in lines if LDS_RE.fullmatch(ln)]
    ctx.check(len(lds) == 1, "one $LDS subject", "LS+ $LDS.<22 chars>", b"".join(lines))


@pycase("leafnode.accept.interest_updates", doc="client SUB/UNSUB on the hub: LS+ subject, LS+ subject queue N (the weight), LS-")
async def accept_interest(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    await handshake(ctx, leaf)
    c = await client(ctx, s)
    await c.send(b"SUB foo 1\r\nSUB bar q 2\r\n")
    await flush(c)
    await leaf.expect_unordered([b"LS+ foo\r\n", b"LS+ bar q 1\r\n"])
    await c.send(b"SUB bar q 3\r\nSUB foo 4\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LS+ bar q 2\r\n")
    await c.send(b"UNSUB 3\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LS+ bar q 1\r\n")
    await c.send(b"UNSUB 2\r\nUNSUB 1\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LS- bar q\r\n")
    await c.send(b"UNSUB 4\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LS- foo\r\n")
    await leaf.expect_nothing(0.2)


@pycase("leafnode.accept.messages_to_leaf", doc="LMSG and HMSG to a leaf: plain, reply, headers, a queue group picked for the leaf (| q, + reply q)")
async def accept_to_leaf(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    await handshake(ctx, leaf)
    await leaf.send(b"LS+ foo\r\nLS+ bar g 1\r\n")
    await flush(leaf)
    c = await client(ctx, s, connect={"headers": True})
    await c.send(b"PUB foo 2\r\nhi\r\nPUB foo rep 2\r\nhi\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                 b"PUB bar 2\r\nhi\r\nPUB bar rep 2\r\nhi\r\nHPUB bar rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LMSG foo 2\r\nhi\r\nLMSG foo rep 2\r\nhi\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                            b"LMSG bar | g 2\r\nhi\r\nLMSG bar + rep g 2\r\nhi\r\nHMSG bar + rep g 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")


@pycase("leafnode.accept.messages_from_leaf", doc="LMSG/HMSG from a leaf reach local subscribers; queue members only for groups the LMSG names")
async def accept_from_leaf(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    await handshake(ctx, leaf)
    c = await client(ctx, s, connect={"headers": True, "protocol": 1})
    await c.send(b"SUB foo 1\r\nSUB work g 2\r\n")
    await flush(c)
    await leaf.expect_unordered([b"LS+ foo\r\n", b"LS+ work g 1\r\n"])
    await leaf.send(b"LMSG foo 2\r\nhi\r\nLMSG foo rep 2\r\nhi\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                    b"LMSG work 3\r\nnoq\r\nLMSG work | g 2\r\nq1\r\nLMSG work + rep g 2\r\nq2\r\nLMSG work | other 2\r\nq3\r\n")
    await flush(leaf)
    await c.expect_bytes(b"MSG foo 1 2\r\nhi\r\nMSG foo 1 rep 2\r\nhi\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                         b"MSG work 2 2\r\nq1\r\nMSG work 2 rep 2\r\nq2\r\n")
    await c.expect_nothing(0.2)


@pycase("leafnode.accept.loop_detected", doc="a leaf that sends back the hub's own $LDS subject: -ERR 'Loop detected ...' and close")
async def accept_loop(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    _, lines = await handshake(ctx, leaf)
    lds = next((ln for ln in lines if LDS_RE.fullmatch(ln)), None)
    if lds is None:
        ctx.fail("no $LDS subject", "LS+ $LDS...", b"".join(lines))
    await leaf.send(lds)
    await leaf.expect_bytes(b"-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n")
    await leaf.expect_close()


@pycase("leafnode.accept.client_on_leaf_port", doc="a client CONNECT (with lang) on the leaf port")
async def accept_client(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    await leaf.send(b'CONNECT {"lang":"go","verbose":false,"pedantic":false}\r\n')
    await leaf.expect_bytes(b"-ERR 'attempted to connect to leaf node port'\r\n")
    await leaf.expect_close()


@pycase("leafnode.accept.ops_before_connect", doc="LS+ before CONNECT: Authorization Violation")
async def accept_before_connect(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx)
    leaf, _ = await open_leaf(ctx, port)
    await leaf.send(b"LS+ foo\r\n")
    await leaf.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await leaf.expect_close()


@pycase("leafnode.accept.bad_password", doc="leafnodes authorization: a wrong password is refused")
async def accept_bad_password(ctx: CaseContext) -> None:
    _, port = await leaf_port(ctx, 'leafnodes { listen: "127.0.0.1:-1", authorization { user: leaf, password: secret } }')
    leaf, _ = await open_leaf(ctx, port)
    await leaf.send(leaf_connect(user="leaf", **{"pass": "nope"}))
    await leaf.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await leaf.expect_close()


# -- the server dials us: we are its hub ------------------------------------------------------


def hub_info(port: int, **extra: Any) -> bytes:
    info = {"server_id": "NFAKEHUBSERVERIDXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "server_name": "FAKEHUB",
            "version": "2.14.0", "proto": 1, "go": "go1.22", "host": "127.0.0.1", "port": port, "headers": True,
            "auth_required": True, "max_payload": 1048576, "ip": f"127.0.0.1:{port}", "client_id": 7,
            "nonce": "abcdefghijklmno", "info_on_connect": True, "leafnode_urls": [f"127.0.0.1:{port}"]}
    info.update(extra)
    return b"INFO " + json.dumps(info).encode() + b"\r\n"


async def solicited(ctx: CaseContext) -> tuple[Any, Conn, dict[str, Any]]:
    lst = await ctx.listener("hub")
    s = await ctx.start_server(config=f'leafnodes {{ remotes [ {{ url: "nats-leaf://127.0.0.1:{lst.port}" }} ] }}')
    hub = await lst.accept("hub", ctx.timeout)
    ctx._extra_conns.append(hub)
    await hub.send(hub_info(lst.port))
    line = await hub.read_line()
    m = re.fullmatch(rb"CONNECT (\{.*\})\r\n", line)
    if m is None:
        ctx.fail("a leaf sends CONNECT after the hub's INFO", "CONNECT {...}", line)
    return s, hub, json.loads(m.group(1))


@pycase("leafnode.solicit.connect", doc="the leaf's CONNECT: no lang, its name and id, headers, remote_account")
async def solicit_connect(ctx: CaseContext) -> None:
    _, _, co = await solicited(ctx)
    ctx.check("lang" not in co, "no lang in a leaf CONNECT", None, co)
    # 2.9 does not send remote_account; later servers (and pynats-server) do.
    ctx.check(co.get("remote_account", "$G") == "$G", "remote_account", "$G", co.get("remote_account"))
    ctx.check(co.get("headers") is True, "headers", True, co.get("headers"))
    ctx.check(bool(co.get("server_id")) and bool(co.get("name")), "server_id and name", "set", co)
    ctx.check(co.get("version", "").startswith("2."), "version", "2.x", co.get("version"))
    for k in ("verbose", "pedantic", "echo", "is_hub", "user", "pass"):
        ctx.check(k not in co, f"no {k} in the CONNECT", None, co)


@pycase("leafnode.solicit.interest_after_connect_info", doc="the leaf sends its interest ($LDS included) after the hub's connect_info INFO")
async def solicit_interest(ctx: CaseContext) -> None:
    s, hub, _ = await solicited(ctx)
    c = await client(ctx, s)
    await c.send(b"SUB up 1\r\nSUB upq g 2\r\n")
    await flush(c)
    try:
        await hub.expect_nothing(0.3)
    except Mismatch:
        if not hub.pending.startswith(b"PING"):
            raise
    hub.ignore.append(re.compile(rb"LS\+ \$SYS\..*"))
    await hub.send(hub_info(1, connect_info=True, remote_account="$G", nonce=""))
    got = await until_pong(hub)
    lines = sorted(ln for ln in got.split(b"\r\n") if ln)
    ctx.check(any(LDS_RE.fullmatch(ln + b"\r\n") for ln in lines), "an $LDS subject", "LS+ $LDS...", got)
    rest = [ln for ln in lines if not ln.startswith(b"LS+ $LDS.")]
    ctx.check(rest == [b"LS+ up", b"LS+ upq g 1"], "the leaf's interest", [b"LS+ up", b"LS+ upq g 1"], rest)


@pycase("leafnode.solicit.messages", doc="messages both ways through a solicited connection: LMSG in, LMSG/HMSG out with queue names")
async def solicit_messages(ctx: CaseContext) -> None:
    s, hub, _ = await solicited(ctx)
    hub.ignore.append(re.compile(rb"LS\+ \$SYS\..*"))
    await hub.send(hub_info(1, connect_info=True, remote_account="$G", nonce=""))
    await until_pong(hub)
    c = await client(ctx, s, connect={"headers": True, "protocol": 1})
    await c.send(b"SUB down 1\r\n")
    await flush(c)
    await hub.expect_bytes(b"LS+ down\r\n")
    await hub.send(b"LMSG down 2\r\nhi\r\nLMSG down rep 2\r\nhi\r\nHMSG down 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await c.expect_bytes(b"MSG down 1 2\r\nhi\r\nMSG down 1 rep 2\r\nhi\r\nHMSG down 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await hub.send(b"LS+ hubsub\r\nLS+ hubq g 1\r\n")
    await flush(hub)
    await c.send(b"PUB hubsub 2\r\nhi\r\nHPUB hubsub rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB hubq 2\r\nhi\r\n")
    await flush(c)
    await hub.expect_bytes(b"LMSG hubsub 2\r\nhi\r\nHMSG hubsub rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\nLMSG hubq | g 2\r\nhi\r\n")


@pycase("leafnode.solicit.wrong_port", doc="a hub whose INFO has no leafnode_urls (a client port): the leaf closes")
async def solicit_wrong_port(ctx: CaseContext) -> None:
    lst = await ctx.listener("hub")
    await ctx.start_server(config=f'leafnodes {{ remotes [ {{ url: "nats-leaf://127.0.0.1:{lst.port}" }} ] }}')
    hub = await lst.accept("hub", ctx.timeout)
    ctx._extra_conns.append(hub)
    info = json.loads(hub_info(lst.port)[5:])
    del info["leafnode_urls"]
    await hub.send(b"INFO " + json.dumps(info).encode() + b"\r\n")
    await hub.expect_close()


# -- what an accepted leaf may do: its user's permissions, nkeys, JWTs ------------------------

# A leaf user that may publish (send into the hub) up.> but not up.secret, and subscribe
# (receive from the hub) down.> but not down.secret; and a client user for the hub's side.
PERMS_CONFIG = """
authorization { users [
  { user: leaf, password: pw, permissions: {
      publish: { allow: ["up.>"], deny: ["up.secret"] }, subscribe: { allow: ["down.>"], deny: ["down.secret"] } } },
  { user: c, password: c } ] }
leafnodes { listen: "127.0.0.1:-1" }
"""
SYS_LS = re.compile(rb"LS\+ \$SYS\..*")


async def perm_leaf(ctx: CaseContext, subs: bytes = b"") -> tuple[Any, Conn, Conn, dict[str, Any], list[bytes]]:
    """The permissions hub with a client (which subscribes `subs` first) and a leaf of user
    `leaf`: (server, client, leaf, connect_info INFO, LS+ lines without $SYS and $LDS)."""
    s, port = await leaf_port(ctx, PERMS_CONFIG)
    c = await client(ctx, s, connect={"user": "c", "pass": "c"})
    if subs:
        await c.send(subs)
        await flush(c)
    leaf, _ = await open_leaf(ctx, port)
    leaf.ignore.append(SYS_LS)
    await leaf.send(leaf_connect(user="leaf", **{"pass": "pw"}))
    line = await leaf.read_line()
    if not line.startswith(b"INFO "):
        ctx.fail("after CONNECT the hub sends an INFO (connect_info)", "INFO {...}", line)
    frames = await until_pong(leaf)
    lines = sorted(ln for ln in frames.split(b"\r\n") if ln and not ln.startswith(b"LS+ $LDS."))
    return s, c, leaf, json.loads(line[5:]), lines


@pycase("leafnode.accept.permissions_info_and_interest",
        doc="a leaf user with permissions: the INFO tells it import (its subscribe) and export (its publish); "
            "the hub sends only interest the leaf may publish to, now and later")
async def accept_perm_interest(ctx: CaseContext) -> None:
    _, c, leaf, info, lines = await perm_leaf(ctx, b"SUB up.x 1\r\nSUB up.secret 2\r\nSUB down.x 3\r\nSUB other 4\r\nSUB > 5\r\n")
    ctx.check(info.get("import") == {"allow": ["down.>"], "deny": ["down.secret"]}, "import", "the subscribe permission",
              info.get("import"))
    ctx.check(info.get("export") == {"allow": ["up.>"], "deny": ["up.secret"]}, "export", "the publish permission",
              info.get("export"))
    ctx.check(lines == [b"LS+ >", b"LS+ up.x"], "interest the leaf may publish to", [b"LS+ >", b"LS+ up.x"], lines)
    await c.send(b"SUB up.y 6\r\nSUB down.y 7\r\nSUB up.secret 8\r\nSUB up.* 9\r\n")
    await flush(c)
    await leaf.expect_unordered([b"LS+ up.y\r\n", b"LS+ up.*\r\n"])
    await leaf.expect_nothing(0.2)


@pycase("leafnode.accept.permissions_deliveries",
        doc="a leaf with interest in everything gets only what its user may subscribe to")
async def accept_perm_deliveries(ctx: CaseContext) -> None:
    _, c, leaf, _, _ = await perm_leaf(ctx)
    await leaf.send(b"LS+ >\r\n")
    await flush(leaf)
    await c.send(b"PUB down.secret 1\r\na\r\nPUB other 1\r\nb\r\nPUB up.x 1\r\nc\r\nPUB down.x 1\r\nd\r\n"
                 b"PUB down.y down.r 1\r\ne\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LMSG down.x 1\r\nd\r\nLMSG down.y down.r 1\r\ne\r\n")
    await leaf.expect_nothing(0.2)


@pycase("leafnode.accept.permissions_subscription_violation",
        doc="LS+ of a literal subject the leaf user may not subscribe to: -ERR 'Permissions Violation for "
            "Subscription to ...' and close; wildcards and permitted subjects are taken")
async def accept_perm_sub_violation(ctx: CaseContext) -> None:
    s, c, leaf, _, _ = await perm_leaf(ctx)
    await leaf.send(b"LS+ down.x\r\nLS+ >\r\nLS+ down.* q 1\r\n")
    await flush(leaf)
    start = len(s.log)
    await leaf.send(b"LS+ up.x\r\n")
    await leaf.expect_bytes(b"-ERR 'Permissions Violation for Subscription to \"up.x\"'\r\n")
    await leaf.expect_close()
    await s.wait_log(r'\[ERR\] .*Subscription Violation on "up\.x" - Check other side configuration$', ctx.timeout, start)
    await s.wait_log(r"Leafnode connection closed: Protocol Violation", ctx.timeout, start)


@pycase("leafnode.accept.permissions_publish_violation", targets="!go29",
        doc="LMSG on a subject the leaf user may not publish to: -ERR 'Permissions Violation for Publish to ...' "
            "and close (2.9 drops nothing); permitted ones reach the hub's clients")
async def accept_perm_pub_violation(ctx: CaseContext) -> None:
    s, c, leaf, _, _ = await perm_leaf(ctx)
    await c.send(b"SUB > 1\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LS+ >\r\n")
    await leaf.send(b"LMSG up.x 2\r\nok\r\n")
    await c.expect_bytes(b"MSG up.x 1 2\r\nok\r\n")
    start = len(s.log)
    await leaf.send(b"LMSG up.secret 2\r\nno\r\n")
    await leaf.expect_bytes(b"-ERR 'Permissions Violation for Publish to \"up.secret\"'\r\n")
    await leaf.expect_close()
    await s.wait_log(r'\[ERR\] .*Publish Violation on "up\.secret" - Check other side configuration$', ctx.timeout, start)
    await c.expect_nothing(0.2)


NKEY_SEED = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4EU"
OTHER_SEED = "SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM"


async def nkey_leaf(ctx: CaseContext, config: str, seed: str | None, **extra: Any) -> Conn:
    from ..nkeyutil import public_key, sign

    _, port = await leaf_port(ctx, config)
    leaf, info = await open_leaf(ctx, port)
    leaf.ignore.append(SYS_LS)
    co: dict[str, Any] = {"nkey": public_key(NKEY_SEED)}
    if seed is not None:
        co["sig"] = sign(seed, info["nonce"].encode())
    co.update(extra)
    await leaf.send(leaf_connect(**co))
    return leaf


@pycase("leafnode.accept.nkey", targets="!go29", doc="leafnodes { authorization { nkey } }: the leaf signs the nonce; it binds to the account")
async def accept_nkey(ctx: CaseContext) -> None:
    from ..nkeyutil import public_key

    config = (f'accounts {{ A {{}} }}\nleafnodes {{ listen: "127.0.0.1:-1", authorization {{ nkey: '
              f'{public_key(NKEY_SEED)}, account: A }} }}')
    leaf = await nkey_leaf(ctx, config, NKEY_SEED)
    line = await leaf.read_line()
    info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
    ctx.check(info.get("remote_account") == "A", "bound to account A", "A", line)
    bad = await nkey_leaf(ctx, config, OTHER_SEED)
    await bad.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await bad.expect_close()
    unsigned = await nkey_leaf(ctx, config, None)
    await unsigned.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await unsigned.expect_close()


@pycase("leafnode.accept.nkey_user_permissions",
        doc="a leaf that is an nkey user of the authorization block: its permissions are the leaf's")
async def accept_nkey_user(ctx: CaseContext) -> None:
    from ..nkeyutil import public_key

    config = (f'authorization {{ users [ {{ nkey: {public_key(NKEY_SEED)}, permissions: {{ publish: "up.>" }} }} ] }}\n'
              f'leafnodes {{ listen: "127.0.0.1:-1" }}')
    leaf = await nkey_leaf(ctx, config, NKEY_SEED)
    line = await leaf.read_line()
    info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
    ctx.check(info.get("export") == {"allow": ["up.>"]} and "import" not in info, "export only", {"allow": ["up.>"]}, line)
    bad = await nkey_leaf(ctx, config, OTHER_SEED)
    await bad.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await bad.expect_close()


@pycase("leafnode.accept.connection_types",
        doc="a user whose allowed_connection_types leave out LEAFNODE cannot connect a leaf; one with LEAFNODE can "
            "(and no client can)")
async def accept_conn_types(ctx: CaseContext) -> None:
    config = """authorization { users [
  { user: std, password: x, allowed_connection_types: ["STANDARD"] },
  { user: lf, password: x, allowed_connection_types: ["LEAFNODE"] } ] }
leafnodes { listen: "127.0.0.1:-1" }"""
    s, port = await leaf_port(ctx, config)
    refused, _ = await open_leaf(ctx, port, "refused")
    await refused.send(leaf_connect(user="std", **{"pass": "x"}))
    await refused.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
    await refused.expect_close()
    ok, _ = await open_leaf(ctx, port, "ok")
    await ok.send(leaf_connect(user="lf", **{"pass": "x"}))
    line = await ok.read_line()
    ctx.check(line.startswith(b"INFO ") and b'"connect_info":true' in line, "the LEAFNODE user connects", "INFO", line)
    c = await ctx.client(s, "client")
    await c.expect_info()
    await c.send(b'CONNECT {"verbose":false,"user":"lf","pass":"x"}\r\nPING\r\n')
    await c.expect_bytes(b"-ERR 'Authorization Violation'\r\n")


async def jwt_leaf(ctx: CaseContext, setup: Any, s: Any, token: str, seed: str | None, name: str = "l") -> Conn:
    from ..jwtutil import nk

    port = int((await s.wait_log(r"Listening for leafnode connections on (\S+):(\d+)", ctx.timeout)).group(2))
    leaf, info = await open_leaf(ctx, port, name)
    leaf.ignore.append(SYS_LS)
    co: dict[str, Any] = {"jwt": token}
    if seed is not None:
        co["sig"] = nk.sign_nonce(seed, info["nonce"])
    await leaf.send(leaf_connect(**co))
    return leaf


@pycase("leafnode.accept.jwt", doc="operator mode: a leaf with a user JWT and the signed nonce binds to the JWT's "
                                   "account; the INFO tells it the JWT's permissions; its traffic stays in the account")
async def accept_jwt(ctx: CaseContext) -> None:
    from ..jwtutil import JWTSetup, connect_line

    setup = JWTSetup()
    setup.account("B")
    s = await ctx.start_server(config=setup.config(extra='leafnodes { listen: "127.0.0.1:-1" }'), args=["-D"])
    seed, token = setup.user("A", pub_allow=["up.>"], sub_allow=["down.>"])
    leaf = await jwt_leaf(ctx, setup, s, token, seed)
    line = await leaf.read_line()
    info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
    ctx.check(info.get("remote_account") == setup.pub("A"), "bound to the JWT's account", setup.pub("A"), line)
    ctx.check(info.get("export") == {"allow": ["up.>"]} and info.get("import") == {"allow": ["down.>"]},
              "export/import from the JWT", {"export": {"allow": ["up.>"]}, "import": {"allow": ["down.>"]}}, line)
    await s.wait_log(r'\[DBG\] .*Authenticated JWT: Leafnode "U[A-Z0-9]+"', ctx.timeout)
    await until_pong(leaf)
    await leaf.send(b"LS+ >\r\n")
    await flush(leaf)
    users = {}
    for acc in ("A", "B"):
        useed, utoken = setup.user(acc)
        c = await ctx.client(s, f"c{acc}")
        info, _ = await c.expect_info()
        await c.send(connect_line(utoken, useed, info["nonce"]) + b"SUB up.x 1\r\nPING\r\n")
        await c.expect_bytes(b"PONG\r\n")
        users[acc] = c
    await users["B"].send(b"PUB down.x 1\r\nb\r\nPING\r\n")
    await users["B"].expect_bytes(b"PONG\r\n")
    await leaf.expect_bytes(b"LS+ up.x\r\n")  # A's subscriber (B's is in another account)
    await users["A"].send(b"PUB down.x 1\r\na\r\nPUB other 1\r\nx\r\nPING\r\n")
    await users["A"].expect_bytes(b"PONG\r\n")
    await leaf.expect_bytes(b"LMSG down.x 1\r\na\r\n")
    await leaf.send(b"LMSG up.x 2\r\nup\r\n")
    await users["A"].expect_bytes(b"MSG up.x 1 2\r\nup\r\n")
    await users["B"].expect_nothing(0.2)
    await leaf.expect_nothing(0.1)


@pycase("leafnode.accept.jwt_refusals", doc="operator mode: a leaf JWT with a bad signature, none, or one allowed "
                                            "STANDARD connections only is refused (with nats-server's debug lines)")
async def accept_jwt_refusals(ctx: CaseContext) -> None:
    from ..jwtutil import JWTSetup

    setup = JWTSetup()
    s = await ctx.start_server(config=setup.config(extra='leafnodes { listen: "127.0.0.1:-1" }'), args=["-D"])
    seed, token = setup.user("A")
    std_seed, std_token = setup.user("A", allowed_connection_types=["STANDARD"])
    for name, tok, sd, debug in (
        ("badsig", token, setup.accounts["A"]["seed"], "Signature not verified"),
        ("nosig", token, None, "Signature missing"),
        ("std", std_token, std_seed, "Connection type not allowed"),
    ):
        start = len(s.log)
        leaf = await jwt_leaf(ctx, setup, s, tok, sd, name)
        await leaf.expect_bytes(b"-ERR 'Authorization Violation'\r\n")
        await leaf.expect_close()
        await s.wait_log(rf"\[DBG\] .*{debug}$", ctx.timeout, start)
        await s.wait_log(r"\[ERR\] .*authentication error$", ctx.timeout, start)
    ok_seed, ok_token = setup.user("A", allowed_connection_types=["LEAFNODE"])
    ok = await jwt_leaf(ctx, setup, s, ok_token, ok_seed, "ok")
    line = await ok.read_line()
    ctx.check(line.startswith(b"INFO ") and b'"connect_info":true' in line, "a LEAFNODE-only user connects", "INFO", line)


@pycase("leafnode.solicit.keeps_to_import_export",
        doc="the hub's INFO tells the leaf import/export: it sends only interest it may import and messages it may "
            "export, and (2.14) drops messages it may not import")
async def solicit_import_export(ctx: CaseContext) -> None:
    s, hub, _ = await solicited(ctx)
    hub.ignore.append(SYS_LS)
    c = await client(ctx, s, connect={"headers": True, "protocol": 1})
    await c.send(b"SUB down.a 1\r\nSUB other.sub 2\r\nSUB down.secret 3\r\n")
    await flush(c)
    await hub.send(hub_info(1, connect_info=True, remote_account="$G", nonce="",
                            **{"import": {"allow": ["down.>"], "deny": ["down.secret"]},
                               "export": {"allow": ["up.>"]}}))
    got = await until_pong(hub)
    lines = sorted(ln for ln in got.split(b"\r\n") if ln and not ln.startswith(b"LS+ $LDS."))
    ctx.check(lines == [b"LS+ down.a"], "only interest the leaf may import", [b"LS+ down.a"], lines)
    await hub.send(b"LS+ up.b\r\nLS+ other.pub\r\nLS+ >\r\n")
    await flush(hub)
    await c.send(b"PUB other.pub 1\r\nx\r\nPUB up.b 1\r\ny\r\nPUB zzz 1\r\nz\r\n")
    await flush(c)
    await hub.expect_bytes(b"LMSG up.b 1\r\ny\r\n")
    await hub.expect_nothing(0.2)
    await hub.send(b"LMSG down.a 1\r\na\r\n")
    await c.expect_bytes(b"MSG down.a 1 1\r\na\r\n")
    if ctx.target.profile != "go29":
        await hub.send(b"LMSG other.sub 1\r\nb\r\nLMSG down.secret 1\r\nc\r\nLMSG down.a 1\r\nd\r\n")
        await c.expect_bytes(b"MSG down.a 1 1\r\nd\r\n")
        await c.expect_nothing(0.2)


@pycase("leafnode.accept.jetstream_denied",
        doc="every leaf: no interest in, and no messages on, the JetStream API ($JS.API.>, $KV.>, $OBJ.>) go to it; "
            "a literal LS+ of one is a violation; JetStream API requests from the leaf do reach the hub")
async def accept_js_denied(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx)
    c = await client(ctx, s)
    await c.send(b"SUB $JS.API.> 1\r\nSUB $KV.b.k 2\r\nSUB $JS.EVENT.x 3\r\nSUB $OBJ.o 4\r\n")
    await flush(c)
    leaf, _ = await open_leaf(ctx, port)
    leaf.ignore.append(SYS_LS)
    _, lines = await handshake(ctx, leaf)
    rest = sorted(ln for ln in lines if not LDS_RE.fullmatch(ln))
    ctx.check(rest == [b"LS+ $JS.EVENT.x\r\n"], "no JetStream API interest", [b"LS+ $JS.EVENT.x\r\n"], rest)
    await leaf.send(b"LS+ >\r\n")
    await flush(leaf)
    p = await client(ctx, s, "p")
    await p.send(b"PUB $JS.API.INFO 1\r\na\r\nPUB $KV.b.k 1\r\nb\r\nPUB $JS.EVENT.y 1\r\nc\r\n")
    await flush(p)
    await leaf.expect_bytes(b"LMSG $JS.EVENT.y 1\r\nc\r\n")
    await c.expect_bytes(b"MSG $JS.API.INFO 1 1\r\na\r\nMSG $KV.b.k 2 1\r\nb\r\n")
    await leaf.send(b"LMSG $JS.API.STREAM.INFO.x 1\r\nd\r\n")
    await c.expect_bytes(b"MSG $JS.API.STREAM.INFO.x 1 1\r\nd\r\n")
    await leaf.send(b"LS+ $JS.API.INFO\r\n")
    await leaf.expect_bytes(b"-ERR 'Permissions Violation for Subscription to \"$JS.API.INFO\"'\r\n")
    await leaf.expect_close()


@pycase("leafnode.solicit.jetstream_denied",
        doc="a leaf tells its hub of no JetStream API interest, sends it no JetStream API messages, and (2.14) takes "
            "none from it")
async def solicit_js_denied(ctx: CaseContext) -> None:
    s, hub, _ = await solicited(ctx)
    hub.ignore.append(SYS_LS)
    c = await client(ctx, s)
    await c.send(b"SUB $JS.API.INFO 1\r\nSUB $KV.b.> 2\r\nSUB $JS.EVENT.x 3\r\n")
    await flush(c)
    await hub.send(hub_info(1, connect_info=True, remote_account="$G", nonce=""))
    got = await until_pong(hub)
    lines = sorted(ln for ln in got.split(b"\r\n") if ln and not ln.startswith(b"LS+ $LDS."))
    ctx.check(lines == [b"LS+ $JS.EVENT.x"], "no JetStream API interest", [b"LS+ $JS.EVENT.x"], lines)
    await hub.send(b"LS+ $JS.API.>\r\nLS+ $JS.EVENT.>\r\n")
    await flush(hub)
    await c.send(b"PUB $JS.API.STREAM.LIST 1\r\nx\r\nPUB $JS.EVENT.y 1\r\ny\r\n")
    await flush(c)
    await hub.expect_bytes(b"LMSG $JS.EVENT.y 1\r\ny\r\n")  # and not the API request
    if ctx.target.profile != "go29":
        await hub.send(b"LMSG $JS.API.INFO 1\r\na\r\nLMSG $JS.EVENT.x 1\r\nb\r\n")
        await c.expect_bytes(b"MSG $JS.EVENT.x 3 1\r\nb\r\n")
        await c.expect_nothing(0.2)


@pycase("leafnode.accept.max_subscriptions",
        doc="max_subscriptions holds for a leaf's LS+ too: -ERR 'maximum subscriptions exceeded', the connection stays")
async def accept_max_subs(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx, 'max_subscriptions: 2\nleafnodes { listen: "127.0.0.1:-1" }')
    leaf, _ = await open_leaf(ctx, port)
    await handshake(ctx, leaf)
    await leaf.send(b"LS+ a\r\nLS+ b\r\nLS+ c\r\n")
    await leaf.expect_bytes(b"-ERR 'maximum subscriptions exceeded'\r\n")
    await flush(leaf)
    c = await client(ctx, s)
    await c.send(b"PUB a 1\r\nx\r\nPUB c 1\r\ny\r\nPUB b 1\r\nz\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LMSG a 1\r\nx\r\nLMSG b 1\r\nz\r\n")


@pycase("leafnode.accept.jwt_account_leaf_limit",
        doc="operator mode: an account's `leaf` limit: the leaf over it is told 'maximum account active connections "
            "exceeded' and closed")
async def accept_jwt_leaf_limit(ctx: CaseContext) -> None:
    from ..jwtutil import JWTSetup

    setup = JWTSetup(limits={"leaf": 1})
    s = await ctx.start_server(config=setup.config(extra='leafnodes { listen: "127.0.0.1:-1" }'), args=["-D"])
    seed, token = setup.user("A")
    first = await jwt_leaf(ctx, setup, s, token, seed, "first")
    line = await first.read_line()
    ctx.check(line.startswith(b"INFO ") and b'"connect_info":true' in line, "the first leaf connects", "INFO", line)
    seed2, token2 = setup.user("A")
    second = await jwt_leaf(ctx, setup, s, token2, seed2, "second")
    await second.expect_bytes(b"-ERR 'maximum account active connections exceeded'\r\n")
    await second.expect_close()


@pycase("leafnode.accept.allow_responses", targets="!go29",
        doc="a leaf user with allow_responses: it may answer a request it was sent, once; a second answer is a "
            "publish violation")
async def accept_allow_responses(ctx: CaseContext) -> None:
    config = """authorization { users [
  { user: leaf, password: pw, permissions: { subscribe: "req.>", allow_responses: true } },
  { user: c, password: c } ] }
leafnodes { listen: "127.0.0.1:-1" }"""
    s, port = await leaf_port(ctx, config)
    leaf, _ = await open_leaf(ctx, port)
    leaf.ignore.append(SYS_LS)
    await leaf.send(leaf_connect(user="leaf", **{"pass": "pw"}))
    line = await leaf.read_line()
    info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
    ctx.check(info.get("export") == {} and info.get("import") == {"allow": ["req.>"]}, "import, and an empty export",
              {"import": {"allow": ["req.>"]}, "export": {}}, line)
    await until_pong(leaf)
    await leaf.send(b"LS+ req.>\r\n")
    await flush(leaf)
    c = await client(ctx, s, connect={"user": "c", "pass": "c"})
    await c.send(b"SUB _INBOX.r 1\r\nPUB req.x _INBOX.r 1\r\nq\r\n")
    await flush(c)
    await leaf.expect_bytes(b"LMSG req.x _INBOX.r 1\r\nq\r\n")
    await leaf.expect_nothing(0.1)  # no interest in the inbox: the leaf user may not publish to it
    await leaf.send(b"LMSG _INBOX.r 1\r\na\r\n")
    await c.expect_bytes(b"MSG _INBOX.r 1 1\r\na\r\n")
    await leaf.send(b"LMSG _INBOX.r 1\r\nb\r\n")
    await leaf.expect_bytes(b"-ERR 'Permissions Violation for Publish to \"_INBOX.r\"'\r\n")
    await leaf.expect_close()


@pycase("leafnode.accept.max_payload", targets="!go29",
        doc="an LMSG larger than max_payload: -ERR 'Maximum Payload Violation' and close (2.9 takes it)")
async def accept_max_payload(ctx: CaseContext) -> None:
    s, port = await leaf_port(ctx, 'max_payload: 10\nleafnodes { listen: "127.0.0.1:-1" }')
    leaf, _ = await open_leaf(ctx, port)
    await handshake(ctx, leaf)
    start = len(s.log)
    await leaf.send(b"LMSG foo 10\r\n0123456789\r\nLMSG foo 11\r\n01234567890\r\n")
    await leaf.expect_bytes(b"-ERR 'Maximum Payload Violation'\r\n")
    await leaf.expect_close()
    await s.wait_log(r"\[ERR\] .*maximum payload exceeded: 11 vs 10$", ctx.timeout, start)
    await s.wait_log(r"Leafnode connection closed: Maximum Message Payload Exceeded", ctx.timeout, start)

"""JWT operator mode: users connecting with user JWTs, refusals, limits, private exports,
claims updates. Each case mints its operator, accounts and users (conformance/jwtutil.py),
starts a private server with that operator config (and -D: the refusals are checked by
their debug lines too), and speaks the client protocol.

2.9 and 2.14 differ in a few log lines (2.14 tells a JWT it cannot decode as "Authentication
requires a user JWT", 2.9 as "User JWT not valid: <error>"); those are per-profile below.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..conn import Conn, Mismatch
from ..context import CaseContext
from ..jwtutil import JWTSetup, connect_line
from ..registry import pycase, with_
from ..targets import ServerProcess
from ._util import start_cluster, until_pong

AUTH_ERR = b"-ERR 'Authorization Violation'\r\n"


async def _server(ctx: CaseContext, setup: JWTSetup, resolver: str = "MEMORY") -> ServerProcess:
    directory = str(ctx.workdir / f"jwt-{id(ctx)}") if resolver != "MEMORY" else ""
    return await ctx.start_server(config=setup.config(resolver, directory), args=["-D"])


async def _open(ctx: CaseContext, s: ServerProcess, name: str = "c") -> tuple[Conn, dict[str, Any]]:
    c = await ctx.client(s, name)
    info, _ = await c.expect_info()
    return c, info


async def _connect(ctx: CaseContext, s: ServerProcess, token: str, seed: str | None, name: str = "c",
                   **extra: Any) -> Conn:
    c, info = await _open(ctx, s, name)
    await c.send(connect_line(token, seed, info.get("nonce", ""), **extra) + b"PING\r\n")
    return c


async def _refused(ctx: CaseContext, s: ServerProcess, token: str, seed: str | None, debug: str,
                   **extra: Any) -> None:
    start = len(s.log)
    c = await _connect(ctx, s, token, seed, **extra)
    await c.expect_bytes(AUTH_ERR)
    await c.expect_close()
    await s.wait_log(debug, ctx.timeout, start)
    await s.wait_log(r"\[ERR\] .*authentication error( - .*)?$", ctx.timeout, start)


def _refusal_case(name: str, doc: str, make: Any, debug: str, debug29: str | None = None) -> None:
    @pycase(f"client.jwt.{name}", doc=doc)
    async def case(ctx: CaseContext) -> None:
        setup = JWTSetup()
        token, seed, extra = make(setup)
        s = await _server(ctx, setup)
        want = debug29 if debug29 is not None and ctx.target.profile == "go29" else debug
        await _refused(ctx, s, token, seed, want, **extra)


def _user(setup: JWTSetup, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    seed, token = setup.user("A", **kw)
    return token, seed, {}


_refusal_case("expired", "A user JWT past its exp is refused (the debug line shows the issue).",
              lambda st: _user(st, exp=int(time.time()) - 10),
              r"\[DBG\] .*User JWT no longer valid: &\{Issues:\[claim is expired\]\}$")
_refusal_case("not_yet_valid", "A user JWT before its nbf is refused.",
              lambda st: _user(st, nbf=int(time.time()) + 300),
              r"\[DBG\] .*User JWT no longer valid: &\{Issues:\[claim is not yet valid\]\}$")
_refusal_case("no_sig", "A user JWT without the nonce signature is refused.",
              lambda st: (_user(st)[0], None, {}), r"\[DBG\] .*Signature missing$")
_refusal_case("bad_sig", "A nonce signed by another key is refused.",
              lambda st: (_user(st)[0], st.accounts["A"]["seed"], {}), r"\[DBG\] .*Signature not verified$")
_refusal_case("sig_not_base64", "A signature that is not base64 is refused.",
              lambda st: (_user(st)[0], None, {"sig": "!!!"}), r"\[DBG\] .*Signature not valid base64$")
_refusal_case("no_jwt", "Operator mode needs a user JWT.",
              lambda st: ("", None, {"user": "u", "pass": "p"}), r"\[DBG\] .*Authentication requires a user JWT$")
_refusal_case("garbage_jwt", "A JWT that does not decode.",
              lambda st: ("garbage", None, {}), r"\[DBG\] .*Authentication requires a user JWT$",
              r"\[DBG\] .*User JWT not valid: expected 3 chunks$")
_refusal_case("truncated_jwt", "A user JWT cut short (its signature no longer verifies).",
              lambda st: (_user(st)[0][:-6], _user(st)[1], {}), r"\[DBG\] .*Authentication requires a user JWT$",
              r"\[DBG\] .*User JWT not valid: claim failed V2 signature verification$")
_refusal_case("account_jwt_as_user", "An account JWT where a user JWT belongs.",
              lambda st: (st.accounts["A"]["jwt"], None, {}), r"\[DBG\] .*Authentication requires a user JWT$",
              r"\[DBG\] .*User JWT not valid: not user claim$")
_refusal_case("other_operator", "A user of an account signed by another operator.",
              lambda st: st.foreign_user(), r"\[DBG\] .*Account JWT lookup error: account validation failed$")
_refusal_case("unknown_account", "A user of an account the resolver does not have.",
              lambda st: st.unknown_account_user(), r"\[DBG\] .*Account JWT lookup error: account missing$")
_refusal_case("revoked", "A user revoked in its account's JWT.",
              lambda st: st.revoked_user(), r"\[DBG\] .*User authentication revoked$")
_refusal_case("unknown_signing_key", "A user signed by a key the account does not list.",
              lambda st: st.unknown_signer_user(), r"\[DBG\] .*User JWT issuer is not known$")
_refusal_case("src", "A user limited to other source addresses.",
              lambda st: _user(st, src=["10.0.0.0/8"]), r"\[ERR\] .*Bad src Ip 127\.0\.0\.1$")
_refusal_case("times", "A user outside its connect times.",
              lambda st: _user(st, times=[("01:00:00", "01:00:01")], times_location="UTC"),
              r"\[ERR\] .*Outside connect times$")
_refusal_case("connection_type", "A user allowed websocket connections only.",
              lambda st: _user(st, allowed_connection_types=["WEBSOCKET"]), r"\[DBG\] .*Connection type not allowed$")


@pycase("client.jwt.valid_user", doc="INFO has a nonce; a signed user JWT connects; messages stay in the account.")
async def valid_user(ctx: CaseContext) -> None:
    setup = JWTSetup()
    setup.account("B")
    s = await _server(ctx, setup)
    c, info = await _open(ctx, s)
    ctx.check(info.get("auth_required") is True, "auth_required", True, info.get("auth_required"))
    ctx.check(len(info.get("nonce", "")) == 15, "an 11-byte nonce, base64url", 15, len(info.get("nonce", "")))
    seed, token = setup.user("A")
    await c.send(connect_line(token, seed, info["nonce"]) + b"SUB foo 1\r\nPING\r\n")
    await c.expect_bytes(b"PONG\r\n")
    bseed, btoken = setup.user("B")
    b = await _connect(ctx, s, btoken, bseed, "b")
    await b.expect_bytes(b"PONG\r\n")
    await b.send(b"SUB foo 1\r\nPING\r\n")
    await b.expect_bytes(b"PONG\r\n")
    seed2, token2 = setup.user("A")
    p = await _connect(ctx, s, token2, seed2, "p")
    await p.expect_bytes(b"PONG\r\n")
    await p.send(b"PUB foo 2\r\nhi\r\nPING\r\n")
    await p.expect_bytes(b"PONG\r\n")
    await c.expect_bytes(b"MSG foo 1 2\r\nhi\r\n")
    await b.expect_nothing(0.2)


@pycase("client.jwt.bearer", doc="A bearer token user connects without signing the nonce.")
async def bearer(ctx: CaseContext) -> None:
    setup = JWTSetup()
    s = await _server(ctx, setup)
    _, token = setup.user("A", bearer_token=True)
    c = await _connect(ctx, s, token, None)
    await c.expect_bytes(b"PONG\r\n")


@pycase("client.jwt.signing_keys", doc="Users signed by an account signing key and by a scoped key (whose template applies).")
async def signing_keys(ctx: CaseContext) -> None:
    setup = JWTSetup()
    s = await _server(ctx, setup)
    for i, (token, seed) in enumerate((setup.signing_key_user(), setup.scoped_user())):
        c = await _connect(ctx, s, token, seed, f"c{i}")
        await c.expect_bytes(b"PONG\r\n")
    await c.send(b"PUB not.scoped 1\r\nx\r\n")
    await c.expect_bytes(b"-ERR 'Permissions Violation for Publish to \"not.scoped\"'\r\n")


@pycase("client.jwt.user_expires", doc="A connected user whose JWT expires is told and closed.", timeout=5.0)
async def user_expires(ctx: CaseContext) -> None:
    setup = JWTSetup()
    s = await _server(ctx, setup)
    seed, token = setup.user("A", exp=int(time.time()) + 2)
    c = await _connect(ctx, s, token, seed)
    await c.expect_bytes(b"PONG\r\n")
    await c.expect_bytes(b"-ERR 'User Authentication Expired'\r\n", timeout=4)
    await c.expect_close()


@pycase("accounts.jwt.connection_limit", doc="An account's conn limit: the connection over it is refused.")
async def connection_limit(ctx: CaseContext) -> None:
    setup = JWTSetup(limits={"conn": 1})
    s = await _server(ctx, setup)
    seed, token = setup.user("A")
    c = await _connect(ctx, s, token, seed)
    await c.expect_bytes(b"PONG\r\n")
    c2 = await _connect(ctx, s, token, seed, "c2")
    await c2.expect_bytes(b"-ERR 'maximum account active connections exceeded'\r\n")
    await c2.expect_close()


@pycase("accounts.jwt.subscription_limit", doc="An account's subs limit: the SUB over it is refused, the connection stays.")
async def subscription_limit(ctx: CaseContext) -> None:
    setup = JWTSetup(limits={"subs": 1})
    s = await _server(ctx, setup)
    seed, token = setup.user("A")
    c = await _connect(ctx, s, token, seed)
    await c.expect_bytes(b"PONG\r\n")
    await c.send(b"SUB a 1\r\nSUB b 2\r\n")
    await c.expect_bytes(b"-ERR 'maximum subscriptions exceeded'\r\n")
    frames = await until_pong(c)
    ctx.check(frames == b"", "nothing else", b"", frames)


@pycase("accounts.jwt.payload_limit", doc="An account's payload limit closes a connection publishing more.")
async def payload_limit(ctx: CaseContext) -> None:
    setup = JWTSetup(limits={"payload": 4})
    s = await _server(ctx, setup)
    seed, token = setup.user("A")
    c = await _connect(ctx, s, token, seed)
    await c.expect_bytes(b"PONG\r\n")
    await c.send(b"PUB a 5\r\nhello\r\n")
    await c.expect_bytes(b"-ERR 'Maximum Payload Violation'\r\n")
    await c.expect_close()


@pycase("accounts.jwt.private_export", doc="A token_req service export: imported with an activation token works, without fails.")
async def private_export(ctx: CaseContext) -> None:
    setup = JWTSetup()
    setup.private_service()
    s = await _server(ctx, setup)
    rseed, rtoken = setup.user("SVC")
    r = await _connect(ctx, s, rtoken, rseed, "r")
    await r.expect_bytes(b"PONG\r\n")
    await r.send(b"SUB svc.> 1\r\nPING\r\n")
    await r.expect_bytes(b"PONG\r\n")
    for acct, ok in (("OK", True), ("NO", False)):
        seed, token = setup.user(acct)
        c = await _connect(ctx, s, token, seed, acct, headers=True, no_responders=True)
        await c.expect_bytes(b"PONG\r\n")
        await c.send(b"SUB _INBOX.x 9\r\nPUB svc.a _INBOX.x 1\r\nq\r\n")
        if ok:
            await r.expect_regex(r"MSG svc\.a 1 _R_\.\S+ 1")
            await r.read_line()
        else:
            await c.expect_regex(r"HMSG _INBOX\.x 9 \d+ \d+")
            await c.read_line()
            await c.read_line()


@pycase("accounts.jwt.update_revokes", doc="A claims update revoking a connected user closes it (memory resolver).")
async def update_revokes(ctx: CaseContext) -> None:
    setup = JWTSetup()
    s = await _server(ctx, setup)
    useed, upub, token = setup.old_user("A")
    victim = await _connect(ctx, s, token, useed, "v")
    await victim.expect_bytes(b"PONG\r\n")
    sseed, stoken = setup.user(setup.system)
    sysc = await _connect(ctx, s, stoken, sseed, "sys")
    await sysc.expect_bytes(b"PONG\r\n")
    new = setup.account("A", revocations={upub: int(time.time()) - 5}).encode()
    await sysc.send(b"SUB _INBOX.r 1\r\nPUB $SYS.REQ.ACCOUNT.%s.CLAIMS.UPDATE _INBOX.r %d\r\n%s\r\n"
                    % (setup.pub("A").encode(), len(new), new))
    m = await sysc.expect_regex(r"MSG _INBOX\.r 1  (\d+)")
    body = json.loads(await sysc.read_line())
    ctx.check(body.get("data", {}).get("message") == "jwt updated", "the update's answer", "jwt updated", body)
    await victim.expect_bytes(b"-ERR 'User Authentication Revoked'\r\n")
    await victim.expect_close()
    del m


@pycase("accounts.jwt.full_resolver_update", doc="A full resolver stores a pushed account JWT (<dir>/<pubkey>.jwt) and answers LOOKUP.")
async def full_resolver_update(ctx: CaseContext) -> None:
    setup = JWTSetup()
    directory = ctx.workdir / f"jwt-{id(ctx)}"
    s = await ctx.start_server(config=setup.config("full", str(directory)), args=["-D"])
    sseed, stoken = setup.user(setup.system)
    sysc = await _connect(ctx, s, stoken, sseed, "sys")
    await sysc.expect_bytes(b"PONG\r\n")
    setup.account("NEW")
    new = setup.accounts["NEW"]["jwt"].encode()
    await sysc.send(b"SUB _INBOX.r 1\r\nPUB $SYS.REQ.CLAIMS.UPDATE _INBOX.r %d\r\n%s\r\n" % (len(new), new))
    await sysc.expect_regex(r"MSG _INBOX\.r 1  \d+")
    body = json.loads(await sysc.read_line())
    want = {"account": setup.pub("NEW"), "code": 200, "message": "jwt updated"}
    ctx.check(body.get("data") == want, "the update's answer", want, body)
    stored = (directory / (setup.pub("NEW") + ".jwt")).read_bytes()
    ctx.check(stored == new, "the stored JWT", new, stored)
    await sysc.send(b"PUB $SYS.REQ.ACCOUNT.%s.CLAIMS.LOOKUP _INBOX.r 0\r\n\r\n" % setup.pub("NEW").encode())
    await sysc.expect_regex(rf"MSG _INBOX\.r 1  {len(new)}")
    got = await sysc.read_line()
    ctx.check(got == new + b"\r\n", "LOOKUP's answer", new, got)
    await sysc.send(b"PUB $SYS.REQ.CLAIMS.UPDATE _INBOX.r 7\r\ngarbage\r\n")
    await sysc.expect_regex(r"MSG _INBOX\.r 1  \d+")
    body = json.loads(await sysc.read_line())
    want_err = {"account": "n/a", "code": 500, "description": "jwt update resulted in error - expected 3 chunks"}
    ctx.check(body.get("error") == want_err, "the refusal", want_err, body)


def _config_case(name: str, extra: Any, message: str) -> None:
    @pycase(f"accounts.jwt.config_{name}", doc=f"nats-server refuses to start: {message}")
    async def case(ctx: CaseContext) -> None:
        from .cli import run_cmd

        f = ctx.workdir / f"jwt-{name}-{id(ctx)}.conf"
        setup = JWTSetup()
        text = setup.config(extra=extra(setup) if callable(extra) else extra)
        f.write_text(text)
        rc, out, err = await run_cmd(ctx, ["-c", str(f), "-a", "127.0.0.1", "-p", "-1"])
        text = (out + err).strip()
        ctx.check(rc == 1, "exit code", 1, rc)
        ctx.check(message in text, "the error message", message, text)


def _other_system_account(setup: JWTSetup) -> str:
    # The config's system_account (a second entry replaces the first) differs from the operator's.
    return f"system_account: {setup.pub('A')}"


_config_case("accounts", "accounts { X: {} }", "operators do not allow Accounts to be configured directly")
_config_case("users", "authorization { users: [{user: a, password: b}] }",
             "operators do not allow users to be configured directly")
_config_case("system_account", _other_system_account, "system_account in config and operator JWT must be identical")


@pycase("cluster.mixed.jwt_accounts", kinds=with_("go214"), timeout=5.0,
        doc="The target and nats-server 2.14 routed, same operator: messages cross within an account, never into another.")
async def mixed_cluster(ctx: CaseContext) -> None:
    setup = JWTSetup()
    setup.account("B")
    servers = await start_cluster(ctx, ctx.kinds, config=setup.config())
    x, go = servers
    for pub_srv, sub_srv, subject in ((go, x, "to.target"), (x, go, "to.go")):
        aseed, atok = setup.user("A")
        sub = await _connect(ctx, sub_srv, atok, aseed, f"sub-{subject}")
        await sub.expect_bytes(b"PONG\r\n")
        await sub.send(f"SUB {subject} 1\r\nPING\r\n".encode())
        await sub.expect_bytes(b"PONG\r\n")
        bseed, btok = setup.user("B")
        other = await _connect(ctx, pub_srv, btok, bseed, f"b-{subject}")
        await other.expect_bytes(b"PONG\r\n")
        await other.send(f"SUB {subject} 1\r\nPING\r\n".encode())
        await other.expect_bytes(b"PONG\r\n")
        pseed, ptok = setup.user("A")
        p = await _connect(ctx, pub_srv, ptok, pseed, f"pub-{subject}")
        await p.expect_bytes(b"PONG\r\n")

        async def delivered(p: Conn = p, sub: Conn = sub, subject: str = subject) -> bool:
            await p.send(f"PUB {subject} 5\r\nprobe\r\nPING\r\n".encode())
            await p.expect_bytes(b"PONG\r\n")
            try:
                await sub.expect_bytes(f"MSG {subject} 1 5\r\nprobe\r\n".encode(), timeout=0.2)
                return True
            except Mismatch:
                return False

        await ctx.eventually(delivered, 5.0, f"{subject} across the route")
        frames = await until_pong(other)
        ctx.check(frames == b"", "nothing for the other account", b"", frames)

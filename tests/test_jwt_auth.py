"""Operator mode end to end: JWT users connecting (nats-py creds files and callbacks, raw
CONNECTs), refusals with nats-server's -ERR and log lines, expiry, revocation, account
limits, private exports with activation tokens, and the full resolver's claims updates.

Tests taking `kind` run against pynats-server and, where installed, the real nats-server
2.14 and 2.9 with the same config and JWTs (minted by pynats_server.jwt), and expect the
same bytes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from typing import Any

import nats
import pytest
from jwt_util import TARGETS, Raw, Running, Servers, wait_log

from pynats_server import Server, jwt
from pynats_server import nkeys_util as nk
from pynats_server.testing import OperatorSetup

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def servers() -> Any:
    s = Servers()
    yield s
    await s.stop_all()


# -- nats-py ------------------------------------------------------------------------------------


async def test_natspy_creds_accounts_apart(tmp_path) -> None:
    op = OperatorSetup()
    op.account("A")
    op.account("B")
    srv = Server(op.options())
    await srv.start()
    try:
        a1 = await nats.connect(srv.client_url, user_credentials=str(op.creds_file("A", tmp_path / "a1.creds")))
        a2 = await nats.connect(srv.client_url, user_credentials=str(op.creds_file("A", tmp_path / "a2.creds")))
        b = await nats.connect(srv.client_url, user_credentials=str(op.creds_file("B", tmp_path / "b.creds")))
        sa = await a1.subscribe("foo")
        sb = await b.subscribe("foo")
        await a1.flush()
        await b.flush()
        await a2.publish("foo", b"in A")
        await a2.flush()
        assert (await sa.next_msg(2)).data == b"in A"
        with pytest.raises(nats.errors.TimeoutError):
            await sb.next_msg(0.2)
        # Accounts are named by their public keys, as routes carry them.
        assert op.pub("A") in srv.accounts and srv.accounts[op.pub("A")].name_tag == "A"
        for nc in (a1, a2, b):
            await nc.close()
    finally:
        await srv.shutdown()


async def test_natspy_callbacks_and_request_reply() -> None:
    op = OperatorSetup()
    op.account("A")
    srv = Server(op.options())
    await srv.start()
    try:
        seed, token = op.user("A", "cb", pub_allow=["svc", "_INBOX.>"], sub_allow=["svc", "_INBOX.>"])
        kp = nk._nkeys().from_seed(seed.encode())

        def sign(nonce: str) -> bytes:
            import base64

            return base64.b64encode(kp.sign(nonce.encode()))

        nc = await nats.connect(srv.client_url, user_jwt_cb=lambda: token.encode(), signature_cb=sign)

        async def echo(m: Any) -> None:
            await m.respond(b"re:" + m.data)

        await nc.subscribe("svc", cb=echo)
        assert (await nc.request("svc", b"x", timeout=2)).data == b"re:x"
        # A bearer token: the signature nats-py sends anyway is not checked.
        _, bearer = op.user("A", "b", bearer_token=True)
        nb = await nats.connect(srv.client_url, user_jwt_cb=lambda: bearer.encode(),
                                signature_cb=lambda nonce: b"bm90IGEgc2lnbmF0dXJl")
        assert (await nb.request("svc", b"y", timeout=2)).data == b"re:y"
        await nb.close()
        await nc.close()
    finally:
        await srv.shutdown()


# -- refusals, as nats-server gives them ------------------------------------------------------


def _cases(op: OperatorSetup, sk: tuple[str, str], scoped: tuple[str, str], other: tuple[str, str],
           revoked: tuple[str, str]) -> list[tuple[str, str, str | None, dict[str, Any], list[str], list[str]]]:
    """(name, JWT, seed to sign with, extra CONNECT fields, 2.14 log lines, 2.9 log lines)."""
    now = int(time.time())
    acc_seed = op.accounts["A"]["seed"]
    useed, upub = nk.create_user()

    def user(signer: str = acc_seed, **kw: Any) -> str:
        return jwt.new_user(signer, upub, "u", **kw)

    good = user()
    fail = ["[ERR] authentication error", "[DBG] Client connection closed: Authentication Failure"]
    both = [
        ("expired", user(exp=now - 10), useed, {}, ["[DBG] User JWT no longer valid: &{Issues:[claim is expired]}"]),
        ("not yet valid", user(nbf=now + 100), useed, {}, ["[DBG] User JWT no longer valid: &{Issues:[claim is not yet valid]}"]),
        ("no signature", good, None, {}, ["[DBG] Signature missing"]),
        ("signed by another key", good, acc_seed, {}, ["[DBG] Signature not verified"]),
        ("signature not base64", good, None, {"sig": "!!!"}, ["[DBG] Signature not valid base64"]),
        ("no JWT", "", None, {}, ["[DBG] Authentication requires a user JWT"]),
        ("account not known", jwt.new_user(nk.create_account()[0], upub), useed, {},
         ["[WRN] Account fetch failed: account missing", "[DBG] Account JWT lookup error: account missing"]),
        ("account of another operator", jwt.new_user(other[0], upub), useed, {},
         ["[DBG] Account JWT lookup error: account validation failed"]),
        ("signing key not known", user(nk.create_account()[0], issuer_account=op.pub("A")), useed, {},
         ["[DBG] User JWT issuer is not known"]),
        ("scoped user with permissions", user(scoped[0], issuer_account=op.pub("A"), pub_allow=["x"]), useed, {},
         ["[DBG] User JWT is not valid: scoped users require no permissions or limits set"]),
        ("revoked", jwt.new_user(acc_seed, revoked[1], iat=now - 100), revoked[0], {}, ["[DBG] User authentication revoked"]),
        ("source address", user(src=["10.0.0.0/8"]), useed, {}, ["[ERR] Bad src Ip 127.0.0.1"]),
        ("outside connect times", user(times=[("01:00:00", "01:00:01")], times_location="UTC"), useed, {},
         ["[ERR] Outside connect times"]),
        ("connection type", user(allowed_connection_types=["WEBSOCKET"]), useed, {}, ["[DBG] Connection type not allowed"]),
    ]
    out = [(n, t, s, x, lines + fail, lines + fail) for n, t, s, x, lines in both]
    out.append(("garbage JWT", "garbage", useed, {}, ["[DBG] Authentication requires a user JWT"] + fail,
                ["[DBG] User JWT not valid: expected 3 chunks"] + fail))
    out.append(("account JWT as user JWT", op.accounts["A"]["jwt"], useed, {},
                ["[DBG] Authentication requires a user JWT"] + fail, ["[DBG] User JWT not valid: not user claim"] + fail))
    return out


@pytest.mark.parametrize("kind", TARGETS)
async def test_refusals(kind: str, servers: Any, tmp_path: Any) -> None:
    op = OperatorSetup()
    sk, scoped = nk.create_account(), nk.create_account()
    revoked = nk.create_user()
    op.account("A", signing_keys=[sk[1], jwt.user_scope(scoped[1])], revocations={revoked[1]: int(time.time())})
    other_op = nk.create_operator()
    other = nk.create_account()
    # The account of another operator is preloaded too: its JWT does not verify here.
    conf = op.config().replace("resolver_preload {", f'resolver_preload {{\n  {other[1]}: "{jwt.new_account(other_op[0], other[1])}"')
    s = await servers(kind, conf, tmp_path)
    for name, token, seed, extra, want214, want29 in _cases(op, sk, scoped, other, revoked):
        n = len(s.log_lines())
        c = await Raw.open(s.port)
        assert c.info["auth_required"] is True and len(c.info["nonce"]) == 15, name
        await c.connect(token, seed, **extra)
        assert await c.read_all() == b"-ERR 'Authorization Violation'\r\n<EOF>", name
        want = want29 if kind == "go29" else want214
        await wait_log(s, want[-1])
        got = [line for line in s.log_since(n) if line in want or line.startswith(("[ERR]", "[WRN]"))]
        assert got == want, (kind, name, s.log_since(n))
        c.close()


@pytest.mark.parametrize("kind", TARGETS)
async def test_accepted_users(kind: str, servers: Any, tmp_path: Any) -> None:
    """Users signed by the account, by a signing key, by a scoped key, and a bearer token."""
    op = OperatorSetup()
    sk, scoped = nk.create_account(), nk.create_account()
    op.account("A", signing_keys=[sk[1], jwt.user_scope(scoped[1], template=jwt.user_nats(pub_allow=["scoped.>"]))])
    s = await servers(kind, op.config(), tmp_path)
    apub = op.pub("A")
    useed, upub = nk.create_user()
    for name, token, seed in (
        ("account", jwt.new_user(op.accounts["A"]["seed"], upub, "u"), useed),
        ("signing key", jwt.new_user(sk[0], upub, "u", issuer_account=apub), useed),
        ("scoped", jwt.new_user(scoped[0], upub, "u", issuer_account=apub, scoped=True), useed),
        ("bearer", jwt.new_user(op.accounts["A"]["seed"], upub, "u", bearer_token=True), None),
    ):
        n = len(s.log_lines())
        c = await Raw.open(s.port)
        await c.connect(token, seed, protocol=1)
        assert await c.read_until(b"PONG\r\n") == b"PONG\r\n", name
        if kind != "go29":  # 2.9 sends no INFO after the first PONG
            # The INFO after the first PONG names the account by its public key.
            info = json.loads((await c.read_until(b"\r\n"))[5:])
            assert info["remote_account"] == apub and info["connect_info"] is True
        if name == "scoped":
            # The scope's template applies: publishing outside it is refused.
            await c.send("PUB other 1\r\nx\r\nPING\r\n")
            assert await c.read_until(b"PONG\r\n") == b"-ERR 'Permissions Violation for Publish to \"other\"'\r\nPONG\r\n"
        c.close()
        lines = s.log_since(n)
        assert any(line.startswith(f'[DBG] Authenticated JWT: Client "{upub}" (claim-name: "u"') for line in lines), (name, lines)


# -- after connecting ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TARGETS)
async def test_user_jwt_expiry_closes(kind: str, servers: Any, tmp_path: Any) -> None:
    op = OperatorSetup()
    op.account("A")
    s = await servers(kind, op.config(), tmp_path)
    useed, upub = nk.create_user()
    c = await Raw.open(s.port)
    await c.connect(jwt.new_user(op.accounts["A"]["seed"], upub, exp=int(time.time()) + 2), useed)
    start = time.monotonic()
    assert await c.read_until(b"PONG\r\n") == b"PONG\r\n"
    rest = await c.read_all(timeout=6)
    assert rest.endswith(b"-ERR 'User Authentication Expired'\r\n<EOF>")
    assert 0.8 < time.monotonic() - start < 4
    await wait_log(s, "[DBG] Client connection closed: Authentication Expired")


@pytest.mark.parametrize("kind", TARGETS)
async def test_account_limits(kind: str, servers: Any, tmp_path: Any) -> None:
    op = OperatorSetup()
    op.account("A", limits=jwt.account_limits(conn=1, subs=1, payload=4))
    s = await servers(kind, op.config(), tmp_path)
    seed, token = op.user("A")
    c1 = await Raw.open(s.port)
    await c1.connect(token, seed, protocol=0 if kind == "go29" else 1)
    await c1.read_until(b"PONG\r\n")
    if kind != "go29":
        # The INFO after the first PONG gives the client's own payload limit.
        info = json.loads((await c1.read_until(b"\r\n"))[5:])
        assert info["max_payload"] == 4
    # One subscription allowed; the connection stays.
    await c1.send("SUB a 1\r\nSUB b 2\r\nPING\r\n")
    assert await c1.read_until(b"PONG\r\n") == b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
    # A second connection is over the account's limit.
    n = len(s.log_lines())
    c2 = await Raw.open(s.port)
    await c2.connect(token, seed)
    assert await c2.read_all() == b"-ERR 'maximum account active connections exceeded'\r\n<EOF>"
    await wait_log(s, "[DBG] Client connection closed: Maximum Account Connections Exceeded")
    deadline = time.monotonic() + 5  # the second line is written after the close
    while len([line for line in s.log_since(n) if "xceeded" in line]) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert [line for line in s.log_since(n) if "xceeded" in line] == [
        "[ERR] maximum account active connections exceeded",
        "[DBG] Client connection closed: Maximum Account Connections Exceeded",
        "[ERR] maximum account active connections exceeded",
    ]
    # Payloads over the account's limit close the connection.
    await c1.send("PUB a 5\r\nhello\r\n")
    assert (await c1.read_all()).endswith(b"-ERR 'Maximum Payload Violation'\r\n<EOF>")
    await wait_log(s, "[ERR] maximum payload exceeded: 5 vs 4")


@pytest.mark.parametrize("kind", TARGETS)
async def test_user_without_limits_is_closed(kind: str, servers: Any, tmp_path: Any) -> None:
    """A v2 user JWT that leaves `subs` out allows 0 subscriptions: nats-server tells the
    client and closes it (nsc always writes -1)."""
    op = OperatorSetup()
    op.account("A")
    s = await servers(kind, op.config(), tmp_path)
    seed, token = op.user("A", subs=0)
    c = await Raw.open(s.port)
    await c.connect(token, seed)
    out = await c.read_all()
    assert out.count(b"-ERR 'maximum subscriptions exceeded'\r\n") == 1 and out.endswith(b"<EOF>")
    await wait_log(s, "[DBG] Client connection closed: Maximum Subscriptions Exceeded")


# -- claims updates --------------------------------------------------------------------------


async def _sys_client(s: Running, op: OperatorSetup) -> Raw:
    seed, token = op.user(op.system)
    c = await Raw.open(s.port)
    await c.connect(token, seed)
    await c.read_until(b"PONG\r\n")
    await c.send("SUB _INBOX.r 99\r\nPING\r\n")
    await c.read_until(b"PONG\r\n")
    return c


async def _request(c: Raw, subject: str, payload: bytes | str) -> dict[str, Any] | bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    await c.send(f"PUB {subject} _INBOX.r {len(data)}\r\n".encode() + data + b"\r\n")
    line = await c.read_until(b"\r\n", timeout=5)
    assert line.startswith(b"MSG _INBOX.r 99 "), line
    size = int(line.split()[-1])
    body = await c.read_until(b"\r\n")
    while len(body) < size + 2:
        body += await c.read_until(b"\r\n")
    raw = body[:size]
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@pytest.mark.parametrize("kind", TARGETS)
async def test_revocation_closes_connected_user(kind: str, servers: Any, tmp_path: Any) -> None:
    """A memory resolver takes an update of a loaded account on $SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE:
    the revoked user is told and closed, the others stay."""
    op = OperatorSetup()
    op.account("A")
    s = await servers(kind, op.config(), tmp_path)
    useed, upub = nk.create_user()
    aseed = op.accounts["A"]["seed"]
    victim = await Raw.open(s.port)
    await victim.connect(jwt.new_user(aseed, upub, iat=int(time.time()) - 10), useed)
    await victim.read_until(b"PONG\r\n")
    oseed, otok = op.user("A")
    other = await Raw.open(s.port)
    await other.connect(otok, oseed)
    await other.read_until(b"PONG\r\n")
    sysc = await _sys_client(s, op)
    new = op.account("A", revocations={upub: int(time.time()) - 5})
    resp = await _request(sysc, f"$SYS.REQ.ACCOUNT.{op.pub('A')}.CLAIMS.UPDATE", new)
    assert isinstance(resp, dict)
    assert resp["data"] == {"account": op.pub("A"), "code": 200, "message": "jwt updated"}
    assert set(resp["server"]) >= {"name", "host", "id", "ver", "seq", "time"}
    assert (await victim.read_all()).endswith(b"-ERR 'User Authentication Revoked'\r\n<EOF>")
    await wait_log(s, "[DBG] Client connection closed: Credentials Revoked")
    await other.send("PING\r\n")
    assert await other.read_until(b"PONG\r\n") == b"PONG\r\n"
    # An update of an account this server never loaded is skipped.
    op.account("B")
    resp = await _request(sysc, f"$SYS.REQ.ACCOUNT.{op.pub('B')}.CLAIMS.UPDATE", op.accounts["B"]["jwt"])
    assert isinstance(resp, dict) and resp["data"]["message"] == "jwt update skipped"


@pytest.mark.parametrize("kind", TARGETS)
async def test_full_resolver_update_flow(kind: str, servers: Any, tmp_path: Any) -> None:
    """A full resolver: a system account user pushes a new account JWT; it is stored in the
    directory as <pubkey>.jwt, answered, and the live account follows (a new export makes
    another account's import work); LOOKUP and LIST answer from the store."""
    op = OperatorSetup()
    op.account("EXP")
    op.account("IMP", imports=[{"subject": "feed.>", "account": op.pub("EXP"), "type": "stream"}])
    jwts = str(tmp_path / f"jwts-{kind}")
    s = await servers(kind, op.config("full", jwts), tmp_path)
    pseed, ptok = op.user("EXP")
    pub = await Raw.open(s.port)
    await pub.connect(ptok, pseed)
    await pub.read_until(b"PONG\r\n")
    iseed, itok = op.user("IMP")
    sub = await Raw.open(s.port)
    await sub.connect(itok, iseed)
    await sub.read_until(b"PONG\r\n")
    await sub.send("SUB feed.> 1\r\nPING\r\n")
    await sub.read_until(b"PONG\r\n")
    await pub.send("PUB feed.a 1\r\n1\r\nPING\r\n")
    await pub.read_until(b"PONG\r\n")
    await sub.send("PING\r\n")
    assert await sub.read_until(b"PONG\r\n") == b"PONG\r\n"  # not exported yet: nothing
    sysc = await _sys_client(s, op)
    new = op.account("EXP", exports=[{"subject": "feed.>", "type": "stream"}])
    resp = await _request(sysc, "$SYS.REQ.CLAIMS.UPDATE", new)
    assert isinstance(resp, dict)
    assert resp["data"] == {"account": op.pub("EXP"), "code": 200, "message": "jwt updated"}
    with open(os.path.join(jwts, op.pub("EXP") + ".jwt")) as f:
        assert f.read() == new
    # The importer's subscription now gets the exporter's messages.
    deadline = time.monotonic() + 5
    while True:
        await pub.send("PUB feed.b 2\r\nhi\r\nPING\r\n")
        await pub.read_until(b"PONG\r\n")
        await sub.send("PING\r\n")
        got = await sub.read_until(b"PONG\r\n")
        if got.startswith(b"MSG feed.b 1 2\r\nhi\r\n"):
            break
        assert time.monotonic() < deadline, got
    assert await _request(sysc, f"$SYS.REQ.ACCOUNT.{op.pub('EXP')}.CLAIMS.LOOKUP", "") == new.encode()
    if kind != "go29":  # 2.9 does not answer for an account it does not have
        assert await _request(sysc, f"$SYS.REQ.ACCOUNT.{nk.create_account()[1]}.CLAIMS.LOOKUP", "") == b""
    listed = await _request(sysc, "$SYS.REQ.CLAIMS.LIST", "")
    assert isinstance(listed, dict) and set(listed["data"]) == {a["pub"] for a in op.accounts.values()}
    # Refused updates answer with the library's error.
    resp = await _request(sysc, "$SYS.REQ.CLAIMS.UPDATE", "garbage")
    assert isinstance(resp, dict)
    assert resp["error"] == {"account": "n/a", "code": 500, "description": "jwt update resulted in error - expected 3 chunks"}
    resp = await _request(sysc, f"$SYS.REQ.ACCOUNT.{op.pub('IMP')}.CLAIMS.UPDATE", new)
    assert isinstance(resp, dict) and resp["error"]["description"] == "jwt update resulted in error - subject does not match jwt content"


@pytest.mark.parametrize("kind", TARGETS)
async def test_private_export_with_activation(kind: str, servers: Any, tmp_path: Any) -> None:
    """A private (token_req) service export: an importer with an activation token reaches
    it, one without a token does not."""
    op = OperatorSetup()
    op.account("SVC", exports=[{"subject": "svc.>", "type": "service", "token_req": True}])
    op.account("OK")
    op.account("NO", imports=[{"subject": "svc.>", "account": op.pub("SVC"), "type": "service"}])
    token = op.activation("SVC", "OK", "svc.>", "service")
    op.account("OK", imports=[{"subject": "svc.>", "account": op.pub("SVC"), "type": "service", "token": token}])
    s = await servers(kind, op.config(), tmp_path)
    rseed, rtok = op.user("SVC")
    responder = await Raw.open(s.port)
    await responder.connect(rtok, rseed)
    await responder.read_until(b"PONG\r\n")
    await responder.send("SUB svc.> 1\r\nPING\r\n")
    await responder.read_until(b"PONG\r\n")
    for name, expect in (("OK", True), ("NO", False)):
        seed, tok = op.user(name)
        c = await Raw.open(s.port)
        await c.connect(tok, seed, headers=True, no_responders=True)
        await c.read_until(b"PONG\r\n")
        await c.send("SUB _INBOX.x 1\r\nPUB svc.a _INBOX.x 1\r\nq\r\nPING\r\n")
        got = await c.read_until(b"PONG\r\n")
        if expect:
            line = await responder.read_until(b"\r\nq\r\n")
            assert line.startswith(b"MSG svc.a 1 _R_.")
        else:
            assert b"503" in got, got
        c.close()


@pytest.mark.parametrize("kind", TARGETS)
async def test_account_expiry_closes_clients(kind: str, servers: Any, tmp_path: Any) -> None:
    op = OperatorSetup()
    op.account("A", exp=int(time.time()) + 3)
    s = await servers(kind, op.config(), tmp_path)
    seed, token = op.user("A")
    c = await Raw.open(s.port)
    await c.connect(token, seed)
    assert await c.read_until(b"PONG\r\n") == b"PONG\r\n"
    assert (await c.read_all(timeout=8)).endswith(b"-ERR 'Account Authentication Expired'\r\n<EOF>")


async def test_malformed_updates_answer_like_go(servers: Any, tmp_path: Any) -> None:
    """Malformed account JWTs pushed to a full resolver: pynats-server answers with the same
    error descriptions as nats-server 2.14 (whose jwt library made them)."""
    from test_jwt import _malformed

    keys = {"op": nk.create_operator(), "acc": nk.create_account()}
    op = OperatorSetup()
    answers: dict[str, list[str]] = {}
    for kind in ("pynats", "go214"):
        s = await servers(kind, op.config("full", str(tmp_path / f"d-{kind}")), tmp_path)
        c = await _sys_client(s, op)
        for name, token, _ in _malformed(keys):
            resp = await _request(c, "$SYS.REQ.CLAIMS.UPDATE", token)
            assert isinstance(resp, dict)
            answers.setdefault(name, []).append(resp["error"]["description"])
        c.close()
    for name, (mine, go) in answers.items():
        assert mine == go, name


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    ("accounts { X: {} }", "operators do not allow Accounts to be configured directly"),
    ("authorization { users: [{user: a, password: b}] }", "operators do not allow users to be configured directly"),
])
async def test_startup_refusals(extra: str, message: str, tmp_path: Any) -> None:
    from pynats_server.cli import UsageError, build

    op = OperatorSetup()
    path = tmp_path / "c.conf"
    path.write_text(op.config(extra=extra))
    with pytest.raises(UsageError, match=message):
        build(["-c", str(path)])


def test_config_errors(tmp_path: Any) -> None:
    from pynats_server.cli import UsageError
    from pynats_server.config import apply_config_file
    from pynats_server.options import Options

    op = OperatorSetup()

    def err(text: str) -> str:
        p = tmp_path / "x.conf"
        p.write_text(text)
        with pytest.raises(UsageError) as e:
            apply_config_file(Options(), str(p))
        return str(e.value).replace(str(tmp_path) + "/", "")

    assert err(f'operator: "{op.jwt}"\nresolver: URL(http://127.0.0.1:9/)\n').startswith(
        "x.conf:2:1: URL account resolvers are not supported by pynats-server")
    assert err(f'operator: "{op.jwt}"\n').startswith("x.conf:1:0: URL account resolvers are not supported")
    assert err(f'operator: "{op.jwt}"\nresolver: FOO\n') == (
        'x.conf:2:1: error parsing account resolver, should be MEM or  URL("url") or a map containing dir and '
        "type state=[FULL|CACHE])")
    assert err(f'operator: "{op.jwt}"\nresolver {{ type: full }}\n') == (
        "x.conf:2:1: dir has no value and needs to point to a directory\nx.conf:2:1: mkdir : no such file or directory")
    assert err(f'operator: "{op.jwt}"\nresolver {{ type: cache, dir: "{tmp_path}/c", interval: "1m" }}\n') == (
        "x.conf:2:1: CACHE does not accept sync")
    assert err(f'operator: "{op.jwt}"\nresolver {{ type: full, dir: "{tmp_path}/f", ttl: "1m" }}\n') == (
        "x.conf:2:1: FULL does not accept ttl")
    assert err(f'operator: "{op.jwt}"\nresolver: MEMORY\nresolver_preload {{ A: "garbage" }}\n') == (
        "x.conf:3:20: invalid account JWT")
    assert err("trusted: [OK, XYZ]\nresolver: MEMORY\n") == (
        'x.conf:1:14: trust key "OK" required to be a valid public operator nkey\n'
        'x.conf:1:14: trust key "XYZ" required to be a valid public operator nkey')
    assert err(f'operator: "{op.accounts["SYS"]["jwt"]}"\nresolver: MEMORY\n') == (
        "x.conf:1:0: error parsing operator JWT: not operator claim")
    # An operator JWT from a file, decorated or not.
    (tmp_path / "op.jwt").write_text(op.jwt)
    opts = Options()
    apply_config_file(opts, str(_write(tmp_path, f'operator: "{tmp_path}/op.jwt"\nresolver: MEMORY\n')))
    assert opts.operators == [op.jwt] and opts.system_account == op.pub(op.system)


def _write(tmp_path: Any, text: str) -> Any:
    p = tmp_path / "y.conf"
    p.write_text(text)
    return p


async def test_bad_jwts_never_logged_beyond_go(servers: Any, tmp_path: Any) -> None:
    """No seed ever reaches the log, and JWTs only where nats-server shows them (the
    CONNECT trace line); the server keeps serving everyone else after bad input."""
    op = OperatorSetup()
    op.account("A")
    s = await servers("pynats", op.config(), tmp_path)
    seed, token = op.user("A")
    for bad in ("garbage", token[:-5], token + "x", "a.b.c", "\x00\xff", "eyJ" + "A" * 3000):
        c = await Raw.open(s.port)
        await c.connect(bad, seed)
        assert await c.read_all() == b"-ERR 'Authorization Violation'\r\n<EOF>"
    good = await Raw.open(s.port)
    await good.connect(token, seed)
    assert await good.read_until(b"PONG\r\n") == b"PONG\r\n"
    text = "\n".join(s.log_lines())
    assert seed not in text and op.accounts["A"]["seed"] not in text and token not in text


@pytest.mark.parametrize("kind", ["pynats", "go214"])
async def test_full_resolver_asks_the_cluster_for_unknown_accounts(kind: str, servers: Any, tmp_path: Any) -> None:
    """An account a full resolver does not store: it asks the other servers (none here) and
    gives up after the fetch timeout (1.9 s), with nats-server's log lines."""
    op = OperatorSetup()
    s = await servers(kind, op.config("full", str(tmp_path / f"d-{kind}")), tmp_path)
    aseed, apub = nk.create_account()
    useed, upub = nk.create_user()
    n = len(s.log_lines())
    c = await Raw.open(s.port)
    start = time.monotonic()
    await c.connect(jwt.new_user(aseed, upub), useed)
    assert await c.read_all(timeout=6) == b"-ERR 'Authorization Violation'\r\n<EOF>"
    assert 1.5 < time.monotonic() - start < 4
    await wait_log(s, "[DBG] Client connection closed: Authentication Failure")
    lines = [re.sub(r"fetch took [0-9.]+s$", "fetch took Xs", line) for line in s.log_since(n)]
    assert [line for line in lines if "etch" in line or "lookup" in line or line.startswith("[ERR]")] == [
        f"[WRN] Account [{apub}] fetch took Xs",
        "[WRN] Account fetch failed: fetching jwt timed out",
        "[DBG] Account JWT lookup error: fetching jwt timed out",
        "[ERR] authentication error",
    ]


@pytest.mark.parametrize("kind", ["pynats", "go214"])
async def test_full_resolver_delete(kind: str, servers: Any, tmp_path: Any) -> None:
    """$SYS.REQ.CLAIMS.DELETE, signed by the operator: the account's JWT is renamed to
    .deleted and its connected clients are closed."""
    op = OperatorSetup()
    op.account("A")
    d = str(tmp_path / f"d-{kind}")
    conf = op.config("full", d).replace(f'dir: "{d}" }}', f'dir: "{d}", allow_delete: true }}')
    s = await servers(kind, conf, tmp_path)
    seed, token = op.user("A")
    c = await Raw.open(s.port)
    await c.connect(token, seed)
    await c.read_until(b"PONG\r\n")
    sysc = await _sys_client(s, op)
    # Only a request the operator signed for itself is taken.
    aseed = op.accounts["A"]["seed"]
    for sub, why in ((op.public_key, "not self signed"), (op.pub("A"), "not trusted")):
        bad = jwt.encode("generic", sub, {"accounts": [op.pub("A")]}, aseed)
        resp = await _request(sysc, "$SYS.REQ.CLAIMS.DELETE", bad)
        assert isinstance(resp, dict) and resp["error"]["description"] == f"delete accounts request by {sub} failed - {why}"
    req = jwt.encode("generic", op.public_key, {"accounts": [op.pub("A")]}, op.seed)
    resp = await _request(sysc, "$SYS.REQ.CLAIMS.DELETE", req)
    assert isinstance(resp, dict) and resp["data"] == {"code": 200, "message": "deleted 1 accounts"}
    assert os.path.exists(os.path.join(d, op.pub("A") + ".jwt.deleted"))
    assert not os.path.exists(os.path.join(d, op.pub("A") + ".jwt"))
    assert (await c.read_all()).endswith(b"-ERR 'Account Authentication Expired'\r\n<EOF>")
    req = jwt.encode("generic", op.public_key, {"accounts": [op.pub(op.system)]}, op.seed)
    resp = await _request(sysc, "$SYS.REQ.CLAIMS.DELETE", req)
    assert isinstance(resp, dict) and resp["error"]["description"].endswith("not allowed to delete system account")


@pytest.mark.parametrize("kind", ["pynats", "go214"])
async def test_pinned_accounts_and_strict_signing_keys(kind: str, servers: Any, tmp_path: Any) -> None:
    """resolver_pinned_accounts: only users of the listed accounts (and the system account)
    connect. An operator with strict_signing_key_usage: accounts it signed with its own key
    (not a signing key) are not trusted."""
    op = OperatorSetup()
    op.account("A")
    op.account("B")
    conf = op.config(extra=f"resolver_pinned_accounts: [{op.pub('A')}]")
    s = await servers(kind, conf, tmp_path)
    for acct, ok in (("A", True), ("B", False), (op.system, True)):
        n = len(s.log_lines())
        seed, token = op.user(acct)
        c = await Raw.open(s.port)
        await c.connect(token, seed)
        if ok:
            assert await c.read_until(b"PONG\r\n") == b"PONG\r\n", acct
        else:
            assert await c.read_all() == b"-ERR 'Authorization Violation'\r\n<EOF>"
            await wait_log(s, f"[DBG] Account {op.pub(acct)} not listed as operator pinned account")
            assert "[ERR] authentication error" in s.log_since(n)
        c.close()
    # Strict signing key usage: a fresh setup whose operator signs accounts only with a
    # signing key. An account signed with the operator's own key is refused, and users
    # must be signed by one of their account's signing keys.
    strict = OperatorSetup()
    sk_seed, sk_pub = nk.create_operator()
    ask_seed, ask_pub = nk.create_account()
    strict.jwt = jwt.new_operator(strict.seed, "STRICT", system_account=strict.pub(strict.system),
                                  signing_keys=[sk_pub], strict_signing_key_usage=True)
    strict.account("A", signing_keys=[ask_pub])
    strict.account("B")
    for name in (strict.system, "A"):
        a = strict.accounts[name]
        a["jwt"] = jwt.new_account(sk_seed, a["pub"], name, signing_keys=a["claims"].get("signing_keys"))
    s2 = await servers(kind, strict.config(), tmp_path, name="strict")
    useed, upub = nk.create_user()
    for token, ok, why in (
        (jwt.new_user(ask_seed, upub, issuer_account=strict.pub("A")), True, ""),
        (jwt.new_user(strict.accounts["A"]["seed"], upub), False, "[DBG] User JWT issuer is not known"),
        (jwt.new_user(strict.accounts["B"]["seed"], upub), False, "[DBG] Account JWT lookup error: account validation failed"),
    ):
        c = await Raw.open(s2.port)
        await c.connect(token, useed)
        if ok:
            assert await c.read_until(b"PONG\r\n") == b"PONG\r\n"
        else:
            assert await c.read_all() == b"-ERR 'Authorization Violation'\r\n<EOF>"
            await wait_log(s2, why)
        c.close()

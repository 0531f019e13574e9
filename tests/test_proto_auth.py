"""Raw-socket transcripts: user/password, token, bcrypt and nkey auth, no_auth_user, the auth
timeout, the auth log lines and the CONNECT trace (nats-server 2.14; most also hold for 2.9).

Run them against the real servers with PYNATS_TEST_TARGET=go214 (or go29)."""

from __future__ import annotations

import base64
import json
import time

import bcrypt
import pytest
from conftest import TARGET, ServerHandle, wait_for

from pynats_server import nkeys_util
from pynats_server.options import User

PONG = b"PONG\r\n"
OK = b"+OK\r\n"


@pytest.fixture
async def userpass(start_server) -> ServerHandle:
    return await start_server(username="alice", password="s3cret")


@pytest.fixture
async def token(start_server) -> ServerHandle:
    return await start_server(authorization="t0ken")


async def test_info_auth_required(userpass: ServerHandle) -> None:
    c = await userpass.client()
    info = await c.read_info()
    assert info["auth_required"] is True
    assert "nonce" not in info  # not sent for user/password auth


async def test_user_pass_ok(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":true,"user":"alice","pass":"s3cret"}\r\n')
    await c.expect(OK)
    await c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    await c.expect(OK + OK + b"MSG foo 1 2\r\nhi\r\n" + PONG)


@pytest.mark.parametrize(
    "connect",
    [
        b'CONNECT {"user":"alice","pass":"wrong"}\r\n',
        b'CONNECT {"user":"bob","pass":"s3cret"}\r\n',
        b'CONNECT {"user":"alice"}\r\n',
        b"CONNECT {}\r\n",
        b'CONNECT {"auth_token":"s3cret"}\r\n',
    ],
)
async def test_user_pass_wrong(userpass: ServerHandle, connect: bytes) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(connect)
    await c.expect_err_close("Authorization Violation")


@pytest.mark.parametrize("first", [b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n", b"PING\r\n", b"sub foo 1\r\n", b"X"])
async def test_first_op_not_connect(userpass: ServerHandle, first: bytes) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(first)
    await c.expect_err_close("Authorization Violation")


async def test_lowercase_connect_is_accepted(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'connect {"verbose":false,"user":"alice","pass":"s3cret"}\r\nPING\r\n')
    await c.expect(PONG)


async def test_connect_and_ops_in_one_write(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n')
    await c.expect(b"MSG foo 1 1\r\nx\r\n" + PONG)


async def test_connect_split_across_reads(userpass: ServerHandle) -> None:
    """nats-server TestProtoCrash: the CONNECT line arrives in two writes."""
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":true,"tls_required":false,"user":"alice","pedantic":true,"pass":"s3cret"}')
    await c.expect_nothing(0.05)
    await c.send(b"\r\n")
    await c.expect(OK)


async def test_token_ok(token: ServerHandle) -> None:
    c = await token.client()
    info = await c.read_info()
    assert info["auth_required"] is True
    await c.send(b'CONNECT {"verbose":false,"auth_token":"t0ken"}\r\nPING\r\n')
    await c.expect(PONG)


@pytest.mark.parametrize(
    "connect",
    [
        b'CONNECT {"auth_token":"nope"}\r\n',
        b"CONNECT {}\r\n",
        b'CONNECT {"user":"t0ken"}\r\n',
    ],
)
async def test_token_wrong(token: ServerHandle, connect: bytes) -> None:
    c = await token.client()
    await c.read_info()
    await c.send(connect)
    await c.expect_err_close("Authorization Violation")


async def test_token_first_op_not_connect(token: ServerHandle) -> None:
    c = await token.client()
    await c.read_info()
    await c.send(b"PING\r\n")
    await c.expect_err_close("Authorization Violation")


async def test_auth_timeout(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    t0 = time.monotonic()
    await c.expect_err_close("Authentication Timeout")
    took = time.monotonic() - t0
    assert 0.2 < took < 2.5, took


async def test_auth_timeout_with_partial_connect(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"user":"alice"')
    await c.expect_err_close("Authentication Timeout")


async def test_no_auth_timeout_after_connect(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}\r\n')
    await c.expect_nothing(0.6)
    assert await c.is_open()


async def test_no_auth_timeout_without_auth(start_server) -> None:
    s = await start_server(auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.expect_nothing(0.6)
    assert await c.is_open()


# -- bcrypt ----------------------------------------------------------------------------------




# 2.14's auth log lines (2.9 words some of them differently and has no "$G/user:" labels).
LOGS_214 = TARGET != "go29"
HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()  # cost 4: fast enough for tests


def connect_line(**fields: object) -> bytes:
    return b"CONNECT " + json.dumps({"verbose": True, **fields}).encode() + b"\r\n"


async def test_bcrypt_password(start_server) -> None:
    s = await start_server(username="alice", password=HASH, capture_log=True)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "x"}))
    await c.expect_err_close("Authorization Violation")
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "s3cret"}) + b"PING\r\n")
    await c.expect(OK + PONG)
    if LOGS_214:
        assert '[ERR] authentication error - User "alice"' in s.log_lines()
        assert "[WRN] Plaintext passwords detected, use nkeys or bcrypt" not in s.log_lines()


async def test_bcrypt_hash_is_not_a_password(start_server) -> None:
    """The security bug this fixes: a client that sends the hash itself must not get in."""
    for opts, field in (({"username": "alice", "password": HASH}, "pass"), ({"authorization": HASH}, "auth_token")):
        s = await start_server(**opts)
        c = await s.client()
        await c.read_info()
        await c.send(connect_line(user="alice", **{field: HASH}))
        await c.expect_err_close("Authorization Violation")


async def test_bcrypt_token(start_server) -> None:
    s = await start_server(authorization=HASH, capture_log=True, debug=True)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(auth_token="s3cret", name="n") + b"PING\r\n")
    await c.expect(OK + PONG)
    await c.close()
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(auth_token="nope"))
    await c.expect_err_close("Authorization Violation")
    if LOGS_214:
        lines = await s.wait_log('[DBG] "n" - "$G/token" - Client connection closed: Client Closed')
        assert '[ERR] authentication error - Token "[REDACTED]"' in lines


@pytest.mark.parametrize("variant", ["$2a$", "$2b$", "$2x$", "$2y$"])
async def test_bcrypt_users_variants(start_server, variant: str) -> None:
    long = "p" * 100
    s = await start_server(users=[
        User("a", variant + HASH[4:]),
        User("long", bcrypt.hashpw(long[:72].encode(), bcrypt.gensalt(4)).decode()),
        User("bad", "$2a$03$" + HASH[7:]),  # cost 3: not a valid hash, so nothing matches
        User("short", variant + "04$short"),
    ])

    async def attempt(user: str, pw: str) -> bool:
        c = await s.client()
        await c.read_info()
        await c.send(connect_line(user=user, **{"pass": pw}) + b"PING\r\n")
        line = await c.read_line()
        return line == b"+OK"

    assert await attempt("a", "s3cret")
    assert not await attempt("a", "s3cre")
    # Go's bcrypt reads the first 72 bytes of a password.
    assert await attempt("long", long)
    assert await attempt("long", long[:72])
    assert not await attempt("long", long[:71])
    assert not await attempt("bad", "s3cret")
    assert not await attempt("short", "x")


async def test_plaintext_password_warning(start_server) -> None:
    s = await start_server(users=[User("a", HASH), User("b", "plain")], capture_log=True)
    assert "[WRN] Plaintext passwords detected, use nkeys or bcrypt" in s.log_lines()


async def test_very_long_password(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", max_control_line=65536)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "x" * 60000}))
    await c.expect_err_close("Authorization Violation")


async def test_bcrypt_keeps_the_order_of_later_ops(start_server) -> None:
    """CONNECT, SUB, PUB and PING in one write: the ops after a CONNECT whose bcrypt check
    runs in a thread wait for it, and keep their order."""
    s = await start_server(username="alice", password=HASH)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "s3cret"}) + b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    await c.expect(OK + OK + OK + b"MSG foo 1 2\r\nhi\r\n" + PONG)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "bad"}) + b"SUB foo 1\r\nPING\r\n")
    await c.expect_err_close("Authorization Violation")


@pytest.mark.skipif(TARGET != "pynats", reason="the event loop of the embedded server")
async def test_bcrypt_does_not_block_other_clients(start_server) -> None:
    """While a cost-12 bcrypt check runs, another client is served."""
    slow = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(12)).decode()
    s = await start_server(users=[User("slow", slow), User("fast", "f")])
    fast = await s.client()
    await fast.connect(user="fast", **{"pass": "f"})
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="slow", **{"pass": "s3cret"}) + b"PING\r\n")
    await fast.ping()  # answered while the bcrypt check still runs
    assert c.buf == b""
    await c.expect(OK + PONG, timeout=30)


# -- nkeys -----------------------------------------------------------------------------------

SEED, UPUB = nkeys_util.create_user()
SEED2, UPUB2 = nkeys_util.create_user()
ASEED, APUB = nkeys_util.create_account()


@pytest.fixture
async def nkey_server(start_server) -> ServerHandle:
    return await start_server(users=[User(nkey=UPUB), User("alice", "pw")], capture_log=True, debug=True)


async def test_nonce_in_info_with_nkeys(nkey_server: ServerHandle) -> None:
    c = await nkey_server.client()
    line = await c.read_line()
    info = json.loads(line[5:])
    nonce = info["nonce"]
    assert len(nonce) == 15 and base64.urlsafe_b64decode(nonce + "=") and "=" not in nonce
    keys = list(info)
    assert keys[keys.index("client_ip") + 1] == "nonce"
    c2 = await nkey_server.client()
    assert (await c2.read_info())["nonce"] != nonce


async def test_no_nonce_without_nkeys(userpass: ServerHandle, token: ServerHandle, srv: ServerHandle) -> None:
    for s in (userpass, token, srv):
        c = await s.client()
        assert "nonce" not in await c.read_info()


def sig_raw_url(seed: str, nonce: str) -> str:
    return nkeys_util.sign_nonce(seed, nonce)


def sig_std(seed: str, nonce: str) -> str:
    return base64.b64encode(nkeys_util.sign(seed, nonce.encode())).decode()


def sig_url_padded(seed: str, nonce: str) -> str:
    return base64.urlsafe_b64encode(nkeys_util.sign(seed, nonce.encode())).decode()


def sig_std_raw(seed: str, nonce: str) -> str:
    return sig_std(seed, nonce).rstrip("=")


@pytest.mark.parametrize("sig", [sig_raw_url, sig_std])
async def test_nkey_ok(nkey_server: ServerHandle, sig) -> None:
    c = await nkey_server.client()
    nonce = (await c.read_info())["nonce"]
    await c.send(connect_line(nkey=UPUB, sig=sig(SEED, nonce)) + b"SUB x 1\r\nPUB x 1\r\nx\r\nPING\r\n")
    await c.expect(OK + OK + OK + b"MSG x 1 1\r\nx\r\n" + PONG)


@pytest.mark.parametrize(
    "make, debug",
    [
        (lambda n: {"nkey": UPUB}, "Signature missing"),
        (lambda n: {"nkey": UPUB, "sig": ""}, "Signature missing"),
        (lambda n: {"nkey": UPUB, "sig": sig_url_padded(SEED, n)}, "Signature not valid base64"),
        (lambda n: {"nkey": UPUB, "sig": sig_std_raw(SEED, n)}, "Signature not valid base64"),
        (lambda n: {"nkey": UPUB, "sig": "!!!notbase64"}, "Signature not valid base64"),
        (lambda n: {"nkey": UPUB, "sig": sig_raw_url(SEED, n)[:50]}, "Signature not verified"),
        (lambda n: {"nkey": UPUB, "sig": sig_raw_url(SEED2, n)}, "Signature not verified"),
        (lambda n: {"nkey": UPUB, "sig": sig_raw_url(SEED, "other")}, "Signature not verified"),
        (lambda n: {"nkey": UPUB2, "sig": sig_raw_url(SEED2, n)}, None),
        (lambda n: {"nkey": APUB, "sig": sig_raw_url(ASEED, n)}, None),
        (lambda n: {"nkey": "UNOTAKEY", "sig": "x"}, None),
    ],
)
async def test_nkey_refused(nkey_server: ServerHandle, make, debug: str | None) -> None:
    for _ in range(20):
        c = await nkey_server.client()
        nonce = (await c.read_info())["nonce"]
        fields = make(nonce)
        sig = fields.get("sig", "")
        # A padded base64url signature without `-` or `_` is also valid standard base64,
        # and an unpadded standard one without `+` or `/` valid base64url (both servers
        # accept those): try another nonce.
        if debug != "Signature not valid base64" or "!" in sig or any(ch in sig for ch in "-_+/"):
            break
        await c.close()
    await c.send(connect_line(**fields))
    await c.expect_err_close("Authorization Violation")
    if LOGS_214:
        lines = await nkey_server.wait_log(f'[ERR] authentication error - Nkey "{fields["nkey"]}"')
        if debug:
            assert f"[DBG] {debug}" in lines


async def test_nkey_wins_over_user(nkey_server: ServerHandle) -> None:
    c = await nkey_server.client()
    nonce = (await c.read_info())["nonce"]
    await c.send(connect_line(nkey=UPUB, sig=sig_raw_url(SEED, nonce), user="alice", **{"pass": "wrong"}) + b"PING\r\n")
    await c.expect(OK + PONG)


async def test_users_beside_nkeys(nkey_server: ServerHandle) -> None:
    c = await nkey_server.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "pw"}) + b"PING\r\n")
    await c.expect(OK + PONG)
    c = await nkey_server.client()
    await c.read_info()
    await c.send(connect_line(user="bob", **{"pass": "pw"}))
    await c.expect_err_close("Authorization Violation")
    c = await nkey_server.client()
    await c.read_info()
    await c.send(connect_line())
    await c.expect_err_close("Authorization Violation")
    if LOGS_214:
        lines = await nkey_server.wait_log('[ERR] authentication error - User "bob"')
        assert "[ERR] authentication error" in lines


# -- no_auth_user ------------------------------------------------------------------------------

async def test_no_auth_user(start_server) -> None:
    from pynats_server.options import Permissions

    s = await start_server(
        users=[User("alice", HASH), User("bob", "plain", Permissions(publish_allow=["foo"]))],
        no_auth_user="bob", capture_log=True,
    )
    c = await s.client()
    assert "auth_required" not in await c.read_info()  # false, so left out
    await c.send(connect_line() + b"PUB bar 0\r\n\r\nPUB foo 0\r\n\r\nPING\r\n")
    await c.expect(OK + b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n" + OK + PONG)
    if LOGS_214:
        await s.wait_log('[ERR] "$G/user:bob" - Publish Violation - Subject "bar"')
    # Credentials of another user are checked as usual.
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice", **{"pass": "s3cret"}) + b"PUB bar 0\r\n\r\nPING\r\n")
    await c.expect(OK + OK + PONG)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="alice"))
    await c.expect_err_close("Authorization Violation")
    # Any op may come first: the client is then that user, without a CONNECT.
    c = await s.client()
    await c.read_info()
    await c.send(b"PUB bar 0\r\n\r\nPING\r\n")
    await c.expect(b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n" + PONG)


async def test_no_auth_user_with_bcrypt_password_is_refused(start_server) -> None:
    """As nats-server: the no_auth_user's stored password is checked as the client's, and a
    bcrypt hash never matches itself."""
    s = await start_server(users=[User("alice", HASH)], no_auth_user="alice", capture_log=True)
    c = await s.client()
    await c.read_info()
    await c.send(connect_line())
    await c.expect_err_close("Authorization Violation")
    if LOGS_214:
        await s.wait_log('[ERR] authentication error - User "alice"')


@pytest.mark.skipif(TARGET == "go29", reason="2.9 has no nkey no_auth_user")
async def test_no_auth_user_nkey(start_server) -> None:
    s = await start_server(users=[User(nkey=UPUB), User("alice", "pw")], no_auth_user=UPUB)
    c = await s.client()
    info = await c.read_info()
    assert "auth_required" not in info and "nonce" in info
    await c.send(connect_line() + b"PING\r\n")
    await c.expect(OK + PONG)
    # Naming that nkey needs no signature either.
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(nkey=UPUB) + b"PING\r\n")
    await c.expect(OK + PONG)
    # Only a users-list no_auth_user lets another op come first.
    c = await s.client()
    await c.read_info()
    await c.send(b"PING\r\n")
    await c.expect_err_close("Authorization Violation")


@pytest.mark.skipif(TARGET == "go29", reason="2.9 sends no connect_info INFO")
async def test_connect_info_after_no_auth_user_says_auth_required(start_server) -> None:
    s = await start_server(users=[User("bob", "pw")], no_auth_user="bob")
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await c.expect(PONG)
    info = await c.read_info()
    assert info["auth_required"] is True and info["connect_info"] is True and "nonce" not in info


# -- log lines and redaction -------------------------------------------------------------------

@pytest.mark.skipif(not LOGS_214, reason="2.14's trace redacts nkey and sig, 2.9's does not")
async def test_connect_trace_redacts_secrets(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", capture_log=True, trace=True)
    c = await s.client()
    await c.read_info()
    line = (b'{"verbose":true,"user":"alice","pass" : "s3cret","auth_token":"tok","jwt":"eyJhbGc",'
            b'"sig":"s1g-secret","nkey":"UX","name":"password=hunter2"}')
    await c.send(b"CONNECT " + line + b"\r\nPING\r\n")
    await c.expect(OK + PONG)
    want = ('[TRC] <<- [CONNECT {"verbose":true,"user":"alice","pass" : "[REDACTED]","auth_token":"[REDACTED]",'
            '"jwt":"eyJhbGc","sig":"[REDACTED]","nkey":"[REDACTED]","name":"password=[REDACTED]"}]')
    await s.wait_log(want)
    # (a lowercase signature: "SIG" turned up by chance inside random upper-case server ids)
    assert not any("s3cret" in x or "tok\"" in x or "s1g-secret" in x for x in s.log_lines())


@pytest.mark.skipif(TARGET != "pynats", reason="nats-server's trace shows these secrets (in part)")
@pytest.mark.parametrize(
    "arg, secret",
    [
        (b'{"verbose":true,"USER":"alice","Pass":"s3cret"}', "s3cret"),
        (b'{"verbose":true,"user":"alice","p\\u0061ss":"s3cret"}', "s3cret"),
        (b'{"verbose":true,"user":"alice","pass":"x","PASS":"s3cret"}', "s3cret"),
        (b'{"verbose":true,"user":"alice","pass":"ab,q9z\\"ef}gh"}', "q9z"),
        (b'{"verbose":true,"user":"alice","auth_token":"to,k3n9"}', "k3n9"),
        (b'{"verbose":true,"user":"alice","pass":"s3c,ret"', "ret"),
    ],
)
async def test_connect_trace_never_shows_secrets(start_server, arg: bytes, secret: str) -> None:
    s = await start_server(username="alice", password="s3cret", capture_log=True, trace=True)
    c = await s.client()
    await c.read_info()
    await c.send(b"CONNECT " + arg + b"\r\nPING\r\n")
    connect = await wait_for(lambda: [x for x in s.log_lines() if "<<- [CONNECT" in x])
    assert all(secret not in x for x in connect), connect
    assert "[REDACTED]" in connect[0]


async def test_connect_keys_any_case_and_merged(userpass: ServerHandle) -> None:
    """Go's JSON decoding: keys match in any letter case; a later CONNECT keeps what it
    leaves out."""
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"VERBOSE":false,"User":"alice","PASS":"s3cret"}\r\nPING\r\n')
    await c.expect(PONG)
    await c.send(b'CONNECT {}\r\nCONNECT {"user":"alice","pass":null}\r\nSUB a 1\r\nPING\r\n')
    await c.expect(PONG)


@pytest.mark.parametrize(
    "connect, log",
    [
        (b'CONNECT {"user":"alice","pass":5}\r\n',
         "json: cannot unmarshal number into Go struct field ClientOpts.pass of type string"),
        (b'CONNECT {"verbose":"yes"}\r\n',
         "json: cannot unmarshal string into Go struct field ClientOpts.verbose of type bool"),
        (b'CONNECT {"protocol":1.0}\r\n',
         "json: cannot unmarshal number 1.0 into Go struct field ClientOpts.protocol of type int"),
        (b'CONNECT {"import":5}\r\n',
         "json: cannot unmarshal number into Go struct field ClientOpts.import of type server.SubjectPermission"),
        (b'CONNECT {"sig":["a"]}\r\n',
         "json: cannot unmarshal array into Go struct field ClientOpts.sig of type string"),
        (b'CONNECT {"nkey":{}}\r\n',
         "json: cannot unmarshal object into Go struct field ClientOpts.nkey of type string"),
    ],
)
async def test_connect_field_of_wrong_type(start_server, connect: bytes, log: str) -> None:
    s = await start_server(username="alice", password="s3cret", capture_log=True, debug=True)
    c = await s.client()
    await c.read_info()
    await c.send(connect)
    await c.expect_closed()
    lines = await s.wait_log(f"[ERR] {log}")
    assert "[DBG] Client connection closed: Protocol Violation" in lines


async def test_allowed_connection_types(start_server) -> None:
    s = await start_server(users=[
        User("web", "w", allowed_connection_types={"WEBSOCKET"}),
        User("std", "s", allowed_connection_types={"STANDARD", "WEBSOCKET"}),
    ])
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="web", **{"pass": "w"}))
    await c.expect_err_close("Authorization Violation")
    c = await s.client()
    await c.read_info()
    await c.send(connect_line(user="std", **{"pass": "s"}) + b"PING\r\n")
    await c.expect(OK + PONG)


async def test_account_in_connect_is_refused(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(connect_line(user="alice", account="A", **{"pass": "s3cret"}))
    await c.expect_err_close("Authorization Violation")


@pytest.mark.skipif(TARGET == "go29", reason="2.9's connz differs")
async def test_connz_authorized_user(start_server) -> None:
    s = await start_server(users=[User(nkey=UPUB), User("alice", "pw")], http_port=-1)
    a = await s.client()
    await a.connect(user="alice", **{"pass": "pw"})
    n = await s.client()
    nonce = (await n.read_info())["nonce"]
    await n.connect(read_info=False, nkey=UPUB, sig=sig_raw_url(SEED, nonce))
    status, body = await s.http_get("/connz?auth=true")
    users = sorted(x.get("authorized_user", "") for x in json.loads(body)["connections"])
    assert users == sorted(["alice", UPUB])
    status, body = await s.http_get("/connz")
    assert all("authorized_user" not in x for x in json.loads(body)["connections"])
    assert b"pw" not in body

"""Raw-socket transcripts: publish and subscribe permissions, queue permissions,
allow_responses, the delivery-time subscribe deny filter, reserved subjects and replies, and
their -ERR texts and log lines (nats-server 2.14; the bytes also hold for 2.9).

Run them against the real servers with PYNATS_TEST_TARGET=go214 (or go29)."""

from __future__ import annotations

import time

import pytest
from conftest import TARGET, RawClient, ServerHandle

from pynats_server.options import Permissions, ResponsePermission, User

PONG = b"PONG\r\n"
LOGS_214 = TARGET != "go29"


def pub_err(subject: str) -> bytes:
    return f"-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n".encode()


def reply_err(reply: str) -> bytes:
    return f"-ERR 'Permissions Violation for Publish with Reply of \"{reply}\"'\r\n".encode()


def sub_err(subject: str, queue: str | None = None) -> bytes:
    q = f' using queue "{queue}"' if queue else ""
    return f"-ERR 'Permissions Violation for Subscription to \"{subject}\"{q}'\r\n".encode()


USERS = [
    User("admin", "a", Permissions(publish_allow=[">"], subscribe_allow=[">"])),
    User("resp", "r", Permissions(subscribe_allow=["req.>"], response=ResponsePermission())),
    User("resp2", "r", Permissions(subscribe_allow=["req.>"], response=ResponsePermission(2, 0.5))),
    User("qu", "q", Permissions(subscribe_allow=["foo q1", "bar", "baz.* q.*"])),
    User("qd", "q", Permissions(subscribe_deny=["foo q1", "nope"])),
    User("mp", "m", Permissions(subscribe_allow=[">"], subscribe_deny=["foo.bar", "x.*.z"])),
    User("pd", "p", Permissions(publish_allow=["a.>"], publish_deny=["a.b"])),
    User("free", "f"),
]


@pytest.fixture
async def perms(start_server) -> ServerHandle:
    return await start_server(users=USERS, capture_log=True)


async def as_user(s: ServerHandle, user: str, pw: str) -> RawClient:
    c = await s.client()
    await c.connect(user=user, **{"pass": pw})
    return c


async def test_publish_allow_and_deny(perms: ServerHandle) -> None:
    c = await as_user(perms, "pd", "p")
    await c.send(b"PUB a.c 1\r\nx\r\nPUB a.b 1\r\nx\r\nPUB b 1\r\nx\r\nPING\r\n")
    await c.expect(pub_err("a.b") + pub_err("b") + PONG)
    if LOGS_214:
        lines = await perms.wait_log('[ERR] "$G/user:pd" - Publish Violation - Subject "b"')
        assert '[ERR] "$G/user:pd" - Publish Violation - Subject "a.b"' in lines


async def test_verbose_ok_comes_after_the_check(perms: ServerHandle) -> None:
    c = await perms.client()
    await c.connect(verbose=True, user="pd", **{"pass": "p"})
    await c.send(b"PUB b 1\r\nx\r\nPUB a.c 1\r\nx\r\nPING\r\n")
    await c.expect(pub_err("b") + b"+OK\r\n" + PONG)


async def test_allow_responses(perms: ServerHandle) -> None:
    """A user allowed to publish only replies: once to each reply subject of a message it
    received (the default max of 1)."""
    adm = await as_user(perms, "admin", "a")
    r = await as_user(perms, "resp", "r")
    await r.send(b"SUB req.> 1\r\nPUB foo 1\r\nx\r\n")
    await r.expect(pub_err("foo"))
    await r.ping()
    await adm.send(b"SUB _INBOX.> 9\r\nPUB req.a _INBOX.1 1\r\nx\r\n")
    await adm.ping()
    assert await r.read_msg() == (b"MSG req.a 1 _INBOX.1 1", b"x")
    await r.send(b"PUB _INBOX.1 2\r\nok\r\nPUB _INBOX.1 3\r\nok2\r\nPUB _INBOX.2 1\r\nq\r\nPING\r\n")
    await r.expect(pub_err("_INBOX.1") + pub_err("_INBOX.2") + PONG)
    assert await adm.msgs_until_pong() == [(b"MSG _INBOX.1 9 2", b"ok")]
    if LOGS_214:
        await perms.wait_log('[ERR] "$G/user:resp" - Publish Violation - Subject "_INBOX.2"')


async def test_allow_responses_max_and_expiry(perms: ServerHandle) -> None:
    adm = await as_user(perms, "admin", "a")
    r = await as_user(perms, "resp2", "r")
    await r.send(b"SUB req.> 1\r\n")
    await r.ping()
    await adm.send(b"SUB _INBOX.> 9\r\nPUB req.a _INBOX.5 1\r\nx\r\nPUB req.a _INBOX.6 1\r\nx\r\n")
    await adm.ping()
    assert [m[0] for m in await r.msgs_until_pong()] == [b"MSG req.a 1 _INBOX.5 1", b"MSG req.a 1 _INBOX.6 1"]
    await r.send(b"PUB _INBOX.5 1\r\na\r\nPUB _INBOX.5 1\r\nb\r\nPUB _INBOX.5 1\r\nc\r\nPING\r\n")
    await r.expect(pub_err("_INBOX.5") + PONG)
    t0 = time.monotonic()
    # The 0.5 s expiry: poll (no sleeping) until a reply to _INBOX.6 is refused.
    while True:
        await r.send(b"PING\r\n")
        await r.read_line()
        if time.monotonic() - t0 > 0.6:
            break
    await r.send(b"PUB _INBOX.6 1\r\na\r\n")
    await r.expect(pub_err("_INBOX.6"))
    assert [m[1] for m in await adm.msgs_until_pong()] == [b"a", b"b"]


async def test_reserved_replies_and_subjects(perms: ServerHandle) -> None:
    """Refused from every client, with or without permissions."""
    for user, pw in (("admin", "a"), ("free", "f")):
        c = await as_user(perms, user, pw)
        await c.send(
            b"PUB foo _R_.x 1\r\na\r\nPUB foo $JS.ACK.a.b 1\r\na\r\nPUB foo _GR_.a 1\r\na\r\n"
            b"PUB _GR_.x 1\r\na\r\nPUB foo _R_. 0\r\n\r\nPUB foo $JS.ACK. 0\r\n\r\nPUB foo _GR_. 0\r\n\r\n"
            b"PUB _GR_. 0\r\n\r\nPING\r\n"
        )
        # `_GR_.` itself is no reserved subject, but a subject with an empty token matches
        # no allow list entry (not even `>`).
        last = pub_err("_GR_.") if user == "admin" else b""
        await c.expect(
            reply_err("_R_.x") + reply_err("$JS.ACK.a.b") + reply_err("_GR_.a") + pub_err("_GR_.x")
            + reply_err("_R_.") + last + PONG
        )  # fmt: skip
    if LOGS_214:
        lines = await perms.wait_log('[ERR] "$G/user:free" - Publish Violation - Subject "_GR_.x"')
        assert '[ERR] "$G/user:admin" - Publish Violation - Reply "_R_.x"' in lines


@pytest.mark.skipif(TARGET == "go29", reason="2.9 has no $NRG. check")
async def test_nrg_subjects_refused(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"PUB $NRG.x 1\r\na\r\nPUB $NRG.x r 1\r\na\r\nPING\r\n")
    await c.expect(pub_err("$NRG.x") + pub_err("$NRG.x") + PONG)


async def test_reserved_subject_refused_with_subscribers(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB _GR_.> 1\r\nPUB _GR_.x 1\r\na\r\nPUB _GR_.x 1\r\na\r\nPING\r\n")
    await c.expect(pub_err("_GR_.x") + pub_err("_GR_.x") + PONG)


@pytest.mark.parametrize(
    "sub, err",
    [
        (b"SUB foo 1", sub_err("foo")),
        (b"SUB foo q1 2", b""),
        (b"SUB foo q2 3", sub_err("foo", "q2")),
        (b"SUB bar 4", b""),
        (b"SUB bar qx 5", b""),
        (b"SUB baz.a 6", sub_err("baz.a")),
        (b"SUB baz.a q.x 7", b""),
        (b"SUB baz.a q 8", sub_err("baz.a", "q")),
        (b"SUB baz.a q.* 9", b""),
        (b"SUB baz.a q.> 10", sub_err("baz.a", "q.>")),
    ],
)
async def test_queue_allow(perms: ServerHandle, sub: bytes, err: bytes) -> None:
    """`subject queue` entries: that queue only (a wildcard queue name covers the names it
    matches); a plain subject entry allows any queue."""
    c = await as_user(perms, "qu", "q")
    await c.send(sub + b"\r\nPING\r\n")
    await c.expect(err + PONG)


@pytest.mark.parametrize(
    "sub, err",
    [
        (b"SUB foo 1", b""),
        (b"SUB foo q1 2", sub_err("foo", "q1")),
        (b"SUB foo q2 3", b""),
        (b"SUB nope 4", sub_err("nope")),
        (b"SUB nope q 5", sub_err("nope", "q")),
        (b"SUB * 6", b""),
        (b"SUB * q1 7", b""),
    ],
)
async def test_queue_deny(perms: ServerHandle, sub: bytes, err: bytes) -> None:
    c = await as_user(perms, "qd", "q")
    await c.send(sub + b"\r\nPING\r\n")
    await c.expect(err + PONG)


async def test_subscription_violation_log_lines(perms: ServerHandle) -> None:
    c = await as_user(perms, "qu", "q")
    await c.send(b"SUB foo 1\r\nSUB foo q2 3\r\nPING\r\n")
    await c.expect(sub_err("foo") + sub_err("foo", "q2") + PONG)
    if LOGS_214:
        lines = await perms.wait_log('[ERR] "$G/user:qu" - Subscription Violation - Subject "foo", Queue: "q2", SID 3')
        assert '[ERR] "$G/user:qu" - Subscription Violation - Subject "foo", SID 1' in lines


async def test_sys_queue_group_refused(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo _sys_ 1\r\nPING\r\n")
    await c.expect(sub_err("foo", "_sys_") + PONG)


async def test_wildcard_sub_overlapping_deny_is_filtered_at_delivery(perms: ServerHandle) -> None:
    """allow `>`, deny `foo.bar` and `x.*.z`: `SUB foo.*` is accepted, but messages on a
    denied subject reach none of the client's subscriptions (nats-server's mperms)."""
    adm = await as_user(perms, "admin", "a")
    m = await as_user(perms, "mp", "m")
    await m.send(b"SUB foo.* 1\r\nSUB foo.bar 2\r\nSUB > 3\r\nSUB x.y.z 4\r\nSUB x.> 5\r\nSUB foo.* q 6\r\nPING\r\n")
    await m.expect(sub_err("foo.bar") + sub_err("x.y.z") + PONG)
    await adm.send(b"PUB foo.bar 1\r\na\r\nPUB foo.baz 1\r\nb\r\nPUB x.y.z 1\r\nc\r\nPUB x.y.w 1\r\nd\r\n")
    await adm.ping()
    got = await m.msgs_until_pong()
    assert sorted(got) == sorted([
        (b"MSG foo.baz 1 1", b"b"), (b"MSG foo.baz 3 1", b"b"), (b"MSG foo.baz 6 1", b"b"),
        (b"MSG x.y.w 3 1", b"d"), (b"MSG x.y.w 5 1", b"d"),
    ])  # fmt: skip
    # The same subjects again: the decisions are cached, the result the same.
    await adm.send(b"PUB foo.bar 1\r\na\r\nPUB foo.baz 1\r\nb\r\n")
    await adm.ping()
    assert sorted(m[0] for m in await m.msgs_until_pong()) == [b"MSG foo.baz 1 1", b"MSG foo.baz 3 1", b"MSG foo.baz 6 1"]


async def test_deny_filter_leaves_other_clients_alone(perms: ServerHandle) -> None:
    adm = await as_user(perms, "admin", "a")
    m = await as_user(perms, "mp", "m")
    f = await as_user(perms, "free", "f")
    await m.send(b"SUB > 1\r\n")
    await f.send(b"SUB > 1\r\n")
    await m.ping()
    await f.ping()
    await adm.send(b"PUB foo.bar 1\r\na\r\n")
    await adm.ping()
    assert await f.msgs_until_pong() == [(b"MSG foo.bar 1 1", b"a")]
    assert await m.msgs_until_pong() == []


async def test_no_perms_user_unrestricted(perms: ServerHandle) -> None:
    c = await as_user(perms, "free", "f")
    await c.send(b"SUB anything 1\r\nPUB anything 1\r\nx\r\nPING\r\n")
    await c.expect(b"MSG anything 1 1\r\nx\r\n" + PONG)


@pytest.mark.skipif(TARGET != "pynats", reason="looks inside the server")
async def test_only_filtered_clients_take_the_general_path(perms: ServerHandle) -> None:
    """Hot path rule: a plan is False only for subjects a filtered client subscribes to."""
    m = await as_user(perms, "mp", "m")
    f = await as_user(perms, "free", "f")
    adm = await as_user(perms, "admin", "a")
    await m.send(b"SUB foo.> 1\r\n")
    await f.send(b"SUB foo.* 1\r\nSUB b.* 2\r\n")
    await m.ping()
    await f.ping()
    await adm.send(b"PUB foo.x 1\r\nx\r\nPUB b.x 1\r\nx\r\n")  # admin has permissions: general path
    await adm.ping()
    fast = await as_user(perms, "free", "f")
    await fast.send(b"PUB foo.x 1\r\nx\r\nPUB b.x 1\r\nx\r\n")
    await fast.ping()
    sl = perms.srv.sublist
    assert sl.match(b"b.x").plan not in (None, False)
    # foo.> overlaps mp's denied foo.bar: its deliveries are checked, on the general path.
    assert sl.match(b"foo.x").plan is False
    assert [m[0] for m in await f.msgs_until_pong()] == [b"MSG foo.x 1 1", b"MSG b.x 2 1"] * 2
    assert [m[0] for m in await m.msgs_until_pong()] == [b"MSG foo.x 1 1"] * 2
